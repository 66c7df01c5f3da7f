/* sim_model: physics and register images of the simulated devices. Power is a pure function of
 * time (and of the relay coils); energy is its integral, kept on a fixed one-minute grid so that
 * the counters read at a given instant don't depend on when the devices happened to be polled. */
#include "sim_model.h"

#include "fg_mem.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STEP_MS 60000LL        /* energy grid; divides the CSVs' 15 min rows, so they integrate exactly */
#define AC_V 230.0             /* phase voltage */
#define DC_V_MODULE 600.0      /* DC voltage of each MPPT input */
#define INV_EFFICIENCY 0.97    /* DC power = AC / efficiency */
#define FREQ_HZ 50.0
#define TEMP_C 35.0
#define MPPT_MODULES 2
#define NOT_IMPL_S16 0x8000
#define NOT_IMPL_U16 0xFFFF

/* SunSpec model lengths (registers after ID and L). */
#define L_103 50
#define L_160 48
#define L_203 105
#define MPPT_FIXED 8
#define MPPT_REPEAT 20

/* Eastron input registers (0-based protocol addresses) and the table size served. */
enum {
    SDM_V1 = 0, SDM_A1 = 6, SDM_W1 = 12, SDM_PF1 = 30, SDM_TOTAL_W = 52, SDM_TOTAL_PF = 62,
    SDM_HZ = 70, SDM_IMPORT_KWH = 72, SDM_EXPORT_KWH = 74, SDM_TOTAL_KWH = 342, SDM_COUNT = 344
};

struct sim_model {
    struct sim_site_params site;   /* devices/machines point at the copies below */
    struct sim_device_params *dev;
    size_t ndev;
    struct sim_machine_params *mach;
    size_t nmach;
    struct sim_sunspec_sf *sf;     /* per device */
    uint8_t *coils;                /* per device, SIM_RELAY_COILS each (used by relays only) */
    /* Energy integration: acc_* up to the last grid point, part_* from there to t_seg_ms
     * (split at coil changes), p_seg the power of every device at t_seg_ms. */
    int64_t t_seg_ms;
    double *acc_imp, *acc_exp, *part_imp, *part_exp, *p_seg, *p_tmp;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- power: pure functions of time and coil state ---- */

static double deg2rad(double deg)
{
    return deg * M_PI / 180.0;
}

/* A simple clear-sky model: solar elevation from Cooper's declination formula and the hour
 * angle of mean solar time (the equation of time, at most 16 min, is ignored); direct normal
 * irradiance from Meinel's air-mass attenuation 1353 * 0.7^(AM^0.678); global horizontal =
 * direct * sin(elevation) * 1.1 for diffuse light; 85 % system efficiency on a horizontal array. */
double sim_model_clear_sky_w(double kwp, double latitude_deg, double longitude_deg, int64_t t_ms)
{
    int64_t secs = floor_div(t_ms, 1000);
    time_t tt = (time_t)secs;
    struct tm tm;
    gmtime_r(&tt, &tm);
    double hours_utc = tm.tm_hour + tm.tm_min / 60.0 +
                       (tm.tm_sec + (double)(t_ms - secs * 1000) / 1000.0) / 3600.0;
    double decl = deg2rad(23.45) * sin(2.0 * M_PI * (284.0 + tm.tm_yday + 1) / 365.0);
    double hour_angle = deg2rad(15.0 * (hours_utc + longitude_deg / 15.0 - 12.0));
    double lat = deg2rad(latitude_deg);
    double sin_el = sin(lat) * sin(decl) + cos(lat) * cos(decl) * cos(hour_angle);
    if (sin_el <= 0.01)
        return 0.0; /* night, or so low that air mass explodes */
    double dni = 1353.0 * pow(0.7, pow(1.0 / sin_el, 0.678));
    return kwp * dni * sin_el * 1.1 * 0.85;
}

double sim_model_pv_w(const struct sim_model *m, size_t dev, int64_t t_ms)
{
    const struct sim_pv_params *pv = &m->dev[dev].pv;
    double w;
    if (pv->csv)
        w = sim_series_at(pv->csv, t_ms) * pv->scale;
    else if (pv->has_power_w)
        w = pv->power_w;
    else
        w = sim_model_clear_sky_w(pv->kwp, m->site.latitude_deg, m->site.longitude_deg, t_ms);
    return w > 0 ? w : 0.0; /* a CSV's night tare is not consumption */
}

double sim_model_base_load_w(const struct sim_model *m, int64_t t_ms)
{
    /* each server thread keeps its own paired day (the profile of one date, 1440 minutes) */
    static _Thread_local struct bal_series_paired day;
    if (!m->site.load)
        return m->site.base_load_w > 0 ? m->site.base_load_w : 0.0;
    if (day.s != m->site.load) {
        memset(&day, 0, sizeof day);
        day.s = m->site.load;
    }
    double w;
    bal_series_paired_at(&day, t_ms, &w); /* an unknown minute counts 0: no load is invented */
    w *= m->site.load_scale;
    return w > 0 ? w : 0.0;
}

static bool machine_on(const struct sim_model *m, const struct sim_machine_params *mc)
{
    return mc->relay_dev >= 0 && m->coils[(size_t)mc->relay_dev * SIM_RELAY_COILS + (size_t)mc->coil];
}

/* Power of the machines that are on; with meter >= 0 only those metered by that device. */
static double machines_w(const struct sim_model *m, int meter)
{
    double w = 0;
    for (size_t k = 0; k < m->nmach; k++)
        if ((meter < 0 || m->mach[k].meter_dev == meter) && machine_on(m, &m->mach[k]))
            w += m->mach[k].power_w;
    return w;
}

static bool is_meter(enum sim_kind k)
{
    return k == SIM_KIND_SUNSPEC_METER || k == SIM_KIND_SDM630 || k == SIM_KIND_SDM120;
}

/* A meter's power given the site's PV total and base load at the same instant. */
static double meter_w(const struct sim_model *m, size_t dev, double pv_total_w, double base_w)
{
    switch (m->dev[dev].role) {
    case SIM_ROLE_GRID: return base_w + machines_w(m, -1) - pv_total_w;
    case SIM_ROLE_LOAD: return base_w;
    case SIM_ROLE_MACHINE: return machines_w(m, (int)dev);
    default: return 0.0;
    }
}

/* Power of every device at t_ms into out[ndev]. */
static void powers_at(const struct sim_model *m, int64_t t_ms, double *out)
{
    double pv_total = 0, base = sim_model_base_load_w(m, t_ms);
    for (size_t d = 0; d < m->ndev; d++) {
        out[d] = m->dev[d].kind == SIM_KIND_INVERTER ? sim_model_pv_w(m, d, t_ms) : 0.0;
        pv_total += out[d];
    }
    for (size_t d = 0; d < m->ndev; d++)
        if (is_meter(m->dev[d].kind))
            out[d] = meter_w(m, d, pv_total, base);
}

double sim_model_power_w(const struct sim_model *m, size_t dev, int64_t t_ms)
{
    if (dev >= m->ndev)
        return 0.0;
    if (m->dev[dev].kind == SIM_KIND_INVERTER)
        return sim_model_pv_w(m, dev, t_ms);
    if (!is_meter(m->dev[dev].kind))
        return 0.0;
    double pv_total = 0;
    if (m->dev[dev].role == SIM_ROLE_GRID)
        for (size_t d = 0; d < m->ndev; d++)
            if (m->dev[d].kind == SIM_KIND_INVERTER)
                pv_total += sim_model_pv_w(m, d, t_ms);
    return meter_w(m, dev, pv_total, sim_model_base_load_w(m, t_ms));
}

/* ---- energy integration ---- */

/* Trapezoid of a linear power from pa to pb over dt_h hours, split at its zero crossing into
 * import (positive) and export (negative) energy. */
static void trapezoid(double pa, double pb, double dt_h, double *imp_wh, double *exp_wh)
{
    if (pa >= 0 && pb >= 0) {
        *imp_wh += (pa + pb) / 2 * dt_h;
    } else if (pa <= 0 && pb <= 0) {
        *exp_wh -= (pa + pb) / 2 * dt_h;
    } else {
        double f = pa / (pa - pb); /* fraction of the span before the crossing */
        double first = pa * f * dt_h / 2, second = pb * (1 - f) * dt_h / 2;
        *(pa > 0 ? imp_wh : exp_wh) += fabs(first);
        *(pb > 0 ? imp_wh : exp_wh) += fabs(second);
    }
}

/* Integrates every device from t_seg_ms to t_ms (coil state constant) into part_*. */
static void add_segment(struct sim_model *m, int64_t t_ms)
{
    if (t_ms <= m->t_seg_ms)
        return;
    double dt_h = (double)(t_ms - m->t_seg_ms) / 3600000.0;
    powers_at(m, t_ms, m->p_tmp);
    for (size_t d = 0; d < m->ndev; d++)
        trapezoid(m->p_seg[d], m->p_tmp[d], dt_h, &m->part_imp[d], &m->part_exp[d]);
    memcpy(m->p_seg, m->p_tmp, m->ndev * sizeof *m->p_seg);
    m->t_seg_ms = t_ms;
}

/* Integrates and commits every whole grid step up to t_ms. */
static void advance(struct sim_model *m, int64_t t_ms)
{
    for (;;) {
        int64_t grid_ms = (floor_div(m->t_seg_ms, STEP_MS) + 1) * STEP_MS;
        if (grid_ms > t_ms)
            return;
        add_segment(m, grid_ms);
        for (size_t d = 0; d < m->ndev; d++) {
            m->acc_imp[d] += m->part_imp[d];
            m->acc_exp[d] += m->part_exp[d];
            m->part_imp[d] = m->part_exp[d] = 0;
        }
    }
}

/* Energy integrals of dev at t_ms (>= t_seg_ms, within the current grid step), not committed. */
static void energy_at(const struct sim_model *m, size_t dev, int64_t t_ms, double *imp_wh,
                      double *exp_wh)
{
    double imp = m->acc_imp[dev] + m->part_imp[dev], exp = m->acc_exp[dev] + m->part_exp[dev];
    if (t_ms > m->t_seg_ms)
        trapezoid(m->p_seg[dev], sim_model_power_w(m, dev, t_ms),
                  (double)(t_ms - m->t_seg_ms) / 3600000.0, &imp, &exp);
    *imp_wh = m->dev[dev].energy_start_wh + imp;
    *exp_wh = m->dev[dev].energy_start_wh + exp;
}

int sim_model_energy(struct sim_model *m, size_t dev, int64_t t_ms, double *import_wh,
                     double *export_wh)
{
    if (dev >= m->ndev)
        return -EINVAL;
    if (t_ms < m->t_seg_ms)
        t_ms = m->t_seg_ms;
    advance(m, t_ms);
    energy_at(m, dev, t_ms, import_wh, export_wh);
    return 0;
}

int sim_model_set_coil(struct sim_model *m, size_t dev, unsigned coil, bool on, int64_t t_ms)
{
    if (dev >= m->ndev || m->dev[dev].kind != SIM_KIND_RELAY8 || coil >= SIM_RELAY_COILS)
        return -EINVAL;
    uint8_t *c = &m->coils[dev * SIM_RELAY_COILS + coil];
    if (*c == (uint8_t)on)
        return 0;
    if (t_ms < m->t_seg_ms)
        t_ms = m->t_seg_ms;
    advance(m, t_ms);
    add_segment(m, t_ms); /* the old state up to the switching instant */
    *c = (uint8_t)on;
    powers_at(m, m->t_seg_ms, m->p_seg);
    return 0;
}

bool sim_model_coil(const struct sim_model *m, size_t dev, unsigned coil)
{
    if (dev >= m->ndev || m->dev[dev].kind != SIM_KIND_RELAY8 || coil >= SIM_RELAY_COILS)
        return false;
    return m->coils[dev * SIM_RELAY_COILS + coil] != 0;
}

/* ---- scale factors ---- */

/* v expressed in units of 10^sf, computed so that 4321.5 at sf -1 gives exactly 43215. */
static double to_raw(double v, int sf)
{
    double p = 1;
    for (int i = 0; i < abs(sf); i++)
        p *= 10;
    return sf < 0 ? v * p : v / p;
}

/* The smallest scale factor >= sf at which peak still fits under limit. */
static int16_t fit_sf(double peak, int16_t sf, double limit)
{
    while (sf < 10 && fabs(to_raw(peak, sf)) > limit)
        sf++;
    return sf;
}

static double pv_peak_w(const struct sim_device_params *d)
{
    if (d->pv.csv)
        return fmax(0, sim_series_max(d->pv.csv) * d->pv.scale);
    if (d->pv.has_power_w)
        return fmax(0, d->pv.power_w);
    return d->pv.kwp * 1000.0; /* above any clear-sky output */
}

static double meter_peak_w(const struct sim_model *m, size_t dev)
{
    double base = m->site.load ? fmax(0, m->site.load_max_w * m->site.load_scale) : m->site.base_load_w;
    double machines = 0, pv = 0;
    for (size_t k = 0; k < m->nmach; k++)
        if (m->dev[dev].role != SIM_ROLE_MACHINE || m->mach[k].meter_dev == (int)dev)
            machines += m->mach[k].power_w;
    for (size_t d = 0; d < m->ndev; d++)
        if (m->dev[d].kind == SIM_KIND_INVERTER)
            pv += pv_peak_w(&m->dev[d]);
    switch (m->dev[dev].role) {
    case SIM_ROLE_GRID: return fmax(base + machines, pv);
    case SIM_ROLE_LOAD: return base;
    default: return machines;
    }
}

/* Fixed per device, as on real devices: the spec's W_SF -1 / A_SF -2, raised where the device's
 * peak would not fit the point's int16/uint16 range (e.g. W_SF 0 above 3276.7 W). */
static struct sim_sunspec_sf choose_sf(const struct sim_model *m, size_t dev)
{
    struct sim_sunspec_sf sf = { 0, 0, 0, 0 };
    const struct sim_device_params *d = &m->dev[dev];
    if (d->kind == SIM_KIND_INVERTER) {
        double ac = pv_peak_w(d), dc = ac / INV_EFFICIENCY;
        sf.w = fit_sf(ac, -1, 32767);
        sf.dcw = fit_sf(dc, -1, 32767);
        sf.mppt_dcw = fit_sf(dc / MPPT_MODULES, -1, 65534);
        sf.a = fit_sf(ac / AC_V, -2, 65534);
    } else if (d->kind == SIM_KIND_SUNSPEC_METER) {
        double peak = meter_peak_w(m, dev);
        sf.w = fit_sf(peak, -1, 32767);
        sf.a = fit_sf(peak / AC_V, -2, 32767);
    }
    return sf;
}

/* ---- construction ---- */

struct sim_model *sim_model_new(const struct sim_site_params *p, int64_t start_ms)
{
    struct sim_model *m = fg_calloc(1, sizeof *m);
    m->ndev = p->ndevices;
    m->nmach = p->nmachines;
    m->dev = fg_calloc(m->ndev, sizeof *m->dev);
    m->mach = fg_calloc(m->nmach, sizeof *m->mach);
    if (m->ndev)
        memcpy(m->dev, p->devices, m->ndev * sizeof *m->dev);
    if (m->nmach)
        memcpy(m->mach, p->machines, m->nmach * sizeof *m->mach);
    m->site = *p;
    m->site.devices = m->dev;
    m->site.machines = m->mach;
    m->coils = fg_calloc(m->ndev, SIM_RELAY_COILS);
    m->sf = fg_calloc(m->ndev, sizeof *m->sf);
    double **arrays[] = { &m->acc_imp, &m->acc_exp, &m->part_imp, &m->part_exp, &m->p_seg, &m->p_tmp };
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        *arrays[i] = fg_calloc(m->ndev, sizeof(double));
    for (size_t d = 0; d < m->ndev; d++)
        m->sf[d] = choose_sf(m, d);
    m->t_seg_ms = start_ms;
    powers_at(m, start_ms, m->p_seg);
    return m;
}

void sim_model_free(struct sim_model *m)
{
    if (!m)
        return;
    double *arrays[] = { m->acc_imp, m->acc_exp, m->part_imp, m->part_exp, m->p_seg, m->p_tmp };
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        free(arrays[i]);
    free(m->dev);
    free(m->mach);
    free(m->coils);
    free(m->sf);
    free(m);
}

/* ---- register images ---- */

static uint16_t s16(double v)
{
    double r = round(v);
    return (uint16_t)(int16_t)(r > 32767 ? 32767 : r < -32767 ? -32767 : r); /* -32768 = n/a */
}

static uint16_t u16(double v)
{
    double r = round(v);
    return (uint16_t)(r > 65534 ? 65534 : r < 0 ? 0 : r); /* 65535 = n/a */
}

static void put_u32(uint16_t *w, double v)
{
    double r = round(v);
    uint32_t u = (uint32_t)(r > 4294967295.0 ? 4294967295.0 : r < 0 ? 0 : r);
    w[0] = (uint16_t)(u >> 16);
    w[1] = (uint16_t)(u & 0xFFFF);
}

/* float32 big-endian words (ABCD), as Eastron meters send them. */
static void put_f32(uint16_t *w, double v)
{
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    w[0] = (uint16_t)(u >> 16);
    w[1] = (uint16_t)(u & 0xFFFF);
}

/* SunSpec string: two characters per register, first one in the high byte, zero padded. */
static void put_str(uint16_t *w, size_t nregs, const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < nregs; i++) {
        uint8_t hi = 2 * i < len ? (uint8_t)s[2 * i] : 0;
        uint8_t lo = 2 * i + 1 < len ? (uint8_t)s[2 * i + 1] : 0;
        w[i] = (uint16_t)(hi << 8 | lo);
    }
}

static uint16_t sfw(int sf)
{
    return (uint16_t)(int16_t)sf;
}

/* Model 1 at w (its ID register); returns the registers written. */
static size_t fill_model1(uint16_t *w, const struct sim_device_params *d, const char *md)
{
    w[0] = 1;
    w[1] = (uint16_t)d->model1_len;
    put_str(w + 2, 16, "fabgrid");      /* Mn */
    put_str(w + 18, 16, md);            /* Md */
    put_str(w + 34, 8, "");             /* Opt: not implemented */
    put_str(w + 42, 8, "1.0");          /* Vr */
    put_str(w + 50, 16, d->id);         /* SN */
    w[66] = d->unit;                    /* DA */
    if (d->model1_len == 66)
        w[67] = 0x8000;                 /* Pad */
    return 2 + (size_t)d->model1_len;
}

struct reading {
    double p_w, imp_wh, exp_wh;
    int64_t t_ms;
};

/* Model 103 (three-phase inverter, integer + scale factors) at w. */
static size_t fill_103(uint16_t *w, const struct reading *r, const struct sim_sunspec_sf *sf)
{
    uint16_t *p = w + 2;
    double dc_w = r->p_w / INV_EFFICIENCY, ll_v = AC_V * sqrt(3.0);
    w[0] = 103;
    w[1] = L_103;
    p[0] = u16(to_raw(r->p_w / AC_V, sf->a));                 /* A */
    for (int k = 1; k <= 3; k++)
        p[k] = u16(to_raw(r->p_w / 3 / AC_V, sf->a));         /* AphA..C */
    p[4] = sfw(sf->a);
    for (int k = 5; k <= 7; k++)
        p[k] = u16(to_raw(ll_v, -1));                         /* PPVphAB.. */
    for (int k = 8; k <= 10; k++)
        p[k] = u16(to_raw(AC_V, -1));                         /* PhVphA.. */
    p[11] = sfw(-1);                                          /* V_SF */
    p[12] = s16(to_raw(r->p_w, sf->w));                       /* W */
    p[13] = sfw(sf->w);
    p[14] = u16(to_raw(FREQ_HZ, -2));                         /* Hz */
    p[15] = sfw(-2);
    p[16] = s16(to_raw(r->p_w, sf->w));                       /* VA: power factor 1 */
    p[17] = sfw(sf->w);
    p[18] = 0;                                                /* VAr */
    p[19] = sfw(sf->w);
    p[20] = 100;                                              /* PF, percent */
    p[21] = 0;
    put_u32(p + 22, r->imp_wh);                               /* WH */
    p[24] = 0;
    p[25] = u16(to_raw(dc_w / DC_V_MODULE, -2));              /* DCA: the modules in parallel */
    p[26] = sfw(-2);
    p[27] = u16(to_raw(DC_V_MODULE, -1));                     /* DCV */
    p[28] = sfw(-1);
    p[29] = s16(to_raw(dc_w, sf->dcw));                       /* DCW */
    p[30] = sfw(sf->dcw);
    p[31] = s16(to_raw(TEMP_C, -1));                          /* TmpCab */
    p[32] = p[33] = p[34] = NOT_IMPL_S16;                     /* TmpSnk, TmpTrns, TmpOt */
    p[35] = sfw(-1);
    p[36] = r->p_w > 0 ? 4 : 2;                               /* St: MPPT or SLEEPING */
    p[37] = NOT_IMPL_U16;                                     /* StVnd */
    p[38] = p[39] = p[40] = p[41] = 0;                        /* Evt1, Evt2: no events */
    for (int k = 42; k < L_103; k++)
        p[k] = 0xFFFF;                                        /* EvtVnd1..4: not implemented */
    return 2 + L_103;
}

/* Model 160 (multiple MPPT) with two modules sharing the DC power equally. */
static size_t fill_160(uint16_t *w, const struct reading *r, const struct sim_sunspec_sf *sf)
{
    uint16_t *p = w + 2;
    double module_w = r->p_w / INV_EFFICIENCY / MPPT_MODULES;
    double module_wh = r->imp_wh / INV_EFFICIENCY / MPPT_MODULES;
    w[0] = 160;
    w[1] = L_160;
    p[0] = sfw(-2);                        /* DCA_SF */
    p[1] = sfw(-1);                        /* DCV_SF */
    p[2] = sfw(sf->mppt_dcw);              /* DCW_SF */
    p[3] = 0;                              /* DCWH_SF */
    p[4] = p[5] = 0;                       /* Evt */
    p[6] = MPPT_MODULES;                   /* N */
    p[7] = NOT_IMPL_U16;                   /* TmsPer */
    for (int k = 0; k < MPPT_MODULES; k++) {
        uint16_t *q = p + MPPT_FIXED + k * MPPT_REPEAT;
        char name[16] = "MPPT1";
        name[4] = (char)('1' + k);
        q[0] = (uint16_t)(k + 1);                              /* ID */
        put_str(q + 1, 8, name);                               /* IDStr */
        q[9] = u16(to_raw(module_w / DC_V_MODULE, -2));        /* DCA */
        q[10] = u16(to_raw(DC_V_MODULE, -1));                  /* DCV */
        q[11] = u16(to_raw(module_w, sf->mppt_dcw));           /* DCW */
        put_u32(q + 12, module_wh);                            /* DCWH */
        put_u32(q + 14, (double)(floor_div(r->t_ms, 1000) - 946684800)); /* Tms: s since 2000 */
        q[16] = NOT_IMPL_S16;                                  /* Tmp */
        q[17] = r->p_w > 0 ? 4 : 2;                            /* DCSt */
        q[18] = q[19] = 0;                                     /* DCEvt */
    }
    return 2 + L_160;
}

/* Model 203 (three-phase wye meter); W positive = import. */
static size_t fill_203(uint16_t *w, const struct reading *r, const struct sim_sunspec_sf *sf)
{
    uint16_t *p = w + 2;
    double a = fabs(r->p_w) / AC_V, ll_v = AC_V * sqrt(3.0);
    memset(p, 0, L_203 * sizeof *p); /* acc32 0 = not implemented */
    w[0] = 203;
    w[1] = L_203;
    p[0] = s16(to_raw(a, sf->a));                              /* A */
    for (int k = 1; k <= 3; k++)
        p[k] = s16(to_raw(a / 3, sf->a));                      /* AphA..C */
    p[4] = sfw(sf->a);
    for (int k = 5; k <= 8; k++)
        p[k] = s16(to_raw(AC_V, -1));                          /* PhV, PhVphA..C */
    for (int k = 9; k <= 12; k++)
        p[k] = s16(to_raw(ll_v, -1));                          /* PPV, PPVphAB.. */
    p[13] = sfw(-1);
    p[14] = s16(to_raw(FREQ_HZ, -2));                          /* Hz */
    p[15] = sfw(-2);
    for (int k = 0; k < 4; k++) {
        double v = k == 0 ? r->p_w : r->p_w / 3;
        p[16 + k] = s16(to_raw(v, sf->w));                     /* W, WphA..C */
        p[21 + k] = s16(to_raw(v, sf->w));                     /* VA.. : power factor 1 */
        p[31 + k] = 100;                                       /* PF.., percent */
    }
    p[20] = p[25] = p[30] = sfw(sf->w);                        /* W_SF, VA_SF, VAR_SF */
    put_u32(p + 36, r->exp_wh);                                /* TotWhExp */
    put_u32(p + 44, r->imp_wh);                                /* TotWhImp */
    p[69] = p[102] = NOT_IMPL_S16;                             /* TotVAh_SF, TotVArh_SF */
    return 2 + L_203;
}

static void fill_sunspec(uint16_t *w, const struct sim_device_params *d, const struct reading *r,
                         const struct sim_sunspec_sf *sf)
{
    w[0] = 0x5375; /* "Su" */
    w[1] = 0x6e53; /* "nS" */
    w += 2;
    if (d->kind == SIM_KIND_INVERTER) {
        w += fill_model1(w, d, "sim-inverter");
        w += fill_103(w, r, sf);
        w += fill_160(w, r, sf);
    } else {
        w += fill_model1(w, d, "sim-meter");
        w += fill_203(w, r, sf);
    }
    w[0] = 0xFFFF; /* end marker */
    w[1] = 0;
}

/* Eastron SDM630 (three phases) / SDM120 (one): float32 ABCD; power factor signed by direction. */
static void fill_sdm(uint16_t *w, bool three_phase, const struct reading *r)
{
    int phases = three_phase ? 3 : 1;
    double pf = r->p_w < 0 ? -1.0 : 1.0;
    for (int k = 0; k < phases; k++) {
        put_f32(w + SDM_V1 + 2 * k, AC_V);
        put_f32(w + SDM_A1 + 2 * k, fabs(r->p_w) / phases / AC_V);
        put_f32(w + SDM_W1 + 2 * k, r->p_w / phases);
        put_f32(w + SDM_PF1 + 2 * k, pf);
    }
    if (three_phase) {
        put_f32(w + SDM_TOTAL_W, r->p_w);
        put_f32(w + SDM_TOTAL_PF, pf);
    }
    put_f32(w + SDM_HZ, FREQ_HZ);
    put_f32(w + SDM_IMPORT_KWH, r->imp_wh / 1000);
    put_f32(w + SDM_EXPORT_KWH, r->exp_wh / 1000);
    put_f32(w + SDM_TOTAL_KWH, (r->imp_wh + r->exp_wh) / 1000); /* import + export */
}

struct sim_layout sim_model_layout(const struct sim_model *m, size_t dev)
{
    struct sim_layout l = { SIM_TABLE_HOLDING, 0, 0 };
    if (dev >= m->ndev)
        return l;
    const struct sim_device_params *d = &m->dev[dev];
    switch (d->kind) {
    case SIM_KIND_INVERTER:
        l.start = SIM_SUNSPEC_BASE;
        l.count = (uint16_t)(2 + 2 + d->model1_len + 2 + L_103 + 2 + L_160 + 2);
        break;
    case SIM_KIND_SUNSPEC_METER:
        l.start = SIM_SUNSPEC_BASE;
        l.count = (uint16_t)(2 + 2 + d->model1_len + 2 + L_203 + 2);
        break;
    case SIM_KIND_SDM630:
    case SIM_KIND_SDM120:
        l.table = SIM_TABLE_INPUT;
        l.count = SDM_COUNT;
        break;
    case SIM_KIND_RELAY8:
        l.table = SIM_TABLE_COILS;
        l.count = SIM_RELAY_COILS;
        break;
    }
    return l;
}

struct sim_sunspec_sf sim_model_sunspec_sf(const struct sim_model *m, size_t dev)
{
    struct sim_sunspec_sf none = { 0, 0, 0, 0 };
    return dev < m->ndev ? m->sf[dev] : none;
}

int sim_model_read(struct sim_model *m, size_t dev, int64_t t_ms, uint16_t *words, size_t nwords)
{
    struct sim_layout l = sim_model_layout(m, dev);
    if (dev >= m->ndev || nwords < l.count)
        return -EINVAL;
    memset(words, 0, l.count * sizeof *words);
    const struct sim_device_params *d = &m->dev[dev];
    if (d->kind == SIM_KIND_RELAY8) {
        for (unsigned k = 0; k < SIM_RELAY_COILS; k++)
            words[k] = m->coils[dev * SIM_RELAY_COILS + k];
        return 0;
    }
    struct reading r = { 0, 0, 0, t_ms < m->t_seg_ms ? m->t_seg_ms : t_ms };
    sim_model_energy(m, dev, r.t_ms, &r.imp_wh, &r.exp_wh);
    r.p_w = sim_model_power_w(m, dev, r.t_ms);
    if (d->kind == SIM_KIND_SDM630 || d->kind == SIM_KIND_SDM120)
        fill_sdm(words, d->kind == SIM_KIND_SDM630, &r);
    else
        fill_sunspec(words, d, &r, &m->sf[dev]);
    return 0;
}
