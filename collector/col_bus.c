/* col_bus: the public face of a Modbus bus. Validates parameters and arguments once, picks
 * the backend from a table by bus type, and keeps the counters; the backends
 * (col_bus_lm.c for tcp/rtu, col_bus_rot.c for rtu-over-tcp) only move frames. */
#include "col_bus_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "col_rtu.h"
#include "fg_mem.h"

static const struct col_bus_ops *const backends[] = {
    [COL_BUS_TCP] = &col_bus_tcp_ops,
    [COL_BUS_RTU] = &col_bus_rtu_ops,
    [COL_BUS_RTU_OVER_TCP] = &col_bus_rot_ops,
};

static int fail(char *err, size_t errlen, const char *what, const char *expected, long got)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: must be %s, got %ld", what, expected, got);
    return -EINVAL;
}

static int check_net(const struct col_bus_params *p, char *err, size_t errlen)
{
    if (!p->host || !p->host[0]) {
        if (err && errlen)
            snprintf(err, errlen, "host: must be a host name or address, got none");
        return -EINVAL;
    }
    if (p->port < 1 || p->port > 65535)
        return fail(err, errlen, "port", "1..65535", p->port);
    return 0;
}

static int check_serial(const struct col_bus_params *p, char *err, size_t errlen)
{
    if (!p->device || !p->device[0]) {
        if (err && errlen)
            snprintf(err, errlen, "device: must be a serial device path, got none");
        return -EINVAL;
    }
    if (p->baud < 1)
        return fail(err, errlen, "baud", "a positive rate such as 9600", p->baud);
    if (p->parity != 'N' && p->parity != 'E' && p->parity != 'O') {
        if (err && errlen)
            snprintf(err, errlen, "parity: must be N, E or O, got '%c'", p->parity ? p->parity : '?');
        return -EINVAL;
    }
    if (p->data_bits < 5 || p->data_bits > 8)
        return fail(err, errlen, "data_bits", "5..8", p->data_bits);
    if (p->stop_bits < 1 || p->stop_bits > 2)
        return fail(err, errlen, "stop_bits", "1..2", p->stop_bits);
    return 0;
}

static int check_params(const struct col_bus_params *p, char *err, size_t errlen)
{
    if (!p || (unsigned)p->type >= sizeof backends / sizeof backends[0]) {
        if (err && errlen)
            snprintf(err, errlen, "type: must be tcp, rtu or rtu-over-tcp");
        return -EINVAL;
    }
    return p->type == COL_BUS_RTU ? check_serial(p, err, errlen) : check_net(p, err, errlen);
}

struct col_bus *col_bus_new(const struct col_bus_params *p, char *err, size_t errlen)
{
    if (check_params(p, err, errlen) < 0)
        return NULL;
    struct col_bus *b = fg_calloc(1, sizeof *b);
    b->ops = backends[p->type];
    b->params = *p;
    b->host = p->host ? fg_strdup(p->host) : NULL;
    b->device = p->device ? fg_strdup(p->device) : NULL;
    b->params.host = b->host;
    b->params.device = b->device;
    b->timeout_ms = COL_BUS_DEFAULT_TIMEOUT_MS;
    if (b->ops->init(b, err, errlen) < 0) {
        free(b->host);
        free(b->device);
        free(b);
        return NULL;
    }
    b->ops->apply_timeout(b);
    return b;
}

void col_bus_free(struct col_bus *b)
{
    if (!b)
        return;
    col_bus_close(b);
    b->ops->destroy(b);
    free(b->host);
    free(b->device);
    free(b);
}

int col_bus_connect(struct col_bus *b, char *err, size_t errlen)
{
    col_bus_close(b);
    b->ops->apply_timeout(b);
    int rc = b->ops->connect(b, err, errlen);
    b->connected = (rc == 0);
    return rc;
}

void col_bus_close(struct col_bus *b)
{
    if (!b->connected)
        return;
    b->ops->close(b);
    b->connected = false;
}

bool col_bus_connected(const struct col_bus *b)
{
    return b->connected;
}

void col_bus_set_timeout(struct col_bus *b, unsigned timeout_ms)
{
    b->timeout_ms = timeout_ms ? timeout_ms : 1;
    b->ops->apply_timeout(b);
}

void col_bus_flush(struct col_bus *b)
{
    if (b->connected)
        b->ops->flush(b);
}

/* Modbus unit ids: 1..247 on a serial line (0 is broadcast, which gets no answer);
 * a TCP server may answer to any 0..255 (many use 0 or 255 for "this device"). */
static bool unit_ok(const struct col_bus *b, int unit)
{
    if (b->params.type == COL_BUS_TCP)
        return unit >= 0 && unit <= 255;
    return unit >= 1 && unit <= 247;
}

static const uint8_t table_fc[COL_TABLE_COUNT] = {
    [COL_HOLDING] = COL_RTU_FC_READ_HOLDING,
    [COL_INPUT] = COL_RTU_FC_READ_INPUT,
    [COL_COIL] = COL_RTU_FC_READ_COILS,
    [COL_DISCRETE] = COL_RTU_FC_READ_DISCRETE,
};

int col_bus_read(struct col_bus *b, int unit, enum col_table t, uint16_t addr, uint16_t count,
                 uint16_t *out)
{
    if ((unsigned)t >= COL_TABLE_COUNT || !unit_ok(b, unit) || !out)
        return -EINVAL;
    uint8_t fc = table_fc[t];
    if (col_rtu_expected_len(fc, count) == 0 || (uint32_t)addr + count > 0x10000u)
        return -EINVAL;
    if (!b->connected)
        return -ENOTCONN;
    b->requests++;
    return b->ops->read(b, unit, fc, addr, count, out);
}

int col_bus_write_regs(struct col_bus *b, int unit, uint16_t addr, const uint16_t *vals, uint16_t n)
{
    if (!unit_ok(b, unit) || !vals || n < 1 || n > COL_RTU_MAX_WRITE_REGS ||
        (uint32_t)addr + n > 0x10000u)
        return -EINVAL;
    if (!b->connected)
        return -ENOTCONN;
    b->requests++;
    return b->ops->write_regs(b, unit, addr, vals, n);
}

int col_bus_write_coil(struct col_bus *b, int unit, uint16_t addr, bool on)
{
    if (!unit_ok(b, unit))
        return -EINVAL;
    if (!b->connected)
        return -ENOTCONN;
    b->requests++;
    return b->ops->write_coil(b, unit, addr, on);
}

uint64_t col_bus_requests(const struct col_bus *b)
{
    return b->requests;
}

uint64_t col_bus_bytes(const struct col_bus *b)
{
    return b->bytes;
}

/* Names from the Modbus application protocol spec, section 7. */
static const char *exception_name(int code)
{
    static const char *const names[] = {
        [1] = "illegal function",         [2] = "illegal data address",
        [3] = "illegal data value",       [4] = "server device failure",
        [5] = "acknowledge",              [6] = "server device busy",
        [8] = "memory parity error",      [10] = "gateway path unavailable",
        [11] = "gateway target device failed to respond",
    };
    if (code > 0 && (size_t)code < sizeof names / sizeof names[0] && names[code])
        return names[code];
    return "unknown";
}

const char *col_bus_strerror(int rc, char *buf, size_t buflen)
{
    if (!buf || !buflen)
        return "";
    if (rc == 0)
        snprintf(buf, buflen, "ok");
    else if (rc <= -COL_BUS_EXC_BASE && rc > -(COL_BUS_EXC_BASE + 256))
        snprintf(buf, buflen, "exception %d (%s)", -rc - COL_BUS_EXC_BASE,
                 exception_name(-rc - COL_BUS_EXC_BASE));
    else if (rc == -ETIMEDOUT)
        snprintf(buf, buflen, "timeout");
    else if (rc == -EBADMSG)
        snprintf(buf, buflen, "malformed answer (bad CRC, id, unit, function or length)");
    else if (rc < 0) {
        /* GNU strerror_r may return a static string instead of filling buf */
        const char *s = strerror_r(-rc, buf, buflen);
        if (s != buf)
            fg_strlcpy(buf, s, buflen);
    }
    else
        snprintf(buf, buflen, "unexpected result %d", rc);
    return buf;
}
