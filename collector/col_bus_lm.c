/* col_bus_lm: the tcp and rtu bus backends, over libmodbus (one modbus_t per bus).
 * Their job is to configure libmodbus safely (no automatic error recovery, which can loop
 * forever) and to turn its errno values into col_bus return codes. Part of module col_bus. */
#include "col_bus_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>

#include "col_rtu.h"
#include "fg_mem.h"

struct lm {
    modbus_t *ctx;
    size_t adu_overhead; /* bytes around each PDU: 7 (MBAP) on tcp, 3 (unit, CRC) on rtu */
};

/* libmodbus reports Modbus-level failures as errno values above MODBUS_ENOBASE. */
static int map_errno(int e)
{
    if (e > MODBUS_ENOBASE && e <= EMBXGTAR)
        return -(COL_BUS_EXC_BASE + (e - MODBUS_ENOBASE));
    switch (e) {
    case EMBBADCRC:
    case EMBBADDATA: /* includes a wrong transaction id on tcp */
    case EMBBADEXC:
    case EMBUNKEXC:
    case EMBMDATA:
    case EMBBADSLAVE:
        return -EBADMSG;
    case 0:
        return -EIO; /* libmodbus failed without saying why */
    default:
        return e > 0 && e < MODBUS_ENOBASE ? -e : -EIO;
    }
}

static int lm_init(struct col_bus *b, char *err, size_t errlen)
{
    struct lm *s = fg_calloc(1, sizeof *s);
    const struct col_bus_params *p = &b->params;
    errno = 0;
    if (p->type == COL_BUS_TCP) {
        char port[8];
        struct in_addr v4;
        snprintf(port, sizeof port, "%d", p->port);
        /* an IPv4 literal needs no resolver: getaddrinfo's netlink probing costs each bus thread
         * several KB of stack that stay resident (100 buses must fit in a few MB) */
        if (inet_pton(AF_INET, p->host, &v4) == 1)
            s->ctx = modbus_new_tcp(p->host, p->port);
        else
            s->ctx = modbus_new_tcp_pi(p->host, port);
        s->adu_overhead = 7;
    } else {
        s->ctx = modbus_new_rtu(p->device, p->baud, p->parity, p->data_bits, p->stop_bits);
        s->adu_overhead = 3;
    }
    if (!s->ctx) {
        int e = errno ? errno : EINVAL;
        if (err && errlen)
            snprintf(err, errlen, "cannot create %s context: %s", b->ops->name, modbus_strerror(e));
        free(s);
        return -e;
    }
    /* Automatic recovery reconnects and retries inside libmodbus, unbounded in time;
     * the poller decides about retries instead. */
    modbus_set_error_recovery(s->ctx, MODBUS_ERROR_RECOVERY_NONE);
    b->impl = s;
    return 0;
}

static void lm_destroy(struct col_bus *b)
{
    struct lm *s = b->impl;
    if (!s)
        return;
    modbus_free(s->ctx);
    free(s);
    b->impl = NULL;
}

static int lm_connect(struct col_bus *b, char *err, size_t errlen)
{
    struct lm *s = b->impl;
    if (modbus_connect(s->ctx) == 0)
        return 0;
    int rc = map_errno(errno);
    if (err && errlen)
        snprintf(err, errlen, "%s %s%s%d: %s", b->ops->name,
                 b->params.type == COL_BUS_TCP ? b->params.host : b->params.device,
                 b->params.type == COL_BUS_TCP ? ":" : "@",
                 b->params.type == COL_BUS_TCP ? b->params.port : b->params.baud,
                 modbus_strerror(errno));
    return rc;
}

static void lm_close(struct col_bus *b)
{
    struct lm *s = b->impl;
    modbus_close(s->ctx);
}

/* Also bounds the TCP connect, which libmodbus times with the response timeout. */
static void lm_apply_timeout(struct col_bus *b)
{
    struct lm *s = b->impl;
    modbus_set_response_timeout(s->ctx, b->timeout_ms / 1000, (b->timeout_ms % 1000) * 1000);
}

static void lm_flush(struct col_bus *b)
{
    struct lm *s = b->impl;
    modbus_flush(s->ctx);
}

/* Counts the ADUs of one exchange whose PDUs were req_pdu and (when accepted) rsp_pdu bytes. */
static int account(struct col_bus *b, int rc, size_t req_pdu, size_t rsp_pdu)
{
    struct lm *s = b->impl;
    b->bytes += s->adu_overhead + req_pdu;
    if (rc == 0)
        b->bytes += s->adu_overhead + rsp_pdu;
    else if (rc <= -COL_BUS_EXC_BASE)
        b->bytes += s->adu_overhead + 2;
    return rc;
}

/* Bits come back one per byte from libmodbus; widen them into the caller's words. */
static int lm_read_bits(modbus_t *ctx, uint8_t fc, uint16_t addr, uint16_t count, uint16_t *out)
{
    uint8_t bits[COL_RTU_MAX_READ_BITS];
    int n = fc == COL_RTU_FC_READ_COILS ? modbus_read_bits(ctx, addr, count, bits)
                                        : modbus_read_input_bits(ctx, addr, count, bits);
    if (n < 0)
        return map_errno(errno);
    if (n != count)
        return -EBADMSG;
    for (uint16_t i = 0; i < count; i++)
        out[i] = bits[i] ? 1 : 0;
    return 0;
}

static int lm_read_regs(modbus_t *ctx, uint8_t fc, uint16_t addr, uint16_t count, uint16_t *out)
{
    int n = fc == COL_RTU_FC_READ_HOLDING ? modbus_read_registers(ctx, addr, count, out)
                                          : modbus_read_input_registers(ctx, addr, count, out);
    if (n < 0)
        return map_errno(errno);
    return n == count ? 0 : -EBADMSG;
}

/* Before each request: drop whatever is pending. A late answer to an earlier request that
 * is already here would otherwise be read as this request's answer (rtu), or be refused for
 * its transaction id and leave this request's answer to be misread by the next one (tcp),
 * shifting every later exchange by one. Flushing is non-blocking and cheap. */
static int lm_begin(struct col_bus *b, int unit)
{
    struct lm *s = b->impl;
    modbus_flush(s->ctx); /* a broken connection shows up in the request that follows */
    return modbus_set_slave(s->ctx, unit) < 0 ? -EINVAL : 0;
}

static int lm_read(struct col_bus *b, int unit, uint8_t fc, uint16_t addr, uint16_t count,
                   uint16_t *out)
{
    struct lm *s = b->impl;
    if (lm_begin(b, unit) < 0)
        return -EINVAL;
    bool bits = fc == COL_RTU_FC_READ_COILS || fc == COL_RTU_FC_READ_DISCRETE;
    int rc = bits ? lm_read_bits(s->ctx, fc, addr, count, out)
                  : lm_read_regs(s->ctx, fc, addr, count, out);
    size_t data = bits ? (count + 7u) / 8u : 2u * count;
    return account(b, rc, 5, 2 + data);
}

static int lm_write_regs(struct col_bus *b, int unit, uint16_t addr, const uint16_t *vals,
                         uint16_t n)
{
    struct lm *s = b->impl;
    if (lm_begin(b, unit) < 0)
        return -EINVAL;
    int got = n == 1 ? modbus_write_register(s->ctx, addr, vals[0])
                     : modbus_write_registers(s->ctx, addr, n, vals);
    int rc = got < 0 ? map_errno(errno) : (got == (n == 1 ? 1 : n) ? 0 : -EBADMSG);
    return account(b, rc, n == 1 ? 5 : 6 + 2u * n, 5);
}

static int lm_write_coil(struct col_bus *b, int unit, uint16_t addr, bool on)
{
    struct lm *s = b->impl;
    if (lm_begin(b, unit) < 0)
        return -EINVAL;
    int got = modbus_write_bit(s->ctx, addr, on ? 1 : 0);
    int rc = got < 0 ? map_errno(errno) : (got == 1 ? 0 : -EBADMSG);
    return account(b, rc, 5, 5);
}

const struct col_bus_ops col_bus_tcp_ops = {
    .name = "tcp",
    .init = lm_init,
    .destroy = lm_destroy,
    .connect = lm_connect,
    .close = lm_close,
    .apply_timeout = lm_apply_timeout,
    .flush = lm_flush,
    .read = lm_read,
    .write_regs = lm_write_regs,
    .write_coil = lm_write_coil,
};

const struct col_bus_ops col_bus_rtu_ops = {
    .name = "rtu",
    .init = lm_init,
    .destroy = lm_destroy,
    .connect = lm_connect,
    .close = lm_close,
    .apply_timeout = lm_apply_timeout,
    .flush = lm_flush,
    .read = lm_read,
    .write_regs = lm_write_regs,
    .write_coil = lm_write_coil,
};
