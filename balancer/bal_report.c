/* bal_report: turns a replay's books into the report JSON (cJSON), a summary and a hand-written SVG.
 * Numbers are rounded here, once, so that the engine keeps full precision and the report stays
 * readable and stable between runs. */
#include "bal_report.h"
#include "fg_mem.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static const char *const strategy_names[] = { "plan", "surplus", "immediate" };

const char *bal_report_strategy_name(enum bal_strategy s)
{
    return (unsigned)s < 3 ? strategy_names[s] : "?";
}

int bal_report_strategy_parse(const char *name, enum bal_strategy *out)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, strategy_names[i])) {
            *out = (enum bal_strategy)i;
            return 0;
        }
    return -EINVAL;
}

/* ---- JSON --------------------------------------------------------------------------------------- */

static double round_to(double v, double unit)
{
    double x = round(v / unit) * unit;
    return x == 0 ? 0 : x; /* no "-0" in the report */
}

static double pct(double part, double whole)
{
    return whole > 0 ? round_to(100.0 * part / whole, 0.01) : 0;
}

static void add_kwh(cJSON *o, const char *key, double wh)
{
    cJSON_AddNumberToObject(o, key, round_to(wh / 1000.0, 0.001));
}

/* Money to 0.0001 of the prices' currency; null without prices. */
static void add_cost(cJSON *o, bool priced, double cost)
{
    if (priced)
        cJSON_AddNumberToObject(o, "cost", round_to(cost, 0.0001));
    else
        cJSON_AddNullToObject(o, "cost");
}

/* The energy keys shared by the totals and each day. */
static void add_energy(cJSON *o, const struct bal_replay_energy *e)
{
    add_kwh(o, "pv_kwh", e->pv_wh);
    add_kwh(o, "load_kwh", e->load_wh);
    add_kwh(o, "base_load_kwh", e->base_wh);
    add_kwh(o, "machine_kwh", e->machine_wh);
    add_kwh(o, "import_kwh", e->import_wh);
    add_kwh(o, "export_kwh", e->export_wh);
    add_kwh(o, "pv_used_kwh", e->pv_used_wh);
    cJSON_AddNumberToObject(o, "self_consumption_pct", pct(e->pv_used_wh, e->pv_wh));
    cJSON_AddNumberToObject(o, "self_sufficiency_pct", pct(e->pv_used_wh, e->load_wh));
    cJSON_AddNumberToObject(o, "peak_import_w", round_to(e->peak_import_w, 0.1));
    cJSON_AddNumberToObject(o, "jobs_total", e->jobs_total);
    cJSON_AddNumberToObject(o, "jobs_on_time", e->jobs_on_time);
    cJSON_AddNumberToObject(o, "deadline_misses", e->deadline_misses);
    cJSON_AddNumberToObject(o, "starts", e->starts);
}

static const char *base_name(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path ? path : "";
}

static void add_gaps(cJSON *o, const struct bal_replay_result *r, const struct bal_report_info *in)
{
    cJSON *g = cJSON_AddObjectToObject(o, "gaps");
    cJSON_AddNumberToObject(g, "count", r->total.gaps);
    cJSON_AddNumberToObject(g, "minutes", r->total.gap_min);
    cJSON_AddNumberToObject(g, "edge_minutes", r->total.edge_min);
    cJSON_AddStringToObject(g, "rule", "PV or load unknown: counted as 0 W, the dispatcher's reading goes stale");
    cJSON_AddNumberToObject(g, "pv_empty_rows", (double)in->pv->empty);
    cJSON_AddNumberToObject(g, "pv_missing_rows", (double)in->pv->missing);
    cJSON_AddNumberToObject(g, "load_empty_rows", (double)in->load->empty);
    cJSON_AddNumberToObject(g, "load_missing_rows", (double)in->load->missing);
}

static void add_pv_clock(cJSON *o, const struct bal_replay_result *r)
{
    cJSON *c = cJSON_AddObjectToObject(o, "pv_clock");
    cJSON_AddNumberToObject(c, "days_checked", r->shift_days);
    cJSON_AddNumberToObject(c, "days_off", r->shift_days_off);
    cJSON_AddNumberToObject(c, "median_shift_min", round_to(r->shift_median_min, 0.1));
    cJSON_AddStringToObject(c, "rule", "per day: time centroid of measured PV minus that of clear-sky PV; "
                                       "off: 30 min or more (> 0: the file's clock runs late, e.g. daylight saving "
                                       "time labelled as standard time); reported, not corrected");
}

static void add_input(cJSON *o, const char *key, const char *file, const struct bal_series *s, double scale)
{
    cJSON *x = cJSON_AddObjectToObject(o, key);
    cJSON_AddStringToObject(x, "file", file ? file : "");
    cJSON_AddStringToObject(x, "column", s->column);
    cJSON_AddNumberToObject(x, "rows", (double)s->rows);
    cJSON_AddNumberToObject(x, "step_s", s->step_s);
    cJSON_AddNumberToObject(x, "empty", (double)s->empty);
    cJSON_AddNumberToObject(x, "missing", (double)s->missing);
    cJSON_AddNumberToObject(x, "bad", (double)s->bad);
    cJSON_AddNumberToObject(x, "clock_faults", (double)s->clock_faults);
    cJSON_AddNumberToObject(x, "scale", scale);
}

/* What the planner saw, and the inputs that are not measured data. */
static void add_forecast_prices(cJSON *o, const struct bal_replay_result *r, const struct bal_report_info *in)
{
    if (r->forecast)
        cJSON_AddStringToObject(o, "forecast", r->forecast);
    else
        cJSON_AddNullToObject(o, "forecast");
    if (in->forecast)
        cJSON_AddNumberToObject(o, "forecast_fallback_slots", (double)r->forecast_fallback_slots);
    else
        cJSON_AddNullToObject(o, "forecast_fallback_slots");
    add_cost(o, r->priced, r->total.cost);
}

static void add_prices_input(cJSON *o, const char *file, const struct bal_replay_prices *p)
{
    cJSON *x = cJSON_AddObjectToObject(o, "prices");
    cJSON_AddStringToObject(x, "file", file ? file : "");
    cJSON_AddNumberToObject(x, "rows", (double)p->n);
}

static void add_load_source(cJSON *o, const struct bal_replay_result *r, const struct bal_report_info *in)
{
    char buf[512], a[16], b[16];
    const struct bal_replay_day *d0 = &r->days[0];
    snprintf(buf, sizeof buf,
             "%s (column \"%s\", x%g): each replayed day takes the load of the file's day with the same "
             "weekday and the nearest day of the year (%s <- %s), by local time of day; PV and load come "
             "from different places and years",
             base_name(in->load_file), in->load->column, in->load_scale, bal_series_date_str(d0->date, a, sizeof a),
             d0->load_date == INT32_MIN ? "none" : bal_series_date_str(d0->load_date, b, sizeof b));
    cJSON_AddStringToObject(o, "load_source", buf);
}

static void add_days(cJSON *o, const struct bal_replay_result *r)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "days");
    for (size_t k = 0; k < r->ndays; k++) {
        const struct bal_replay_day *d = &r->days[k];
        char a[16];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "date", bal_series_date_str(d->date, a, sizeof a));
        if (d->load_date == INT32_MIN)
            cJSON_AddNullToObject(x, "load_date");
        else
            cJSON_AddStringToObject(x, "load_date", bal_series_date_str(d->load_date, a, sizeof a));
        cJSON_AddNumberToObject(x, "hours", (double)(d->end_ms - d->start_ms) / 3600000.0);
        add_energy(x, &d->e);
        add_cost(x, r->priced, d->e.cost);
        cJSON *g = cJSON_AddObjectToObject(x, "gaps");
        cJSON_AddNumberToObject(g, "count", d->e.gaps);
        cJSON_AddNumberToObject(g, "minutes", d->e.gap_min);
        if (d->has_shift)
            cJSON_AddNumberToObject(x, "pv_shift_min", round_to(d->pv_shift_min, 0.1));
        else
            cJSON_AddNullToObject(x, "pv_shift_min");
        cJSON_AddItemToArray(arr, x);
    }
}

static void add_machines(cJSON *o, const struct bal_config *cfg, const struct bal_replay_result *r)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "machines");
    for (size_t m = 0; m < cfg->nmachines; m++) {
        unsigned runs = 0;
        double wh = 0;
        for (size_t k = 0; k < r->nruns; k++)
            if (r->runs[k].machine == m) {
                runs++;
                wh += r->runs[k].energy_wh;
            }
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "id", cfg->machines[m].id);
        cJSON_AddNumberToObject(x, "runs", runs);
        add_kwh(x, "kwh", wh);
        cJSON_AddItemToArray(arr, x);
    }
}

/* Jobs not done on time, with how far they got and the planner's reason if it gave one. */
static void add_late_jobs(cJSON *o, const struct bal_replay_result *r)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "jobs_late");
    for (size_t g = 0; g < r->njobs; g++) {
        const struct bal_replay_job *j = &r->jobs[g];
        if (j->on_time)
            continue;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "id", j->id);
        cJSON_AddBoolToObject(x, "required", j->required);
        cJSON_AddNumberToObject(x, "done_pct", pct(j->done_wh > j->energy_wh ? j->energy_wh : j->done_wh, j->energy_wh));
        cJSON_AddStringToObject(x, "reason", j->infeasible ? j->reason : "");
        cJSON_AddItemToArray(arr, x);
    }
}

char *bal_report_json(const struct bal_config *cfg, const struct bal_replay_result *r, const struct bal_report_info *in)
{
    cJSON *o = cJSON_CreateObject();
    char a[16];
    cJSON_AddStringToObject(o, "strategy", bal_report_strategy_name(in->strategy));
    cJSON_AddBoolToObject(o, "oracle", in->oracle);
    cJSON_AddStringToObject(o, "site", cfg->site.id);
    cJSON_AddStringToObject(o, "timezone", cfg->site.timezone);
    cJSON_AddStringToObject(o, "from", r->ndays ? bal_series_date_str(r->days[0].date, a, sizeof a) : "");
    cJSON_AddStringToObject(o, "to", r->ndays ? bal_series_date_str(r->days[r->ndays - 1].date, a, sizeof a) : "");
    cJSON_AddNumberToObject(o, "ndays", (double)r->ndays);
    add_energy(o, &r->total);
    add_forecast_prices(o, r, in);
    cJSON_AddNumberToObject(o, "jobs_infeasible", r->jobs_infeasible);
    cJSON_AddNumberToObject(o, "min_on_off_violations", r->min_on_off_violations);
    cJSON_AddNumberToObject(o, "plan_ms_p50", round_to(r->plan_ms_p50, 0.001));
    cJSON_AddNumberToObject(o, "plan_ms_max", round_to(r->plan_ms_max, 0.001));
    cJSON_AddNumberToObject(o, "plan_calls", (double)r->nplans);
    add_gaps(o, r, in);
    cJSON_AddNumberToObject(o, "clock_faults", (double)r->clock_faults);
    add_pv_clock(o, r);
    if (r->ndays)
        add_load_source(o, r, in);
    cJSON *inputs = cJSON_AddObjectToObject(o, "inputs");
    add_input(inputs, "pv", in->pv_file, in->pv, in->pv_scale);
    add_input(inputs, "load", in->load_file, in->load, in->load_scale);
    if (in->forecast)
        add_input(inputs, "forecast", in->forecast_file, in->forecast, in->pv_scale);
    if (in->prices)
        add_prices_input(inputs, in->prices_file, in->prices);
    add_machines(o, cfg, r);
    add_late_jobs(o, r);
    add_days(o, r);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text)
        abort(); /* cJSON fails only when out of memory, which fg_mem treats as fatal too */
    size_t n = strlen(text);
    char *out = fg_malloc(n + 2);
    memcpy(out, text, n);
    out[n] = '\n';
    out[n + 1] = '\0';
    cJSON_free(text);
    return out;
}

void bal_report_summary(FILE *f, const struct bal_replay_result *r, const struct bal_report_info *in)
{
    const struct bal_replay_energy *e = &r->total;
    char a[16], b[16];
    fprintf(f, "replay %s%s, %zu days %s .. %s\n", bal_report_strategy_name(in->strategy), in->oracle ? " (oracle)" : "",
            r->ndays, r->ndays ? bal_series_date_str(r->days[0].date, a, sizeof a) : "-",
            r->ndays ? bal_series_date_str(r->days[r->ndays - 1].date, b, sizeof b) : "-");
    fprintf(f, "  pv %.3f kWh, load %.3f kWh (machines %.3f), import %.3f kWh, export %.3f kWh\n", e->pv_wh / 1000,
            e->load_wh / 1000, e->machine_wh / 1000, e->import_wh / 1000, e->export_wh / 1000);
    fprintf(f, "  self-consumption %.2f %%, self-sufficiency %.2f %%, peak import %.0f W\n", pct(e->pv_used_wh, e->pv_wh),
            pct(e->pv_used_wh, e->load_wh), e->peak_import_w);
    fprintf(f, "  jobs %u, on time %u, deadline misses %u, infeasible %u, starts %u, min on/off violations %u\n",
            e->jobs_total, e->jobs_on_time, e->deadline_misses, r->jobs_infeasible, e->starts, r->min_on_off_violations);
    fprintf(f, "  plans %zu, p50 %.3f ms, max %.3f ms\n", r->nplans, r->plan_ms_p50, r->plan_ms_max);
    if (r->forecast && in->forecast)
        fprintf(f, "  forecast %s, %zu planner slots from the built-in forecast where the file had no value\n",
                r->forecast, r->forecast_fallback_slots);
    else if (r->forecast)
        fprintf(f, "  forecast %s\n", r->forecast);
    if (r->priced)
        fprintf(f, "  cost %.4f (import x import price - export x export price)\n", r->total.cost);
    fprintf(f, "  gaps %u (%u min), edge %u min, clock faults %zu (pv %zu empty rows, load %zu)\n", e->gaps, e->gap_min,
            e->edge_min, r->clock_faults, in->pv->empty, in->load->empty);
    if (r->shift_days)
        fprintf(f, "  pv clock: %u of %u days off by 30 min or more against the sun (median %+.0f min)\n",
                r->shift_days_off, r->shift_days, r->shift_median_min);
}

/* ---- SVG ---------------------------------------------------------------------------------------- */

#define SVG_LEFT 96.0      /* room for the date and the machines' names */
#define SVG_PX_MIN 0.7     /* px per minute: 24 h = 1008 px */
#define SVG_CHART_H 120.0
#define SVG_LANE_H 13.0
#define SVG_TOP 52.0
#define SVG_GAP 26.0
#define SVG_SAMPLE 5       /* minutes per drawn point */

struct svg {
    FILE *f;
    double ymax_w, ymin_w; /* chart range, W */
    double y0;             /* top of the current day's chart */
};

static double svg_y(const struct svg *s, double w)
{
    return s->y0 + SVG_CHART_H * (s->ymax_w - w) / (s->ymax_w - s->ymin_w);
}

static size_t svg_days(const struct bal_replay_result *r)
{
    size_t n = 0;
    while (n < r->ndays && n < BAL_REPORT_SVG_DAYS && r->days[n].pv_w)
        n++;
    return n;
}

/* The range shared by all days drawn, rounded out to whole kW. */
static void svg_range(struct svg *s, const struct bal_replay_result *r, size_t nd)
{
    double hi = 1000, lo = 0;
    for (size_t k = 0; k < nd; k++)
        for (size_t i = 0; i < r->days[k].nmin; i++) {
            const struct bal_replay_day *d = &r->days[k];
            double v[3] = { d->pv_w[i], d->base_w[i], d->grid_w[i] };
            for (int j = 0; j < 3; j++)
                if (isfinite(v[j])) {
                    hi = v[j] > hi ? v[j] : hi;
                    lo = v[j] < lo ? v[j] : lo;
                }
        }
    s->ymax_w = ceil(hi / 1000) * 1000;
    s->ymin_w = floor(lo / 1000) * 1000;
}

/* A series as polylines (line) or filled areas down to 0 W (area); unknown minutes break it. */
static void svg_series(struct svg *s, const float *v, size_t n, const char *style, bool area)
{
    bool open = false;
    double last_x = 0;
    for (size_t i = 0; i <= n; i++) {
        bool ok = i < n && isfinite(v[i]);
        if (ok && i % SVG_SAMPLE && i + 1 < n && isfinite(v[i + 1]))
            continue; /* thin out, but keep the points next to a break */
        double x = SVG_LEFT + SVG_PX_MIN * (double)i;
        if (ok && !open) {
            fprintf(s->f, "<polyline %s points=\"", style);
            if (area)
                fprintf(s->f, "%.1f,%.1f ", x, svg_y(s, 0));
            open = true;
        }
        if (ok) {
            fprintf(s->f, "%.1f,%.1f ", x, svg_y(s, v[i]));
            last_x = x;
        } else if (open) {
            if (area)
                fprintf(s->f, "%.1f,%.1f", last_x, svg_y(s, 0));
            fprintf(s->f, "\"/>\n");
            open = false;
        }
    }
}

static void svg_axes(struct svg *s, const struct bal_replay_day *d)
{
    double w = SVG_PX_MIN * (double)d->nmin, yb = s->y0 + SVG_CHART_H;
    fprintf(s->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fafafa\" stroke=\"#ccc\"/>\n",
            SVG_LEFT, s->y0, w, SVG_CHART_H);
    for (size_t h = 0; h * 60 <= d->nmin; h += 3) {
        double x = SVG_LEFT + SVG_PX_MIN * (double)(h * 60);
        fprintf(s->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\" class=\"t\" text-anchor=\"middle\">%02zu</text>\n",
                x, s->y0, x, yb, x, yb + 11, h);
    }
    fprintf(s->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>\n", SVG_LEFT, svg_y(s, 0),
            SVG_LEFT + w, svg_y(s, 0));
    fprintf(s->f, "<text x=\"%.1f\" y=\"%.1f\" class=\"t\">%.0f kW</text>\n", SVG_LEFT + 3, s->y0 + 10,
            s->ymax_w / 1000);
    fprintf(s->f, "<text x=\"%.1f\" y=\"%.1f\" class=\"t\" text-anchor=\"end\">0</text>\n", SVG_LEFT - 4,
            svg_y(s, 0) + 3);
    if (s->ymin_w < 0)
        fprintf(s->f, "<text x=\"%.1f\" y=\"%.1f\" class=\"t\">%.0f kW</text>\n", SVG_LEFT + 3, yb - 3,
                s->ymin_w / 1000);
}

static void svg_lanes(struct svg *s, const struct bal_config *cfg, const struct bal_replay_result *r,
                      const struct bal_replay_day *d)
{
    double top = s->y0 + SVG_CHART_H + 16;
    for (size_t m = 0; m < cfg->nmachines; m++) {
        double y = top + SVG_LANE_H * (double)m;
        fprintf(s->f, "<text x=\"%.1f\" y=\"%.1f\" class=\"t\" text-anchor=\"end\">%s</text>\n", SVG_LEFT - 4, y + 9,
                cfg->machines[m].id);
        for (size_t k = 0; k < r->nruns; k++) {
            const struct bal_replay_run *u = &r->runs[k];
            if (u->machine != m || u->off_ms <= d->start_ms || u->on_ms >= d->end_ms)
                continue;
            int64_t a = u->on_ms > d->start_ms ? u->on_ms : d->start_ms, b = u->off_ms < d->end_ms ? u->off_ms : d->end_ms;
            double x = SVG_LEFT + SVG_PX_MIN * (double)(a - d->start_ms) / 60000.0;
            double w = SVG_PX_MIN * (double)(b - a) / 60000.0;
            fprintf(s->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"run\"/>\n", x, y + 1,
                    w > 0.5 ? w : 0.5, SVG_LANE_H - 3);
        }
    }
}

/* Minutes without a known grid balance (PV or load unknown) as grey bands: the reader sees where the
 * data had holes instead of reading them as calm. */
static void svg_gaps(struct svg *s, const struct bal_replay_day *d)
{
    for (size_t i = 0; i < d->nmin;) {
        if (isfinite(d->grid_w[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < d->nmin && !isfinite(d->grid_w[j]))
            j++;
        fprintf(s->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"gap\"/>\n",
                SVG_LEFT + SVG_PX_MIN * (double)i, s->y0, SVG_PX_MIN * (double)(j - i), SVG_CHART_H);
        i = j;
    }
}

static void svg_day(struct svg *s, const struct bal_config *cfg, const struct bal_replay_result *r, size_t k)
{
    const struct bal_replay_day *d = &r->days[k];
    char date[16];
    fprintf(s->f, "<text x=\"4\" y=\"%.1f\" class=\"d\">%s</text>\n", s->y0 + 12,
            bal_series_date_str(d->date, date, sizeof date));
    fprintf(s->f, "<text x=\"4\" y=\"%.1f\" class=\"t\">%.1f kWh pv</text>\n", s->y0 + 26, d->e.pv_wh / 1000);
    fprintf(s->f, "<text x=\"4\" y=\"%.1f\" class=\"t\">%.1f kWh in</text>\n", s->y0 + 38, d->e.import_wh / 1000);
    svg_axes(s, d);
    svg_gaps(s, d);
    svg_series(s, d->pv_w, d->nmin, "class=\"pv\"", true);
    svg_series(s, d->base_w, d->nmin, "class=\"base\"", false);
    svg_series(s, d->grid_w, d->nmin, "class=\"grid\"", false);
    svg_lanes(s, cfg, r, d);
}

static void svg_head(struct svg *s, const struct bal_replay_result *r, const struct bal_report_info *in, size_t nd,
                     double width, double height)
{
    char a[16], b[16];
    fprintf(s->f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                  "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n", width, height, width, height);
    fprintf(s->f, "<style>.t{font-size:10px;fill:#444}.d{font-size:12px;font-weight:bold}"
                  ".pv{fill:#f6c94c;fill-opacity:0.6;stroke:#d9a400;stroke-width:0.8}"
                  ".base{fill:none;stroke:#3a6ea5;stroke-width:1.2}.grid{fill:none;stroke:#c0392b;stroke-width:1}"
                  ".run{fill:#5b8c5a}.gap{fill:#999;fill-opacity:0.25}</style>\n");
    fprintf(s->f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(s->f, "<text x=\"4\" y=\"18\" font-size=\"15\">fabgrid replay: strategy %s%s, %s .. %s "
                  "(%zu of %zu days drawn)</text>\n", bal_report_strategy_name(in->strategy),
            in->oracle ? " (oracle)" : "", bal_series_date_str(r->days[0].date, a, sizeof a),
            bal_series_date_str(r->days[nd - 1].date, b, sizeof b), nd, r->ndays);
    fprintf(s->f, "<rect x=\"%.0f\" y=\"28\" width=\"14\" height=\"9\" class=\"pv\"/><text x=\"%.0f\" y=\"37\" "
                  "class=\"t\">PV</text>\n", SVG_LEFT, SVG_LEFT + 18);
    fprintf(s->f, "<line x1=\"%.0f\" y1=\"33\" x2=\"%.0f\" y2=\"33\" class=\"base\"/><text x=\"%.0f\" y=\"37\" "
                  "class=\"t\">base load</text>\n", SVG_LEFT + 60, SVG_LEFT + 74, SVG_LEFT + 78);
    fprintf(s->f, "<line x1=\"%.0f\" y1=\"33\" x2=\"%.0f\" y2=\"33\" class=\"grid\"/><text x=\"%.0f\" y=\"37\" "
                  "class=\"t\">grid (import up, export down)</text>\n", SVG_LEFT + 150, SVG_LEFT + 164, SVG_LEFT + 168);
    fprintf(s->f, "<rect x=\"%.0f\" y=\"28\" width=\"14\" height=\"9\" class=\"run\"/><text x=\"%.0f\" y=\"37\" "
                  "class=\"t\">machine on (hours are local, from midnight)</text>\n", SVG_LEFT + 320, SVG_LEFT + 338);
    fprintf(s->f, "<rect x=\"%.0f\" y=\"28\" width=\"14\" height=\"9\" class=\"gap\"/><text x=\"%.0f\" y=\"37\" "
                  "class=\"t\">data gap (counted as 0 W)</text>\n", SVG_LEFT + 610, SVG_LEFT + 628);
}

int bal_report_svg(FILE *f, const struct bal_config *cfg, const struct bal_replay_result *r,
                   const struct bal_report_info *in)
{
    struct svg s = { .f = f };
    size_t nd = svg_days(r);
    double row_h = SVG_CHART_H + 16 + SVG_LANE_H * (double)cfg->nmachines + SVG_GAP;
    double width = SVG_LEFT + SVG_PX_MIN * 1500 + 10, height = SVG_TOP + row_h * (double)nd + 10;
    if (nd == 0) {
        fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"40\"><text x=\"4\" y=\"20\">"
                   "no days traced</text></svg>\n");
        return ferror(f) ? -EIO : 0;
    }
    svg_range(&s, r, nd);
    svg_head(&s, r, in, nd, width, height);
    for (size_t k = 0; k < nd; k++) {
        s.y0 = SVG_TOP + row_h * (double)k;
        svg_day(&s, cfg, r, k);
    }
    fprintf(f, "</svg>\n");
    return ferror(f) ? -EIO : 0;
}
