/* Unit tests of the replay: CSV series (gaps, clock faults, DST-shifted clocks, day pairing), the
 * engine on a tiny hand-computed site (IMMEDIATE strategy, Europe/Berlin's 23-hour day, a PV gap,
 * America/Denver's 25-hour day), price files, an external PV forecast and prices steering the planner,
 * the cost of a hand-priced day, the independent min on/off check, and the report writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "bal_forecast.h"
#include "bal_model.h"
#include "bal_replay.h"
#include "bal_report.h"
#include "bal_series.h"
#include "fg_clock.h"

#define EPS 1e-6

static struct bal_series *parse(const char *text)
{
    char err[256] = "";
    struct bal_series *s = bal_series_parse(text, strlen(text), "t.csv", err, sizeof err);
    if (!s)
        fprintf(stderr, "parse: %s\n", err);
    assert_non_null(s);
    return s;
}

static double at(const struct bal_series *s, const char *iso)
{
    int64_t t;
    assert_int_equal(fg_parse_iso8601_ms(iso, &t), 0);
    double v;
    return bal_series_at(s, t, &v) ? v : NAN;
}

/* ---- series ------------------------------------------------------------------------------------- */

static void test_civil(void **state)
{
    (void)state;
    assert_int_equal(bal_series_civil_day(1970, 1, 1), 0);
    assert_int_equal(bal_series_civil_day(2016, 2, 29), 16860);
    assert_int_equal(bal_series_civil_day(1969, 12, 31), -1);
    int y, m, d;
    bal_series_civil_date(16860, &y, &m, &d);
    assert_int_equal(y * 10000 + m * 100 + d, 20160229);
    assert_int_equal(bal_series_civil_weekday(bal_series_civil_day(2018, 1, 1)), 0); /* a Monday */
    assert_int_equal(bal_series_civil_weekday(bal_series_civil_day(2016, 7, 3)), 6); /* a Sunday */
    char buf[16];
    assert_string_equal(bal_series_date_str(bal_series_civil_day(2016, 10, 30), buf, sizeof buf), "2016-10-30");
}

static void test_series_basic(void **state)
{
    (void)state;
    struct bal_series *s = parse("measured_on,ac_power\r\n"
                                 "2016-07-01 10:00:00-07:00,100\r\n"
                                 "2016-07-01 10:15:00-07:00,200\r\n"
                                 "2016-07-01T10:30:00-0700,\"-3.5\"\r\n"
                                 "2016-07-01 17:45Z,400,extra\r\n\r\n");
    assert_string_equal(s->column, "ac_power");
    assert_int_equal(s->n, 4);
    assert_int_equal(s->rows, 4);
    assert_int_equal(s->step_s, 900);
    assert_int_equal(s->empty + s->bad + s->clock_faults + s->missing, 0);
    assert_int_equal(s->t_ms[0], 1467392400000LL);
    assert_int_equal(s->label_min[0], 600);
    assert_int_equal(s->label_day[0], bal_series_civil_day(2016, 7, 1));
    assert_int_equal(s->label_min[3], 17 * 60 + 45); /* the wall clock as written, offset aside */
    assert_float_equal(at(s, "2016-07-01T10:00:00-07:00"), 100, EPS);
    assert_float_equal(at(s, "2016-07-01T10:07:30-07:00"), 150, EPS);
    assert_float_equal(at(s, "2016-07-01T10:20:00-07:00"), 200 - 203.5 / 3, EPS);
    assert_float_equal(at(s, "2016-07-01T10:40:00-07:00"), -3.5 + 403.5 * 10 / 15, EPS);
    assert_true(isnan(at(s, "2016-07-01T09:59:00-07:00")));  /* before the first sample */
    assert_true(isnan(at(s, "2016-07-01T10:46:00-07:00")));  /* after the last */
    bal_series_free(s);
    bal_series_free(NULL);
}

static void test_series_errors(void **state)
{
    (void)state;
    char err[256];
    const char *one_col = "time\n2016-07-01 10:00:00Z\n";
    assert_null(bal_series_parse(one_col, strlen(one_col), "a.csv", err, sizeof err));
    assert_string_equal(err, "a.csv:1: expected a header or a row TIME,VALUE");
    const char *header_only = "\n\nmeasured_on,ac_power\n";
    assert_null(bal_series_parse(header_only, strlen(header_only), "b.csv", err, sizeof err));
    assert_string_equal(err, "b.csv: no rows with a readable time");
    assert_null(bal_series_load("/nonexistent/x.csv", err, sizeof err));
    assert_string_equal(err, "/nonexistent/x.csv: cannot read: No such file or directory");
    /* unreadable rows are counted, not fatal */
    struct bal_series *s = parse("t,v\n2016-07-01 10:00Z,1\nyesterday,2\n2016-07-01 10:15Z,abc\n2016-07-01 10:30Z,3\n");
    assert_int_equal(s->rows, 4);
    assert_int_equal(s->n, 3);
    assert_int_equal(s->bad, 2);
    assert_int_equal(s->empty, 1);
    assert_true(isnan(s->value[1]));
    bal_series_free(s);
}

/* Empty values and missing rows are gaps: nothing is interpolated across them. */
static void test_series_gaps(void **state)
{
    (void)state;
    struct bal_series *s = parse("t,v\n"
                                 "2011-06-21 17:00:00-07:00,100\n"
                                 "2011-06-21 17:15:00-07:00,\n"
                                 "2011-06-21 17:30:00-07:00,NaN\n"
                                 "2011-06-21 17:45:00-07:00,40\n"
                                 "2011-06-21 18:00:00-07:00,20\n"
                                 "2011-06-21 19:00:00-07:00,0\n"     /* 3 rows missing */
                                 "2011-06-21 19:15:00-07:00,0\n");
    assert_int_equal(s->n, 7);
    assert_int_equal(s->empty, 2);
    assert_int_equal(s->bad, 0);
    assert_int_equal(s->missing, 3);
    assert_int_equal(s->step_s, 900);
    assert_float_equal(at(s, "2011-06-21T17:00:00-07:00"), 100, EPS);
    assert_true(isnan(at(s, "2011-06-21T17:01:00-07:00")));
    assert_true(isnan(at(s, "2011-06-21T17:15:00-07:00")));
    assert_true(isnan(at(s, "2011-06-21T17:44:59-07:00")));
    assert_float_equal(at(s, "2011-06-21T17:52:30-07:00"), 30, EPS);
    assert_true(isnan(at(s, "2011-06-21T18:30:00-07:00")));
    assert_float_equal(at(s, "2011-06-21T19:00:00-07:00"), 0, EPS);
    bal_series_free(s);
}

/* Rows out of order or repeated are clock faults: dropped and counted; one wild row does not
 * swallow the rows after it. */
static void test_series_clock_faults(void **state)
{
    (void)state;
    struct bal_series *s = parse("t,v\n"
                                 "2016-07-01 10:00Z,1\n"
                                 "2016-07-01 10:15Z,2\n"
                                 "2016-07-01 10:15Z,99\n"   /* duplicate */
                                 "2016-07-01 10:30Z,3\n"
                                 "2016-07-01 10:10Z,99\n"   /* back in time */
                                 "2016-07-01 10:45Z,4\n"
                                 "2037-01-01 00:00Z,99\n"   /* a lone wild clock */
                                 "2016-07-01 11:00Z,5\n");
    assert_int_equal(s->rows, 8);
    assert_int_equal(s->n, 5);
    assert_int_equal(s->clock_faults, 3);
    for (size_t i = 0; i < s->n; i++)
        assert_float_equal(s->value[i], (double)(i + 1), EPS);
    assert_float_equal(at(s, "2016-07-01T10:52:30Z"), 4.5, EPS);
    bal_series_free(s);
}

/* A logger whose clock follows daylight saving time but labels every row -07:00 (as NREL system 50
 * does): at the fall-back its labels repeat an hour (4 clock faults), at the spring-forward they skip
 * one (4 rows missing, a gap). */
static void test_series_dst_shifted_fixed_offset(void **state)
{
    (void)state;
    struct bal_series *s = parse("t,v\n"
                                 "2011-11-06 01:30:00-07:00,1\n"
                                 "2011-11-06 01:45:00-07:00,2\n"
                                 "2011-11-06 01:00:00-07:00,91\n"
                                 "2011-11-06 01:15:00-07:00,92\n"
                                 "2011-11-06 01:30:00-07:00,93\n"
                                 "2011-11-06 01:45:00-07:00,94\n"
                                 "2011-11-06 02:00:00-07:00,3\n"
                                 "2012-03-11 01:45:00-07:00,4\n"
                                 "2012-03-11 03:00:00-07:00,5\n"
                                 "2012-03-11 03:15:00-07:00,6\n");
    assert_int_equal(s->clock_faults, 4);
    assert_int_equal(s->n, 6);
    assert_float_equal(s->value[2], 3, EPS);
    int64_t a, b;
    assert_int_equal(fg_parse_iso8601_ms("2011-11-06 02:00:00-07:00", &a), 0);
    assert_int_equal(fg_parse_iso8601_ms("2012-03-11 01:45:00-07:00", &b), 0);
    assert_int_equal(s->missing, (size_t)((b - a) / 900000 - 1) + 4);
    assert_true(isnan(at(s, "2012-03-11T02:30:00-07:00")));
    assert_float_equal(at(s, "2012-03-11T03:07:30-07:00"), 5.5, EPS);
    bal_series_free(s);
}

/* A logger writing local time without an offset repeats the fall-back hour: the repeated rows map to
 * instants already seen and are dropped, so the hour's energy is not counted twice. */
static void test_series_dst_local_no_offset(void **state)
{
    (void)state;
    bal_tz_apply("Europe/Berlin");
    struct bal_series *s = parse("t,v\n"
                                 "2016-10-30 01:45:00,1\n"
                                 "2016-10-30 02:00:00,2\n"
                                 "2016-10-30 02:15:00,3\n"
                                 "2016-10-30 02:30:00,4\n"
                                 "2016-10-30 02:45:00,5\n"
                                 "2016-10-30 02:00:00,6\n"
                                 "2016-10-30 02:15:00,7\n"
                                 "2016-10-30 02:30:00,8\n"
                                 "2016-10-30 02:45:00,9\n"
                                 "2016-10-30 03:00:00,10\n");
    assert_int_equal(s->clock_faults, 4);
    assert_int_equal(s->n, 6);
    assert_float_equal(s->value[5], 10, EPS);
    bal_series_free(s);
}

/* The load file's style: Berlin local time with its changing offset. Both DST days are complete by
 * the wall clock: the fall-back's repeated hour is read once, the skipped spring hour is bridged. */
static char *berlin_csv(int32_t first_day, int32_t last_day, double (*value)(int64_t t_ms))
{
    bal_tz_apply("Europe/Berlin");
    size_t cap = 64 + (size_t)(last_day - first_day + 2) * 100 * 40, len = 0;
    char *buf = malloc(cap);
    len += (size_t)snprintf(buf, cap, "datetime,electrical load [W]\n");
    int y, m, d;
    bal_series_civil_date(first_day, &y, &m, &d);
    struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_isdst = -1 };
    time_t t = mktime(&tm);
    for (;; t += 900) {
        struct tm lt;
        localtime_r(&t, &lt);
        if (bal_series_civil_day(lt.tm_year + 1900, lt.tm_mon + 1, lt.tm_mday) > last_day)
            break;
        char ts[40];
        strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S%z", &lt);
        len += (size_t)snprintf(buf + len, cap - len, "%s,%.3f\n", ts, value((int64_t)t * 1000));
    }
    return buf;
}

static double minute_of_day_w(int64_t t_ms)
{
    time_t t = (time_t)(t_ms / 1000);
    struct tm lt;
    localtime_r(&t, &lt);
    return lt.tm_hour * 60 + lt.tm_min; /* the value is the wall minute: easy to check */
}

static void test_series_wall_day_dst(void **state)
{
    (void)state;
    char *csv = berlin_csv(bal_series_civil_day(2018, 3, 24), bal_series_civil_day(2018, 10, 29), minute_of_day_w);
    struct bal_series *s = parse(csv);
    free(csv);
    assert_int_equal(s->clock_faults, 0);
    assert_int_equal(s->missing, 0);
    double w[BAL_SERIES_DAY_MIN];
    bool known[BAL_SERIES_DAY_MIN];
    assert_int_equal(bal_series_wall_day(s, bal_series_civil_day(2018, 3, 25), w, known), 1440);
    assert_float_equal(w[100], 100.5, EPS);  /* 01:40 */
    assert_float_equal(w[150], 150.5, EPS);  /* 02:30 does not exist: bridged from 01:45 (105) to 03:00 (180) */
    assert_float_equal(w[1439], 1425 - 1425 * 14.5 / 15, EPS); /* from 23:45 (1425) to the next 00:00 (0) */
    assert_int_equal(bal_series_wall_day(s, bal_series_civil_day(2018, 10, 28), w, known), 1440);
    assert_float_equal(w[130], 130.5, EPS);  /* 02:10, the first of the two */
    assert_float_equal(w[600], 600.5, EPS);
    assert_int_equal(bal_series_wall_day(s, bal_series_civil_day(2019, 1, 1), w, known), 0);
    bal_series_free(s);
}

static double flat_w(int64_t t_ms)
{
    (void)t_ms;
    return 600;
}

/* Days of another year pair with the same weekday and the nearest day of the year. */
static void test_series_pair_day(void **state)
{
    (void)state;
    char *csv = berlin_csv(bal_series_civil_day(2018, 1, 1), bal_series_civil_day(2018, 1, 21), flat_w);
    size_t n = strlen(csv);
    char *cut = malloc(n + 1);
    memcpy(cut, csv, n + 1);
    /* drop the afternoon of 2018-01-21 (a Sunday): only 12 h of data, not a day to pair with */
    char *p = strstr(cut, "2018-01-21 12:00");
    *p = '\0';
    struct bal_series *s = parse(cut);
    free(csv);
    free(cut);
    char buf[16];
    /* 2016-01-10 is a Sunday, day of year 9: Sundays 2018-01-07 (6) and 2018-01-14 (13) */
    assert_string_equal(bal_series_date_str(bal_series_pair_day(s, bal_series_civil_day(2016, 1, 10)), buf, 16),
                        "2018-01-07");
    /* 2016-01-24, Sunday, day 23: 2018-01-21 (day 20) is incomplete, so 2018-01-14 */
    assert_string_equal(bal_series_date_str(bal_series_pair_day(s, bal_series_civil_day(2016, 1, 24)), buf, 16),
                        "2018-01-14");
    /* the same date when the file has it */
    assert_string_equal(bal_series_date_str(bal_series_pair_day(s, bal_series_civil_day(2018, 1, 9)), buf, 16),
                        "2018-01-09");
    /* 2016-12-31, Saturday, day 365: circular, 2018-01-06 (day 5) is 5 days away */
    assert_string_equal(bal_series_date_str(bal_series_pair_day(s, bal_series_civil_day(2016, 12, 31)), buf, 16),
                        "2018-01-06");
    bal_series_free(s);
}

/* ---- the engine --------------------------------------------------------------------------------- */

static struct bal_machine test_machine = { .id = "heater", .power_w = 3500 };
static struct bal_job_cfg test_job = { .id = "heat", .machine = 0, .duration_min = 120, .earliest_min = 9 * 60,
                                       .deadline_min = 15 * 60, .days_mask = 0x7f, .required = true };

static struct bal_config test_config(const char *tz)
{
    struct bal_config c;
    memset(&c, 0, sizeof c);
    strcpy(c.site.id, "t");
    strcpy(c.site.timezone, tz);
    c.site.latitude = 52.5;
    c.site.longitude = 13.4;
    c.machines = &test_machine;
    c.nmachines = 1;
    c.jobs = &test_job;
    c.njobs = 1;
    c.set = (struct bal_settings){ .interval_s = 10, .slot_min = 15, .horizon_h = 36, .stale_after_s = 30,
                                   .surplus_margin_w = 100, .surplus_delay_s = 300, .hysteresis_w = 200 };
    return c;
}

/* 3000 W from 08:00 to 16:00 local (samples at 08:00 .. 16:00), 0 otherwise: linear ramps 07:45-08:00
 * and 16:00-16:15. */
static double pv_block_w(int64_t t_ms)
{
    double m = minute_of_day_w(t_ms);
    return m >= 480 && m <= 960 ? 3000 : 0;
}

/* value(t) in the time zone in force, as rows every 15 min with offsets; rows whose local time is in
 * [gap_from, gap_to) minutes on gap_day are written empty. */
static char *series_csv(int32_t first_day, int32_t last_day, int32_t gap_day, int gap_from, int gap_to,
                        double (*value)(int64_t t_ms))
{
    size_t cap = (size_t)(last_day - first_day + 2) * 100 * 40, len = 0;
    char *buf = malloc(cap);
    len += (size_t)snprintf(buf, cap, "measured_on,ac_power\n");
    int y, m, d;
    bal_series_civil_date(first_day, &y, &m, &d);
    struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_isdst = -1 };
    for (time_t t = mktime(&tm);; t += 900) {
        struct tm lt;
        localtime_r(&t, &lt);
        int32_t day = bal_series_civil_day(lt.tm_year + 1900, lt.tm_mon + 1, lt.tm_mday);
        if (day > last_day)
            break;
        char ts[40];
        strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S%z", &lt);
        int lm = lt.tm_hour * 60 + lt.tm_min;
        if (day == gap_day && lm >= gap_from && lm < gap_to)
            len += (size_t)snprintf(buf + len, cap - len, "%s,\n", ts);
        else
            len += (size_t)snprintf(buf + len, cap - len, "%s,%.1f\n", ts, value((int64_t)t * 1000));
        if (day == last_day && lm == 0)
            break; /* the last day's midnight closes the day before it */
    }
    return buf;
}

/* The PV block of pv_block_w. */
static char *pv_csv(int32_t first_day, int32_t last_day, int32_t gap_day, int gap_from, int gap_to)
{
    return series_csv(first_day, last_day, gap_day, gap_from, gap_to, pv_block_w);
}

struct fixture {
    struct bal_config cfg;
    struct bal_series *pv, *load;
    struct bal_replay_result *r;
};

static void run_fixture(struct fixture *f, const char *tz, int32_t d0, int32_t d_end, int32_t gap_day, int gap_from,
                        int gap_to, enum bal_strategy strat, const struct bal_replay_prices *prices)
{
    bal_tz_apply(tz);
    f->cfg = test_config(tz);
    char *pv = pv_csv(d0, d_end, gap_day, gap_from, gap_to);
    f->pv = parse(pv);
    free(pv);
    char *load = berlin_csv(bal_series_civil_day(2018, 1, 1), bal_series_civil_day(2018, 12, 31), flat_w);
    f->load = parse(load);
    free(load);
    bal_tz_apply(tz);
    struct bal_replay_opts o = { .strategy = strat, .trace_days = 2, .prices = prices };
    char err[256] = "";
    int rc = bal_replay_run(&f->cfg, f->pv, f->load, &o, &f->r, err, sizeof err);
    if (rc)
        fprintf(stderr, "replay: %s\n", err);
    assert_int_equal(rc, 0);
}

static void free_fixture(struct fixture *f)
{
    bal_replay_result_free(f->r);
    bal_series_free(f->pv);
    bal_series_free(f->load);
}

/* One day of the tiny site by hand (base load 600 W, PV block 3000 W 08:00-16:00 with 15-min ramps,
 * heater 3500 W x 2 h started at its earliest, 09:00), night_h hours of night before 07:45:
 *   PV 8 h x 3000 + 2 ramps x 3000 x 0.125 h = 24750 Wh
 *   ramp minutes (values at the middle of each minute, 200 W steps): import where PV < 600 W:
 *     (500 + 300 + 100) / 60 = 15 Wh per ramp; export: (200 x 108 - 12 x 600) / 60 = 240 Wh per ramp
 *   import = 600 x (night_h + 7.75) + 15 + 15 + (600 + 3500 - 3000) x 2 = 600 x night_h + 6880
 *   export = 2400 x 6 + 240 + 240 = 14880 Wh; PV used = 24750 - 14880 = 9870 Wh */
static void check_day(const struct bal_replay_day *d, double hours, double night_h)
{
    assert_int_equal(d->end_ms - d->start_ms, (int64_t)(hours * 3600000));
    assert_int_equal(d->nmin, (size_t)(hours * 60));
    assert_float_equal(d->e.pv_wh, 24750, EPS);
    assert_float_equal(d->e.base_wh, 600 * hours, EPS);
    assert_float_equal(d->e.machine_wh, 7000, EPS);
    assert_float_equal(d->e.load_wh, 600 * hours + 7000, EPS);
    assert_float_equal(d->e.import_wh, 600 * night_h + 4650 + 30 + 2200, EPS);
    assert_float_equal(d->e.export_wh, 14880, EPS);
    assert_float_equal(d->e.pv_used_wh, 9870, EPS);
    assert_float_equal(d->e.peak_import_w, 1100, EPS);
    assert_int_equal(d->e.starts, 1);
    assert_int_equal(d->e.jobs_total, 1);
    assert_int_equal(d->e.jobs_on_time, 1);
    assert_int_equal(d->e.deadline_misses, 0);
    assert_int_equal(d->e.gaps + d->e.gap_min + d->e.edge_min, 0);
}

/* Europe/Berlin 2016-03-26 (24 h) and 2016-03-27 (23 h: the night before 07:45 is 6.75 h). */
static void test_replay_immediate_berlin(void **state)
{
    (void)state;
    struct fixture f;
    int32_t d0 = bal_series_civil_day(2016, 3, 26);
    run_fixture(&f, "Europe/Berlin", d0, d0 + 2, INT32_MIN, 0, 0, BAL_STRAT_IMMEDIATE, NULL);
    const struct bal_replay_result *r = f.r;
    assert_int_equal(r->ndays, 2);
    assert_int_equal(r->days[0].date, d0);
    assert_int_equal(r->days[0].load_date, bal_series_civil_day(2018, 3, 24)); /* Saturday, day of year 82 vs 85 */
    check_day(&r->days[0], 24, 7.75);
    check_day(&r->days[1], 23, 6.75);
    assert_float_equal(r->total.import_wh, 11530 + 10930, EPS);
    assert_float_equal(r->total.pv_wh, 49500, EPS);
    assert_int_equal(r->total.starts, 2);
    assert_int_equal(r->total.jobs_total, 2);
    assert_int_equal(r->total.jobs_on_time, 2);
    assert_int_equal(r->nruns, 2);
    assert_int_equal(r->runs[0].on_ms, 1458979200000LL); /* 2016-03-26 09:00 CET */
    assert_int_equal(r->runs[0].off_ms, 1458979200000LL + 7200000);
    assert_int_equal(r->runs[1].on_ms, 1459062000000LL); /* 2016-03-27 09:00 CEST */
    assert_float_equal(r->runs[1].energy_wh, 7000, EPS);
    assert_int_equal(r->njobs, 2);
    assert_string_equal(r->jobs[1].id, "heat@2016-03-27");
    assert_int_equal(r->jobs[1].done_ms, 1459062000000LL + 7200000);
    assert_int_equal(r->min_on_off_violations, 0);
    assert_int_equal(r->nplans, 0); /* IMMEDIATE has no planner */
    assert_int_equal(r->clock_faults, 0);
    assert_int_equal(r->shift_days, 0); /* no latitude/longitude: no PV clock check */
    /* the trace: 09:30 on the first day is minute 570 */
    assert_float_equal(r->days[0].pv_w[570], 3000, EPS);
    assert_float_equal(r->days[0].grid_w[570], 1100, EPS);
    assert_float_equal(r->days[1].base_w[1379], 600, EPS);
    free_fixture(&f);
}

/* PV rows 12:00-12:45 of the first day are empty: the 75 minutes from 11:45 to 13:00 have no known
 * PV: they count 0 W (3750 Wh less PV, 750 Wh more import, 3000 Wh less export), one gap. */
static void test_replay_gap_invents_nothing(void **state)
{
    (void)state;
    struct fixture f;
    int32_t d0 = bal_series_civil_day(2016, 3, 26);
    run_fixture(&f, "Europe/Berlin", d0, d0 + 2, d0, 720, 780, BAL_STRAT_IMMEDIATE, NULL);
    const struct bal_replay_energy *e = &f.r->days[0].e;
    assert_int_equal(f.pv->empty, 4);
    assert_int_equal(e->gaps, 1);
    assert_int_equal(e->gap_min, 75);
    assert_float_equal(e->pv_wh, 21000, EPS);
    assert_float_equal(e->import_wh, 11530 + 750, EPS);
    assert_float_equal(e->export_wh, 14880 - 3000, EPS);
    assert_float_equal(e->pv_used_wh, e->load_wh - e->import_wh, EPS);
    assert_int_equal(f.r->total.gaps, 1);
    assert_int_equal(f.r->days[1].e.gaps, 0);
    assert_true(isnan(f.r->days[0].pv_w[12 * 60 + 10]));
    assert_true(isnan(f.r->days[0].grid_w[12 * 60 + 10]));
    assert_float_equal(f.r->days[0].base_w[12 * 60 + 10], 600, EPS);
    free_fixture(&f);
}

/* Europe/Berlin 2016-10-30 has 25 hours (night before 07:45: 8.75 h); its load comes from the file's
 * 2018-10-28, itself a 25-hour day whose repeated hour is read once by the wall clock. */
static void test_replay_berlin_25h(void **state)
{
    (void)state;
    struct fixture f;
    int32_t d0 = bal_series_civil_day(2016, 10, 29);
    run_fixture(&f, "Europe/Berlin", d0, d0 + 2, INT32_MIN, 0, 0, BAL_STRAT_IMMEDIATE, NULL);
    assert_int_equal(f.r->ndays, 2);
    assert_int_equal(f.r->days[1].load_date, bal_series_civil_day(2018, 10, 28));
    check_day(&f.r->days[0], 24, 7.75);
    check_day(&f.r->days[1], 25, 8.75);
    assert_int_equal(f.r->runs[1].on_ms, 1477814400000LL); /* 2016-10-30 09:00 CET = 08:00Z */
    free_fixture(&f);
}

/* America/Denver 2016-11-06 has 25 hours: base load 600 W x 25 h; the heater starts at 09:00 MST. */
static void test_replay_denver_25h(void **state)
{
    (void)state;
    struct fixture f;
    int32_t d0 = bal_series_civil_day(2016, 11, 5);
    run_fixture(&f, "America/Denver", d0, d0 + 3, INT32_MIN, 0, 0, BAL_STRAT_IMMEDIATE, NULL);
    const struct bal_replay_result *r = f.r;
    assert_int_equal(r->ndays, 3);
    assert_int_equal(r->days[1].end_ms - r->days[1].start_ms, 25 * 3600000LL);
    assert_float_equal(r->days[1].e.base_wh, 15000, EPS);
    check_day(&r->days[1], 25, 8.75);
    check_day(&r->days[2], 24, 7.75);
    assert_int_equal(r->runs[1].on_ms, 1478448000000LL); /* 2016-11-06 09:00 MST = 16:00Z */
    free_fixture(&f);
}

/* A job whose energy is no whole number of minutes at its power: the machine draws only the rest in its
 * last step (1000 Wh at 3500 W: 17 full minutes and 1000 - 17 x 3500 / 60 = 8.33 Wh), so the books hold
 * exactly the job's energy; the dispatcher switches it off at the next step. */
static void test_replay_partial_minute(void **state)
{
    (void)state;
    struct bal_job_cfg job = test_job;
    job.duration_min = 0;
    job.energy_wh = 1000;
    struct fixture f;
    int32_t d0 = bal_series_civil_day(2016, 3, 26);
    bal_tz_apply("Europe/Berlin");
    f.cfg = test_config("Europe/Berlin");
    f.cfg.jobs = &job;
    char *pv = pv_csv(d0, d0 + 1, INT32_MIN, 0, 0);
    f.pv = parse(pv);
    free(pv);
    char *load = berlin_csv(bal_series_civil_day(2018, 3, 1), bal_series_civil_day(2018, 3, 31), flat_w);
    f.load = parse(load);
    free(load);
    bal_tz_apply("Europe/Berlin");
    struct bal_replay_opts o = { .strategy = BAL_STRAT_IMMEDIATE };
    char err[256];
    assert_int_equal(bal_replay_run(&f.cfg, f.pv, f.load, &o, &f.r, err, sizeof err), 0);
    assert_int_equal(f.r->ndays, 1);
    assert_float_equal(f.r->total.machine_wh, 1000, EPS);
    assert_float_equal(f.r->runs[0].energy_wh, 1000, EPS);
    assert_int_equal(f.r->runs[0].off_ms - f.r->runs[0].on_ms, 18 * 60000);
    assert_int_equal(f.r->jobs[0].done_ms, f.r->runs[0].on_ms + 18 * 60000);
    assert_true(f.r->jobs[0].on_time);
    /* import while it runs: 17 minutes at 600 + 3500 - 3000 W, then 8.33 Wh of the heater alone */
    assert_float_equal(f.r->total.import_wh, 4650 + 15 + 15 + 4650 + 17 * 1100 / 60.0 + 0, EPS);
    assert_float_equal(f.r->total.peak_import_w, 1100, EPS);
    free_fixture(&f);
}

static void test_replay_errors(void **state)
{
    (void)state;
    bal_tz_apply("Europe/Berlin");
    struct bal_config cfg = test_config("Europe/Berlin");
    int32_t d0 = bal_series_civil_day(2016, 3, 26);
    char *pv = pv_csv(d0, d0 + 2, INT32_MIN, 0, 0);
    struct bal_series *s = parse(pv);
    free(pv);
    struct bal_replay_opts o = { .strategy = BAL_STRAT_IMMEDIATE, .has_from = true,
                                 .from_day = bal_series_civil_day(2016, 4, 1) };
    struct bal_replay_result *r = (void *)1;
    char err[256];
    assert_int_equal(bal_replay_run(&cfg, s, s, &o, &r, err, sizeof err), -22);
    assert_null(r);
    assert_string_equal(err, "no PV data on 2016-04-01 (the PV file covers 2016-03-26 .. 2016-03-28)");
    o.from_day = d0 + 1;
    o.ndays = 5; /* more than there is: the days there are */
    assert_int_equal(bal_replay_run(&cfg, s, s, &o, &r, err, sizeof err), 0);
    assert_int_equal(r->ndays, 1);
    assert_int_equal(r->days[0].date, d0 + 1);
    bal_replay_result_free(r);
    bal_replay_result_free(NULL);
    bal_series_free(s);
}

/* Clear-sky PV of a 5 kWp array in Golden, CO, written shift_ms late, as rows every 15 min. */
static char *clearsky_csv(int32_t first_day, int32_t last_day, int64_t shift_ms)
{
    struct bal_array a = { 39.742, -105.173, 5, 45, 158 };
    size_t cap = (size_t)(last_day - first_day + 2) * 100 * 40, len = 0;
    char *buf = malloc(cap);
    len += (size_t)snprintf(buf, cap, "measured_on,ac_power\n");
    int y, m, d;
    bal_series_civil_date(first_day, &y, &m, &d);
    struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_isdst = -1 };
    time_t end = mktime(&tm) + (time_t)(last_day - first_day) * 86400;
    for (time_t t = mktime(&tm); t <= end; t += 900) {
        struct tm ut;
        gmtime_r(&t, &ut);
        char ts[40];
        strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%SZ", &ut);
        len += (size_t)snprintf(buf + len, cap - len, "%s,%.3f\n", ts, bal_clearsky_w(&a, (int64_t)t * 1000 - shift_ms));
    }
    return buf;
}

/* A clock an hour late (daylight saving time labelled as standard time) shows as the day's PV centroid
 * an hour after the clear-sky one; a right clock as none. */
static void test_replay_pv_clock_check(void **state)
{
    (void)state;
    bal_tz_apply("America/Denver");
    struct bal_config cfg = test_config("America/Denver");
    cfg.site.has_latlon = true;
    cfg.site.latitude = 39.742;
    cfg.site.longitude = -105.173;
    cfg.site.pv_kwp = 5;
    cfg.site.tilt_deg = 45;
    cfg.site.azimuth_deg = 158;
    int32_t d0 = bal_series_civil_day(2016, 7, 4);
    char *load_csv = berlin_csv(bal_series_civil_day(2018, 6, 1), bal_series_civil_day(2018, 7, 31), flat_w);
    struct bal_series *load = parse(load_csv);
    free(load_csv);
    bal_tz_apply("America/Denver");
    for (int late = 0; late <= 1; late++) {
        char *csv = clearsky_csv(d0, d0 + 3, late * 3600000LL);
        struct bal_series *pv = parse(csv);
        free(csv);
        struct bal_replay_opts o = { .strategy = BAL_STRAT_IMMEDIATE };
        struct bal_replay_result *r;
        char err[256];
        assert_int_equal(bal_replay_run(&cfg, pv, load, &o, &r, err, sizeof err), 0);
        assert_int_equal(r->ndays, 3);
        assert_int_equal(r->shift_days, 3);
        assert_int_equal(r->shift_days_off, late ? 3 : 0);
        for (size_t k = 0; k < 3; k++) {
            assert_true(r->days[k].has_shift);
            assert_true(fabs(r->days[k].pv_shift_min - 60.0 * late) < 2);
        }
        assert_true(fabs(r->shift_median_min - 60.0 * late) < 2);
        bal_replay_result_free(r);
        bal_series_free(pv);
    }
    bal_series_free(load);
}

/* The independent check counts short runs (unless cut by the end) and short pauses. */
static void test_min_on_off_check(void **state)
{
    (void)state;
    struct bal_machine m[2] = { { .id = "a", .min_on_s = 600, .min_off_s = 300 }, { .id = "b" } };
    struct bal_replay_run runs[] = {
        { .machine = 0, .on_ms = 0, .off_ms = 600000 },              /* exactly min on: fine */
        { .machine = 1, .on_ms = 0, .off_ms = 1000 },                /* b has no minimum */
        { .machine = 0, .on_ms = 900000, .off_ms = 1400000 },        /* 300 s later: fine; 500 s on: short */
        { .machine = 0, .on_ms = 1600000, .off_ms = 1700000, .cut = true }, /* 200 s pause: short; cut run */
    };
    assert_int_equal(bal_replay_check_min_on_off(m, 2, runs, 4), 2);
    assert_int_equal(bal_replay_check_min_on_off(m, 2, runs, 2), 0);
}

static void test_p50_max(void **state)
{
    (void)state;
    double v[] = { 5, 1, 4, 2, 3 }, p50, max;
    bal_replay_p50_max(v, 5, &p50, &max);
    assert_float_equal(p50, 3, EPS);
    assert_float_equal(max, 5, EPS);
    bal_replay_p50_max(v, 4, &p50, &max);
    assert_float_equal(p50, 3, EPS); /* (2 + 4) / 2 */
    assert_float_equal(v[0], 5, EPS);
    bal_replay_p50_max(v, 0, &p50, &max);
    assert_float_equal(p50 + max, 0, EPS);
}

/* ---- prices and an external forecast ---------------------------------------------------------- */

static struct bal_replay_prices *prices(const char *text)
{
    char err[256] = "";
    struct bal_replay_prices *p = bal_replay_prices_parse(text, strlen(text), "p.csv", err, sizeof err);
    if (!p)
        fprintf(stderr, "prices: %s\n", err);
    assert_non_null(p);
    return p;
}

static double import_at(const struct bal_replay_prices *p, const char *iso, double *export_per_kwh)
{
    int64_t t;
    assert_int_equal(fg_parse_iso8601_ms(iso, &t), 0);
    double pi;
    bal_replay_prices_at(p, t, &pi, export_per_kwh);
    return pi;
}

static void test_prices_parse(void **state)
{
    (void)state;
    struct bal_replay_prices *p = prices("time,import_per_kwh,export_per_kwh\r\n"
                                         "2016-03-26 06:00:00+01:00,0.30,0.08\r\n\r\n"
                                         "2016-03-26T10:00Z,\"0.20\",0.05,extra\n"
                                         "2016-03-26 18:00:00+0100,-0.01,0\n");
    assert_int_equal(p->n, 3);
    assert_int_equal(p->t_ms[1], 1458986400000LL);
    double pe;
    assert_float_equal(import_at(p, "2016-03-25 00:00:00Z", &pe), 0.30, EPS); /* before the first row */
    assert_float_equal(pe, 0.08, EPS);
    assert_float_equal(import_at(p, "2016-03-26 09:59:59Z", &pe), 0.30, EPS);
    assert_float_equal(import_at(p, "2016-03-26 10:00:00Z", &pe), 0.20, EPS); /* from its time on */
    assert_float_equal(pe, 0.05, EPS);
    assert_float_equal(import_at(p, "2016-03-26 17:00:00Z", &pe), -0.01, EPS); /* 18:00+01:00 */
    assert_float_equal(import_at(p, "2030-01-01 00:00:00Z", &pe), -0.01, EPS);
    assert_float_equal(pe, 0, EPS);
    bal_replay_prices_free(p);
    bal_replay_prices_free(NULL);
    static const char *const bad[][2] = {
        { "t,i,e\n2016-03-26 06:00:00,0.3,0.1\n", "p.csv:2: time must be ISO 8601 with an offset, e.g. 2016-07-04 00:00:00-06:00" },
        { "2016-03-26 06:00Z,0.3\n", "p.csv:1: expected TIME,IMPORT_PER_KWH,EXPORT_PER_KWH" },
        { "2016-03-26 06:00Z,0.3,\n", "p.csv:1: export price must be a number of -1000..1000 per kWh" },
        { "2016-03-26 06:00Z,abc,0\n", "p.csv:1: import price must be a number of -1000..1000 per kWh" },
        { "2016-03-26 06:00Z,1e6,0\n", "p.csv:1: import price must be a number of -1000..1000 per kWh" },
        { "2016-03-26 06:00Z,1,0\n2016-03-26 07:00+01:00,1,0\n", "p.csv:2: time not after the row before" },
        { "time,import,export\n\n", "p.csv: no price rows" },
        { "time,price\n", "p.csv:1: expected TIME,IMPORT_PER_KWH,EXPORT_PER_KWH" },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char err[256] = "";
        assert_null(bal_replay_prices_parse(bad[k][0], strlen(bad[k][0]), "p.csv", err, sizeof err));
        assert_string_equal(err, bad[k][1]);
    }
    char err[256];
    assert_null(bal_replay_prices_load("/nonexistent/p.csv", err, sizeof err));
    assert_string_equal(err, "/nonexistent/p.csv: cannot read: No such file or directory");
}

static double zero_w(int64_t t_ms)
{
    (void)t_ms;
    return 0;
}

/* The test site's array: 5 kWp facing south at 30 degrees in Berlin. */
static const struct bal_array berlin_array = { 52.5, 13.4, 5, 30, 180 };

static double berlin_clearsky_w(int64_t t_ms)
{
    return bal_clearsky_w(&berlin_array, t_ms);
}

/* 4000 W from 16:00 to 18:00 local (samples at 16:00 .. 18:00), 0 otherwise: an afternoon sun. */
static double afternoon_w(int64_t t_ms)
{
    double m = minute_of_day_w(t_ms);
    return m >= 960 && m <= 1080 ? 4000 : 0;
}

/* A one-day PLAN replay of Berlin 2016-03-26 (24 h, base load 600 W) with the given PV, job window
 * and options; returns the result (the caller frees it). */
static struct bal_replay_result *plan_day(struct bal_config *cfg, double (*pv_value)(int64_t), struct bal_replay_opts *o)
{
    int32_t d0 = bal_series_civil_day(2016, 3, 26);
    char *csv = berlin_csv(bal_series_civil_day(2018, 3, 1), bal_series_civil_day(2018, 3, 31), flat_w);
    struct bal_series *load = parse(csv);
    free(csv);
    csv = series_csv(d0, d0 + 1, INT32_MIN, 0, 0, pv_value);
    struct bal_series *pv = parse(csv);
    free(csv);
    o->strategy = BAL_STRAT_PLAN;
    o->has_from = true;
    o->from_day = d0;
    o->ndays = 1;
    struct bal_replay_result *r = NULL;
    char err[256] = "";
    int rc = bal_replay_run(cfg, pv, load, o, &r, err, sizeof err);
    if (rc)
        fprintf(stderr, "replay: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(r->ndays, 1);
    assert_int_equal(r->nplans, 96);
    assert_int_equal(r->nruns, 1);
    assert_int_equal(r->total.deadline_misses, 0);
    bal_series_free(pv);
    bal_series_free(load);
    return r;
}

#define BERLIN_0326_0000_MS 1458946800000LL /* 2016-03-26 00:00 CET */
#define HOUR_MS 3600000LL

/* The array faces south and the day is clear (the real PV is the clear-sky model's): the built-in
 * forecast puts the heater's 2 h at midday. A forecast file that sees sun only from 16:00 to 18:00
 * moves the block there, although the clear-sky model would not. The file covers the day only: each planner call at slot
 * i (0..95) sees 144 slots, of which i + 48 lie after the file's end: sum 9168 fallback slots. */
static void test_replay_forecast_file(void **state)
{
    (void)state;
    bal_tz_apply("Europe/Berlin");
    struct bal_job_cfg job = test_job;
    job.earliest_min = 6 * 60;
    job.deadline_min = 20 * 60;
    struct bal_config cfg = test_config("Europe/Berlin");
    cfg.jobs = &job;
    cfg.site.pv_kwp = berlin_array.kwp;
    cfg.site.tilt_deg = berlin_array.tilt_deg;
    cfg.site.azimuth_deg = berlin_array.azimuth_deg;
    struct bal_replay_opts o = { 0 };
    struct bal_replay_result *r = plan_day(&cfg, berlin_clearsky_w, &o);
    assert_string_equal(r->forecast, "clear-sky");
    assert_int_equal(r->forecast_fallback_slots, 0);
    assert_int_equal(r->runs[0].on_ms, BERLIN_0326_0000_MS + 11 * HOUR_MS + 15 * 60000); /* 11:15-13:15 */
    bal_replay_result_free(r);

    int32_t d0 = bal_series_civil_day(2016, 3, 26);
    char *csv = series_csv(d0, d0 + 1, INT32_MIN, 0, 0, afternoon_w);
    struct bal_series *fc = parse(csv);
    free(csv);
    o = (struct bal_replay_opts){ .forecast = fc };
    r = plan_day(&cfg, berlin_clearsky_w, &o);
    assert_string_equal(r->forecast, "file");
    assert_int_equal(r->runs[0].on_ms, BERLIN_0326_0000_MS + 16 * HOUR_MS);
    assert_int_equal(r->runs[0].off_ms, BERLIN_0326_0000_MS + 18 * HOUR_MS);
    assert_int_equal(r->forecast_fallback_slots, 9168);
    assert_float_equal(r->total.cost, 0, EPS);
    assert_false(r->priced);
    bal_replay_result_free(r);

    /* the forecast is for the planner: with the oracle, or without a planner, it is refused */
    struct bal_series *pv = parse("t,v\n2016-03-26 00:00+01:00,0\n2016-03-27 00:00+01:00,0\n");
    char err[256];
    o = (struct bal_replay_opts){ .forecast = fc, .oracle = true };
    assert_int_equal(bal_replay_run(&cfg, pv, pv, &o, &r, err, sizeof err), -22);
    assert_string_equal(err, "a forecast file is for the plan strategy without the oracle");
    o = (struct bal_replay_opts){ .forecast = fc, .strategy = BAL_STRAT_SURPLUS };
    assert_int_equal(bal_replay_run(&cfg, pv, pv, &o, &r, err, sizeof err), -22);
    bal_series_free(pv);
    bal_series_free(fc);
}

/* No PV, no array: every slot imports the same, so without prices the heater starts at its earliest
 * (12:00, earliest completion breaks the tie); with a cheap night from 20:00 the least-cost plan
 * starts it at 20:00. Cost: 12000 Wh (600 W x 20 h) at 0.40 + 9400 Wh (600 W x 4 h + 7000) at 0.10. */
static void test_replay_prices_night(void **state)
{
    (void)state;
    bal_tz_apply("Europe/Berlin");
    struct bal_job_cfg job = test_job;
    job.earliest_min = 12 * 60;
    job.deadline_min = 23 * 60;
    struct bal_config cfg = test_config("Europe/Berlin");
    cfg.jobs = &job;
    struct bal_replay_opts o = { 0 };
    struct bal_replay_result *r = plan_day(&cfg, zero_w, &o);
    assert_string_equal(r->forecast, "persistence");
    assert_int_equal(r->runs[0].on_ms, BERLIN_0326_0000_MS + 12 * HOUR_MS);
    assert_false(r->priced);
    bal_replay_result_free(r);

    struct bal_replay_prices *p = prices("time,import,export\n"
                                         "2016-03-26 00:00:00+01:00,0.40,0.05\n"
                                         "2016-03-26 20:00:00+01:00,0.10,0.05\n"
                                         "2016-03-27 06:00:00+02:00,0.40,0.05\n");
    o = (struct bal_replay_opts){ .prices = p };
    r = plan_day(&cfg, zero_w, &o);
    assert_int_equal(r->runs[0].on_ms, BERLIN_0326_0000_MS + 20 * HOUR_MS);
    assert_int_equal(r->runs[0].off_ms, BERLIN_0326_0000_MS + 22 * HOUR_MS);
    assert_true(r->priced);
    assert_float_equal(r->total.import_wh, 21400, EPS);
    assert_float_equal(r->total.cost, 12 * 0.40 + 9.4 * 0.10, EPS);
    assert_float_equal(r->days[0].e.cost, r->total.cost, EPS);
    bal_replay_result_free(r);
    bal_replay_prices_free(p);
}

/* The IMMEDIATE day of check_day, priced by hand: 0.30/0.08 per kWh (also before the first row, at
 * 06:00) until 10:00, 0.20/0.05 until 18:00, 0.30/0.08 after.
 *   00-10: import 4650 (night) + 15 (ramp) + 1100 (heater 09-10) = 5765 Wh, export 240 + 2400 = 2640 Wh
 *   10-18: import 1100 (heater 10-11) + 15 (ramp) + 600 x 1.75 = 2165 Wh, export 12000 + 240 = 12240 Wh
 *   18-24: import 3600 Wh
 *   cost = 5.765 x 0.30 - 2.64 x 0.08 + 2.165 x 0.20 - 12.24 x 0.05 + 3.6 x 0.30 = 2.4193
 * The 23-hour day after it at 0.30/0.08: 10.93 x 0.30 - 14.88 x 0.08 = 2.0886. */
static void test_replay_cost_immediate(void **state)
{
    (void)state;
    struct bal_replay_prices *p = prices("time,import_per_kwh,export_per_kwh\n"
                                         "2016-03-26 06:00:00+01:00,0.30,0.08\n"
                                         "2016-03-26 10:00:00+01:00,0.20,0.05\n"
                                         "2016-03-26 18:00:00+01:00,0.30,0.08\n");
    struct fixture f;
    int32_t d0 = bal_series_civil_day(2016, 3, 26);
    run_fixture(&f, "Europe/Berlin", d0, d0 + 2, INT32_MIN, 0, 0, BAL_STRAT_IMMEDIATE, p);
    check_day(&f.r->days[0], 24, 7.75);
    assert_true(f.r->priced);
    assert_null(f.r->forecast);
    assert_float_equal(f.r->days[0].e.cost, 2.4193, EPS);
    assert_float_equal(f.r->days[1].e.cost, 2.0886, EPS);
    assert_float_equal(f.r->total.cost, 4.5079, EPS);
    struct bal_report_info in = { .pv = f.pv, .load = f.load, .prices = p, .prices_file = "p.csv",
                                  .strategy = BAL_STRAT_IMMEDIATE };
    char *text = bal_report_json(&f.cfg, f.r, &in);
    cJSON *o = cJSON_Parse(text);
    assert_float_equal(cJSON_GetObjectItem(o, "cost")->valuedouble, 4.5079, EPS);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "forecast")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "forecast_fallback_slots")));
    const cJSON *d0j = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "days"), 0);
    assert_float_equal(cJSON_GetObjectItem(d0j, "cost")->valuedouble, 2.4193, EPS);
    const cJSON *pin = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "inputs"), "prices");
    assert_string_equal(cJSON_GetObjectItem(pin, "file")->valuestring, "p.csv");
    assert_float_equal(cJSON_GetObjectItem(pin, "rows")->valuedouble, 3, EPS);
    cJSON_Delete(o);
    free(text);
    free_fixture(&f);
    bal_replay_prices_free(p);
}

/* ---- the report --------------------------------------------------------------------------------- */

static double num(const cJSON *o, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsNumber(x));
    return x->valuedouble;
}

static void test_report_json(void **state)
{
    (void)state;
    struct fixture f;
    int32_t d0 = bal_series_civil_day(2016, 3, 26);
    run_fixture(&f, "Europe/Berlin", d0, d0 + 2, INT32_MIN, 0, 0, BAL_STRAT_IMMEDIATE, NULL);
    struct bal_report_info in = { .pv_file = "data/pv.csv", .load_file = "data/LP.csv", .pv = f.pv,
                                  .load = f.load, .pv_scale = 1, .load_scale = 40, .strategy = BAL_STRAT_IMMEDIATE };
    char *text = bal_report_json(&f.cfg, f.r, &in);
    cJSON *o = cJSON_Parse(text);
    assert_non_null(o);
    static const char *const keys[] = { "pv_kwh", "load_kwh", "import_kwh", "export_kwh", "self_consumption_pct",
        "self_sufficiency_pct", "peak_import_w", "jobs_total", "jobs_on_time", "deadline_misses", "starts",
        "min_on_off_violations", "plan_ms_p50", "plan_ms_max", "machine_kwh", "clock_faults", NULL };
    for (int i = 0; keys[i]; i++)
        assert_non_null(cJSON_GetObjectItemCaseSensitive(o, keys[i]));
    assert_float_equal(num(o, "pv_kwh"), 49.5, EPS);
    assert_float_equal(num(o, "import_kwh"), 22.46, EPS);
    assert_float_equal(num(o, "export_kwh"), 29.76, EPS);
    assert_float_equal(num(o, "machine_kwh"), 14, EPS);
    assert_float_equal(num(o, "self_consumption_pct"), 39.88, EPS);  /* 19740 / 49500 */
    assert_float_equal(num(o, "self_sufficiency_pct"), 46.78, EPS);  /* 19740 / 42200 */
    assert_float_equal(num(o, "peak_import_w"), 1100, EPS);
    assert_float_equal(num(o, "starts"), 2, EPS);
    assert_string_equal(cJSON_GetObjectItem(o, "strategy")->valuestring, "immediate");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "oracle")));
    const cJSON *gaps = cJSON_GetObjectItem(o, "gaps");
    assert_float_equal(num(gaps, "count"), 0, EPS);
    assert_float_equal(num(gaps, "minutes"), 0, EPS);
    const char *ls = cJSON_GetObjectItem(o, "load_source")->valuestring;
    assert_non_null(strstr(ls, "LP.csv (column \"electrical load [W]\", x40)"));
    assert_non_null(strstr(ls, "(2016-03-26 <- 2018-03-24)"));
    const cJSON *days = cJSON_GetObjectItem(o, "days");
    assert_int_equal(cJSON_GetArraySize(days), 2);
    const cJSON *d1 = cJSON_GetArrayItem(days, 1);
    assert_string_equal(cJSON_GetObjectItem(d1, "date")->valuestring, "2016-03-27");
    assert_string_equal(cJSON_GetObjectItem(d1, "load_date")->valuestring, "2018-03-25");
    assert_float_equal(num(d1, "hours"), 23, EPS);
    assert_float_equal(num(d1, "import_kwh"), 10.93, EPS);
    assert_float_equal(num(d1, "jobs_on_time"), 1, EPS);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "jobs_late")), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "cost")));  /* no prices */
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(d1, "cost")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "forecast"))); /* immediate: no planner */
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "inputs"), "prices"));
    cJSON_Delete(o);
    free(text);
    free_fixture(&f);
}

static void test_report_svg(void **state)
{
    (void)state;
    struct fixture f;
    int32_t d0 = bal_series_civil_day(2016, 3, 26);
    run_fixture(&f, "Europe/Berlin", d0, d0 + 2, d0, 720, 780, BAL_STRAT_IMMEDIATE, NULL);
    struct bal_report_info in = { .pv = f.pv, .load = f.load, .strategy = BAL_STRAT_IMMEDIATE };
    char *buf = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&buf, &len);
    assert_int_equal(bal_report_svg(mf, &f.cfg, f.r, &in), 0);
    fclose(mf);
    assert_memory_equal(buf, "<svg ", 5);
    assert_non_null(strstr(buf, "</svg>\n"));
    size_t runs = 0, pv_areas = 0;
    for (const char *p = buf; (p = strstr(p, "class=\"run\"/>")); p++)
        runs++;
    for (const char *p = buf; (p = strstr(p, "class=\"pv\" points")); p++)
        pv_areas++;
    assert_int_equal(runs, 2 + 1);      /* a bar per day, and the legend's */
    assert_int_equal(pv_areas, 2 + 1);  /* the gap splits the first day's PV area */
    size_t gaps = 0;
    for (const char *p = buf; (p = strstr(p, "class=\"gap\"/>")); p++)
        gaps++;
    assert_int_equal(gaps, 1 + 1);      /* the gap's band, and the legend's */
    assert_non_null(strstr(buf, ">heater</text>"));
    assert_non_null(strstr(buf, ">2016-03-27</text>"));
    free(buf);
    free_fixture(&f);
}

static void test_strategy_names(void **state)
{
    (void)state;
    enum bal_strategy s;
    assert_int_equal(bal_report_strategy_parse("surplus", &s), 0);
    assert_int_equal(s, BAL_STRAT_SURPLUS);
    assert_int_equal(bal_report_strategy_parse("oracle", &s), -22);
    assert_string_equal(bal_report_strategy_name(BAL_STRAT_IMMEDIATE), "immediate");
    assert_string_equal(bal_report_strategy_name((enum bal_strategy)7), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_civil),
        cmocka_unit_test(test_series_basic),
        cmocka_unit_test(test_series_errors),
        cmocka_unit_test(test_series_gaps),
        cmocka_unit_test(test_series_clock_faults),
        cmocka_unit_test(test_series_dst_shifted_fixed_offset),
        cmocka_unit_test(test_series_dst_local_no_offset),
        cmocka_unit_test(test_series_wall_day_dst),
        cmocka_unit_test(test_series_pair_day),
        cmocka_unit_test(test_replay_immediate_berlin),
        cmocka_unit_test(test_replay_gap_invents_nothing),
        cmocka_unit_test(test_replay_berlin_25h),
        cmocka_unit_test(test_replay_denver_25h),
        cmocka_unit_test(test_replay_partial_minute),
        cmocka_unit_test(test_replay_errors),
        cmocka_unit_test(test_replay_pv_clock_check),
        cmocka_unit_test(test_min_on_off_check),
        cmocka_unit_test(test_p50_max),
        cmocka_unit_test(test_prices_parse),
        cmocka_unit_test(test_replay_forecast_file),
        cmocka_unit_test(test_replay_prices_night),
        cmocka_unit_test(test_replay_cost_immediate),
        cmocka_unit_test(test_report_json),
        cmocka_unit_test(test_report_svg),
        cmocka_unit_test(test_strategy_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
