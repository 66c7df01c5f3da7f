/* bal_forecast: what the planner expects of the next hours: the sun's position, the clear-sky
 * production of the site's PV array scaled by how much of it the array really delivered lately, and
 * the base load by weekday and time of day. Pure: no I/O, no clock (times are parameters); the load
 * profile reads local time through localtime_r in the process TZ (see bal_tz_apply). */
#ifndef BAL_FORECAST_H
#define BAL_FORECAST_H
#include <stddef.h>
#include <stdint.h>

#include "bal_types.h"

/* The site's PV array. kwp: DC nameplate in kW (<= 0: no array, every power is 0); tilt_deg from
 * horizontal (0..90); azimuth_deg the compass direction it faces (180 = south, 90 = east). */
struct bal_array {
    double lat_deg, lon_deg, kwp, tilt_deg, azimuth_deg;
};

/* Geometric solar zenith (degrees, 0..180, no refraction; > 90 below the horizon) and compass
 * azimuth (degrees, 0..360, 0 = north, 90 = east) at t_ms (unix ms) seen from lat_deg (north +),
 * lon_deg (east +). NOAA solar calculator equations (after Meeus, Astronomical Algorithms, 1991),
 * meant for 1901..2099; the tests find it within 0.01 deg of NREL's SPA and of PyEphem. Neither
 * output pointer may be NULL. */
void bal_sun_position(double lat_deg, double lon_deg, int64_t t_ms, double *zenith_deg, double *azimuth_deg);

/* Derate applied to the array's plane-of-array output: temperature, wiring and inverter losses. */
#define BAL_PV_DERATE 0.85

/* Clear-sky AC power of the array at t_ms, W, >= 0 (0 at night, 0 for a NULL array or kwp <= 0):
 * Haurwitz (1945) global horizontal irradiance, split into beam and diffuse by the Erbs et al.
 * (1982) correlation, transposed to the array's plane with the isotropic sky of Liu & Jordan
 * (1963) and ground albedo 0.2, times kwp x BAL_PV_DERATE per kW/m2. */
double bal_clearsky_w(const struct bal_array *a, int64_t t_ms);

/* Mean clear-sky power over [start_ms, start_ms + slot_min minutes), W: the slot is cut into
 * ceil(slot_min / 5) equal parts (5 min or shorter) and bal_clearsky_w is taken at their
 * midpoints. slot_min <= 0 gives 0. */
double bal_clearsky_slot_w(const struct bal_array *a, int64_t start_ms, int slot_min);

/* Ratio of measured to clear-sky production over the recent past, from per-5-min-bin energies.
 * Fixed size, no allocation: a ring of BAL_PVFC_MAX_DAYS + 1 UTC days of bins, so that a window of
 * `days` x 24 h ending at the newest observation always fits. Fields are private to bal_forecast.c. */
#define BAL_PVFC_MAX_DAYS 7
#define BAL_PVFC_BIN_MS 300000
#define BAL_PVFC_BINS (24 * 12)
/* Observations while the array's clear-sky power is below this fraction of kwp x derate are not
 * counted: at low sun, horizon shading and the model's own errors outweigh the weather. */
#define BAL_PVFC_DAYLIGHT_FRAC 0.05
struct bal_pvfc {
    double meas_wh[BAL_PVFC_MAX_DAYS + 1][BAL_PVFC_BINS];
    double clear_wh[BAL_PVFC_MAX_DAYS + 1][BAL_PVFC_BINS];
    int64_t day0_ms[BAL_PVFC_MAX_DAYS + 1]; /* UTC midnight of the day in each row; INT64_MIN: empty */
    int64_t last_end_ms;                     /* end of the newest observation; INT64_MIN: none yet */
    int days;                                /* window length in days */
};

/* Empties f. days: window length, 1..BAL_PVFC_MAX_DAYS; <= 0 means the default 3, larger values are
 * cut to BAL_PVFC_MAX_DAYS. */
void bal_pvfc_init(struct bal_pvfc *f, int days);
/* Adds one reading: the array produced measured_w (W; negative values, such as an inverter's night
 * tare, count as 0) during [t_ms, t_ms + step_s). The span is cut at 5-min bin boundaries and each
 * piece is set against the clear-sky power at its midpoint. Ignored: step_s outside 1..86400, a
 * non-finite measured_w, a NULL array. A reading that ends before the window of the newest one
 * starts means the clock went back (a clock fault, a new replay): f is emptied first. */
void bal_pvfc_observe(struct bal_pvfc *f, const struct bal_array *a, int64_t t_ms, double measured_w, int step_s);
/* Sum of measured over sum of clear-sky energy of the daylight bins that start within the last
 * `days` x 24 h before the newest observation's end; clamped to 0.05..1.5. 1.0 while that window
 * holds less than 1 Wh of clear-sky energy (no daylight data yet). */
double bal_pvfc_ratio(const struct bal_pvfc *f);

/* out[i] = bal_clearsky_slot_w(a, start_ms + i x slot_min min, slot_min) x bal_pvfc_ratio(f), for
 * i < n. f may be NULL (ratio 1). */
void bal_forecast_pv(const struct bal_array *a, const struct bal_pvfc *f, int64_t start_ms, int slot_min, size_t n,
                     double *out);

/* Base load by local weekday and 5-min time of day. "Recent weeks" is exponential forgetting: an
 * observation made k local weeks (Monday-based) before the newest one in the same accumulator
 * weighs BAL_LOAD_WEEK_WEIGHT^k, so the mean remembers about 1 / (1 - 0.75) = 4 weeks. Weights are
 * also proportional to the observed duration. Fixed size; fields are private to bal_forecast.c. */
#define BAL_LOAD_BINS 288
#define BAL_LOAD_WEEK_WEIGHT 0.75
struct bal_loadacc {
    double sum_ws; /* sum of load_w x seconds x weight */
    double n_s;    /* sum of seconds x weight; 0: empty */
    int64_t week;  /* local week the weights are relative to */
};
struct bal_loadprof {
    struct bal_loadacc wd[7][BAL_LOAD_BINS]; /* [weekday, 0 = Monday][local 5-min bin] */
    struct bal_loadacc all[BAL_LOAD_BINS];   /* the bin over all days */
    struct bal_loadacc total;                /* everything */
};

/* Empties p. */
void bal_loadprof_init(struct bal_loadprof *p);
/* Adds a base load of load_w (W) held during [t_ms, t_ms + step_s), cut at 5-min boundaries into the
 * local bins it covers (on the 25-hour day an hour's bins are fed twice; on the 23-hour day the
 * skipped hour's bins not at all). Ignored: step_s outside 1..86400, a non-finite load_w. */
void bal_loadprof_observe(struct bal_loadprof *p, int64_t t_ms, double load_w, int step_s);
/* out[i], i < n: the mean base load over slot i = [start_ms + i x slot_min min, + slot_min min), W:
 * the duration-weighted mean over the 5-min pieces of the slot of each piece's local bin value: the
 * mean of that weekday and bin; else of that bin over all days; else of all observations; else 0.
 * slot_min <= 0 gives zeros. */
void bal_forecast_load(const struct bal_loadprof *p, int64_t start_ms, int slot_min, size_t n, double *out);

#endif
