/* col_sunspec: SunSpec discovery walk and the register layouts of the models fabgrid reads.
 * Layouts follow the SunSpec Information Model (sunspec/models); offsets count from the first
 * register after a model's ID and L registers, as the specification numbers them. */
#include "col_sunspec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fg_mem.h"

#define SS_ID_END 0xFFFFu
#define SS_MAX_ADDR 0xFFFFu
/* A Modbus read returns at most 125 registers; a value and its scale factor must share one. */
#define SS_MAX_SPAN 125u

/* SunSpec storage types, by how they decode and which raw value means "not implemented".
 * enum16 and bitfield16 decode like uint16; bitfield32 like uint32. */
enum ss_kind { SS_U16, SS_S16, SS_U32, SS_ACC32, SS_F32, SS_STR };

enum ss_lim {
    LIM_NONE, LIM_POWER, LIM_CURRENT, LIM_VOLTAGE, LIM_FREQ, LIM_PF,
    LIM_ENERGY, LIM_TEMP, LIM_SOC, LIM_RATE, LIM_RATING, LIM_COUNT
};

/* Generous on purpose: they catch garbage (a wrong scale factor, a half-written register), not
 * unusual but real readings. */
static const struct {
    double min, max;
} ss_limits[LIM_COUNT] = {
    [LIM_POWER] = {-1e7, 1e7},   [LIM_CURRENT] = {-1e5, 1e5}, [LIM_VOLTAGE] = {0, 1e5},
    [LIM_FREQ] = {0, 1000},      [LIM_PF] = {-1, 1},          [LIM_ENERGY] = {0, 1e15},
    [LIM_TEMP] = {-100, 300},    [LIM_SOC] = {0, 100},        [LIM_RATE] = {-100, 100},
    [LIM_RATING] = {0, 1e12},
};

struct ss_field {
    const char *name;
    uint8_t off;    /* value offset (model 160: within its module) */
    uint8_t kind;   /* enum ss_kind */
    int8_t sf_off;  /* offset of the scale-factor register in the model, -1: none */
    uint8_t lim;    /* enum ss_lim */
    uint8_t nregs;  /* strings: registers */
    double scale;
};

#define FLD(n, o, k, sf, l) {n, o, k, sf, l, 0, 1.0}
/* SunSpec power factors are in percent; fabgrid publishes -1..1. */
#define PCT(n, o, k, sf) {n, o, k, sf, LIM_PF, 0, 0.01}
#define STR(n, o, len) {n, o, SS_STR, -1, LIM_NONE, len, 1.0}
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* Model 1; DA (64) and the pad are not quantities. */
static const struct ss_field ss_common[] = {
    STR("manufacturer", 0, 16), STR("model", 16, 16), STR("options", 32, 8),
    STR("version", 40, 8),      STR("serial", 48, 16),
};

/* Models 101-103: integers with scale factors, L = 50. */
static const struct ss_field ss_inv_int[] = {
    FLD("current_a", 0, SS_U16, 4, LIM_CURRENT),
    FLD("current_l1_a", 1, SS_U16, 4, LIM_CURRENT),
    FLD("current_l2_a", 2, SS_U16, 4, LIM_CURRENT),
    FLD("current_l3_a", 3, SS_U16, 4, LIM_CURRENT),
    FLD("voltage_l12_v", 5, SS_U16, 11, LIM_VOLTAGE),
    FLD("voltage_l23_v", 6, SS_U16, 11, LIM_VOLTAGE),
    FLD("voltage_l31_v", 7, SS_U16, 11, LIM_VOLTAGE),
    FLD("voltage_l1_v", 8, SS_U16, 11, LIM_VOLTAGE),
    FLD("voltage_l2_v", 9, SS_U16, 11, LIM_VOLTAGE),
    FLD("voltage_l3_v", 10, SS_U16, 11, LIM_VOLTAGE),
    FLD("power_w", 12, SS_S16, 13, LIM_POWER),
    FLD("frequency_hz", 14, SS_U16, 15, LIM_FREQ),
    FLD("apparent_power_va", 16, SS_S16, 17, LIM_POWER),
    FLD("reactive_power_var", 18, SS_S16, 19, LIM_POWER),
    PCT("power_factor", 20, SS_S16, 21),
    FLD("energy_wh", 22, SS_ACC32, 24, LIM_ENERGY),
    FLD("dc_current_a", 25, SS_U16, 26, LIM_CURRENT),
    FLD("dc_voltage_v", 27, SS_U16, 28, LIM_VOLTAGE),
    FLD("dc_power_w", 29, SS_S16, 30, LIM_POWER),
    FLD("temperature_c", 31, SS_S16, 35, LIM_TEMP),
    FLD("temperature_heatsink_c", 32, SS_S16, 35, LIM_TEMP),
    FLD("state", 36, SS_U16, -1, LIM_NONE),
    FLD("events", 38, SS_U32, -1, LIM_NONE),
};

/* Models 111-113: the same quantities as float32, no scale factors, L = 60. */
static const struct ss_field ss_inv_float[] = {
    FLD("current_a", 0, SS_F32, -1, LIM_CURRENT),
    FLD("current_l1_a", 2, SS_F32, -1, LIM_CURRENT),
    FLD("current_l2_a", 4, SS_F32, -1, LIM_CURRENT),
    FLD("current_l3_a", 6, SS_F32, -1, LIM_CURRENT),
    FLD("voltage_l12_v", 8, SS_F32, -1, LIM_VOLTAGE),
    FLD("voltage_l23_v", 10, SS_F32, -1, LIM_VOLTAGE),
    FLD("voltage_l31_v", 12, SS_F32, -1, LIM_VOLTAGE),
    FLD("voltage_l1_v", 14, SS_F32, -1, LIM_VOLTAGE),
    FLD("voltage_l2_v", 16, SS_F32, -1, LIM_VOLTAGE),
    FLD("voltage_l3_v", 18, SS_F32, -1, LIM_VOLTAGE),
    FLD("power_w", 20, SS_F32, -1, LIM_POWER),
    FLD("frequency_hz", 22, SS_F32, -1, LIM_FREQ),
    FLD("apparent_power_va", 24, SS_F32, -1, LIM_POWER),
    FLD("reactive_power_var", 26, SS_F32, -1, LIM_POWER),
    PCT("power_factor", 28, SS_F32, -1),
    FLD("energy_wh", 30, SS_F32, -1, LIM_ENERGY),
    FLD("dc_current_a", 32, SS_F32, -1, LIM_CURRENT),
    FLD("dc_voltage_v", 34, SS_F32, -1, LIM_VOLTAGE),
    FLD("dc_power_w", 36, SS_F32, -1, LIM_POWER),
    FLD("temperature_c", 38, SS_F32, -1, LIM_TEMP),
    FLD("temperature_heatsink_c", 40, SS_F32, -1, LIM_TEMP),
    FLD("state", 46, SS_U16, -1, LIM_NONE),
    FLD("events", 48, SS_U32, -1, LIM_NONE),
};

/* Model 120 (nameplate), L = 26. */
static const struct ss_field ss_nameplate[] = {
    FLD("der_type", 0, SS_U16, -1, LIM_NONE),
    FLD("rated_power_w", 1, SS_U16, 2, LIM_RATING),
    FLD("rated_apparent_power_va", 3, SS_U16, 4, LIM_RATING),
    FLD("rated_current_a", 10, SS_U16, 11, LIM_RATING),
    FLD("rated_energy_wh", 17, SS_U16, 18, LIM_RATING),
    FLD("rated_max_charge_power_w", 21, SS_U16, 22, LIM_RATING),
    FLD("rated_max_discharge_power_w", 23, SS_U16, 24, LIM_RATING),
};

/* Model 124 (basic storage controls), L = 24; the scale factors sit at the end of the model. */
static const struct ss_field ss_storage[] = {
    FLD("max_charge_power_w", 0, SS_U16, 16, LIM_RATING),
    FLD("min_reserve_pct", 5, SS_U16, 19, LIM_SOC),
    FLD("soc_pct", 6, SS_U16, 20, LIM_SOC),
    FLD("battery_voltage_v", 8, SS_U16, 22, LIM_VOLTAGE),
    FLD("charge_state", 9, SS_U16, -1, LIM_NONE),
    FLD("discharge_rate_pct", 10, SS_S16, 23, LIM_RATE),
    FLD("charge_rate_pct", 11, SS_S16, 23, LIM_RATE),
};

/* Model 160: one repeating module of 20 registers; offsets within the module, scale factors in
 * the 8-register fixed block. */
static const struct ss_field ss_mppt_module[] = {
    FLD("dc_current_a", 9, SS_U16, 0, LIM_CURRENT),
    FLD("dc_voltage_v", 10, SS_U16, 1, LIM_VOLTAGE),
    FLD("dc_power_w", 11, SS_U16, 2, LIM_POWER),
    FLD("energy_wh", 12, SS_ACC32, 3, LIM_ENERGY),
    FLD("temperature_c", 16, SS_S16, -1, LIM_TEMP),
};

/* Models 201-204: integers with scale factors, L = 105. W > 0 means power flowing into the
 * site from the grid side of the meter (import), which is the contract's sign for role grid. */
static const struct ss_field ss_meter_int[] = {
    FLD("current_a", 0, SS_S16, 4, LIM_CURRENT),
    FLD("current_l1_a", 1, SS_S16, 4, LIM_CURRENT),
    FLD("current_l2_a", 2, SS_S16, 4, LIM_CURRENT),
    FLD("current_l3_a", 3, SS_S16, 4, LIM_CURRENT),
    FLD("voltage_v", 5, SS_S16, 13, LIM_VOLTAGE),
    FLD("voltage_l1_v", 6, SS_S16, 13, LIM_VOLTAGE),
    FLD("voltage_l2_v", 7, SS_S16, 13, LIM_VOLTAGE),
    FLD("voltage_l3_v", 8, SS_S16, 13, LIM_VOLTAGE),
    FLD("voltage_l12_v", 10, SS_S16, 13, LIM_VOLTAGE),
    FLD("voltage_l23_v", 11, SS_S16, 13, LIM_VOLTAGE),
    FLD("voltage_l31_v", 12, SS_S16, 13, LIM_VOLTAGE),
    FLD("frequency_hz", 14, SS_S16, 15, LIM_FREQ),
    FLD("power_w", 16, SS_S16, 20, LIM_POWER),
    FLD("power_l1_w", 17, SS_S16, 20, LIM_POWER),
    FLD("power_l2_w", 18, SS_S16, 20, LIM_POWER),
    FLD("power_l3_w", 19, SS_S16, 20, LIM_POWER),
    FLD("apparent_power_va", 21, SS_S16, 25, LIM_POWER),
    FLD("reactive_power_var", 26, SS_S16, 30, LIM_POWER),
    PCT("power_factor", 31, SS_S16, 35),
    FLD("energy_export_wh", 36, SS_ACC32, 52, LIM_ENERGY),
    FLD("energy_import_wh", 44, SS_ACC32, 52, LIM_ENERGY),
};

/* Models 211-214: the same quantities as float32, L = 124. */
static const struct ss_field ss_meter_float[] = {
    FLD("current_a", 0, SS_F32, -1, LIM_CURRENT),
    FLD("current_l1_a", 2, SS_F32, -1, LIM_CURRENT),
    FLD("current_l2_a", 4, SS_F32, -1, LIM_CURRENT),
    FLD("current_l3_a", 6, SS_F32, -1, LIM_CURRENT),
    FLD("voltage_v", 8, SS_F32, -1, LIM_VOLTAGE),
    FLD("voltage_l1_v", 10, SS_F32, -1, LIM_VOLTAGE),
    FLD("voltage_l2_v", 12, SS_F32, -1, LIM_VOLTAGE),
    FLD("voltage_l3_v", 14, SS_F32, -1, LIM_VOLTAGE),
    FLD("voltage_l12_v", 18, SS_F32, -1, LIM_VOLTAGE),
    FLD("voltage_l23_v", 20, SS_F32, -1, LIM_VOLTAGE),
    FLD("voltage_l31_v", 22, SS_F32, -1, LIM_VOLTAGE),
    FLD("frequency_hz", 24, SS_F32, -1, LIM_FREQ),
    FLD("power_w", 26, SS_F32, -1, LIM_POWER),
    FLD("power_l1_w", 28, SS_F32, -1, LIM_POWER),
    FLD("power_l2_w", 30, SS_F32, -1, LIM_POWER),
    FLD("power_l3_w", 32, SS_F32, -1, LIM_POWER),
    FLD("apparent_power_va", 34, SS_F32, -1, LIM_POWER),
    FLD("reactive_power_var", 42, SS_F32, -1, LIM_POWER),
    PCT("power_factor", 50, SS_F32, -1),
    FLD("energy_export_wh", 58, SS_F32, -1, LIM_ENERGY),
    FLD("energy_import_wh", 66, SS_F32, -1, LIM_ENERGY),
};

struct ss_layout {
    uint16_t id_lo, id_hi;
    const struct ss_field *fields;
    size_t nfields;
    bool static_value;
    uint8_t fixed_regs;        /* repeating models: registers before the first module */
    uint8_t module_regs;       /* 0: the model does not repeat */
    const char *module_prefix; /* module k's names are "<prefix><k>_<name>" */
};

#define LAYOUT(lo, hi, f, st) {lo, hi, f, NFIELDS(f), st, 0, 0, NULL}

static const struct ss_layout ss_layouts[] = {
    LAYOUT(1, 1, ss_common, true),
    LAYOUT(101, 103, ss_inv_int, false),
    LAYOUT(111, 113, ss_inv_float, false),
    LAYOUT(120, 120, ss_nameplate, true),
    LAYOUT(124, 124, ss_storage, false),
    {160, 160, ss_mppt_module, NFIELDS(ss_mppt_module), false, 8, 20, "mppt"},
    LAYOUT(201, 204, ss_meter_int, false),
    LAYOUT(211, 214, ss_meter_float, false),
};

__attribute__((format(printf, 4, 5)))
static int ss_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

bool col_sunspec_is_marker(const uint16_t regs[2])
{
    return regs && regs[0] == 0x5375 && regs[1] == 0x6e53;
}

void col_sunspec_walk_init(struct col_ss_map *m, uint16_t base)
{
    memset(m, 0, sizeof(*m));
    m->base = base;
}

/* Where the next header must be: right after the SunS marker, or after the last model. Wider
 * than 16 bits so that a chain ending at the top of the address space cannot wrap around. */
static uint32_t ss_expected_next(const struct col_ss_map *m)
{
    if (m->n == 0)
        return (uint32_t)m->base + 2;
    const struct col_ss_model *last = &m->models[m->n - 1];
    return (uint32_t)last->address + 2 + last->length;
}

int col_sunspec_walk_step(struct col_ss_map *m, const uint16_t *hdr, size_t nhdr,
                          uint16_t *next_addr, char *err, size_t errlen)
{
    if (!m || !hdr || !next_addr || nhdr == 0)
        return ss_fail(err, errlen, -EINVAL, "sunspec: walk step without a header");
    uint32_t expect = ss_expected_next(m);
    if (expect > SS_MAX_ADDR)
        return ss_fail(err, errlen, -EBADMSG, "sunspec: model chain from %u runs past register 65535",
                       (unsigned)m->base);
    uint16_t addr = *next_addr;
    if (addr != expect)
        return ss_fail(err, errlen, -EBADMSG,
                       "sunspec: header read at register %u, expected %u (loop in the model chain)",
                       (unsigned)addr, (unsigned)expect);
    if (hdr[0] == SS_ID_END)
        return 0;
    if (hdr[0] == 0)
        return ss_fail(err, errlen, -EBADMSG, "sunspec: model id 0 at register %u", (unsigned)addr);
    if (nhdr < 2)
        return ss_fail(err, errlen, -EBADMSG, "sunspec: model %u at register %u has no length",
                       (unsigned)hdr[0], (unsigned)addr);
    if (m->n >= COL_SS_MAX_MODELS)
        return ss_fail(err, errlen, -EBADMSG, "sunspec: more than %d models (next: %u at register %u)",
                       COL_SS_MAX_MODELS, (unsigned)hdr[0], (unsigned)addr);
    uint32_t next = (uint32_t)addr + 2 + hdr[1];
    if (next > SS_MAX_ADDR)
        return ss_fail(err, errlen, -EBADMSG,
                       "sunspec: model %u at register %u with length %u runs past register 65535",
                       (unsigned)hdr[0], (unsigned)addr, (unsigned)hdr[1]);
    m->models[m->n++] = (struct col_ss_model){.id = hdr[0], .address = addr, .length = hdr[1]};
    *next_addr = (uint16_t)next;
    return 1;
}

static const struct ss_layout *ss_find(uint16_t id)
{
    for (size_t i = 0; i < NFIELDS(ss_layouts); i++)
        if (id >= ss_layouts[i].id_lo && id <= ss_layouts[i].id_hi)
            return &ss_layouts[i];
    return NULL;
}

bool col_sunspec_supported(uint16_t id)
{
    return ss_find(id) != NULL;
}

static unsigned ss_kind_regs(const struct ss_field *f)
{
    switch (f->kind) {
    case SS_U16:
    case SS_S16:
        return 1;
    case SS_STR:
        return f->nregs;
    default:
        return 2;
    }
}

/* Whether field f, with its value at offset val_off of model md, lies inside the model as the
 * device reports it, inside the address space, and within one request of its scale factor. */
static bool ss_field_fits(const struct col_ss_model *md, const struct ss_field *f, unsigned val_off)
{
    unsigned end = val_off + ss_kind_regs(f); /* one past the last register */
    if (end > md->length || (uint32_t)md->address + 2 + end - 1 > SS_MAX_ADDR)
        return false;
    if (f->sf_off < 0)
        return true;
    unsigned sf = (unsigned)f->sf_off;
    if (sf >= md->length)
        return false;
    unsigned lo = sf < val_off ? sf : val_off;
    unsigned hi = sf > end - 1 ? sf : end - 1;
    return hi - lo + 1 <= SS_MAX_SPAN;
}

static void ss_set_kind(struct col_point *p, const struct ss_field *f)
{
    static const struct {
        enum col_type type;
        uint64_t sentinel; /* 0: none */
    } kinds[] = {
        [SS_U16] = {COL_U16, 0xFFFFu},     [SS_S16] = {COL_S16, 0x8000u},
        [SS_U32] = {COL_U32, 0xFFFFFFFFu}, [SS_ACC32] = {COL_U32, 0},
        [SS_F32] = {COL_F32, 0},           [SS_STR] = {COL_STRING, 0},
    };
    p->type = kinds[f->kind].type;
    p->count = (uint16_t)ss_kind_regs(f);
    if (kinds[f->kind].sentinel) {
        p->nsentinel = 1;
        p->sentinel[0] = kinds[f->kind].sentinel;
    }
    p->zero_is_sentinel = f->kind == SS_ACC32; /* SunSpec: an accumulator of 0 is "not implemented" */
    p->nan_is_sentinel = f->kind == SS_F32;
}

/* Fills p for field f of model md; val_off is the value's offset in the model, module is the
 * 1-based module number of a repeating model (0 otherwise). */
static void ss_fill(struct col_point *p, const struct col_ss_model *md, const struct ss_layout *lay,
                    const struct ss_field *f, unsigned val_off, unsigned module)
{
    uint32_t data = (uint32_t)md->address + 2;
    memset(p, 0, sizeof(*p));
    if (module)
        snprintf(p->name, sizeof(p->name), "%s%u_%s", lay->module_prefix, module, f->name);
    else
        fg_strlcpy(p->name, f->name, sizeof(p->name));
    p->table = COL_HOLDING;
    p->address = (uint16_t)(data + val_off);
    p->order = COL_ABCD;
    p->bit = -1;
    p->scale = f->scale;
    p->sf_address = f->sf_off < 0 ? -1 : (int32_t)(data + (uint32_t)f->sf_off);
    if (f->lim != LIM_NONE) {
        p->has_min = p->has_max = true;
        p->min = ss_limits[f->lim].min;
        p->max = ss_limits[f->lim].max;
    }
    p->static_value = lay->static_value;
    ss_set_kind(p, f);
}

/* Appends the fields of one block (the whole model, or module `module` at val_base) that fit.
 * With all_or_none, a block with any field that does not fit is left out entirely. */
static int ss_emit_block(const struct col_ss_model *md, const struct ss_layout *lay, unsigned val_base,
                         unsigned module, bool all_or_none, struct col_point *out, size_t cap,
                         size_t *n)
{
    for (size_t i = 0; all_or_none && i < lay->nfields; i++)
        if (!ss_field_fits(md, &lay->fields[i], val_base + lay->fields[i].off))
            return 0;
    for (size_t i = 0; i < lay->nfields; i++) {
        const struct ss_field *f = &lay->fields[i];
        if (!ss_field_fits(md, f, val_base + f->off))
            continue;
        if (*n >= cap)
            return -ENOSPC;
        ss_fill(&out[(*n)++], md, lay, f, val_base + f->off, module);
    }
    return 0;
}

static int ss_emit_model(const struct col_ss_model *md, const struct ss_layout *lay,
                         struct col_point *out, size_t cap, size_t *n)
{
    if (lay->module_regs == 0)
        return ss_emit_block(md, lay, 0, 0, false, out, cap, n);
    /* The device's L decides how many modules there are; a partial trailing module is ignored. */
    unsigned nmod = md->length >= lay->fixed_regs
                        ? (unsigned)(md->length - lay->fixed_regs) / lay->module_regs : 0;
    for (unsigned k = 1; k <= nmod; k++) {
        size_t before = *n;
        int rc = ss_emit_block(md, lay, lay->fixed_regs + (k - 1) * lay->module_regs, k, true, out,
                               cap, n);
        if (rc < 0)
            return rc;
        if (*n == before) /* later modules are even further from the scale factors */
            break;
    }
    return 0;
}

static bool ss_name_taken(const struct col_point *pts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(pts[i].name, name) == 0)
            return true;
    return false;
}

/* Keeps names unique across models: if any name of out[first..n) was already produced by an
 * earlier model, the whole model gets the prefix "m<pos>_", so its points stay recognisable as
 * one group rather than being renamed one by one. */
static void ss_unique_names(struct col_point *out, size_t first, size_t n, size_t pos)
{
    bool clash = false;
    for (size_t i = first; i < n && !clash; i++)
        clash = ss_name_taken(out, first, out[i].name);
    if (!clash)
        return;
    for (size_t i = first; i < n; i++) {
        char tmp[COL_NAME_MAX + 24];
        snprintf(tmp, sizeof(tmp), "m%zu_%s", pos, out[i].name);
        fg_strlcpy(out[i].name, tmp, sizeof(out[i].name));
    }
}

int col_sunspec_points(const struct col_ss_map *m, struct col_point *out, size_t cap)
{
    if (!m || (!out && cap > 0))
        return -EINVAL;
    size_t n = 0;
    size_t nmodels = m->n < COL_SS_MAX_MODELS ? m->n : COL_SS_MAX_MODELS;
    for (size_t i = 0; i < nmodels; i++) {
        const struct ss_layout *lay = ss_find(m->models[i].id);
        if (!lay)
            continue;
        size_t first = n;
        int rc = ss_emit_model(&m->models[i], lay, out, cap, &n);
        if (rc < 0)
            return rc;
        ss_unique_names(out, first, n, i + 1);
    }
    return (int)n;
}
