/* sim_server: sockets and threads of fabgrid-sim. Each request is matched to a device by the unit
 * id of its MBAP header, run through the device's fault flags (counted per unit, so they are
 * deterministic), and answered by libmodbus from a per-connection mapping filled from the model. */
#include "sim_server.h"

#include "fg_log.h"
#include "fg_mem.h"

#include <errno.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define THREAD_STACK_BYTES (128 * 1024) /* the benchmark runs 100 inverters */
#define MAX_CONNECTIONS 512
#define POLL_MS 200                     /* how often idle threads look at the stop flag */
#define SEND_TIMEOUT_S 1
#define MAX_UNIT 247
#define MBAP_LEN 7                      /* header before the function code */
#define MAX_LAYOUTS 8                   /* distinct register layouts on one connection */
#define IMAGE_WORDS 512                 /* >= the largest layout */
#define STOP_WAIT_MS 5000

enum action { ACT_ANSWER, ACT_SILENT, ACT_GARBAGE, ACT_EXCEPTION, ACT_BAD_TID };

struct port {
    struct sim_server *srv;
    char host[256];
    int port;
    int fd;
    modbus_t *ctx;              /* the listener's context (owns fd) */
    int dev_of_unit[MAX_UNIT + 1]; /* device index, -1: nobody */
    size_t ndevices;
    pthread_t thread;
    bool started;
};

struct sim_server {
    const struct sim_config *cfg;
    struct sim_model *model;
    const struct fg_clock *clock;
    atomic_int stop;
    pthread_mutex_t lock;       /* the model and requests[] */
    uint64_t *requests;         /* per device: requests so far, for the fault counters */
    pthread_mutex_t conn_lock;
    pthread_cond_t conn_gone;
    int nconn;
    pthread_attr_t attr;
    struct port *ports;
    size_t nports;
};

struct cached_map {
    struct sim_layout layout;
    modbus_mapping_t *map;
};

struct conn {
    struct port *port;
    int fd;
    modbus_t *ctx;
    uint32_t on_conn[MAX_UNIT + 1]; /* requests per unit on this connection */
    struct cached_map maps[MAX_LAYOUTS];
    size_t nmaps;
    uint16_t words[IMAGE_WORDS];
};

static bool stopping(const struct sim_server *s)
{
    return atomic_load(&((struct sim_server *)s)->stop) != 0;
}

/* Sleeps delay_ms of real time in slices, returning early when the server stops. */
static void wait_ms(const struct sim_server *s, int delay_ms)
{
    for (int left = delay_ms; left > 0 && !stopping(s); left -= 100) {
        int ms = left < 100 ? left : 100;
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* ---- what to do with a request ---- */

static bool every(int n_every, uint64_t n)
{
    return n_every > 0 && n % (uint64_t)n_every == 0;
}

/* The fault that request number n (1-based, per unit) triggers. */
static enum action fault_action(const struct sim_faults *f, uint64_t n)
{
    if (f->dead || every(f->drop_every, n))
        return ACT_SILENT;
    if (every(f->garbage_every, n))
        return ACT_GARBAGE;
    if (f->exception && every(f->exception_every, n))
        return ACT_EXCEPTION;
    if (every(f->bad_tid_every, n))
        return ACT_BAD_TID;
    return ACT_ANSWER;
}

static bool overlaps_hole(const struct sim_serve *sv, uint32_t addr, uint32_t count)
{
    for (size_t i = 0; i < sv->nholes; i++)
        if (addr < sv->holes[i].addr + sv->holes[i].count && sv->holes[i].addr < addr + count)
            return true;
    return false;
}

/* Exception 2 (illegal data address) for reads longer than max_read, reads touching a hole and
 * register writes (every simulated register is read-only); 0 for the rest. */
static int access_exception(const struct sim_serve *sv, const uint8_t *req)
{
    const uint8_t *pdu = req + MBAP_LEN;
    uint32_t addr = (uint32_t)(pdu[1] << 8 | pdu[2]), count = (uint32_t)(pdu[3] << 8 | pdu[4]);
    switch (pdu[0]) {
    case MODBUS_FC_READ_HOLDING_REGISTERS:
    case MODBUS_FC_READ_INPUT_REGISTERS:
        if (count > (uint32_t)sv->max_read)
            return MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS;
        /* fall through */
    case MODBUS_FC_READ_COILS:
    case MODBUS_FC_READ_DISCRETE_INPUTS:
        return overlaps_hole(sv, addr, count) ? MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS : 0;
    case MODBUS_FC_WRITE_SINGLE_REGISTER:
    case MODBUS_FC_WRITE_MULTIPLE_REGISTERS:
    case MODBUS_FC_MASK_WRITE_REGISTER:
    case MODBUS_FC_WRITE_AND_READ_REGISTERS:
        return MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS;
    default:
        return 0;
    }
}

/* ---- answering ---- */

static modbus_mapping_t *mapping_for(struct conn *c, struct sim_layout l)
{
    for (size_t i = 0; i < c->nmaps; i++)
        if (c->maps[i].layout.table == l.table && c->maps[i].layout.start == l.start &&
            c->maps[i].layout.count == l.count)
            return c->maps[i].map;
    int bits = l.table == SIM_TABLE_COILS ? l.count : 0;
    int regs = l.table == SIM_TABLE_HOLDING ? l.count : 0;
    int inregs = l.table == SIM_TABLE_INPUT ? l.count : 0;
    modbus_mapping_t *map = modbus_mapping_new_start_address(l.start, (unsigned)bits, 0, 0, l.start,
                                                             (unsigned)regs, l.start, (unsigned)inregs);
    if (!map)
        return NULL;
    if (c->nmaps == MAX_LAYOUTS) { /* can't happen with the known layouts; stay bounded anyway */
        modbus_mapping_free(c->maps[0].map);
        memmove(c->maps, c->maps + 1, (MAX_LAYOUTS - 1) * sizeof c->maps[0]);
        c->nmaps--;
    }
    c->maps[c->nmaps].layout = l;
    c->maps[c->nmaps++].map = map;
    return map;
}

static void load_mapping(modbus_mapping_t *map, struct sim_layout l, const uint16_t *words)
{
    for (unsigned i = 0; i < l.count; i++) {
        if (l.table == SIM_TABLE_COILS)
            map->tab_bits[i] = (uint8_t)words[i];
        else if (l.table == SIM_TABLE_HOLDING)
            map->tab_registers[i] = words[i];
        else
            map->tab_input_registers[i] = words[i];
    }
}

/* Coils the request switched: the model learns them at the same instant. */
static void apply_coils(struct conn *c, size_t dev, const modbus_mapping_t *map, int64_t t_ms)
{
    struct sim_server *s = c->port->srv;
    for (unsigned k = 0; k < SIM_RELAY_COILS; k++) {
        bool on = map->tab_bits[k] != 0;
        if (on == (c->words[k] != 0))
            continue;
        sim_model_set_coil(s->model, dev, k, on, t_ms);
        fg_log(FG_LOG_INFO, "modbus", s->cfg->devices[dev].id, "coil_%u %s", k, on ? "on" : "off");
    }
}

/* Recomputes the device's registers at this instant and lets libmodbus answer from them. */
static void reply_from_model(struct conn *c, size_t dev, const uint8_t *req, int len)
{
    struct sim_server *s = c->port->srv;
    pthread_mutex_lock(&s->lock);
    int64_t t_ms = fg_clock_now_ms(s->clock);
    struct sim_layout l = sim_model_layout(s->model, dev);
    modbus_mapping_t *map = mapping_for(c, l);
    if (map && sim_model_read(s->model, dev, t_ms, c->words, IMAGE_WORDS) == 0) {
        load_mapping(map, l, c->words);
        if (modbus_reply(c->ctx, req, len, map) < 0)
            fg_log(FG_LOG_DEBUG, "modbus", s->cfg->devices[dev].id, "reply failed: %s", modbus_strerror(errno));
        if (l.table == SIM_TABLE_COILS)
            apply_coils(c, dev, map, t_ms);
    }
    pthread_mutex_unlock(&s->lock);
}

static void answer(struct conn *c, size_t dev, uint8_t *req, int len, enum action a)
{
    static const uint8_t garbage[7] = { 0xde, 0xad, 0xbe, 0xef, 0x00, 0x07, 0xff };
    const struct sim_serve *sv = &c->port->srv->cfg->serve[dev];
    if (a == ACT_SILENT)
        return;
    if (a == ACT_GARBAGE) {
        if (send(c->fd, garbage, sizeof garbage, MSG_NOSIGNAL) < 0)
            fg_log(FG_LOG_DEBUG, "modbus", NULL, "send: %s", strerror(errno));
        return;
    }
    if (a == ACT_BAD_TID)
        req[0] ^= 0x80; /* libmodbus copies the transaction id from the request */
    int exc = a == ACT_EXCEPTION ? sv->faults.exception : access_exception(sv, req);
    if (exc)
        modbus_reply_exception(c->ctx, req, (unsigned)exc);
    else
        reply_from_model(c, dev, req, len);
}

static uint64_t count_request(struct sim_server *s, size_t dev)
{
    pthread_mutex_lock(&s->lock);
    uint64_t n = ++s->requests[dev];
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* Handles one request; returns false when the connection must be closed. */
static bool handle(struct conn *c, uint8_t *req, int len)
{
    struct sim_server *s = c->port->srv;
    int unit = req[MBAP_LEN - 1];
    int dev = unit <= MAX_UNIT ? c->port->dev_of_unit[unit] : -1;
    if (dev < 0)
        return true; /* nobody at this unit id: no reply, as behind a real gateway */
    const struct sim_serve *sv = &s->cfg->serve[dev];
    const char *id = s->cfg->devices[dev].id;
    uint64_t n = count_request(s, (size_t)dev);
    uint32_t on_conn = ++c->on_conn[unit];
    enum action a = fault_action(&sv->faults, n);
    static const char *const what[] = { "answered", "not answered", "garbage", "exception", "bad tid" };
    if (a != ACT_SILENT && sv->faults.delay_ms > 0)
        wait_ms(s, sv->faults.delay_ms);
    if (stopping(s))
        return false;
    answer(c, (size_t)dev, req, len, a);
    if (a != ACT_ANSWER || sv->faults.delay_ms)
        fg_log(FG_LOG_DEBUG, "modbus", id, "request %llu (fc %u): %s", (unsigned long long)n, req[MBAP_LEN], what[a]);
    if (sv->faults.disconnect_after > 0 && on_conn >= (uint32_t)sv->faults.disconnect_after) {
        fg_log(FG_LOG_DEBUG, "modbus", id, "closing the connection after %u requests", on_conn);
        return false;
    }
    return true;
}

/* ---- threads ---- */

static void conn_close(struct conn *c)
{
    struct sim_server *s = c->port->srv;
    for (size_t i = 0; i < c->nmaps; i++)
        modbus_mapping_free(c->maps[i].map);
    modbus_close(c->ctx); /* closes fd */
    modbus_free(c->ctx);
    free(c);
    pthread_mutex_lock(&s->conn_lock);
    s->nconn--;
    pthread_cond_broadcast(&s->conn_gone);
    pthread_mutex_unlock(&s->conn_lock);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct sim_server *s = c->port->srv;
    uint8_t req[MODBUS_TCP_MAX_ADU_LENGTH];
    while (!stopping(s)) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        int rc = poll(&pfd, 1, POLL_MS);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0)
            continue;
        int len = modbus_receive(c->ctx, req); /* the rest of a frame: bounded by the byte timeout */
        if (len < 0)
            break; /* peer closed, or not a Modbus TCP frame */
        if (len > 0 && !handle(c, req, len))
            break;
    }
    fg_log(FG_LOG_DEBUG, "modbus", NULL, "connection on port %d closed", c->port->port);
    conn_close(c);
    return NULL;
}

static bool reserve_conn(struct sim_server *s)
{
    pthread_mutex_lock(&s->conn_lock);
    bool ok = s->nconn < MAX_CONNECTIONS;
    if (ok)
        s->nconn++;
    pthread_mutex_unlock(&s->conn_lock);
    return ok;
}

static void start_conn(struct port *p, int fd)
{
    struct sim_server *s = p->srv;
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", p->port);
    if (!reserve_conn(s)) {
        fg_log(FG_LOG_WARN, "modbus", NULL, "port %d: more than %d connections, refusing one", p->port, MAX_CONNECTIONS);
        close(fd);
        return;
    }
    int one = 1;
    struct timeval tv = { SEND_TIMEOUT_S, 0 };
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* a stuck client can't hold the lock */
    struct conn *c = fg_calloc(1, sizeof *c);
    c->port = p;
    c->fd = fd;
    c->ctx = modbus_new_tcp_pi(p->host, port_s);
    pthread_t t;
    if (!c->ctx || modbus_set_socket(c->ctx, fd) < 0 || pthread_create(&t, &s->attr, conn_main, c) != 0) {
        fg_log(FG_LOG_ERROR, "modbus", NULL, "port %d: cannot serve a connection: %s", p->port, strerror(errno));
        if (c->ctx)
            modbus_free(c->ctx);
        close(fd);
        free(c);
        pthread_mutex_lock(&s->conn_lock);
        s->nconn--;
        pthread_mutex_unlock(&s->conn_lock);
        return;
    }
    fg_log(FG_LOG_DEBUG, "modbus", NULL, "connection on port %d", p->port);
}

static void *accept_main(void *arg)
{
    struct port *p = arg;
    while (!stopping(p->srv)) {
        struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
        if (poll(&pfd, 1, POLL_MS) <= 0)
            continue;
        int fd = accept4(p->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            start_conn(p, fd);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
            fg_log(FG_LOG_WARN, "modbus", NULL, "port %d: accept: %s", p->port, strerror(errno));
            wait_ms(p->srv, 100); /* let connections close instead of spinning */
        }
    }
    return NULL;
}

/* ---- setup ---- */

static int open_port(struct port *p, char *err, size_t errlen)
{
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", p->port);
    p->ctx = modbus_new_tcp_pi(p->host, port_s);
    p->fd = p->ctx ? modbus_tcp_pi_listen(p->ctx, 64) : -1;
    if (p->fd < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", p->host, p->port,
                 p->ctx ? modbus_strerror(errno) : "bad address");
        return -EADDRNOTAVAIL;
    }
    return 0;
}

/* One port per tcp bus that has devices; --listen may not merge two buses onto one port. */
static int plan_ports(struct sim_server *s, const char *listen_addr, char *err, size_t errlen)
{
    const struct sim_config *cfg = s->cfg;
    s->ports = fg_calloc(cfg->nbuses + 1, sizeof *s->ports);
    for (size_t b = 0; b < cfg->nbuses; b++) {
        struct port *p = &s->ports[s->nports];
        p->srv = s;
        p->fd = -1;
        fg_strlcpy(p->host, listen_addr ? listen_addr : cfg->buses[b].host, sizeof p->host);
        p->port = cfg->buses[b].port;
        for (int u = 0; u <= MAX_UNIT; u++)
            p->dev_of_unit[u] = -1;
        for (size_t d = 0; d < cfg->ndevices; d++)
            if (cfg->serve[d].bus == b) {
                p->dev_of_unit[cfg->devices[d].unit] = (int)d;
                p->ndevices++;
            }
        for (size_t q = 0; q < s->nports; q++)
            if (s->ports[q].port == p->port && strcmp(s->ports[q].host, p->host) == 0) {
                snprintf(err, errlen, "buses with devices on the same address %s:%d", p->host, p->port);
                return -EINVAL;
            }
        if (p->ndevices)
            s->nports++;
        else
            fg_log(FG_LOG_DEBUG, "modbus", NULL, "bus %s has no devices: not listening", cfg->buses[b].id);
    }
    return 0;
}

struct sim_server *sim_server_new(const struct sim_config *cfg, struct sim_model *model,
                                  const struct fg_clock *clock, const char *listen_addr,
                                  char *err, size_t errlen)
{
    struct sim_server *s = fg_calloc(1, sizeof *s);
    s->cfg = cfg;
    s->model = model;
    s->clock = clock;
    s->requests = fg_calloc(cfg->ndevices + 1, sizeof *s->requests);
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->conn_lock, NULL);
    pthread_cond_init(&s->conn_gone, NULL);
    pthread_attr_init(&s->attr);
    pthread_attr_setstacksize(&s->attr, THREAD_STACK_BYTES);
    pthread_attr_setdetachstate(&s->attr, PTHREAD_CREATE_DETACHED);
    int rc = plan_ports(s, listen_addr, err, errlen);
    for (size_t i = 0; !rc && i < s->nports; i++)
        rc = open_port(&s->ports[i], err, errlen);
    for (size_t i = 0; !rc && i < s->nports; i++) {
        pthread_attr_t attr; /* joinable, unlike the connections */
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, THREAD_STACK_BYTES);
        rc = pthread_create(&s->ports[i].thread, &attr, accept_main, &s->ports[i]);
        pthread_attr_destroy(&attr);
        if (rc)
            snprintf(err, errlen, "cannot start a thread: %s", strerror(rc));
        s->ports[i].started = rc == 0;
    }
    if (rc) {
        sim_server_free(s);
        return NULL;
    }
    return s;
}

size_t sim_server_nports(const struct sim_server *s)
{
    return s->nports;
}

void sim_server_port(const struct sim_server *s, size_t i, const char **host, int *port,
                     size_t *ndevices)
{
    *host = s->ports[i].host;
    *port = s->ports[i].port;
    *ndevices = s->ports[i].ndevices;
}

/* Waits until every connection thread has gone; false after STOP_WAIT_MS. */
static bool wait_connections(struct sim_server *s)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += STOP_WAIT_MS / 1000;
    pthread_mutex_lock(&s->conn_lock);
    int rc = 0;
    while (s->nconn > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->conn_gone, &s->conn_lock, &deadline);
    bool done = s->nconn == 0;
    pthread_mutex_unlock(&s->conn_lock);
    return done;
}

void sim_server_free(struct sim_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    for (size_t i = 0; i < s->nports; i++)
        if (s->ports[i].started)
            pthread_join(s->ports[i].thread, NULL);
    if (!wait_connections(s)) {
        /* a thread is stuck in a system call: leaking beats freeing what it still uses */
        fg_log(FG_LOG_WARN, "modbus", NULL, "connections still open at exit");
        return;
    }
    for (size_t i = 0; i < s->nports; i++)
        if (s->ports[i].ctx) {
            modbus_close(s->ports[i].ctx);
            modbus_free(s->ports[i].ctx);
        }
    pthread_attr_destroy(&s->attr);
    pthread_cond_destroy(&s->conn_gone);
    pthread_mutex_destroy(&s->conn_lock);
    pthread_mutex_destroy(&s->lock);
    free(s->requests);
    free(s->ports);
    free(s);
}
