/* bal_forecast: solar position, clear-sky PV power of the site's array, the measured/clear-sky
 * ratio that scales it, and the base-load profile by weekday and time of day. Pure: every time is a
 * parameter; only the load profile asks the C library for local time (process TZ). */
#include "bal_forecast.h"

#include <math.h>
#include <string.h>
#include <time.h>

#define DEG (M_PI / 180.0)
#define DAY_MS 86400000LL
#define FIVE_MIN_MS 300000LL

/* Solar constant for the extraterrestrial normal irradiance that the Erbs clearness index divides
 * by (W/m2, the WMO value that Erbs et al. used). */
#define SOLAR_CONSTANT_WM2 1367.0
#define ALBEDO 0.2
#define RATIO_MIN 0.05
#define RATIO_MAX 1.5

struct sunpos {
    double zenith_deg, azimuth_deg;
    double dist_au; /* earth-sun distance */
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static double wrap360(double x)
{
    x = fmod(x, 360.0);
    return x < 0 ? x + 360.0 : x;
}

/* Sun's declination (deg), equation of time (min) and distance (AU) at julian century jc, following
 * the NOAA solar calculator spreadsheet (Meeus 1991, chapters 24/27, low-precision series). */
static void sun_ephemeris(double jc, double *decl_deg, double *eot_min, double *dist_au)
{
    double l0 = wrap360(280.46646 + jc * (36000.76983 + jc * 0.0003032)); /* geometric mean longitude */
    double m = 357.52911 + jc * (35999.05029 - 0.0001537 * jc);            /* mean anomaly */
    double e = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc);       /* orbit eccentricity */
    double c = sin(m * DEG) * (1.914602 - jc * (0.004817 + 0.000014 * jc)) +
               sin(2 * m * DEG) * (0.019993 - 0.000101 * jc) + sin(3 * m * DEG) * 0.000289;
    double omega = 125.04 - 1934.136 * jc; /* moon's node: nutation and aberration terms */
    double app_long = l0 + c - 0.00569 - 0.00478 * sin(omega * DEG);
    double eps0 = 23.0 + (26.0 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60.0) / 60.0;
    double eps = eps0 + 0.00256 * cos(omega * DEG);
    double y = tan(eps * DEG / 2) * tan(eps * DEG / 2);

    *decl_deg = asin(sin(eps * DEG) * sin(app_long * DEG)) / DEG;
    *eot_min = 4.0 / DEG *
               (y * sin(2 * l0 * DEG) - 2 * e * sin(m * DEG) + 4 * e * y * sin(m * DEG) * cos(2 * l0 * DEG) -
                0.5 * y * y * sin(4 * l0 * DEG) - 1.25 * e * e * sin(2 * m * DEG));
    *dist_au = 1.000001018 * (1 - e * e) / (1 + e * cos((m + c) * DEG));
}

static struct sunpos sun_at(double lat_deg, double lon_deg, int64_t t_ms)
{
    double jd = (double)t_ms / (double)DAY_MS + 2440587.5;
    double jc = (jd - 2451545.0) / 36525.0;
    double decl, eot, dist;
    sun_ephemeris(jc, &decl, &eot, &dist);

    double utc_min = (double)(t_ms - floor_div(t_ms, DAY_MS) * DAY_MS) / 60000.0;
    double tst_min = fmod(utc_min + eot + 4.0 * lon_deg, 1440.0); /* true solar time */
    if (tst_min < 0)
        tst_min += 1440.0;
    double ha = tst_min / 4.0 - 180.0; /* hour angle, deg, 0 at solar noon, + afternoon */

    double cz = sin(lat_deg * DEG) * sin(decl * DEG) + cos(lat_deg * DEG) * cos(decl * DEG) * cos(ha * DEG);
    cz = fmax(-1.0, fmin(1.0, cz));
    double z = acos(cz);
    double denom = cos(lat_deg * DEG) * sin(z);
    double az;
    if (fabs(denom) < 1e-12) { /* sun at the zenith or observer at a pole: azimuth undefined */
        az = lat_deg >= 0 ? 180.0 : 0.0;
    } else {
        double ca = (sin(lat_deg * DEG) * cz - sin(decl * DEG)) / denom;
        double a = acos(fmax(-1.0, fmin(1.0, ca))) / DEG; /* from south, either side */
        az = ha > 0 ? wrap360(a + 180.0) : wrap360(540.0 - a);
    }
    return (struct sunpos){ .zenith_deg = z / DEG, .azimuth_deg = az, .dist_au = dist };
}

void bal_sun_position(double lat_deg, double lon_deg, int64_t t_ms, double *zenith_deg, double *azimuth_deg)
{
    struct sunpos s = sun_at(lat_deg, lon_deg, t_ms);
    *zenith_deg = s.zenith_deg;
    *azimuth_deg = s.azimuth_deg;
}

/* Erbs, Klein & Duffie (1982): diffuse fraction of global horizontal irradiance from the clearness
 * index kt. */
static double erbs_diffuse_fraction(double kt)
{
    if (kt <= 0.22)
        return 1.0 - 0.09 * kt;
    if (kt <= 0.80)
        return 0.9511 - 0.1604 * kt + 4.388 * kt * kt - 16.638 * kt * kt * kt + 12.336 * kt * kt * kt * kt;
    return 0.165;
}

/* Clear-sky plane-of-array irradiance, W/m2. */
static double clearsky_poa_wm2(const struct bal_array *a, const struct sunpos *s)
{
    double cz = cos(s->zenith_deg * DEG);
    if (cz <= 0)
        return 0;
    double ghi = 1098.0 * cz * exp(-0.057 / cz); /* Haurwitz 1945 */
    double i0 = SOLAR_CONSTANT_WM2 / (s->dist_au * s->dist_au);
    double dhi = erbs_diffuse_fraction(ghi / (i0 * cz)) * ghi;
    double dni = (ghi - dhi) / cz;

    double tilt = a->tilt_deg * DEG;
    double cos_aoi = cz * cos(tilt) +
                     sin(s->zenith_deg * DEG) * sin(tilt) * cos((s->azimuth_deg - a->azimuth_deg) * DEG);
    double beam = dni * fmax(cos_aoi, 0.0);
    double sky = dhi * (1 + cos(tilt)) / 2; /* isotropic sky, Liu & Jordan 1963 */
    double ground = ghi * ALBEDO * (1 - cos(tilt)) / 2;
    return beam + sky + ground;
}

double bal_clearsky_w(const struct bal_array *a, int64_t t_ms)
{
    if (a == NULL || !(a->kwp > 0))
        return 0;
    struct sunpos s = sun_at(a->lat_deg, a->lon_deg, t_ms);
    /* kWp is rated at 1000 W/m2: kW per kW/m2 equals W per W/m2. */
    return a->kwp * clearsky_poa_wm2(a, &s) * BAL_PV_DERATE;
}

double bal_clearsky_slot_w(const struct bal_array *a, int64_t start_ms, int slot_min)
{
    if (slot_min <= 0)
        return 0;
    int parts = (slot_min + 4) / 5;
    double part_ms = (double)slot_min * 60000.0 / parts;
    double sum = 0;
    for (int i = 0; i < parts; i++)
        sum += bal_clearsky_w(a, start_ms + (int64_t)llround(part_ms * (i + 0.5)));
    return sum / parts;
}

/* ---- measured / clear-sky ratio ---- */

void bal_pvfc_init(struct bal_pvfc *f, int days)
{
    memset(f, 0, sizeof *f);
    for (int r = 0; r <= BAL_PVFC_MAX_DAYS; r++)
        f->day0_ms[r] = INT64_MIN;
    f->last_end_ms = INT64_MIN;
    f->days = days <= 0 ? 3 : days > BAL_PVFC_MAX_DAYS ? BAL_PVFC_MAX_DAYS : days;
}

static int64_t pvfc_window_start(const struct bal_pvfc *f)
{
    return f->last_end_ms - (int64_t)f->days * DAY_MS;
}

/* The row for the UTC day starting at day0, recycled when it held an older day; -1 when it holds a
 * newer day (the reading is older than anything the ring keeps). */
static int pvfc_row(struct bal_pvfc *f, int64_t day0)
{
    int r = (int)(floor_div(day0, DAY_MS) % (BAL_PVFC_MAX_DAYS + 1));
    if (r < 0)
        r += BAL_PVFC_MAX_DAYS + 1;
    if (f->day0_ms[r] == day0)
        return r;
    if (f->day0_ms[r] != INT64_MIN && f->day0_ms[r] > day0)
        return -1;
    f->day0_ms[r] = day0;
    memset(f->meas_wh[r], 0, sizeof f->meas_wh[r]);
    memset(f->clear_wh[r], 0, sizeof f->clear_wh[r]);
    return r;
}

/* One piece [from, to) inside a single 5-min bin. */
static void pvfc_add_piece(struct bal_pvfc *f, const struct bal_array *a, int64_t from, int64_t to, double power_w)
{
    double clear_w = bal_clearsky_w(a, from + (to - from) / 2);
    if (clear_w < BAL_PVFC_DAYLIGHT_FRAC * a->kwp * 1000.0 * BAL_PV_DERATE)
        return;
    int64_t day0 = floor_div(from, DAY_MS) * DAY_MS;
    int r = pvfc_row(f, day0);
    if (r < 0)
        return;
    int bin = (int)((from - day0) / BAL_PVFC_BIN_MS);
    double h = (double)(to - from) / 3600000.0;
    f->meas_wh[r][bin] += power_w * h;
    f->clear_wh[r][bin] += clear_w * h;
}

void bal_pvfc_observe(struct bal_pvfc *f, const struct bal_array *a, int64_t t_ms, double measured_w, int step_s)
{
    if (a == NULL || !(a->kwp > 0) || step_s < 1 || step_s > 86400 || !isfinite(measured_w))
        return;
    int64_t end = t_ms + (int64_t)step_s * 1000;
    if (f->last_end_ms != INT64_MIN && end <= pvfc_window_start(f))
        bal_pvfc_init(f, f->days); /* the clock went back: what is stored is not the recent past */
    if (f->last_end_ms == INT64_MIN || end > f->last_end_ms)
        f->last_end_ms = end;
    double power_w = fmax(measured_w, 0.0);
    for (int64_t from = t_ms; from < end;) {
        int64_t to = floor_div(from, BAL_PVFC_BIN_MS) * BAL_PVFC_BIN_MS + BAL_PVFC_BIN_MS;
        if (to > end)
            to = end;
        pvfc_add_piece(f, a, from, to, power_w);
        from = to;
    }
}

double bal_pvfc_ratio(const struct bal_pvfc *f)
{
    if (f->last_end_ms == INT64_MIN)
        return 1.0;
    int64_t since = pvfc_window_start(f);
    double meas = 0, clear = 0;
    for (int r = 0; r <= BAL_PVFC_MAX_DAYS; r++) {
        if (f->day0_ms[r] == INT64_MIN)
            continue;
        for (int b = 0; b < BAL_PVFC_BINS; b++) {
            if (f->day0_ms[r] + (int64_t)b * BAL_PVFC_BIN_MS < since)
                continue;
            meas += f->meas_wh[r][b];
            clear += f->clear_wh[r][b];
        }
    }
    if (clear < 1.0)
        return 1.0;
    return fmax(RATIO_MIN, fmin(RATIO_MAX, meas / clear));
}

void bal_forecast_pv(const struct bal_array *a, const struct bal_pvfc *f, int64_t start_ms, int slot_min, size_t n,
                     double *out)
{
    double ratio = f != NULL ? bal_pvfc_ratio(f) : 1.0;
    for (size_t i = 0; i < n; i++)
        out[i] = bal_clearsky_slot_w(a, start_ms + (int64_t)i * slot_min * 60000, slot_min) * ratio;
}

/* ---- base-load profile ---- */

struct localbin {
    int weekday; /* 0 = Monday */
    int bin;     /* local 5-min bin, 0..287 */
    int64_t week; /* local Monday-based week number */
};

/* Local calendar of t_ms in the process TZ, as bal_weekday/bal_local_minute define it (a t_ms that
 * is not a whole second counts as the second it is in). */
static struct localbin local_bin(int64_t t_ms)
{
    time_t t = (time_t)floor_div(t_ms, 1000);
    struct tm tm;
    long off_s = 0;
    if (localtime_r(&t, &tm) != NULL)
        off_s = tm.tm_gmtoff;
    int64_t local_s = (int64_t)t + off_s;
    int64_t day = floor_div(local_s, 86400);
    int64_t sec_of_day = local_s - day * 86400;
    /* 1970-01-01 was a Thursday: day + 3 counts from Monday 1969-12-29. */
    return (struct localbin){ .weekday = (int)(((day + 3) % 7 + 7) % 7),
                              .bin = (int)(sec_of_day / 300),
                              .week = floor_div(day + 3, 7) };
}

void bal_loadprof_init(struct bal_loadprof *p)
{
    memset(p, 0, sizeof *p);
}

static void acc_add(struct bal_loadacc *acc, int64_t week, double load_w, double secs)
{
    if (acc->n_s <= 0) {
        acc->week = week;
    } else if (week > acc->week) { /* age what is there relative to the newer week */
        double k = pow(BAL_LOAD_WEEK_WEIGHT, (double)(week - acc->week));
        acc->sum_ws *= k;
        acc->n_s *= k;
        acc->week = week;
    } else if (week < acc->week) { /* an older reading counts for less */
        secs *= pow(BAL_LOAD_WEEK_WEIGHT, (double)(acc->week - week));
    }
    acc->sum_ws += load_w * secs;
    acc->n_s += secs;
}

void bal_loadprof_observe(struct bal_loadprof *p, int64_t t_ms, double load_w, int step_s)
{
    if (step_s < 1 || step_s > 86400 || !isfinite(load_w))
        return;
    int64_t end = t_ms + (int64_t)step_s * 1000;
    /* Every zone offset in use is a multiple of 5 min, so UTC 5-min boundaries are local ones. */
    for (int64_t from = t_ms; from < end;) {
        int64_t to = floor_div(from, FIVE_MIN_MS) * FIVE_MIN_MS + FIVE_MIN_MS;
        if (to > end)
            to = end;
        struct localbin lb = local_bin(from);
        double secs = (double)(to - from) / 1000.0;
        acc_add(&p->wd[lb.weekday][lb.bin], lb.week, load_w, secs);
        acc_add(&p->all[lb.bin], lb.week, load_w, secs);
        acc_add(&p->total, lb.week, load_w, secs);
        from = to;
    }
}

static double load_at(const struct bal_loadprof *p, int64_t t_ms)
{
    struct localbin lb = local_bin(t_ms);
    const struct bal_loadacc *tries[] = { &p->wd[lb.weekday][lb.bin], &p->all[lb.bin], &p->total };
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++)
        if (tries[i]->n_s > 0)
            return tries[i]->sum_ws / tries[i]->n_s;
    return 0;
}

static double load_slot_w(const struct bal_loadprof *p, int64_t start_ms, int64_t end_ms)
{
    double sum = 0;
    for (int64_t from = start_ms; from < end_ms;) {
        int64_t to = floor_div(from, FIVE_MIN_MS) * FIVE_MIN_MS + FIVE_MIN_MS;
        if (to > end_ms)
            to = end_ms;
        sum += load_at(p, from) * (double)(to - from);
        from = to;
    }
    return sum / (double)(end_ms - start_ms);
}

void bal_forecast_load(const struct bal_loadprof *p, int64_t start_ms, int slot_min, size_t n, double *out)
{
    int64_t slot_ms = (int64_t)slot_min * 60000;
    for (size_t i = 0; i < n; i++)
        out[i] = slot_min > 0 ? load_slot_w(p, start_ms + (int64_t)i * slot_ms, start_ms + (int64_t)(i + 1) * slot_ms)
                              : 0.0;
}
