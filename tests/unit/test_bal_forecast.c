/* Unit tests of bal_forecast: solar position against independent references, clear-sky power of the
 * NREL SERF East array, the measured/clear-sky ratio, the base-load profile with its fallbacks and
 * DST days, and a sanity check against the real SERF East data in ../shared/data. */
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

#include "bal_forecast.h"
#include "fg_clock.h"

#define GOLDEN_LAT 39.742
#define GOLDEN_LON -105.173
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

/* The SERF East roof array (../shared/data/README.md). */
static const struct bal_array serf = { GOLDEN_LAT, GOLDEN_LON, 5.4, 45.0, 158.0 };

static int64_t iso(const char *s)
{
    int64_t ms = 0;
    assert_int_equal(fg_parse_iso8601_ms(s, &ms), 0);
    return ms;
}

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static double zenith_at(double lat, double lon, int64_t t_ms)
{
    double z, az;
    bal_sun_position(lat, lon, t_ms, &z, &az);
    return z;
}

/* The instant in [lo, hi] where the zenith crosses 90.833 deg (NOAA's sunrise/sunset: the sun's
 * centre 0.833 deg below the horizon, for refraction and the solar disk), by bisection. */
static int64_t horizon_crossing(int64_t lo, int64_t hi)
{
    int rising = zenith_at(GOLDEN_LAT, GOLDEN_LON, lo) > 90.833;
    while (hi - lo > 1000) {
        int64_t mid = lo + (hi - lo) / 2;
        int above = zenith_at(GOLDEN_LAT, GOLDEN_LON, mid) < 90.833;
        if (above == rising)
            hi = mid;
        else
            lo = mid;
    }
    return lo;
}

/* Reference values. (1) NREL SPA's published example (Reda & Andreas, Solar Energy 76(5), 2004,
 * table A4.1): 2003-10-17 12:30:30 -07:00, lat 39.742476, lon -105.1786: topocentric zenith
 * 50.11162 deg with refraction at 820 mbar / 11 C (0.0163 deg by SPA's own refraction formula), so
 * 50.1279 deg geometric; azimuth 194.34024 deg. (2) Golden, 2016-07-15, computed independently with
 * PyEphem 4.1.4 (libastro, VSOP87; Debian python3-ephem), pressure 0 (no refraction): zenith
 * 23.242 / azimuth 137.352 at 12:00 MDT; solar noon 13:06:44 MDT with zenith 18.387 =
 * lat 39.742 - declination 21.355; sun's centre at 90.833 deg: sunrise 05:45:41 MDT, sunset
 * 20:27:22 MDT (NOAA's calculator convention). */
static void test_sun_position_references(void **state)
{
    (void)state;
    double z, az;
    bal_sun_position(39.742476, -105.1786, iso("2003-10-17T12:30:30-07:00"), &z, &az);
    assert_true(fabs(z - 50.1279) < 0.02);
    assert_true(fabs(az - 194.34024) < 0.02);

    bal_sun_position(GOLDEN_LAT, GOLDEN_LON, iso("2016-07-15T12:00:00-06:00"), &z, &az);
    assert_true(fabs(z - 23.242) < 0.05);
    assert_true(fabs(az - 137.352) < 0.05);
    bal_sun_position(GOLDEN_LAT, GOLDEN_LON, iso("2016-07-15T09:00:00-06:00"), &z, &az);
    assert_true(fabs(z - 55.058) < 0.05); /* PyEphem */
    assert_true(fabs(az - 90.144) < 0.05);
    bal_sun_position(GOLDEN_LAT, GOLDEN_LON, iso("2016-07-15T17:30:00-06:00"), &z, &az);
    assert_true(fabs(z - 58.268) < 0.05); /* PyEphem */
    assert_true(fabs(az - 272.400) < 0.05);
    /* Southern hemisphere, summer noon: the sun stands north (PyEphem: 11.827 / 2.602). */
    bal_sun_position(-33.87, 151.21, iso("2016-01-10T02:00:00Z"), &z, &az);
    assert_true(fabs(z - 11.827) < 0.05);
    assert_true(fabs(az - 2.602) < 0.05);
    /* Berlin on the spring-forward day (PyEphem: 49.701 / 176.188). */
    bal_sun_position(52.5, 13.4, iso("2016-03-27T11:00:00Z"), &z, &az);
    assert_true(fabs(z - 49.701) < 0.05);
    assert_true(fabs(az - 176.188) < 0.05);
    /* Lower culmination (PyEphem 118.824 = 180 - lat 39.742 - declination 21.434). */
    bal_sun_position(GOLDEN_LAT, GOLDEN_LON, iso("2016-07-15T01:06:44-06:00"), &z, &az);
    assert_true(fabs(z - 118.824) < 0.05);
}

static void test_sun_noon_rise_set(void **state)
{
    (void)state;
    /* Solar noon: the least zenith, searched every 10 s between 12:00 and 14:00 MDT. */
    int64_t t0 = iso("2016-07-15T12:00:00-06:00"), best_t = t0;
    double best_z = 180;
    for (int64_t t = t0; t <= t0 + 2 * HOUR_MS; t += 10000) {
        double z = zenith_at(GOLDEN_LAT, GOLDEN_LON, t);
        if (z < best_z) {
            best_z = z;
            best_t = t;
        }
    }
    assert_true(llabs(best_t - iso("2016-07-15T13:06:44-06:00")) <= 30000);
    assert_true(fabs(best_z - 18.387) < 0.05);

    int64_t rise = horizon_crossing(iso("2016-07-15T04:00:00-06:00"), best_t);
    int64_t set = horizon_crossing(best_t, iso("2016-07-15T22:00:00-06:00"));
    assert_true(llabs(rise - iso("2016-07-15T05:45:41-06:00")) <= 2 * MIN_MS);
    assert_true(llabs(set - iso("2016-07-15T20:27:22-06:00")) <= 2 * MIN_MS);
}

/* Hand calculation at solar noon, 2016-07-15 13:06:44 MDT (zenith 18.388, azimuth 179.45, earth-sun
 * distance 1.0166 AU): Haurwitz GHI = 1098 x 0.94894 x exp(-0.057 / 0.94894) = 981.2 W/m2;
 * kt = 981.2 / (1367 / 1.0166^2 x 0.94894) = 0.7817, Erbs diffuse fraction 0.1658, DHI 162.7,
 * DNI (981.2 - 162.7) / 0.94894 = 862.5; cos AOI = 0.94894 cos 45 + sin 18.388 sin 45 cos 21.45
 * = 0.8786; POA = 757.8 + 162.7 x (1 + cos 45) / 2 + 981.2 x 0.2 x (1 - cos 45) / 2
 * = 757.8 + 138.9 + 28.7 = 925.4 W/m2; x 5.4 x 0.85 = 4248 W. */
static void test_clearsky_power(void **state)
{
    (void)state;
    double noon_w = bal_clearsky_w(&serf, iso("2016-07-15T13:06:44-06:00"));
    assert_true(fabs(noon_w - 4248) < 15);
    assert_true(noon_w < serf.kwp * 1000 * BAL_PV_DERATE); /* never above nameplate x derate here */

    assert_true(bal_clearsky_w(&serf, iso("2016-07-15T00:00:00-06:00")) == 0.0);
    assert_true(bal_clearsky_w(&serf, iso("2016-07-15T05:30:00-06:00")) == 0.0); /* before sunrise */
    assert_true(bal_clearsky_w(&serf, iso("2016-07-15T21:00:00-06:00")) == 0.0);
    assert_true(bal_clearsky_w(&serf, iso("2016-07-15T06:30:00-06:00")) > 0.0);
    assert_true(bal_clearsky_w(NULL, iso("2016-07-15T13:00:00-06:00")) == 0.0);
    struct bal_array none = serf;
    none.kwp = 0;
    assert_true(bal_clearsky_w(&none, iso("2016-07-15T13:00:00-06:00")) == 0.0);

    /* An east-facing array leads a west-facing one in the morning and trails it in the evening. */
    struct bal_array east = { GOLDEN_LAT, GOLDEN_LON, 1.0, 30, 90 }, west = { GOLDEN_LAT, GOLDEN_LON, 1.0, 30, 270 };
    int64_t morning = iso("2016-07-15T09:00:00-06:00"), evening = iso("2016-07-15T17:00:00-06:00");
    assert_true(bal_clearsky_w(&east, morning) > 1.5 * bal_clearsky_w(&west, morning));
    assert_true(bal_clearsky_w(&west, evening) > 1.5 * bal_clearsky_w(&east, evening));
}

static void test_clearsky_slots_and_day(void **state)
{
    (void)state;
    int64_t s = iso("2016-07-15T10:00:00-06:00");
    double m15 = bal_clearsky_slot_w(&serf, s, 15);
    double by_hand = (bal_clearsky_w(&serf, s + 150000) + bal_clearsky_w(&serf, s + 450000) +
                      bal_clearsky_w(&serf, s + 750000)) / 3;
    assert_true(fabs(m15 - by_hand) < 1e-9);
    double quarters = 0;
    for (int i = 0; i < 4; i++)
        quarters += bal_clearsky_slot_w(&serf, s + i * 15 * MIN_MS, 15) / 4;
    assert_true(fabs(bal_clearsky_slot_w(&serf, s, 60) - quarters) < 1e-9);
    assert_true(bal_clearsky_slot_w(&serf, s, 0) == 0.0);
    assert_true(bal_clearsky_slot_w(&serf, iso("2016-07-15T02:00:00-06:00"), 60) == 0.0);

    /* Daily clear-sky energy of 2016-07-15 within +-25 % of 39.5 kWh, the best measured day. */
    int64_t day0 = iso("2016-07-15T00:00:00-07:00");
    double wh = 0;
    for (int i = 0; i < 96; i++)
        wh += bal_clearsky_slot_w(&serf, day0 + i * 15 * MIN_MS, 15) * 0.25;
    assert_true(wh > 39500 * 0.75 && wh < 39500 * 1.25);
}

/* Observes [day0, day0 + hours) in 5-min steps at frac x the clear-sky power at each step's middle. */
static void observe_day(struct bal_pvfc *f, int64_t day0, int hours, double frac)
{
    for (int64_t t = day0; t < day0 + hours * HOUR_MS; t += 5 * MIN_MS)
        bal_pvfc_observe(f, &serf, t, frac * bal_clearsky_w(&serf, t + 150000), 300);
}

static void test_pvfc_ratio(void **state)
{
    (void)state;
    static struct bal_pvfc f;
    int64_t d1 = iso("2016-07-15T00:00:00-06:00"), d2 = d1 + DAY_MS, d3 = d2 + DAY_MS;
    bal_pvfc_init(&f, 0);
    assert_int_equal(f.days, 3);
    assert_true(bal_pvfc_ratio(&f) == 1.0);
    observe_day(&f, d1, 4, 0.5); /* midnight to 04:00: no daylight */
    assert_true(bal_pvfc_ratio(&f) == 1.0);
    observe_day(&f, d1, 24, 0.5); /* a cloudy day at half the clear sky */
    assert_true(fabs(bal_pvfc_ratio(&f) - 0.5) < 1e-9);

    /* One-day window: yesterday's 100 % falls out entirely. */
    bal_pvfc_init(&f, 1);
    observe_day(&f, d1, 24, 1.0);
    assert_true(fabs(bal_pvfc_ratio(&f) - 1.0) < 1e-9);
    observe_day(&f, d2, 24, 0.5);
    assert_true(fabs(bal_pvfc_ratio(&f) - 0.5) < 1e-9);
    /* Two-day window: both days count by energy; consecutive clear days differ by < 1 %. */
    bal_pvfc_init(&f, 2);
    observe_day(&f, d1, 24, 1.0);
    observe_day(&f, d2, 24, 0.5);
    assert_true(fabs(bal_pvfc_ratio(&f) - 0.75) < 0.005);
    /* The clock goes back beyond the window: the old future is dropped. */
    observe_day(&f, d1 - 10 * DAY_MS, 24, 0.8);
    assert_true(fabs(bal_pvfc_ratio(&f) - 0.8) < 1e-9);

    /* Clamps: 0.05 .. 1.5; a negative reading (night tare) counts as 0. */
    bal_pvfc_init(&f, 3);
    observe_day(&f, d3, 24, 3.0);
    assert_true(bal_pvfc_ratio(&f) == 1.5);
    bal_pvfc_init(&f, 3);
    observe_day(&f, d3, 24, -1.0);
    assert_true(bal_pvfc_ratio(&f) == 0.05);
    observe_day(&f, d3, 24, 1.0); /* the same day again at 100 %: 0 + C over 2 C */
    assert_true(fabs(bal_pvfc_ratio(&f) - 0.5) < 1e-9);
    bal_pvfc_init(&f, 99);
    assert_int_equal(f.days, BAL_PVFC_MAX_DAYS);

    /* Ignored readings leave f as it was. */
    bal_pvfc_init(&f, 3);
    bal_pvfc_observe(&f, &serf, d1 + 12 * HOUR_MS, NAN, 300);
    bal_pvfc_observe(&f, &serf, d1 + 12 * HOUR_MS, 1000, 0);
    bal_pvfc_observe(&f, NULL, d1 + 12 * HOUR_MS, 1000, 300);
    assert_true(f.last_end_ms == INT64_MIN);
    assert_true(bal_pvfc_ratio(&f) == 1.0);
}

/* 15-min readings (as in the recorded data): each is cut into 5-min bins. */
static void test_pvfc_15min_and_forecast(void **state)
{
    (void)state;
    static struct bal_pvfc f;
    int64_t d1 = iso("2016-07-15T00:00:00-06:00");
    bal_pvfc_init(&f, 3);
    for (int64_t t = d1; t < d1 + DAY_MS; t += 15 * MIN_MS)
        bal_pvfc_observe(&f, &serf, t, 0.5 * bal_clearsky_slot_w(&serf, t, 15), 900);
    assert_true(fabs(bal_pvfc_ratio(&f) - 0.5) < 0.005);

    double out[4];
    int64_t next = d1 + DAY_MS + 12 * HOUR_MS;
    bal_forecast_pv(&serf, &f, next, 30, 4, out);
    double r = bal_pvfc_ratio(&f);
    for (int i = 0; i < 4; i++)
        assert_true(out[i] == bal_clearsky_slot_w(&serf, next + i * 30 * MIN_MS, 30) * r);
    bal_forecast_pv(&serf, NULL, next, 30, 4, out);
    assert_true(out[1] == bal_clearsky_slot_w(&serf, next + 30 * MIN_MS, 30));
    bal_forecast_pv(&serf, NULL, d1, 60, 4, out); /* 00:00-04:00 MDT: night */
    for (int i = 0; i < 4; i++)
        assert_true(out[i] == 0.0);
}

static double fc1(const struct bal_loadprof *p, const char *when, int slot_min)
{
    double v = -1;
    bal_forecast_load(p, iso(when), slot_min, 1, &v);
    return v;
}

static void test_load_fallbacks(void **state)
{
    (void)state;
    static struct bal_loadprof p;
    set_tz("Europe/Berlin");
    bal_loadprof_init(&p);
    assert_true(fc1(&p, "2016-07-25T08:00:00+02:00", 15) == 0.0); /* nothing known */
    bal_loadprof_observe(&p, iso("2016-07-18T08:00:00+02:00"), 100, 300); /* Monday */
    bal_loadprof_observe(&p, iso("2016-07-19T08:00:00+02:00"), 200, 300); /* Tuesday */
    bal_loadprof_observe(&p, iso("2016-07-20T12:00:00+02:00"), 600, 300); /* Wednesday */
    assert_true(fc1(&p, "2016-07-25T08:00:00+02:00", 5) == 100.0); /* same weekday and bin */
    assert_true(fc1(&p, "2016-07-26T08:00:00+02:00", 5) == 200.0);
    assert_true(fc1(&p, "2016-07-28T08:00:00+02:00", 5) == 150.0); /* Thursday: the bin over all days */
    assert_true(fc1(&p, "2016-07-28T10:00:00+02:00", 5) == 300.0); /* nothing at 10:00: overall mean */
    /* A 15-min slot 07:55-08:10 on Thursday: overall 300, bin 150, overall 300. */
    assert_true(fc1(&p, "2016-07-28T07:55:00+02:00", 15) == 250.0);

    /* A week later: the first week weighs 0.75. Monday 08:00: (0.75 x 100 + 400) / 1.75; the 08:00
     * bin: (0.75 x (100 + 200) + 400) / (0.75 x 2 + 1) = 250; overall (0.75 x 900 + 400) / 3.25. */
    bal_loadprof_observe(&p, iso("2016-07-25T08:00:00+02:00"), 400, 300);
    assert_true(fabs(fc1(&p, "2016-08-01T08:00:00+02:00", 5) - 475.0 / 1.75) < 1e-9);
    assert_true(fabs(fc1(&p, "2016-08-04T08:00:00+02:00", 5) - 250.0) < 1e-9);
    assert_true(fabs(fc1(&p, "2016-08-04T10:00:00+02:00", 5) - 1075.0 / 3.25) < 1e-9);
    /* A reading from an older week counts 0.75 per week relative to the newest. */
    bal_loadprof_observe(&p, iso("2016-07-11T09:00:00+02:00"), 800, 300);
    bal_loadprof_observe(&p, iso("2016-07-25T09:00:00+02:00"), 100, 300);
    assert_true(fabs(fc1(&p, "2016-08-01T09:00:00+02:00", 5) - (0.5625 * 800 + 100) / 1.5625) < 1e-9);
    bal_loadprof_observe(&p, iso("2016-07-25T10:00:00+02:00"), 100, 300); /* the same, newest first */
    bal_loadprof_observe(&p, iso("2016-07-11T10:00:00+02:00"), 800, 300);
    assert_true(fabs(fc1(&p, "2016-08-01T10:00:00+02:00", 5) - (0.5625 * 800 + 100) / 1.5625) < 1e-9);

    /* Means are weighted by duration: 60 s at 1000 W and 240 s at 0 W in one bin. */
    bal_loadprof_init(&p);
    bal_loadprof_observe(&p, iso("2016-07-18T08:00:00+02:00"), 1000, 60);
    bal_loadprof_observe(&p, iso("2016-07-18T08:01:00+02:00"), 0, 240);
    assert_true(fabs(fc1(&p, "2016-07-25T08:00:00+02:00", 5) - 200.0) < 1e-9);
    /* Ignored: bad steps, non-finite loads. */
    bal_loadprof_observe(&p, iso("2016-07-18T09:00:00+02:00"), 1000, 0);
    bal_loadprof_observe(&p, iso("2016-07-18T09:00:00+02:00"), NAN, 300);
    bal_loadprof_observe(&p, iso("2016-07-18T09:00:00+02:00"), 1000, 86401);
    assert_true(fabs(fc1(&p, "2016-07-25T09:00:00+02:00", 5) - 200.0) < 1e-9); /* overall mean unchanged */
    double z[2] = { -1, -1 };
    bal_forecast_load(&p, iso("2016-07-25T08:00:00+02:00"), 0, 2, z);
    assert_true(z[0] == 0.0 && z[1] == 0.0);
}

/* Observes the local day starting at day0 until the next local midnight in 5-min steps, at
 * (local hour) x per_hour W. Returns the number of hours the day had. */
static int observe_local_day(struct bal_loadprof *p, int64_t day0, int64_t next0, double per_hour)
{
    for (int64_t t = day0; t < next0; t += 5 * MIN_MS) {
        time_t s = (time_t)(t / 1000);
        struct tm tm;
        localtime_r(&s, &tm);
        bal_loadprof_observe(p, t, tm.tm_hour * per_hour, 300);
    }
    return (int)((next0 - day0) / HOUR_MS);
}

static void test_load_dst_berlin(void **state)
{
    (void)state;
    static struct bal_loadprof p;
    double out[25];
    set_tz("Europe/Berlin");

    /* Observed at 08:00 CEST on a summer Monday, forecast at 08:00 CET on a winter Monday. */
    bal_loadprof_init(&p);
    observe_local_day(&p, iso("2016-07-18T00:00:00+02:00"), iso("2016-07-19T00:00:00+02:00"), 100);
    assert_true(fc1(&p, "2016-11-21T08:00:00+01:00", 60) == 800.0);
    assert_true(fc1(&p, "2016-11-21T07:00:00+01:00", 60) == 700.0);

    /* Fall back, Sunday 2016-10-30 has 25 h; 02:00-03:00 is fed twice, both times as hour 2. */
    bal_loadprof_init(&p);
    assert_int_equal(observe_local_day(&p, iso("2016-10-30T00:00:00+02:00"), iso("2016-10-31T00:00:00+01:00"), 10), 25);
    bal_forecast_load(&p, iso("2016-11-06T00:00:00+01:00"), 60, 24, out);
    for (int h = 0; h < 24; h++)
        assert_true(out[h] == h * 10.0);

    /* Spring forward, Sunday 2016-03-27 has 23 h: forecast it hour by hour from a normal Sunday;
     * the slot after 01:00 is 03:00. */
    bal_loadprof_init(&p);
    observe_local_day(&p, iso("2016-03-20T00:00:00+01:00"), iso("2016-03-21T00:00:00+01:00"), 10);
    bal_forecast_load(&p, iso("2016-03-27T00:00:00+01:00"), 60, 23, out);
    for (int i = 0; i < 23; i++)
        assert_true(out[i] == (i < 2 ? i : i + 1) * 10.0);

    /* Observing the 23-h day itself leaves the 02:xx bins empty: they fall back to the overall mean,
     * (0 + 10 + 30 + ... + 230) / 23 = 2740 / 23. */
    bal_loadprof_init(&p);
    assert_int_equal(observe_local_day(&p, iso("2016-03-27T00:00:00+01:00"), iso("2016-03-28T00:00:00+02:00"), 10), 23);
    assert_true(fabs(fc1(&p, "2016-04-03T02:00:00+02:00", 60) - 2740.0 / 23) < 1e-9);
    assert_true(fc1(&p, "2016-04-03T03:00:00+02:00", 60) == 30.0);
}

static void test_load_dst_denver(void **state)
{
    (void)state;
    static struct bal_loadprof p;
    double out[24];
    set_tz("America/Denver");
    /* A winter Monday (MST) forecasts the Monday after the spring change (MDT) by local hour. */
    bal_loadprof_init(&p);
    observe_local_day(&p, iso("2016-03-07T00:00:00-07:00"), iso("2016-03-08T00:00:00-07:00"), 100);
    bal_forecast_load(&p, iso("2016-03-14T00:00:00-06:00"), 60, 24, out);
    for (int h = 0; h < 24; h++)
        assert_true(out[h] == h * 100.0);
    /* Fall back, Sunday 2016-11-06 has 25 h: the next Sunday again hour by hour. */
    bal_loadprof_init(&p);
    assert_int_equal(observe_local_day(&p, iso("2016-11-06T00:00:00-06:00"), iso("2016-11-07T00:00:00-07:00"), 10), 25);
    bal_forecast_load(&p, iso("2016-11-13T00:00:00-07:00"), 60, 24, out);
    for (int h = 0; h < 24; h++)
        assert_true(out[h] == h * 10.0);
}

/* ---- the real data ---- */

#define SERF_ROWS 10000
#define SERF_DAYS 104
struct serf_data {
    int64_t t_ms[SERF_ROWS];
    double power_w[SERF_ROWS];
    size_t n;
};

static int serf_load(struct serf_data *d)
{
    const char *dir = getenv("FG_SHARED_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/pv-nrel-serf-east/serf_east_15min_ac_power.csv", dir ? dir : "../shared/data");
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        print_error("cannot open %s (run from the project root, or set FG_SHARED_DATA)\n", path);
        return -1;
    }
    char line[128];
    d->n = 0;
    while (fgets(line, sizeof line, fp) != NULL && d->n < SERF_ROWS) {
        char *comma = strchr(line, ',');
        if (comma == NULL)
            continue;
        *comma = '\0';
        char *end;
        double w = strtod(comma + 1, &end);
        if (end == comma + 1 || fg_parse_iso8601_ms(line, &d->t_ms[d->n]) != 0)
            continue; /* the header */
        d->power_w[d->n++] = w;
    }
    fclose(fp);
    return 0;
}

/* The model against 104 measured days: the best day's energy, the hour of the peak, and that the
 * measured ratio improves a next-day forecast over the bare clear sky. */
static void test_real_data_serf_east(void **state)
{
    (void)state;
    static struct serf_data d;
    static struct bal_pvfc f;
    assert_int_equal(serf_load(&d), 0);
    assert_int_equal(d.n, SERF_ROWS);
    assert_true(d.t_ms[0] == iso("2016-07-01T00:00:00-07:00"));

    double meas_day[SERF_DAYS] = { 0 }, clear_day[SERF_DAYS] = { 0 }, fc_day[SERF_DAYS] = { 0 };
    bal_pvfc_init(&f, 3);
    for (size_t i = 0; i < d.n; i++) {
        size_t day = i / 96; /* fixed UTC-07:00, no gaps: 96 rows a day from midnight */
        if (day >= SERF_DAYS) { /* the last 16 rows: a part day */
            bal_pvfc_observe(&f, &serf, d.t_ms[i], d.power_w[i], 900);
            continue;
        }
        if (i % 96 == 0)
            fc_day[day] = bal_pvfc_ratio(&f);
        double clear_w = bal_clearsky_slot_w(&serf, d.t_ms[i], 15);
        meas_day[day] += fmax(d.power_w[i], 0) * 0.25;
        clear_day[day] += clear_w * 0.25;
        bal_pvfc_observe(&f, &serf, d.t_ms[i], d.power_w[i], 900);
    }
    /* The best day, 2016-10-04 (day 95): 39.5 kWh measured; the clear sky within 25 %. */
    size_t best = 0;
    for (size_t i = 0; i < SERF_DAYS; i++)
        if (meas_day[i] > meas_day[best])
            best = i;
    assert_int_equal(best, 95);
    assert_true(fabs(meas_day[best] - 39523) < 1);
    assert_true(fabs(clear_day[best] - meas_day[best]) < 0.25 * meas_day[best]);

    /* On that clear day the measured and the modelled peak fall in the same hour. */
    size_t m_peak = best * 96, c_peak = best * 96;
    for (size_t i = best * 96; i < best * 96 + 96; i++) {
        if (d.power_w[i] > d.power_w[m_peak])
            m_peak = i;
        if (bal_clearsky_slot_w(&serf, d.t_ms[i], 15) > bal_clearsky_slot_w(&serf, d.t_ms[c_peak], 15))
            c_peak = i;
    }
    assert_true(llabs(d.t_ms[m_peak] - d.t_ms[c_peak]) <= HOUR_MS);

    /* The shape on that day: 15-min measured against modelled power, correlation > 0.97. */
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (size_t i = best * 96; i < best * 96 + 96; i++) {
        double x = bal_clearsky_slot_w(&serf, d.t_ms[i], 15), y = fmax(d.power_w[i], 0);
        sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
    }
    double corr = (96 * sxy - sx * sy) / sqrt((96 * sxx - sx * sx) * (96 * syy - sy * sy));
    assert_true(corr > 0.97);

    /* The clear sky is an envelope: no day beats it by more than 35 %. Scaled by the ratio known at
     * each midnight, the forecast's total over the days is closer to the measured total (the bare
     * clear sky overshoots it, as clouds only take away). */
    double tot_meas = 0, tot_clear = 0, tot_fc = 0;
    for (size_t i = 0; i < SERF_DAYS; i++) {
        assert_true(meas_day[i] < 1.35 * clear_day[i]);
        tot_meas += meas_day[i];
        tot_clear += clear_day[i];
        tot_fc += clear_day[i] * fc_day[i];
    }
    assert_true(tot_clear > tot_meas);
    assert_true(fabs(tot_fc - tot_meas) < 0.5 * fabs(tot_clear - tot_meas));
    double r = bal_pvfc_ratio(&f);
    assert_true(r > 0.5 && r < 1.5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sun_position_references),
        cmocka_unit_test(test_sun_noon_rise_set),
        cmocka_unit_test(test_clearsky_power),
        cmocka_unit_test(test_clearsky_slots_and_day),
        cmocka_unit_test(test_pvfc_ratio),
        cmocka_unit_test(test_pvfc_15min_and_forecast),
        cmocka_unit_test(test_load_fallbacks),
        cmocka_unit_test(test_load_dst_berlin),
        cmocka_unit_test(test_load_dst_denver),
        cmocka_unit_test(test_real_data_serf_east),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
