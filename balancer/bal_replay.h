/* bal_replay: the offline replay. Steps a simulated clock minute by minute over recorded PV and load,
 * runs the same planner (at every slot boundary) and dispatcher (every step) as the daemon, and keeps
 * the energy books, the jobs' outcomes and the machines' runs. Pure given its inputs: the only clock
 * it reads for timing the planner is the callback in the options; local time comes from the process
 * TZ (bal_tz_apply). */
#ifndef BAL_REPLAY_H
#define BAL_REPLAY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bal_dispatch.h"
#include "bal_model.h"
#include "bal_series.h"
#include "bal_types.h"

#define BAL_REPLAY_STEP_MS 60000  /* the simulated clock's step */
#define BAL_REPLAY_WARMUP_DAYS 28 /* days of paired load (and up to 3 of PV) fed to the forecasts first */
#define BAL_REPLAY_SHIFT_MIN 30   /* a day's PV this far from clear-sky timing suggests a wrong clock */

/* Per-kWh import and export prices from a CSV, each row's prices in force from its time until the
 * next row's; before the first row, the first row's. */
struct bal_replay_prices {
    size_t n;                  /* rows, strictly increasing in t_ms; at least 1 */
    int64_t *t_ms;
    double *import_per_kwh, *export_per_kwh;
};

#define BAL_REPLAY_PRICE_MAX 1000.0 /* |price| per kWh accepted (negative prices exist on spot markets) */

/* Parses CSV text (len bytes, need not be terminated): an optional header line, then rows
 * "TIME,IMPORT_PER_KWH,EXPORT_PER_KWH[,...]"; TIME is ISO 8601 with an offset (Z, +HH:MM, +HHMM),
 * times strictly increasing; blank lines are skipped. Strict, unlike bal_series: a price file is
 * short and hand-made, so any unreadable row is an error. Returns the prices (free with
 * bal_replay_prices_free), or NULL with "NAME:LINE: message" or "NAME: no price rows" in err. */
struct bal_replay_prices *bal_replay_prices_parse(const char *text, size_t len, const char *name, char *err,
                                                  size_t errlen);
/* Reads the file whole and parses it (path is the name). NULL with "PATH: cannot read: REASON" or a
 * parse error. */
struct bal_replay_prices *bal_replay_prices_load(const char *path, char *err, size_t errlen);
/* NULL is a no-op. */
void bal_replay_prices_free(struct bal_replay_prices *p);
/* The prices in force at t_ms into *import_per_kwh and *export_per_kwh. */
void bal_replay_prices_at(const struct bal_replay_prices *p, int64_t t_ms, double *import_per_kwh,
                          double *export_per_kwh);

struct bal_replay_opts {
    enum bal_strategy strategy;
    bool oracle;               /* PLAN: the planner sees the recorded future instead of the forecast */
    const struct bal_series *forecast; /* PLAN, not with oracle: external PV forecast (W, scaled by pv_scale)
                                        * replacing the built-in one where it has values; NULL: none */
    const struct bal_replay_prices *prices; /* per-slot prices for the planner (least cost) and the
                                             * books' cost; NULL: least import, no cost */
    bool has_from;
    int32_t from_day;          /* with has_from: the first day (site-local civil date, days since 1970) */
    unsigned ndays;            /* days to replay; 0: every day the PV file covers from the first */
    double pv_scale, load_scale; /* multiply the files' values; 0 counts as 1 */
    unsigned trace_days;       /* keep per-minute traces of the first trace_days days (for the SVG) */
    int64_t (*mono_ns)(void *ctx); /* times bal_plan_make; NULL: plan times are 0 */
    void *mono_ctx;
};

/* The books of a day or of the whole replay. Load is the site's total (base + machines). */
struct bal_replay_energy {
    double pv_wh, load_wh, base_wh, machine_wh, import_wh, export_wh, pv_used_wh;
    double peak_import_w;
    double cost;               /* with prices: sum over minutes of import kWh x import price - export kWh x export price */
    unsigned jobs_total, jobs_on_time, deadline_misses, starts;
    unsigned gaps, gap_min;    /* runs of minutes with PV or load unknown inside the files' span, and their minutes */
    unsigned edge_min;         /* minutes of the first/last day outside the PV file's span (PV unknown) */
};

struct bal_replay_day {
    int32_t date;              /* site-local civil date */
    int32_t load_date;         /* the load file's date paired with it (INT32_MIN: none, load unknown) */
    int64_t start_ms, end_ms;  /* local midnights: 23, 24 or 25 h apart */
    struct bal_replay_energy e;
    size_t nmin;               /* steps of the day */
    bool has_shift;            /* the PV clock check applied (enough sun, site latitude/longitude known) */
    double pv_shift_min;       /* centroid of measured PV minus that of clear-sky PV, minutes (> 0: late) */
    float *pv_w, *base_w, *grid_w; /* per step, only for traced days (else NULL); NAN where unknown */
};

/* One run of a machine: switched on at on_ms, off at off_ms (the replay's end if still on). */
struct bal_replay_run {
    size_t machine;
    int64_t on_ms, off_ms;
    double energy_wh;
    long job;                  /* index into result jobs, -1 none */
    bool cut;                  /* still on when the replay ended */
};

struct bal_replay_job {
    char id[48];
    size_t machine;
    int64_t earliest_ms, deadline_ms;
    double energy_wh, done_wh;
    int64_t done_ms;           /* when its energy was delivered; 0: never */
    bool required, surplus_only, on_time;
    bool infeasible;           /* the planner called it infeasible at least once */
    char reason[120];          /* the first such reason */
};

struct bal_replay_result {
    struct bal_replay_energy total;
    struct bal_replay_day *days;
    size_t ndays;
    struct bal_replay_run *runs;
    size_t nruns;
    struct bal_replay_job *jobs; /* the occurrences whose [earliest, deadline] lies within the replay */
    size_t njobs;
    unsigned min_on_off_violations;
    unsigned jobs_infeasible;
    double *plan_ms;           /* wall time of each bal_plan_make call */
    size_t nplans;
    double plan_ms_p50, plan_ms_max;
    size_t clock_faults;       /* rows dropped from both files (whole files) */
    unsigned shift_days, shift_days_off; /* days with a PV clock check; of those, off by >= BAL_REPLAY_SHIFT_MIN */
    double shift_median_min;   /* median pv_shift_min of the checked days */
    const char *forecast;      /* what the planner saw: "clear-sky", "persistence" (no array), "file",
                                * "oracle"; NULL without a planner (surplus, immediate). Static string. */
    size_t forecast_fallback_slots; /* with a forecast file: planner slots (summed over all planner calls)
                                     * the file did not cover, forecast by the built-in model instead */
    bool priced;               /* prices were given: the energies' cost is meaningful */
};

/* Replays cfg's machines and jobs over the PV days of pv (from o->from_day if set, o->ndays of them
 * or all), with the load of the paired days of load (bal_series_pair_day: same weekday, nearest day
 * of the year). Minutes where PV or load is unknown count 0 for it (no energy is invented) and the
 * dispatcher's reading stops advancing (it sees stale data). A forecast slot comes from o->forecast
 * only when every minute of it has a value there (the file's values at each minute's middle, linear
 * between its samples, scaled, negative as 0); other slots get the built-in forecast. The series
 * and prices in o are borrowed for the call. Manual machines are replayed as if a person followed
 * the advice at once. Returns 0 with *out (free with bal_replay_result_free), or
 * -EINVAL with err ("no PV data on 2020-01-01 (the PV file covers 2016-07-01 .. 2016-10-12)",
 * a malformed config) or the planner's error. */
int bal_replay_run(const struct bal_config *cfg, const struct bal_series *pv, const struct bal_series *load,
                   const struct bal_replay_opts *o, struct bal_replay_result **out, char *err, size_t errlen);
/* NULL is a no-op. */
void bal_replay_result_free(struct bal_replay_result *r);

/* The independent check of the machines' histories: counts runs shorter than their machine's min_on_s
 * (a run cut by the replay's end excepted) and pauses between two runs of a machine shorter than its
 * min_off_s. runs must be in order of on_ms per machine. */
unsigned bal_replay_check_min_on_off(const struct bal_machine *machines, size_t nm, const struct bal_replay_run *runs,
                                     size_t nruns);

/* Median and maximum of v[0..n) (0, 0 when n is 0). v is not changed. */
void bal_replay_p50_max(const double *v, size_t n, double *p50, double *max);

#endif
