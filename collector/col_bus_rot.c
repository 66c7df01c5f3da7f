/* col_bus_rot: the rtu-over-tcp bus backend. Cheap RS-485-to-Ethernet converters pass RTU
 * frames (with CRC, without a transaction id) through a plain TCP socket; libmodbus has no
 * backend for that, so this one frames with col_rtu and waits with poll(). Part of col_bus. */
#include "col_bus_priv.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "col_rtu.h"
#include "fg_mem.h"

struct rot {
    int fd; /* non-blocking socket, -1 when closed */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd has the events or the deadline passes. Returns 1 ready, 0 timed out,
 * or -errno. POLLERR/POLLHUP count as ready: the following recv/send reports them. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left_ms = deadline_ms - now_ms();
        if (left_ms < 0)
            left_ms = 0; /* still look once: the bytes may be there already */
        struct pollfd pfd = { .fd = fd, .events = events };
        int rc = poll(&pfd, 1, left_ms > 60000 ? 60000 : (int)left_ms);
        if (rc > 0)
            return 1;
        if (rc == 0 && left_ms == 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -errno;
    }
}

static int rot_init(struct col_bus *b, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct rot *s = fg_calloc(1, sizeof *s);
    s->fd = -1;
    b->impl = s;
    return 0;
}

static void rot_destroy(struct col_bus *b)
{
    free(b->impl);
    b->impl = NULL;
}

/* Non-blocking connect to one address, bounded by timeout_ms. Returns the socket or -errno. */
static int connect_one(const struct addrinfo *ai, unsigned timeout_ms)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        rc = errno == EINPROGRESS ? wait_fd(fd, POLLOUT, now_ms() + timeout_ms) : -errno;
        if (rc == 0) {
            rc = -ETIMEDOUT;
        } else if (rc > 0) {
            int soerr = 0;
            socklen_t len = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
                soerr = errno;
            rc = -soerr;
        }
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    /* a request is one small write: send it now instead of waiting for Nagle */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int rot_connect(struct col_bus *b, char *err, size_t errlen)
{
    struct rot *s = b->impl;
    const struct col_bus_params *p = &b->params;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%d", p->port);
    int g = getaddrinfo(p->host, port, &hints, &res);
    if (g != 0) {
        if (err && errlen)
            snprintf(err, errlen, "rtu-over-tcp %s:%d: %s", p->host, p->port, gai_strerror(g));
        return -EHOSTUNREACH;
    }
    int fd = -ECONNREFUSED;
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, b->timeout_ms);
    freeaddrinfo(res);
    if (fd < 0) {
        if (err && errlen) {
            char why[128];
            snprintf(err, errlen, "rtu-over-tcp %s:%d: %s", p->host, p->port,
                     col_bus_strerror(fd, why, sizeof why));
        }
        return fd;
    }
    s->fd = fd;
    return 0;
}

static void rot_close(struct col_bus *b)
{
    struct rot *s = b->impl;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* The deadline is taken from b->timeout_ms at each request; nothing to push down. */
static void rot_apply_timeout(struct col_bus *b)
{
    (void)b;
}

/* Reads and drops whatever has arrived, without blocking. Returns 0, -ECONNRESET on EOF,
 * or -errno. Before a request this guarantees that bytes already there (a late answer,
 * the tail of a bad frame) are never taken for its answer: RTU has no transaction id. */
static int drain(struct col_bus *b)
{
    struct rot *s = b->impl;
    uint8_t junk[COL_RTU_MAX_ADU];
    for (;;) {
        ssize_t got = recv(s->fd, junk, sizeof junk, MSG_DONTWAIT);
        if (got > 0) {
            b->bytes += (uint64_t)got;
            continue;
        }
        if (got == 0)
            return -ECONNRESET;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

static void rot_flush(struct col_bus *b)
{
    drain(b); /* a broken connection shows up again on the next request */
}

static int send_all(struct col_bus *b, const uint8_t *frame, size_t len, int64_t deadline_ms)
{
    struct rot *s = b->impl;
    size_t done = 0;
    while (done < len) {
        ssize_t sent = send(s->fd, frame + done, len - done, MSG_NOSIGNAL);
        if (sent > 0) {
            done += (size_t)sent;
            b->bytes += (uint64_t)sent;
            continue;
        }
        if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -errno;
        int rc = wait_fd(s->fd, POLLOUT, deadline_ms);
        if (rc <= 0)
            return rc == 0 ? -ETIMEDOUT : rc;
    }
    return 0;
}

/* Receives until col_rtu_parse has a verdict or the deadline passes. A timeout leaves the
 * connection open; the bytes of a partial answer are dropped by the next flush/drain. */
static int receive(struct col_bus *b, int unit, uint8_t fc, uint16_t count, uint16_t *out,
                   int64_t deadline_ms)
{
    struct rot *s = b->impl;
    uint8_t rsp[COL_RTU_MAX_ADU];
    size_t n = 0;
    for (;;) {
        int rc = wait_fd(s->fd, POLLIN, deadline_ms);
        if (rc <= 0)
            return rc == 0 ? -ETIMEDOUT : rc;
        ssize_t got = recv(s->fd, rsp + n, sizeof rsp - n, MSG_DONTWAIT);
        if (got == 0)
            return -ECONNRESET;
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                continue;
            return -errno;
        }
        b->bytes += (uint64_t)got;
        n += (size_t)got;
        rc = col_rtu_parse(rsp, n, unit, fc, count, out);
        if (rc != -EAGAIN)
            return rc;
        if (n == sizeof rsp)
            return -EBADMSG;
    }
}

/* One request/answer exchange of an already built frame. */
static int transact(struct col_bus *b, const uint8_t *frame, size_t len, int unit, uint8_t fc,
                    uint16_t count, uint16_t *out)
{
    if (len == 0)
        return -EINVAL;
    int rc = drain(b);
    if (rc < 0)
        return rc;
    int64_t deadline_ms = now_ms() + b->timeout_ms;
    rc = send_all(b, frame, len, deadline_ms);
    if (rc < 0)
        return rc;
    return receive(b, unit, fc, count, out, deadline_ms);
}

static int rot_read(struct col_bus *b, int unit, uint8_t fc, uint16_t addr, uint16_t count,
                    uint16_t *out)
{
    uint8_t frame[COL_RTU_MAX_ADU];
    size_t len = col_rtu_build_read(frame, unit, fc, addr, count);
    return transact(b, frame, len, unit, fc, count, out);
}

/* Writes are answered with an echo of address and value (or quantity); anything else
 * means the answer belongs to some other request. */
static int write_echoed(struct col_bus *b, const uint8_t *frame, size_t len, int unit,
                        uint8_t fc, uint16_t count, uint16_t addr, uint16_t value)
{
    uint16_t echo[2];
    int rc = transact(b, frame, len, unit, fc, count, echo);
    if (rc == 0 && (echo[0] != addr || echo[1] != value))
        return -EBADMSG;
    return rc;
}

static int rot_write_regs(struct col_bus *b, int unit, uint16_t addr, const uint16_t *vals,
                          uint16_t n)
{
    uint8_t frame[COL_RTU_MAX_ADU];
    if (n == 1) {
        size_t len = col_rtu_build_write_reg(frame, unit, addr, vals[0]);
        return write_echoed(b, frame, len, unit, COL_RTU_FC_WRITE_REG, 1, addr, vals[0]);
    }
    size_t len = col_rtu_build_write_regs(frame, unit, addr, vals, n);
    return write_echoed(b, frame, len, unit, COL_RTU_FC_WRITE_REGS, n, addr, n);
}

static int rot_write_coil(struct col_bus *b, int unit, uint16_t addr, bool on)
{
    uint8_t frame[COL_RTU_MAX_ADU];
    size_t len = col_rtu_build_write_coil(frame, unit, addr, on);
    return write_echoed(b, frame, len, unit, COL_RTU_FC_WRITE_COIL, 1, addr, on ? 0xFF00 : 0);
}

const struct col_bus_ops col_bus_rot_ops = {
    .name = "rtu-over-tcp",
    .init = rot_init,
    .destroy = rot_destroy,
    .connect = rot_connect,
    .close = rot_close,
    .apply_timeout = rot_apply_timeout,
    .flush = rot_flush,
    .read = rot_read,
    .write_regs = rot_write_regs,
    .write_coil = rot_write_coil,
};
