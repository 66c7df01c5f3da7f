/* Unit tests of fabgrid-sim's pure core: register images (SunSpec 1/103/160/203, SDM630/SDM120,
 * relay), CSV interpolation and wrap-around (sim_series), energy integration and machines. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fg_clock.h"
#include "../../sim/sim_model.h"

#define HOUR_MS 3600000LL

/* cmocka 1.1's assert_float_equal compares floats; energies need doubles. */
static void near(double got, double want, double eps, int line)
{
    if (!(fabs(got - want) <= eps))
        fail_msg("line %d: got %.9f, want %.9f (+-%g)", line, got, want, eps);
}
#define assert_near(got, want, eps) near((got), (want), (eps), __LINE__)

static int64_t iso_ms(const char *s)
{
    int64_t ms = 0;
    assert_int_equal(fg_parse_iso8601_ms(s, &ms), 0);
    return ms;
}

static struct sim_device_params inverter(const char *id, uint8_t unit, double power_w)
{
    struct sim_device_params d = { .kind = SIM_KIND_INVERTER, .role = SIM_ROLE_PV, .unit = unit,
                                   .model1_len = 66, .energy_start_wh = 1e6,
                                   .pv = { .scale = 1, .has_power_w = true, .power_w = power_w, .kwp = 5 } };
    snprintf(d.id, sizeof d.id, "%s", id);
    return d;
}

static struct sim_device_params meter(const char *id, enum sim_kind kind, enum sim_role role)
{
    struct sim_device_params d = { .kind = kind, .role = role, .unit = 9, .model1_len = 66,
                                   .energy_start_wh = 1e6 };
    snprintf(d.id, sizeof d.id, "%s", id);
    return d;
}

static struct sim_model *model_of(const struct sim_device_params *devs, size_t n,
                                  const struct sim_machine_params *machines, size_t nm,
                                  double base_load_w, int64_t start_ms)
{
    struct sim_site_params site = { .latitude_deg = 52.5, .longitude_deg = 13.4,
                                    .base_load_w = base_load_w, .load_scale = 1, .devices = devs,
                                    .ndevices = n, .machines = machines, .nmachines = nm };
    return sim_model_new(&site, start_ms);
}

static uint32_t u32_at(const uint16_t *w)
{
    return (uint32_t)w[0] << 16 | w[1];
}

/* ---- SunSpec inverter ---- */

static void test_inverter_image(void **state)
{
    (void)state;
    int64_t t0 = iso_ms("2016-07-01T12:00:00Z");
    struct sim_device_params d = inverter("inv1", 1, 3210.5);
    struct sim_model *m = model_of(&d, 1, NULL, 0, 1000, t0);
    uint16_t w[512];
    struct sim_layout l = sim_model_layout(m, 0);
    assert_int_equal(l.table, SIM_TABLE_HOLDING);
    assert_int_equal(l.start, 40000);
    assert_int_equal(l.count, 174);
    assert_int_equal(sim_model_read(m, 0, t0, w, 512), 0);
    assert_int_equal(w[0], 0x5375); /* "Su" at 40000 */
    assert_int_equal(w[1], 0x6E53); /* "nS" */
    assert_int_equal(w[2], 1);      /* model 1 at 40002 */
    assert_int_equal(w[3], 66);
    assert_int_equal(w[4], 0x6661); /* Mn "fa" */
    assert_int_equal(w[52], 0x696E); /* SN "in" (device id) */
    assert_int_equal(w[53], 0x7631); /* "v1" */
    assert_int_equal(w[68], 1);      /* DA = unit */
    assert_int_equal(w[69], 0x8000); /* Pad */
    assert_int_equal(w[70], 103);    /* model 103 at 40070 */
    assert_int_equal(w[71], 50);
    assert_int_equal(w[72], 1396);   /* A: 3210.5 / 230 = 13.9587 A at A_SF -2 */
    assert_int_equal(w[73], 465);    /* AphA: 4.6529 A */
    assert_int_equal(w[76], 0xFFFE); /* A_SF -2 */
    assert_int_equal(w[80], 2300);   /* PhVphA 230.0 V */
    assert_int_equal(w[84], 32105);  /* W at 40084 */
    assert_int_equal(w[85], 0xFFFF); /* W_SF -1 */
    assert_int_equal(w[86], 5000);   /* Hz 50.00 */
    assert_int_equal(w[87], 0xFFFE); /* Hz_SF -2 */
    assert_int_equal(u32_at(&w[94]), 1000000); /* WH: nothing integrated yet */
    assert_int_equal(w[96], 0);      /* WH_SF */
    assert_int_equal(w[99], 6000);   /* DCV 600.0 V */
    assert_int_equal(w[101], 3310);  /* DCW: 3210.5 / 0.97 = 3309.79 W at DCW_SF 0 (> 3276.7) */
    assert_int_equal(w[102], 0);
    assert_int_equal(w[103], 350);   /* TmpCab 35.0 C */
    assert_int_equal(w[104], 0x8000); /* TmpSnk not implemented */
    assert_int_equal(w[108], 4);     /* St MPPT */
    assert_int_equal(w[122], 160);   /* model 160 at 40122 */
    assert_int_equal(w[123], 48);
    assert_int_equal(w[130], 2);     /* N modules */
    assert_int_equal(w[132], 1);     /* module 1 ID */
    assert_int_equal(w[143], 16549); /* module DCW 1654.9 W at DCW_SF -1 */
    assert_int_equal(w[152], 2);     /* module 2 ID */
    assert_int_equal(w[172], 0xFFFF); /* end marker at 40172 */
    assert_int_equal(w[173], 0);
    sim_model_free(m);
}

/* int16 W can't hold 4321.5 W at W_SF -1 (43215 > 32767): the scale factor goes to 0. */
static void test_inverter_sf_raised_for_int16(void **state)
{
    (void)state;
    struct sim_device_params d = inverter("inv1", 1, 4321.5);
    struct sim_model *m = model_of(&d, 1, NULL, 0, 1000, 0);
    uint16_t w[512];
    assert_int_equal(sim_model_read(m, 0, 0, w, 512), 0);
    assert_int_equal(w[84], 4322);
    assert_int_equal(w[85], 0);
    assert_int_equal(sim_model_sunspec_sf(m, 0).w, 0);
    assert_int_equal(sim_model_sunspec_sf(m, 0).mppt_dcw, -1);
    sim_model_free(m);
}

static void test_inverter_model1_len65_and_night(void **state)
{
    (void)state;
    struct sim_device_params d = inverter("inv65", 4, 0);
    d.model1_len = 65;
    struct sim_model *m = model_of(&d, 1, NULL, 0, 1000, 0);
    uint16_t w[512];
    assert_int_equal(sim_model_layout(m, 0).count, 173);
    assert_int_equal(sim_model_read(m, 0, 0, w, 512), 0);
    assert_int_equal(w[3], 65);
    assert_int_equal(w[68], 4);      /* DA, no Pad after it */
    assert_int_equal(w[69], 103);    /* model 103 at 40069 */
    assert_int_equal(w[83], 0);      /* W */
    assert_int_equal(w[107], 2);     /* St SLEEPING */
    assert_int_equal(w[121], 160);
    assert_int_equal(w[171], 0xFFFF);
    assert_int_equal(w[172], 0);
    assert_int_equal(sim_model_read(m, 0, 0, w, 172), -EINVAL); /* too small a buffer */
    sim_model_free(m);
}

/* ---- meters ---- */

static void test_sdm630_grid_exact(void **state)
{
    (void)state;
    struct sim_device_params d[2] = { inverter("inv1", 1, 4321.5),
                                      meter("grid", SIM_KIND_SDM630, SIM_ROLE_GRID) };
    struct sim_model *m = model_of(d, 2, NULL, 0, 1000, 0);
    uint16_t w[512];
    struct sim_layout l = sim_model_layout(m, 1);
    assert_int_equal(l.table, SIM_TABLE_INPUT);
    assert_int_equal(l.start, 0);
    assert_int_equal(l.count, 344);
    assert_int_equal(sim_model_read(m, 1, 0, w, 512), 0);
    assert_int_equal(w[52], 0xC54F); /* total W -3321.5 */
    assert_int_equal(w[53], 0x9800);
    assert_int_equal(w[0], 0x4366);  /* V L1 230.0 */
    assert_int_equal(w[1], 0x0000);
    assert_int_equal(w[16], 0xC48A); /* W L3 -1107.1667 */
    assert_int_equal(w[17], 0x6555);
    assert_int_equal(w[62], 0xBF80); /* total PF -1: exporting */
    assert_int_equal(w[70], 0x4248); /* 50.0 Hz */
    assert_int_equal(w[72], 0x447A); /* import 1000.0 kWh */
    assert_int_equal(w[342], 0x44FA); /* total 2000.0 kWh = import + export */
    assert_near(sim_model_power_w(m, 1, 0), -3321.5, 0);
    sim_model_free(m);
}

static void test_sdm120_and_sunspec_meter(void **state)
{
    (void)state;
    struct sim_device_params d[3] = { inverter("inv1", 1, 500),
                                      meter("sub", SIM_KIND_SDM120, SIM_ROLE_LOAD),
                                      meter("gridss", SIM_KIND_SUNSPEC_METER, SIM_ROLE_GRID) };
    struct sim_model *m = model_of(d, 3, NULL, 0, 1000, 0);
    uint16_t w[512];
    assert_int_equal(sim_model_read(m, 1, 0, w, 512), 0);
    assert_int_equal(w[12], 0x447A); /* W 1000.0 (the base load) */
    assert_int_equal(w[13], 0);
    assert_int_equal(w[14], 0);      /* no phase 2 on an SDM120 */
    assert_int_equal(w[52], 0);      /* no total register either */
    assert_int_equal(sim_model_layout(m, 2).count, 179);
    assert_int_equal(sim_model_read(m, 2, 0, w, 512), 0);
    assert_int_equal(w[70], 203);    /* model 203 at 40070 */
    assert_int_equal(w[71], 105);
    assert_int_equal(w[88], 5000);   /* W 500.0 imported (1000 - 500) at W_SF -1 */
    assert_int_equal(w[92], 0xFFFF); /* W_SF */
    assert_int_equal(u32_at(&w[108]), 1000000); /* TotWhExp */
    assert_int_equal(u32_at(&w[116]), 1000000); /* TotWhImp */
    assert_int_equal(w[141], 0x8000); /* TotVAh_SF not implemented */
    assert_int_equal(w[177], 0xFFFF); /* end marker */
    sim_model_free(m);
}

/* ---- CSV series ---- */

static char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/test_sim_model_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static const char tiny_csv[] =
    "measured_on,ac_power\n"
    "2016-07-01 00:00:00-07:00,0\n"
    "2016-07-01 00:15:00-07:00,100\n"
    "2016-07-01 00:30:00-07:00,-50\n"
    "2016-07-01 01:00:00-07:00,\n"            /* a gap */
    "2016-07-01 01:15:00-07:00,200\n";

static void test_csv_interpolation(void **state)
{
    (void)state;
    char err[256] = "";
    char *path = write_temp(tiny_csv);
    struct sim_series *s = sim_series_load(path, err, sizeof err);
    unlink(path);
    assert_non_null(s);
    assert_int_equal(sim_series_count(s), 4);
    assert_near(sim_series_max(s), 200, 0);
    assert_near(sim_series_at(s, iso_ms("2016-07-01T00:15:00-07:00")), 100, 0);
    assert_near(sim_series_at(s, iso_ms("2016-07-01T00:07:30-07:00")), 50, 1e-9);
    assert_near(sim_series_at(s, iso_ms("2016-07-01T00:45:00-07:00")), 100.0 / 3, 1e-9); /* across the gap */
    /* a PV inverter on the CSV: scaled, negatives clamped to 0 */
    struct sim_device_params d = inverter("inv1", 1, 0);
    d.pv.has_power_w = false;
    d.pv.csv = s;
    d.pv.scale = 2;
    struct sim_model *m = model_of(&d, 1, NULL, 0, 0, 0);
    assert_near(sim_model_pv_w(m, 0, iso_ms("2016-07-01T00:07:30-07:00")), 100, 1e-9);
    assert_near(sim_model_pv_w(m, 0, iso_ms("2016-07-01T00:30:00-07:00")), 0, 0);
    sim_model_free(m);
    sim_series_free(s);
    sim_series_free(NULL);
}

/* Outside the file: the same time of day, on the file day with the same calendar offset
 * modulo its span (here two whole days). */
static void test_csv_wraps_by_calendar_day(void **state)
{
    (void)state;
    static const char csv[] = "t,w\n"
                              "2016-07-01T00:00-07:00,10\n2016-07-01T12:00-07:00,20\n"
                              "2016-07-02T00:00-07:00,30\n2016-07-02T12:00-07:00,40\n"
                              "2016-07-03T00:00-07:00,50\n";
    char err[256];
    struct sim_series *s = sim_series_parse(csv, strlen(csv), "w.csv", err, sizeof err);
    assert_non_null(s);
    assert_near(sim_series_at(s, iso_ms("2026-07-02T06:00:00-07:00")), 35, 1e-9);
    assert_near(sim_series_at(s, iso_ms("2026-07-03T06:00:00-07:00")), 15, 1e-9);
    assert_near(sim_series_at(s, iso_ms("2015-06-30T18:00:00-07:00")), 45, 1e-9);
    /* 2016-06-30 23:00 -07:00, before the first row: onto 2016-07-02 23:00 */
    assert_near(sim_series_at(s, iso_ms("2016-07-01T06:00:00+00:00")), 40 + 110.0 / 12, 1e-9);
    sim_series_free(s);
}

static void test_csv_errors(void **state)
{
    (void)state;
    char err[256];
    static const char backwards[] = "t,w\n2016-07-01T00:15Z,1\n2016-07-01T00:00Z,2\n";
    static const char badval[] = "t,w\n2016-07-01T00:15Z,abc\n";
    static const char empty[] = "t,w\n";
    assert_null(sim_series_parse(backwards, strlen(backwards), "b.csv", err, sizeof err));
    assert_string_equal(err, "b.csv:3: time 2016-07-01T00:00Z is not after the previous row");
    assert_null(sim_series_parse(badval, strlen(badval), "v.csv", err, sizeof err));
    assert_string_equal(err, "v.csv:2: bad value \"abc\"");
    assert_null(sim_series_parse(empty, strlen(empty), "e.csv", err, sizeof err));
    assert_string_equal(err, "e.csv: no data rows");
    assert_null(sim_series_load("/nonexistent/x.csv", err, sizeof err));
    assert_string_equal(err, "/nonexistent/x.csv: No such file or directory");
}

/* ---- energy ---- */

static void test_energy_constant_and_ramp(void **state)
{
    (void)state;
    int64_t t0 = iso_ms("2016-07-01T00:00:00-07:00");
    static const char ramp[] = "t,w\n2016-07-01T00:00-07:00,0\n2016-07-01T01:00-07:00,3600\n";
    char err[256];
    struct sim_series *s = sim_series_parse(ramp, strlen(ramp), "r.csv", err, sizeof err);
    assert_non_null(s);
    struct sim_device_params d[2] = { inverter("flat", 1, 1200), inverter("ramp", 2, 0) };
    d[1].pv.has_power_w = false;
    d[1].pv.csv = s;
    struct sim_model *a = model_of(d, 2, NULL, 0, 0, t0);
    struct sim_model *b = model_of(d, 2, NULL, 0, 0, t0);
    double imp, exp;
    assert_int_equal(sim_model_energy(a, 0, t0 + HOUR_MS / 2, &imp, &exp), 0);
    assert_near(imp, 1e6 + 600, 1e-6);
    assert_near(exp, 1e6, 0);
    /* polled at odd instants or not at all: the same counters at the same time */
    assert_int_equal(sim_model_energy(b, 1, t0 + 1033333, &imp, &exp), 0);
    assert_int_equal(sim_model_energy(b, 1, t0 + 2467001, &imp, &exp), 0);
    assert_int_equal(sim_model_energy(a, 1, t0 + HOUR_MS, &imp, &exp), 0);
    assert_near(imp, 1e6 + 1800, 1e-6); /* the ramp's triangle */
    assert_int_equal(sim_model_energy(b, 1, t0 + HOUR_MS, &imp, &exp), 0);
    assert_near(imp, 1e6 + 1800, 1e-6);
    uint16_t w[512];
    assert_int_equal(sim_model_read(a, 0, t0 + HOUR_MS, w, 512), 0);
    assert_int_equal(u32_at(&w[94]), 1001200);  /* WH of the flat inverter */
    assert_int_equal(u32_at(&w[144]), 516082); /* module DCWH: 1001200 / 0.97 / 2 = 516082.47 */
    assert_int_equal(sim_model_energy(a, 7, t0, &imp, &exp), -EINVAL);
    sim_model_free(a);
    sim_model_free(b);
    sim_series_free(s);
}

/* Grid power ramping between -990 W and +1010 W in an hour, crossing zero inside a one-minute
 * grid step: 990 * 0.495 / 2 Wh exported and 1010 * 0.505 / 2 Wh imported, both directions. */
static void check_split(const char *csv, int64_t t0)
{
    char err[256];
    struct sim_series *s = sim_series_parse(csv, strlen(csv), "r.csv", err, sizeof err);
    assert_non_null(s);
    struct sim_device_params d[2] = { inverter("inv1", 1, 0), meter("grid", SIM_KIND_SDM630, SIM_ROLE_GRID) };
    d[0].pv.has_power_w = false;
    d[0].pv.csv = s;
    struct sim_model *m = model_of(d, 2, NULL, 0, 1010, t0);
    double imp, exp;
    assert_int_equal(sim_model_energy(m, 1, t0 + HOUR_MS, &imp, &exp), 0);
    assert_near(exp, 1e6 + 245.025, 1e-6);
    assert_near(imp, 1e6 + 255.025, 1e-6);
    sim_model_free(m);
    sim_series_free(s);
}

static void test_energy_import_export_split(void **state)
{
    (void)state;
    int64_t t0 = iso_ms("2016-07-01T00:00:00-07:00");
    check_split("t,w\n2016-07-01T00:00-07:00,2000\n2016-07-01T01:00-07:00,0\n", t0);
    check_split("t,w\n2016-07-01T00:00-07:00,0\n2016-07-01T01:00-07:00,2000\n", t0);
}

/* ---- machines ---- */

static void test_machine_coil_drives_grid_meter(void **state)
{
    (void)state;
    int64_t t0 = iso_ms("2016-07-01T10:00:00Z");
    struct sim_device_params d[4] = {
        inverter("inv1", 1, 2000), meter("grid", SIM_KIND_SDM630, SIM_ROLE_GRID),
        meter("relays", SIM_KIND_RELAY8, SIM_ROLE_NONE), meter("kilnm", SIM_KIND_SDM120, SIM_ROLE_MACHINE),
    };
    struct sim_machine_params mc = { .id = "kiln", .power_w = 6000, .relay_dev = 2, .coil = 0, .meter_dev = 3 };
    struct sim_model *m = model_of(d, 4, &mc, 1, 500, t0);
    uint16_t w[512];
    assert_near(sim_model_power_w(m, 1, t0), -1500, 0);
    assert_near(sim_model_power_w(m, 3, t0), 0, 0);
    assert_int_equal(sim_model_set_coil(m, 2, 0, true, t0 + HOUR_MS / 2), 0);
    assert_int_equal(sim_model_set_coil(m, 2, 1, true, t0 + HOUR_MS / 2), 0); /* nothing on coil 1 */
    assert_true(sim_model_coil(m, 2, 0));
    assert_near(sim_model_power_w(m, 1, t0 + HOUR_MS), 4500, 0);
    assert_near(sim_model_power_w(m, 3, t0 + HOUR_MS), 6000, 0);
    double imp, exp;
    assert_int_equal(sim_model_energy(m, 1, t0 + HOUR_MS, &imp, &exp), 0);
    assert_near(imp, 1e6 + 2250, 1e-6); /* 4500 W for 30 min */
    assert_near(exp, 1e6 + 750, 1e-6);  /* 1500 W for 30 min */
    assert_int_equal(sim_model_read(m, 2, t0 + HOUR_MS, w, 512), 0);
    assert_int_equal(w[0], 1);
    assert_int_equal(w[1], 1);
    assert_int_equal(w[2], 0);
    assert_int_equal(sim_model_read(m, 1, t0 + HOUR_MS, w, 512), 0);
    assert_int_equal(w[52], 0x458C); /* grid total W 4500.0 */
    assert_int_equal(w[53], 0xA000);
    assert_int_equal(sim_model_set_coil(m, 1, 0, true, t0), -EINVAL); /* not a relay */
    assert_int_equal(sim_model_set_coil(m, 2, 8, true, t0), -EINVAL);
    sim_model_free(m);
    sim_model_free(NULL);
}

/* ---- clear sky ---- */

static void test_clear_sky(void **state)
{
    (void)state;
    int64_t noon = iso_ms("2016-03-20T12:00:00Z");
    assert_near(sim_model_clear_sky_w(5, 0, 0, iso_ms("2016-03-20T00:00:00Z")), 0, 0);
    /* equinox noon on the equator: declination -0.40 deg, air mass 1.00002,
     * 5 kWp * 1353 * 0.7^(AM^0.678) * sin(el) * 1.1 * 0.85 */
    double p = sim_model_clear_sky_w(5, 0, 0, noon);
    assert_near(p, 4427.556049, 1e-5);
    assert_near(sim_model_clear_sky_w(5, 0, 0, noon - 2 * HOUR_MS),
                        sim_model_clear_sky_w(5, 0, 0, noon + 2 * HOUR_MS), 1e-6);
    assert_true(sim_model_clear_sky_w(5, 0, 0, noon - 2 * HOUR_MS) < p);
    /* 15 degrees east: the same sun an hour earlier */
    assert_near(sim_model_clear_sky_w(5, 0, 15, noon - HOUR_MS), p, 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inverter_image),
        cmocka_unit_test(test_inverter_sf_raised_for_int16),
        cmocka_unit_test(test_inverter_model1_len65_and_night),
        cmocka_unit_test(test_sdm630_grid_exact),
        cmocka_unit_test(test_sdm120_and_sunspec_meter),
        cmocka_unit_test(test_csv_interpolation),
        cmocka_unit_test(test_csv_wraps_by_calendar_day),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_energy_constant_and_ramp),
        cmocka_unit_test(test_energy_import_export_split),
        cmocka_unit_test(test_machine_coil_drives_grid_meter),
        cmocka_unit_test(test_clear_sky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
