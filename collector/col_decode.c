/* col_decode: raw Modbus registers <-> point values (word/byte orders, sentinels, SunSpec scale
 * factors, plausibility limits). Pure and table-driven; see col_decode.h for the exact rules. */
#include "col_decode.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#define SF_MIN (-10)
#define SF_MAX 10
#define SF_NOT_IMPLEMENTED 0x8000u

/* Powers of ten up to 1e22 are exact doubles, so raw / 1e1 is the correctly rounded quotient
 * (1234 / 10.0 == 123.4 exactly as the literal), which pow(10, -1) would not promise. */
static const double pow10_exact[SF_MAX + 1] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
};

/* Per numeric type: width and the half-open range a rounded raw value must lie in to be encoded.
 * The bounds are powers of two, hence exact doubles. */
struct type_info {
    unsigned regs;
    bool is_signed;
    bool is_float;
    double lo, hi_excl;
};

static const struct type_info type_table[] = {
    [COL_U16] = {1, false, false, 0.0, 65536.0},
    [COL_S16] = {1, true, false, -32768.0, 32768.0},
    [COL_U32] = {2, false, false, 0.0, 4294967296.0},
    [COL_S32] = {2, true, false, -2147483648.0, 2147483648.0},
    [COL_U64] = {4, false, false, 0.0, 18446744073709551616.0},
    [COL_S64] = {4, true, false, -9223372036854775808.0, 9223372036854775808.0},
    [COL_F32] = {2, true, true, -FLT_MAX, INFINITY},
    [COL_F64] = {4, true, true, -DBL_MAX, INFINITY},
    [COL_STRING] = {0, false, false, 0.0, 0.0},
    [COL_BITS] = {1, false, false, 0.0, 65536.0},
};

static bool is_bit_table(enum col_table t)
{
    return t == COL_COIL || t == COL_DISCRETE;
}

static const struct type_info *type_info_of(enum col_type t)
{
    if ((unsigned)t >= sizeof type_table / sizeof type_table[0])
        return NULL;
    return &type_table[t];
}

unsigned col_type_regs(enum col_type t)
{
    const struct type_info *ti = type_info_of(t);
    return ti ? ti->regs : 0;
}

unsigned col_point_span(const struct col_point *p)
{
    unsigned span = p->count;
    if (!is_bit_table(p->table) && col_type_regs(p->type) > span)
        span = col_type_regs(p->type);
    return span ? span : 1;
}

/* Maps logical word i (0 = most significant) of an n-word value to its wire register; the same
 * mapping serves reading and writing because both swaps are their own inverse. */
static size_t wire_index(unsigned n, unsigned i, enum col_order o)
{
    return (o == COL_CDAB || o == COL_DCBA) ? n - 1 - i : i;
}

static uint16_t byte_order(uint16_t w, enum col_order o)
{
    if (o == COL_BADC || o == COL_DCBA)
        return (uint16_t)((w >> 8) | (w << 8));
    return w;
}

static uint64_t gather_raw(const uint16_t *wire, unsigned n, enum col_order o)
{
    uint64_t raw = 0;
    for (unsigned i = 0; i < n; i++)
        raw = (raw << 16) | byte_order(wire[wire_index(n, i, o)], o);
    return raw;
}

static void scatter_raw(uint64_t raw, uint16_t *wire, unsigned n, enum col_order o)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned shift = 16u * (n - 1 - i);
        wire[wire_index(n, i, o)] = byte_order((uint16_t)(raw >> shift), o);
    }
}

/* Two's complement of a `bits`-wide raw value, without relying on implementation-defined
 * conversions of out-of-range unsigned values to signed types. */
static int64_t sign_extend(uint64_t raw, unsigned bits)
{
    uint64_t mask = bits >= 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
    uint64_t sign = UINT64_C(1) << (bits - 1);
    if (!(raw & sign))
        return (int64_t)raw;
    return -(int64_t)(~raw & mask) - 1;
}

static double raw_to_double(enum col_type t, uint64_t raw)
{
    unsigned bits = 16u * col_type_regs(t);
    if (t == COL_F32) {
        uint32_t u = (uint32_t)raw;
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    if (t == COL_F64) {
        double d;
        memcpy(&d, &raw, sizeof d);
        return d;
    }
    if (type_info_of(t)->is_signed)
        return (double)sign_extend(raw, bits);
    return (double)raw;
}

static bool is_sentinel(const struct col_point *p, uint64_t raw)
{
    unsigned n = p->nsentinel < COL_MAX_SENTINELS ? p->nsentinel : COL_MAX_SENTINELS;
    for (unsigned i = 0; i < n; i++)
        if (p->sentinel[i] == raw)
            return true;
    return p->zero_is_sentinel && raw == 0;
}

static int check_limits(const struct col_point *p, double v)
{
    if (!isfinite(v))
        return COL_DECODE_IMPLAUSIBLE;
    if ((p->has_min && v < p->min) || (p->has_max && v > p->max))
        return COL_DECODE_IMPLAUSIBLE;
    return COL_DECODE_OK;
}

/* The sf register must come from the same read as the value: one read from another moment could
 * pair a new value with an old exponent and be off by a factor of ten. */
static int read_sf(const struct col_point *p, uint16_t base, const uint16_t *regs, size_t nregs,
                   int *sf)
{
    *sf = 0;
    if (p->sf_address < 0)
        return COL_DECODE_OK;
    if (p->sf_address < base || (size_t)(p->sf_address - base) >= nregs)
        return COL_DECODE_BADSF;
    uint16_t w = regs[p->sf_address - base];
    int64_t v = sign_extend(w, 16);
    if (w == SF_NOT_IMPLEMENTED || v < SF_MIN || v > SF_MAX)
        return COL_DECODE_BADSF;
    *sf = (int)v;
    return COL_DECODE_OK;
}

static double apply_scale(double raw, const struct col_point *p, int sf)
{
    double v = raw * p->scale;
    v = sf < 0 ? v / pow10_exact[-sf] : v * pow10_exact[sf];
    return v + p->offset;
}

static void set_number(struct col_value *out, double v)
{
    out->kind = COL_VAL_NUMBER;
    out->number = v;
    out->str[0] = '\0';
}

static int decode_number(const struct col_point *p, uint16_t base, const uint16_t *regs,
                         size_t nregs, const uint16_t *wire, struct col_value *out)
{
    uint64_t raw = gather_raw(wire, col_type_regs(p->type), p->order);
    if (is_sentinel(p, raw))
        return COL_DECODE_NOTIMPL;
    double v = raw_to_double(p->type, raw);
    if (isnan(v))
        return p->nan_is_sentinel ? COL_DECODE_NOTIMPL : COL_DECODE_IMPLAUSIBLE;
    if (isinf(v))
        return COL_DECODE_IMPLAUSIBLE;
    int sf;
    int rc = read_sf(p, base, regs, nregs, &sf);
    if (rc != COL_DECODE_OK)
        return rc;
    v = apply_scale(v, p, sf);
    rc = check_limits(p, v);
    if (rc == COL_DECODE_OK)
        set_number(out, v);
    return rc;
}

static int decode_bits(const struct col_point *p, const uint16_t *wire, struct col_value *out)
{
    uint16_t reg = (uint16_t)gather_raw(wire, 1, p->order);
    if (is_sentinel(p, reg))
        return COL_DECODE_NOTIMPL;
    double v = p->bit < 0 ? reg : (double)((reg >> p->bit) & 1u);
    int rc = check_limits(p, v);
    if (rc == COL_DECODE_OK)
        set_number(out, v);
    return rc;
}

/* Appends byte c to buf; returns false at the terminating NUL or when buf is full. */
static bool string_put(char *buf, size_t *len, unsigned c)
{
    if (c == 0 || *len >= COL_STRING_MAX - 1)
        return false;
    buf[(*len)++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    return true;
}

static int decode_string(const struct col_point *p, const uint16_t *wire, struct col_value *out)
{
    bool low_first = p->order == COL_BADC || p->order == COL_DCBA;
    char buf[COL_STRING_MAX];
    size_t len = 0;
    for (unsigned i = 0; i < p->count; i++) {
        unsigned hi = wire[i] >> 8, lo = wire[i] & 0xffu;
        if (!string_put(buf, &len, low_first ? lo : hi) ||
            !string_put(buf, &len, low_first ? hi : lo))
            break;
    }
    while (len > 0 && buf[len - 1] == ' ')
        len--;
    if (len == 0)
        return COL_DECODE_NOTIMPL;
    buf[len] = '\0';
    out->kind = COL_VAL_STRING;
    out->number = 0.0;
    memcpy(out->str, buf, len + 1);
    return COL_DECODE_OK;
}

int col_decode(const struct col_point *p, uint16_t base, const uint16_t *regs, size_t nregs,
               struct col_value *out)
{
    size_t span = col_point_span(p);
    if (p->address < base || (size_t)(p->address - base) + span > nregs)
        return COL_DECODE_RANGE;
    const uint16_t *wire = regs + (p->address - base);
    if (is_bit_table(p->table)) {
        set_number(out, wire[0] ? 1.0 : 0.0);
        return COL_DECODE_OK;
    }
    if (!type_info_of(p->type))
        return COL_DECODE_RANGE;
    if (p->type == COL_STRING)
        return decode_string(p, wire, out);
    if (p->type == COL_BITS) {
        if (p->bit < -1 || p->bit > 15)
            return COL_DECODE_RANGE;
        return decode_bits(p, wire, out);
    }
    return decode_number(p, base, regs, nregs, wire, out);
}

/* Rounds and range-checks x for a numeric type; returns 0 and the raw bit pattern, or -ERANGE. */
static int double_to_raw(enum col_type t, double x, uint64_t *raw)
{
    const struct type_info *ti = type_info_of(t);
    if (!isfinite(x))
        return -ERANGE;
    if (t == COL_F32) {
        if (fabs(x) > FLT_MAX)
            return -ERANGE;
        float f = (float)x;
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        *raw = u;
        return 0;
    }
    if (t == COL_F64) {
        memcpy(raw, &x, sizeof *raw);
        return 0;
    }
    double r = round(x);
    if (r < ti->lo || r >= ti->hi_excl)
        return -ERANGE;
    /* Negative values go through int64_t: converting that to unsigned is defined as modulo 2^64,
     * which is the two's complement pattern; scatter_raw keeps only the type's low words. */
    *raw = r < 0 ? (uint64_t)(int64_t)r : (uint64_t)r;
    return 0;
}

static int encode_coil(double value, uint16_t *regs, size_t nregs)
{
    if (nregs < 1)
        return -EINVAL;
    if (value != 0.0 && value != 1.0)
        return -ERANGE;
    regs[0] = value == 1.0;
    return 1;
}

int col_encode(const struct col_point *p, double value, uint16_t *regs, size_t nregs)
{
    if (p->sf_address >= 0 || p->table == COL_INPUT || p->table == COL_DISCRETE)
        return -EINVAL;
    if (p->table == COL_COIL)
        return encode_coil(value, regs, nregs);
    if (!type_info_of(p->type) || p->type == COL_STRING || p->type == COL_BITS)
        return -EINVAL;
    unsigned n = col_type_regs(p->type);
    if (nregs < n || p->scale == 0.0 || !isfinite(p->scale))
        return -EINVAL;
    if (!isfinite(value))
        return -ERANGE;
    uint64_t raw;
    int rc = double_to_raw(p->type, (value - p->offset) / p->scale, &raw);
    if (rc < 0)
        return rc;
    scatter_raw(raw, regs, n, p->order);
    return (int)n;
}
