/* Unit tests of bal_model: loading machines, jobs and the balancer section (one fixture per error
 * class under tests/fixtures/balancer/, every value of a valid one), the local calendar across DST
 * days (Europe/Berlin, America/Denver), machine windows at their edges, and job expansion.
 * Run from the repository root. Times below are written as a local midnight + hours. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bal_model.h"
#include "col_config.h"

#define FIX "tests/fixtures/balancer/"
#define H 3600000LL
#define MIN 60000LL

/* 2016-07-11 (a Monday) 00:00 CEST = 2016-07-10T22:00:00Z */
#define MON_BERLIN 1468188000000LL
/* 2016-03-27 00:00 CET (spring forward at 02:00, a day of 23 h) = 2016-03-26T23:00:00Z */
#define SPRING_BERLIN 1459033200000LL
/* 2016-10-30 00:00 CEST (fall back at 03:00, a day of 25 h) = 2016-10-29T22:00:00Z */
#define FALL_BERLIN 1477778400000LL
/* 2016-03-13 00:00 MST (spring forward at 02:00) = 2016-03-13T07:00:00Z */
#define SPRING_DENVER 1457852400000LL
/* 2016-11-06 00:00 MDT (fall back at 02:00) = 2016-11-06T06:00:00Z */
#define FALL_DENVER 1478412000000LL

static char tmpdir[64];

/* ---- helpers ---- */

/* Loads a file; returns its error text, or "OK" (static buffer). */
static const char *load_errors(const char *file)
{
    static char err[8192];
    struct bal_config *c = bal_config_load(file, err, sizeof err);
    if (c) {
        bal_config_free(c);
        return "OK";
    }
    return err;
}

/* The expected error text: each line prefixed with "FILE: " (static buffer). */
static const char *expect(const char *file, const char *const *lines)
{
    static char want[8192];
    size_t n = 0;
    want[0] = '\0';
    for (size_t i = 0; lines[i]; i++)
        n += (size_t)snprintf(want + n, sizeof want - n, "%s%s: %s", i ? "\n" : "", file, lines[i]);
    return want;
}

static const char *write_tmp(const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/site.json", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fg_test_bal_model.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    char path[128];
    (void)state;
    snprintf(path, sizeof path, "%s/site.json", tmpdir);
    unlink(path);
    return rmdir(tmpdir);
}

static struct bal_config *load_ok(const char *file)
{
    char err[4096] = "x";
    struct bal_config *c = bal_config_load(file, err, sizeof err);
    assert_string_equal(err, "");
    assert_non_null(c);
    return c;
}

static void check_job(const struct bal_job *j, const char *id, size_t cfg, size_t machine, int64_t earliest_ms,
                      int64_t deadline_ms, double energy_wh, bool required, bool surplus_only)
{
    assert_string_equal(j->id, id);
    assert_int_equal(j->cfg, cfg);
    assert_int_equal(j->machine, machine);
    assert_int_equal(j->earliest_ms, earliest_ms);
    assert_int_equal(j->deadline_ms, deadline_ms);
    assert_true(j->energy_wh == energy_wh);
    assert_true(j->done_wh == 0);
    assert_int_equal(j->required, required);
    assert_int_equal(j->surplus_only, surplus_only);
    assert_false(j->running);
    assert_int_equal(j->started_ms, 0);
}

/* ---- loading: valid configs ---- */

static void check_valid_machines(const struct bal_config *c)
{
    const struct bal_machine *m = c->machines;
    assert_int_equal(c->nmachines, 4);
    assert_string_equal(m[0].id, "kiln");
    assert_true(m[0].power_w == 6000 && m[0].min_power_w == 0 && m[0].step_w == 0);
    assert_false(m[0].interruptible);
    assert_int_equal(m[0].min_on_s, 600);
    assert_int_equal(m[0].min_off_s, 300);
    assert_int_equal(m[0].max_starts_per_day, 0);
    assert_int_equal(m[0].nwindows, 0);
    assert_false(m[0].manual);
    assert_int_equal(m[0].priority, 0);
    assert_string_equal(m[1].id, "laser");
    assert_true(m[1].manual);
    assert_int_equal(m[1].priority, 10);
    assert_int_equal(m[1].nwindows, 2);
    assert_int_equal(m[1].windows[0].days_mask, 0x1F); /* mon-fri */
    assert_int_equal(m[1].windows[0].from_min, 480);
    assert_int_equal(m[1].windows[0].to_min, 1200);
    assert_int_equal(m[1].windows[1].days_mask, 0x20); /* sat */
    assert_int_equal(m[1].windows[1].from_min, 600);
    assert_int_equal(m[1].windows[1].to_min, 840);
    assert_true(m[2].interruptible);
    assert_int_equal(m[2].min_on_s, 900);
    assert_int_equal(m[2].max_starts_per_day, 6);
    assert_int_equal(m[2].priority, -5);
    assert_string_equal(m[3].id, "ev");
    assert_true(m[3].power_w == 11040 && m[3].min_power_w == 4140 && m[3].step_w == 690);
    assert_int_equal(m[3].windows[0].days_mask, 0x7F); /* mon-wed, thu, fri-sun */
    assert_int_equal(m[3].windows[0].from_min, 0);
    assert_int_equal(m[3].windows[0].to_min, 360);
    assert_int_equal(m[3].windows[1].days_mask, 0x7F); /* no days: daily */
    assert_int_equal(m[3].windows[1].to_min, 1440);
}

static void check_valid_jobs(const struct bal_config *c)
{
    const struct bal_job_cfg *j = c->jobs;
    assert_int_equal(c->njobs, 4);
    assert_string_equal(j[0].id, "kiln-daily");
    assert_int_equal(j[0].machine, 0);
    assert_int_equal(j[0].duration_min, 360);
    assert_true(j[0].energy_wh == 0);
    assert_int_equal(j[0].earliest_min, 420);
    assert_int_equal(j[0].deadline_min, 1080);
    assert_int_equal(j[0].days_mask, 0x1F);
    assert_true(j[0].required);
    assert_false(j[0].surplus_only);
    assert_int_equal(j[1].machine, 1);
    assert_int_equal(j[1].days_mask, 0x0A); /* tue, thu */
    assert_int_equal(j[2].days_mask, 0x7F);
    assert_int_equal(j[2].deadline_min, 1440);
    assert_false(j[2].required); /* surplus_only makes it optional */
    assert_true(j[2].surplus_only);
    assert_int_equal(j[3].machine, 3);
    assert_int_equal(j[3].days_mask, 0);
    assert_int_equal(j[3].duration_min, 0);
    assert_true(j[3].energy_wh == 20000);
    assert_int_equal(j[3].once_earliest_ms, MON_BERLIN + 4 * 24 * H + 7 * H);
    assert_int_equal(j[3].once_deadline_ms, MON_BERLIN + 4 * 24 * H + 17 * H);
}

static void check_act(const struct bal_actuator *a, enum bal_act_type type, const char *device, const char *point,
                      const char *topic, const char *on, const char *off, const char *preset, bool setpoint)
{
    assert_int_equal(a->type, type);
    assert_string_equal(a->device, device);
    assert_string_equal(a->point, point);
    assert_string_equal(a->topic, topic);
    assert_string_equal(a->payload_on, on);
    assert_string_equal(a->payload_off, off);
    assert_string_equal(a->preset, preset);
    assert_int_equal(a->power_setpoint, setpoint);
}

static void check_valid_actuators(const struct bal_config *c)
{
    check_act(&c->act[0], BAL_ACT_MODBUS, "relays", "coil_0", "", "", "", "", false);
    check_act(&c->act[1], BAL_ACT_NONE, "", "", "", "", "", "", false);
    check_act(&c->act[2], BAL_ACT_SHELLY, "plug-comp", "", "shellyplug-comp", "", "", "shelly-gen2", false);
    check_act(&c->act[3], BAL_ACT_MQTT, "", "", "wallbox/set", "{\"amps\":{power_w}}", "0", "generic", true);
    assert_string_equal(c->meter[0], "");
    assert_string_equal(c->meter[1], "laser-meter");
    assert_string_equal(c->meter[2], "plug-comp");
    assert_string_equal(c->meter[3], "");
    assert_int_equal(c->shutdown[0], BAL_SHUT_KEEP);
    assert_int_equal(c->shutdown[1], BAL_SHUT_OFF);
    assert_int_equal(c->shutdown[2], BAL_SHUT_ON);
    assert_int_equal(c->shutdown[3], BAL_SHUT_AUTO);
}

static void test_actuators(void **state)
{
    struct bal_config *c = load_ok(FIX "actuators.json");
    (void)state;
    assert_int_equal(c->nmachines, 6);
    check_act(&c->act[0], BAL_ACT_MODBUS, "wallbox", "charge_w", "", "", "", "", true);
    /* an mqtt actuator with a preset is that preset's type; the topic comes from the mqtt_device */
    check_act(&c->act[1], BAL_ACT_TASMOTA, "plug-t", "", "tasmota_plug", "", "", "tasmota", false);
    check_act(&c->act[2], BAL_ACT_TASMOTA, "", "", "tasmota_fan", "", "", "tasmota", false);
    check_act(&c->act[3], BAL_ACT_SHELLY, "plug-s", "", "custom/shelly", "", "", "shelly-gen2", false);
    check_act(&c->act[4], BAL_ACT_MQTT, "", "", "dryer/cmd", "on", "off", "generic", false);
    check_act(&c->act[5], BAL_ACT_NONE, "", "", "", "", "", "", false);
    assert_string_equal(c->meter[3], "plug-s");
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(c->shutdown[i], BAL_SHUT_AUTO);
    assert_string_equal(c->set.state_file, "/tmp/x/state.json"); /* absolute paths stay */
    assert_true(c->set.replan_margin_w == 1000);
    bal_config_free(c);
}

static void test_valid(void **state)
{
    char err[1024];
    struct bal_config *c = load_ok(FIX "valid.json");
    struct col_config *col;
    (void)state;
    assert_string_equal(c->file, FIX "valid.json");
    assert_string_equal(c->site.id, "hof3");
    assert_string_equal(c->site.timezone, "Europe/Berlin");
    assert_true(c->site.grid_limit_w == 30000);
    assert_true(c->site.pv_kwp == 12 && c->site.tilt_deg == 35 && c->site.azimuth_deg == 165);
    assert_string_equal(c->mqtt.prefix, "fabgrid");
    check_valid_machines(c);
    check_valid_jobs(c);
    assert_int_equal(c->set.interval_s, 5);
    assert_int_equal(c->set.slot_min, 5);
    assert_int_equal(c->set.horizon_h, 48);
    assert_int_equal(c->set.stale_after_s, 60);
    assert_true(c->set.surplus_margin_w == 150);
    assert_int_equal(c->set.surplus_delay_s, 120);
    assert_true(c->set.hysteresis_w == 250);
    assert_string_equal(c->set.state_file, FIX "state/balancer.json"); /* relative to the config */
    assert_true(c->set.replan_margin_w == 1500);
    assert_int_equal(c->set.confirm_timeout_s, 20);
    assert_int_equal(c->set.confirm_retries, 3);
    assert_true(c->set.confirm_power_w == 80);
    assert_string_equal(c->set.forecast_topic, "forecast/pv-ext");
    check_valid_actuators(c);
    bal_config_free(c);
    bal_config_free(NULL); /* no-op */
    /* one file serves both daemons */
    col = col_config_load(FIX "valid.json", "config/profiles", err, sizeof err);
    assert_non_null(col);
    assert_int_equal(col->ndevices, 4);
    assert_true(col->site.pv_kwp == 12);
    col_config_free(col);
}

static void test_example(void **state)
{
    char err[1024];
    struct bal_config *c = load_ok("config/example.json");
    struct col_config *col = col_config_load("config/example.json", "config/profiles", err, sizeof err);
    (void)state;
    assert_non_null(col);
    col_config_free(col);
    assert_int_equal(c->nmachines, 1);
    assert_string_equal(c->machines[0].id, "kiln");
    assert_true(c->machines[0].power_w == 6000);
    assert_int_equal(c->machines[0].min_on_s, 600);
    assert_int_equal(c->machines[0].min_off_s, 300);
    assert_int_equal(c->njobs, 1);
    assert_string_equal(c->jobs[0].id, "kiln-daily");
    assert_int_equal(c->jobs[0].days_mask, 0x1F);
    assert_int_equal(c->jobs[0].duration_min, 360);
    assert_int_equal(c->set.interval_s, 10);
    assert_int_equal(c->set.slot_min, 15);
    assert_int_equal(c->set.horizon_h, 36);
    assert_int_equal(c->set.stale_after_s, 30);
    assert_true(c->set.surplus_margin_w == 100); /* not in the file: defaults */
    assert_int_equal(c->set.surplus_delay_s, 300);
    assert_true(c->set.hysteresis_w == 200);
    assert_true(c->site.pv_kwp == 0 && c->site.tilt_deg == 30 && c->site.azimuth_deg == 180);
    check_act(&c->act[0], BAL_ACT_MODBUS, "relays", "coil_0", "", "", "", "", false);
    bal_config_free(c);
}

static void test_defaults(void **state)
{
    const char *path = write_tmp("{\"site\":{\"id\":\"s\"},\"machines\":[{\"id\":\"m\",\"power_w\":500}],"
                                 "\"jobs\":[{\"id\":\"j\",\"machine\":\"m\",\"days\":\"wed-mon\",\"duration_min\":1,"
                                 "\"earliest\":\"00:00\",\"deadline\":\"00:01\"}]}");
    struct bal_config *c = load_ok(path);
    (void)state;
    assert_string_equal(c->site.timezone, "UTC");
    assert_string_equal(c->mqtt.host, "127.0.0.1");
    assert_false(c->machines[0].interruptible);
    assert_int_equal(c->machines[0].min_on_s + c->machines[0].min_off_s + c->machines[0].max_starts_per_day, 0);
    assert_int_equal(c->machines[0].nwindows, 0);
    assert_false(c->machines[0].manual);
    assert_int_equal(c->jobs[0].days_mask, 0x7D); /* wraps: wed..sun, mon; not tue */
    assert_true(c->jobs[0].required);
    assert_false(c->jobs[0].surplus_only);
    assert_int_equal(c->set.interval_s, 10);
    assert_int_equal(c->set.slot_min, 15);
    assert_int_equal(c->set.horizon_h, 36);
    assert_int_equal(c->set.stale_after_s, 30);
    assert_true(c->set.surplus_margin_w == 100 && c->set.hysteresis_w == 200);
    assert_int_equal(c->set.surplus_delay_s, 300);
    assert_string_equal(c->set.state_file, "/var/lib/fabgrid/balancer-state.json");
    assert_true(c->set.replan_margin_w == 1000);
    assert_int_equal(c->set.confirm_timeout_s, 15);
    assert_int_equal(c->set.confirm_retries, 2);
    assert_true(c->set.confirm_power_w == 50);
    assert_string_equal(c->set.forecast_topic, "forecast/pv");
    assert_int_equal(c->act[0].type, BAL_ACT_NONE);
    assert_string_equal(c->meter[0], "");
    assert_int_equal(c->shutdown[0], BAL_SHUT_AUTO);
    bal_config_free(c);
    /* a relative state_file that no longer fits once the config's directory is joined */
    {
        char text[512], want[512], name[251];
        memset(name, 'a', 250);
        name[250] = '\0';
        snprintf(text, sizeof text, "{\"site\":{\"id\":\"s\"},\"balancer\":{\"state_file\":\"%s\"}}", name);
        path = write_tmp(text);
        snprintf(want, sizeof want, "%s: balancer.state_file: path too long (at most 255 bytes after joining the "
                 "config's directory)", path);
        assert_string_equal(load_errors(path), want);
    }
    /* no machines and no jobs at all is a valid (idle) balancer */
    c = load_ok(write_tmp("{\"site\":{\"id\":\"s\"}}"));
    assert_int_equal(c->nmachines + c->njobs, 0);
    bal_config_free(c);
}

/* ---- loading: one fixture per error class ---- */

static void test_err_out_of_range(void **state)
{
    (void)state;
    assert_string_equal(load_errors(FIX "out_of_range.json"), expect(FIX "out_of_range.json", (const char *[]){
        "machines[1].min_on_s: must be an integer 0..86400, got -5",
        "machines[1].min_off_s: must be an integer 0..86400, got 86401",
        "machines[1].priority: must be an integer -100..100, got 101",
        "machines[1].max_starts_per_day: must be an integer 0..1000, got 1001",
        "jobs[0].duration_min: must be an integer 1..10080, got 10081", NULL }));
}

static void test_err_unknown_key(void **state)
{
    (void)state;
    assert_string_equal(load_errors(FIX "unknown_key.json"), expect(FIX "unknown_key.json", (const char *[]){
        "machine: unknown key (did you mean \"machines\"?)",
        "machines[0].min_on: unknown key (did you mean \"min_on_s\"?)",
        "machines[0].windows[0].form: unknown key (did you mean \"from\"?)",
        "machines[0].windows[0].from: missing (required)",
        "jobs[0].deadlin: unknown key (did you mean \"deadline\"?)",
        "jobs[0].deadline: missing (required)",
        "balancer.slotmin: unknown key (did you mean \"slot_min\"?)", NULL }));
}

static void test_err_dup_id(void **state)
{
    (void)state;
    /* machines and jobs have their own namespaces: a bus "kiln" and a job "a" are fine */
    assert_string_equal(load_errors(FIX "dup_id.json"), expect(FIX "dup_id.json", (const char *[]){
        "machines[2].id: duplicate id \"kiln\" (first at machines[0].id)",
        "jobs[1].id: duplicate id \"a\" (first at jobs[0].id)", NULL }));
}

static void test_err_unknown_ref(void **state)
{
    (void)state;
    assert_string_equal(load_errors(FIX "unknown_ref.json"), expect(FIX "unknown_ref.json", (const char *[]){
        "machines[0].meter: no device with id \"nometer\" in devices or mqtt_devices",
        "machines[0].actuator.device: no device with id \"relayz\" in devices",
        "jobs[0].machine: no machine with id \"kilnx\"", NULL }));
}

static void test_err_power(void **state)
{
    (void)state;
    assert_string_equal(load_errors(FIX "power.json"), expect(FIX "power.json", (const char *[]){
        "machines[0].min_power_w: only for machines without power_w",
        "machines[1].power_w: missing (required, or min_power_w and max_power_w)",
        "machines[2].max_power_w: missing (required with min_power_w)",
        "machines[3].min_power_w: must be less than max_power_w (5000), got 5000",
        "machines[4].step_w: must be at most max_power_w - min_power_w (1000), got 1500",
        "machines[5].power_w: must be a number 1..1000000, got 0",
        "machines[6].step_w: only for machines with min_power_w and max_power_w", NULL }));
}

#define DAYS_MSG "must be \"daily\", a day \"mon\"..\"sun\", a range such as \"mon-fri\", or an array of days and ranges, got "

static void test_err_windows(void **state)
{
    (void)state;
    assert_string_equal(load_errors(FIX "windows.json"), expect(FIX "windows.json", (const char *[]){
        "machines[0].windows[0].days: " DAYS_MSG "\"mon-fry\"",
        "machines[0].windows[1].days: " DAYS_MSG "an empty array",
        "machines[0].windows[1].from: must be a local time \"HH:MM\" 00:00..23:59, got \"8:00\"",
        "machines[0].windows[1].to: must be a local time \"HH:MM\" 00:00..24:00, got \"24:01\"",
        "machines[0].windows[2].days[1]: " DAYS_MSG "3",
        "machines[0].windows[2].to: must be after from (20:00), got \"08:00\"",
        "machines[0].windows[3].from: must be a local time \"HH:MM\" 00:00..23:59, got \"24:00\"",
        "machines[0].windows[4].from: must be a local time \"HH:MM\" 00:00..23:59, got 800",
        "machines[0].windows[5]: must be an object, got a string",
        "machines[1].windows: must have at most 8 windows, got 9",
        "machines[2].windows: must be an array, got a string", NULL }));
}

#define ISO_MSG "must be a date and time with offset such as \"2026-12-01T18:00:00+01:00\" (the job has no days), got "

static void test_err_job_times(void **state)
{
    (void)state;
    assert_string_equal(load_errors(FIX "job_times.json"), expect(FIX "job_times.json", (const char *[]){
        "jobs[0].deadline: must be after earliest (07:00), got \"06:00\"",
        "jobs[1].earliest: " ISO_MSG "\"07:00\"",
        "jobs[1].deadline: " ISO_MSG "\"2016-07-15T18:00:00\"",
        "jobs[2].earliest: must be a local time \"HH:MM\" 00:00..23:59 (the job has days), got "
        "\"2016-07-15T07:00:00+02:00\"",
        "jobs[3].duration_min: must fit between earliest and deadline (660 min), got 720",
        "jobs[4].energy_wh: must fit between earliest and deadline (120 min at 2000 W = 4000 Wh), got 5000",
        "jobs[5].deadline: must be after earliest (2016-07-15T18:00:00+02:00), got \"2016-07-15T17:00:00+02:00\"",
        "jobs[6].earliest: missing (required)",
        "jobs[6].deadline: missing (required)",
        "jobs[7].days: " DAYS_MSG "\"weekdays\"", NULL }));
}

static void test_err_job_amount(void **state)
{
    (void)state;
    assert_string_equal(load_errors(FIX "job_amount.json"), expect(FIX "job_amount.json", (const char *[]){
        "jobs[0].energy_wh: not with duration_min (give one of them)",
        "jobs[1].duration_min: missing (required, or energy_wh)",
        "jobs[2].energy_wh: must be a number 1..10000000, got 0",
        "jobs[3].duration_min: must be an integer 1..10080, got 1.5", NULL }));
}

static void test_err_surplus_required(void **state)
{
    (void)state;
    assert_string_equal(load_errors(FIX "surplus_required.json"), expect(FIX "surplus_required.json", (const char *[]){
        "jobs[0].required: must be false (or absent) with surplus_only: true, got true",
        "jobs[1].surplus_only: must be true or false, got a string", NULL }));
}

static void test_err_actuator(void **state)
{
    (void)state;
    assert_string_equal(load_errors(FIX "actuator.json"), expect(FIX "actuator.json", (const char *[]){
        "machines[0].actuator.type: must be one of \"modbus\", \"mqtt\", \"shelly-gen2\", \"tasmota\", got \"relay\"",
        "machines[1].actuator.point: missing (required)",
        "machines[1].actuator.topic: only for types mqtt, shelly-gen2 and tasmota",
        "machines[2].actuator.point: only for type modbus",
        "machines[2].actuator.topic: missing (required)",
        "machines[2].actuator.payload_on: must be a string of 1..255 bytes, got a number",
        "machines[3].actuator.device: no device with id \"relays\" in mqtt_devices",
        "machines[4].actuator.colour: unknown key",
        "machines[5].actuator: must be an object, got a string",
        "machines[6].meter: must match [a-z0-9][a-z0-9_-]{0,31}, got a number",
        "machines[6].start: must be one of \"auto\", \"manual\", got \"timer\"",
        "machines[7].actuator.preset: must be one of \"generic\", \"shelly-gen2\", \"tasmota\", got \"shelly\"",
        "machines[8].actuator.preset: only for type mqtt",
        "machines[9].actuator.device: mqtt_devices entry \"plug\" has preset \"tasmota\", not \"shelly-gen2\"",
        "machines[10].actuator.topic: must not contain '+' or '#', got \"a/+/b\"",
        "machines[11].actuator.payload_on: only for type mqtt with preset generic",
        "machines[12].shutdown: must be one of \"auto\", \"off\", \"on\", \"keep\", got \"stop\"",
        "machines[13].actuator.topic: missing (required: mqtt_devices entry \"notopic\" has no usable topic)",
        NULL }));
}

static void test_err_balancer(void **state)
{
    (void)state;
    assert_string_equal(load_errors(FIX "balancer.json"), expect(FIX "balancer.json", (const char *[]){
        "balancer.interval_s: must be an integer 1..3600, got 0",
        "balancer.slot_min: must be one of 5, 6, 10, 12, 15, 20, 30, 60, got 7",
        "balancer.horizon_h: must be an integer 1..72, got 73",
        "balancer.stale_after_s: must be an integer 5..3600, got 4",
        "balancer.surplus_margin_w: must be a number 0..100000, got -1",
        "balancer.surplus_delay_s: must be an integer 0..3600, got 3601",
        "balancer.hysteresis_w: must be a number 0..100000, got 100001",
        "balancer.state_file: must be a string of 1..255 bytes, got \"\"",
        "balancer.replan_margin_w: must be a number 0..1000000, got 10000000",
        "balancer.confirm_timeout_s: must be an integer 1..600, got 0",
        "balancer.confirm_retries: must be an integer 0..10, got 11",
        "balancer.confirm_power_w: must be a number 0..100000, got -5",
        "balancer.forecast_topic: must not contain '+' or '#', got \"forecast/#\"",
        "balancer.slotmin: unknown key (did you mean \"slot_min\"?)", NULL }));
}

static void test_err_shape(void **state)
{
    char many[8192];
    const char *path;
    size_t n;
    (void)state;
    assert_string_equal(load_errors(FIX "wrong_type.json"), expect(FIX "wrong_type.json", (const char *[]){
        "machines: must be an array, got an object",
        "jobs[0]: must be an object, got a string",
        "balancer: must be an object, got an array", NULL }));
    assert_string_equal(load_errors(FIX "missing.json"), expect(FIX "missing.json", (const char *[]){
        "machines[0].id: missing (required)",
        "machines[1]: must be an object, got a string",
        "jobs[0].id: missing (required)",
        "jobs[0].machine: no machine with id \"x\"",
        "jobs[0].duration_min: missing (required, or energy_wh)",
        "jobs[0].earliest: missing (required)",
        "jobs[0].deadline: missing (required)", NULL }));
    assert_string_equal(load_errors(FIX "syntax.json"), FIX "syntax.json:4:20: syntax error: expected ',' or '}'");
    assert_string_equal(load_errors(FIX "nope.json"), FIX "nope.json: cannot read: No such file or directory");
    path = write_tmp("[]");
    assert_string_equal(load_errors(path), expect(path, (const char *[]){ "must be a JSON object, got an array", NULL }));
    path = write_tmp("{\"machines\":[]}");
    assert_string_equal(load_errors(path), expect(path, (const char *[]){ "site: missing (required)", NULL }));
    n = (size_t)snprintf(many, sizeof many, "{\"site\":{\"id\":\"s\"},\"machines\":[");
    for (int i = 0; i <= BAL_MAX_MACHINES; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%s{\"id\":\"m%d\",\"power_w\":1}", i ? "," : "", i);
    snprintf(many + n, sizeof many - n, "]}");
    path = write_tmp(many);
    assert_string_equal(load_errors(path), expect(path, (const char *[]){
        "machines: must have at most 64 machines, got 65", NULL }));
}

/* ---- local calendar ---- */

static void test_calendar_berlin(void **state)
{
    (void)state;
    bal_tz_apply("Europe/Berlin");
    assert_int_equal(bal_weekday(MON_BERLIN), 0);
    assert_int_equal(bal_weekday(MON_BERLIN - 1), 6);     /* Sunday 23:59:59.999 */
    assert_int_equal(bal_local_minute(MON_BERLIN - 1), 1439);
    assert_int_equal(bal_local_minute(MON_BERLIN + 13 * H + 37 * MIN + 59999), 817);
    assert_int_equal(bal_local_midnight(MON_BERLIN + 13 * H), MON_BERLIN);
    assert_int_equal(bal_local_midnight(MON_BERLIN), MON_BERLIN);
    assert_int_equal(bal_local_midnight(MON_BERLIN - 1), MON_BERLIN - 24 * H);
    assert_int_equal(bal_local_at(MON_BERLIN + 5 * H, 1080), MON_BERLIN + 18 * H);
    assert_int_equal(bal_local_at(MON_BERLIN, 1440), MON_BERLIN + 24 * H);
    /* 2016-03-27: 23 h; 02:00-03:00 does not exist, 02:30 reads as 03:30 CEST (as mktime does) */
    assert_int_equal(bal_weekday(SPRING_BERLIN), 6);
    assert_int_equal(bal_local_midnight(SPRING_BERLIN + 20 * H), SPRING_BERLIN);
    assert_int_equal(bal_local_at(SPRING_BERLIN, 1440), SPRING_BERLIN + 23 * H);
    assert_int_equal(bal_local_midnight(SPRING_BERLIN + 23 * H), SPRING_BERLIN + 23 * H);
    assert_int_equal(bal_local_at(SPRING_BERLIN, 120), SPRING_BERLIN + 2 * H); /* 02:00 CET = 03:00 CEST */
    assert_int_equal(bal_local_at(SPRING_BERLIN, 150), SPRING_BERLIN + 2 * H + 30 * MIN);
    assert_int_equal(bal_local_at(SPRING_BERLIN, 180), SPRING_BERLIN + 2 * H);
    assert_int_equal(bal_local_at(SPRING_BERLIN, 420), SPRING_BERLIN + 6 * H);
    assert_int_equal(bal_local_minute(SPRING_BERLIN + 2 * H), 180); /* 01:00Z = 03:00 CEST */
    assert_int_equal(bal_local_minute(SPRING_BERLIN + 2 * H - 1), 119);
    /* 2016-10-30: 25 h; 02:00-03:00 happens twice, 02:30 is the first (CEST) one */
    assert_int_equal(bal_local_at(FALL_BERLIN, 1440), FALL_BERLIN + 25 * H);
    assert_int_equal(bal_local_midnight(FALL_BERLIN + 24 * H + 59 * MIN), FALL_BERLIN);
    assert_int_equal(bal_local_at(FALL_BERLIN, 150), FALL_BERLIN + 2 * H + 30 * MIN);
    assert_int_equal(bal_local_at(FALL_BERLIN, 180), FALL_BERLIN + 4 * H);
    assert_int_equal(bal_local_minute(FALL_BERLIN + 3 * H + 30 * MIN), 150); /* the second 02:30 (CET) */
    /* before 1970: 1970-01-01 00:59:59 CET is 1 ms before the epoch */
    assert_int_equal(bal_local_minute(-1), 59);
    assert_int_equal(bal_local_midnight(-1), -H);
    assert_int_equal(bal_weekday(-1), 3); /* a Thursday */
}

static void test_calendar_denver(void **state)
{
    (void)state;
    bal_tz_apply("America/Denver");
    assert_int_equal(bal_weekday(SPRING_DENVER), 6);
    assert_int_equal(bal_local_midnight(SPRING_DENVER + 22 * H), SPRING_DENVER);
    assert_int_equal(bal_local_at(SPRING_DENVER, 1440), SPRING_DENVER + 23 * H);
    assert_int_equal(bal_local_at(SPRING_DENVER, 150), SPRING_DENVER + 2 * H + 30 * MIN); /* 03:30 MDT */
    assert_int_equal(bal_local_at(SPRING_DENVER, 420), SPRING_DENVER + 6 * H);
    assert_int_equal(bal_local_at(FALL_DENVER, 1440), FALL_DENVER + 25 * H);
    assert_int_equal(bal_local_at(FALL_DENVER, 90), FALL_DENVER + H + 30 * MIN); /* 01:30 MDT, the first */
    assert_int_equal(bal_local_at(FALL_DENVER, 120), FALL_DENVER + 3 * H);     /* 02:00 MST */
    assert_int_equal(bal_local_minute(FALL_DENVER + 2 * H + 30 * MIN), 90);    /* 01:30 MST, the second */
    assert_int_equal(bal_local_midnight(FALL_DENVER + 24 * H + 30 * MIN), FALL_DENVER);
    /* America/Sao_Paulo skipped midnight on 2018-11-04: the day starts at 01:00 -02 (03:00Z) */
    bal_tz_apply("America/Sao_Paulo");
    assert_int_equal(bal_local_midnight(1541300400000LL + 11 * H), 1541300400000LL);
    assert_int_equal(bal_local_midnight(1541300400000LL - 1), 1541300400000LL - 24 * H);
    bal_tz_apply("UTC");
    assert_int_equal(bal_local_midnight(86400000LL + 1), 86400000LL);
    assert_int_equal(bal_weekday(0), 3);
}

/* ---- windows ---- */

static void test_allowed_edges(void **state)
{
    struct bal_config *c = load_ok(FIX "valid.json");
    const struct bal_machine *kiln = &c->machines[0], *laser = &c->machines[1], *ev = &c->machines[3];
    const int64_t fri = MON_BERLIN + 4 * 24 * H, sat = fri + 24 * H, sun = sat + 24 * H;
    (void)state;
    bal_tz_apply("Europe/Berlin");
    assert_true(bal_machine_allowed(kiln, MON_BERLIN + 3 * H, 15)); /* no windows: always */
    assert_true(bal_machine_allowed(laser, MON_BERLIN + 8 * H, 15));
    assert_false(bal_machine_allowed(laser, MON_BERLIN + 7 * H + 45 * MIN, 15)); /* 07:45-08:00 */
    assert_false(bal_machine_allowed(laser, MON_BERLIN + 7 * H + 50 * MIN, 15)); /* partly outside */
    assert_true(bal_machine_allowed(laser, MON_BERLIN + 19 * H + 45 * MIN, 15)); /* ends at 20:00 */
    assert_false(bal_machine_allowed(laser, MON_BERLIN + 19 * H + 50 * MIN, 15));
    assert_false(bal_machine_allowed(laser, MON_BERLIN + 20 * H, 5));
    assert_true(bal_machine_allowed(laser, fri + 19 * H, 60));
    assert_false(bal_machine_allowed(laser, fri + 19 * H + 30 * MIN, 60));
    assert_true(bal_machine_allowed(laser, sat + 10 * H, 60));
    assert_true(bal_machine_allowed(laser, sat + 13 * H, 60));
    assert_false(bal_machine_allowed(laser, sat + 13 * H + 30 * MIN, 60));
    assert_false(bal_machine_allowed(laser, sat + 9 * H + 55 * MIN, 5));
    assert_false(bal_machine_allowed(laser, sun + 10 * H, 15));
    assert_true(bal_machine_allowed(laser, MON_BERLIN + 8 * H, 12 * 60)); /* longer than an hour */
    assert_false(bal_machine_allowed(laser, MON_BERLIN + 8 * H, 12 * 60 + 5));
    /* adjacent windows join; a slot over midnight needs both days */
    assert_true(bal_machine_allowed(ev, MON_BERLIN + 5 * H + 30 * MIN, 60));
    assert_true(bal_machine_allowed(ev, sun + 23 * H + 30 * MIN, 60));
    /* over midnight the next minutes belong to the next weekday */
    struct bal_machine night = { .id = "night", .power_w = 1, .nwindows = 2,
                                 .windows = { { .days_mask = 0x60, .from_min = 1320, .to_min = 1440 },
                                              { .days_mask = 0x01, .from_min = 0, .to_min = 360 } } };
    assert_true(bal_machine_allowed(&night, sun + 23 * H + 30 * MIN, 60));  /* into Monday */
    assert_false(bal_machine_allowed(&night, sat + 23 * H + 30 * MIN, 60)); /* into Sunday 00:00 */
    assert_true(bal_machine_allowed(&night, sat + 22 * H, 120));
    assert_true(bal_machine_allowed(&night, sun + 22 * H, 8 * 60));
    assert_false(bal_machine_allowed(&night, sun + 22 * H, 8 * 60 + 1));
    bal_config_free(c);
}

static void test_allowed_dst(void **state)
{
    struct bal_machine m = { .id = "m", .power_w = 1, .nwindows = 1,
                             .windows = { { .days_mask = 0x7F, .from_min = 0, .to_min = 150 } } };
    (void)state;
    bal_tz_apply("Europe/Berlin");
    /* spring: from 01:45 CET, 30 min of real time are 01:45-01:59 and 03:00-03:14 CEST */
    assert_false(bal_machine_allowed(&m, SPRING_BERLIN + H + 45 * MIN, 30));
    assert_true(bal_machine_allowed(&m, SPRING_BERLIN + H + 30 * MIN, 30));
    m.windows[0].to_min = 240;
    assert_true(bal_machine_allowed(&m, SPRING_BERLIN + H + 45 * MIN, 30));
    assert_true(bal_machine_allowed(&m, SPRING_BERLIN + 2 * H + 45 * MIN, 15)); /* 03:45-04:00 CEST */
    assert_false(bal_machine_allowed(&m, SPRING_BERLIN + 2 * H + 50 * MIN, 15));
    /* fall: 02:15-02:44 CEST is partly after 02:30; 02:00-02:29 CET (the second pass) is inside */
    m.windows[0].to_min = 150;
    assert_false(bal_machine_allowed(&m, FALL_BERLIN + 2 * H + 15 * MIN, 30));
    assert_true(bal_machine_allowed(&m, FALL_BERLIN + 3 * H, 30));
    assert_false(bal_machine_allowed(&m, FALL_BERLIN + 2 * H + 45 * MIN, 30)); /* 02:45 CEST, then 02:00 CET */
    m.windows[0].to_min = 180;
    assert_true(bal_machine_allowed(&m, FALL_BERLIN + 2 * H + 15 * MIN, 60)); /* 02:15-02:59 CEST, 02:00-02:14 CET */
    assert_false(bal_machine_allowed(&m, FALL_BERLIN + 3 * H + 45 * MIN, 30)); /* 02:45-03:14 CET */
}

/* ---- expansion ---- */

struct want {
    const char *id;
    size_t cfg;
    double start_h, end_h; /* hours after the reference midnight */
};

static void check_list(const struct bal_job *got, size_t n, const struct want *w, size_t nw, int64_t ref_ms)
{
    assert_int_equal(n, nw);
    for (size_t i = 0; i < nw; i++) {
        assert_string_equal(got[i].id, w[i].id);
        assert_int_equal(got[i].cfg, w[i].cfg);
        assert_int_equal(got[i].earliest_ms, ref_ms + (int64_t)(w[i].start_h * H));
        assert_int_equal(got[i].deadline_ms, ref_ms + (int64_t)(w[i].end_h * H));
    }
}

static void test_expand_week(void **state)
{
    static const struct want week[] = {
        { "tank@2016-07-11", 2, 6, 24 },        { "kiln-daily@2016-07-11", 0, 7, 18 },
        { "tank@2016-07-12", 2, 30, 48 },       { "kiln-daily@2016-07-12", 0, 31, 42 },
        { "laser-cut@2016-07-12", 1, 32, 41 },  { "tank@2016-07-13", 2, 54, 72 },
        { "kiln-daily@2016-07-13", 0, 55, 66 }, { "tank@2016-07-14", 2, 78, 96 },
        { "kiln-daily@2016-07-14", 0, 79, 90 }, { "laser-cut@2016-07-14", 1, 80, 89 },
        { "tank@2016-07-15", 2, 102, 120 },     { "kiln-daily@2016-07-15", 0, 103, 114 },
        { "ev-trip", 3, 103, 113 },             { "tank@2016-07-16", 2, 126, 144 },
        { "tank@2016-07-17", 2, 150, 168 },
    };
    struct bal_config *c = load_ok(FIX "valid.json");
    struct bal_job out[32];
    size_t n;
    (void)state;
    bal_tz_apply(c->site.timezone);
    n = bal_jobs_expand(c, MON_BERLIN, MON_BERLIN + 7 * 24 * H, out, 32);
    check_list(out, n, week, sizeof week / sizeof week[0], MON_BERLIN);
    /* energy from duration x power: 6 h x 6 kW, 2 h x 3 kW, 3 h x 2.5 kW; ev-trip as given */
    check_job(&out[0], "tank@2016-07-11", 2, 2, MON_BERLIN + 6 * H, MON_BERLIN + 24 * H, 7500, false, true);
    check_job(&out[1], "kiln-daily@2016-07-11", 0, 0, MON_BERLIN + 7 * H, MON_BERLIN + 18 * H, 36000, true, false);
    check_job(&out[4], "laser-cut@2016-07-12", 1, 1, MON_BERLIN + 32 * H, MON_BERLIN + 41 * H, 6000, true, false);
    check_job(&out[12], "ev-trip", 3, 3, MON_BERLIN + 103 * H, MON_BERLIN + 113 * H, 20000, true, false);
    bal_config_free(c);
}

static void test_expand_bounds(void **state)
{
    static const struct want noon[] = { { "tank@2016-07-11", 2, 6, 24 }, { "kiln-daily@2016-07-11", 0, 7, 18 },
                                        { "tank@2016-07-12", 2, 30, 48 } };
    static const struct want capped[] = { { "tank@2016-07-11", 2, 6, 24 }, { "kiln-daily@2016-07-11", 0, 7, 18 },
                                          { "ev-trip", 3, 103, 113 } };
    struct bal_config *c = load_ok(FIX "valid.json");
    struct bal_job out[8];
    size_t n;
    (void)state;
    bal_tz_apply("Europe/Berlin");
    /* from Monday noon to Tuesday 07:00: the kiln's Tuesday run starts exactly at the end, left out */
    n = bal_jobs_expand(c, MON_BERLIN + 12 * H, MON_BERLIN + 31 * H, out, 8);
    check_list(out, n, noon, 3, MON_BERLIN);
    /* from 18:00: the kiln's Monday deadline has passed exactly */
    n = bal_jobs_expand(c, MON_BERLIN + 18 * H, MON_BERLIN + 24 * H, out, 8);
    check_list(out, n, noon, 1, MON_BERLIN);
    /* the one-off job: in until its deadline */
    n = bal_jobs_expand(c, MON_BERLIN + 113 * H - 1, MON_BERLIN + 114 * H, out, 8);
    assert_int_equal(n, 3);
    assert_string_equal(out[2].id, "ev-trip"); /* after the kiln, which starts at the same time */
    n = bal_jobs_expand(c, MON_BERLIN + 113 * H, MON_BERLIN + 114 * H, out, 8);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].id, "tank@2016-07-15");
    assert_string_equal(out[1].id, "kiln-daily@2016-07-15");
    /* a small cap keeps the one-off job and the earliest days; out[3] is untouched */
    memset(out, 0x5A, sizeof out);
    n = bal_jobs_expand(c, MON_BERLIN, MON_BERLIN + 7 * 24 * H, out, 3);
    check_list(out, n, capped, 3, MON_BERLIN);
    assert_int_equal(out[3].id[0], 0x5A);
    assert_int_equal(bal_jobs_expand(c, MON_BERLIN, MON_BERLIN + 7 * 24 * H, NULL, 0), 0);
    assert_int_equal(bal_jobs_expand(c, MON_BERLIN + H, MON_BERLIN, out, 8), 0); /* empty range */
    bal_config_free(c);
}

static void test_expand_dst_berlin(void **state)
{
    /* 2016-03-27 (Sunday, 23 h): 07:00-18:00 is 11 h of real time, 01:00-04:00 only 2 h, and "gap"
     * starts at 02:30, which reads as 03:30 CEST */
    static const struct want spring[] = {
        { "whole@2016-03-27", 3, 0, 23 }, { "night@2016-03-27", 1, 1, 3 }, { "once", 4, 1, 4 },
        { "gap@2016-03-27", 2, 2.5, 4 },  { "work@2016-03-27", 0, 6, 17 },
    };
    /* 2016-10-30 (Sunday, 25 h): 07:00-18:00 is 11 h, 01:00-04:00 is 4 h, 02:30 is the first one */
    static const struct want fall[] = {
        { "whole@2016-10-30", 3, 0, 25 }, { "night@2016-10-30", 1, 1, 5 },
        { "gap@2016-10-30", 2, 2.5, 6 },  { "work@2016-10-30", 0, 8, 19 },
    };
    struct bal_config *c = load_ok(FIX "days.json");
    struct bal_job out[16];
    size_t n;
    (void)state;
    bal_tz_apply(c->site.timezone);
    n = bal_jobs_expand(c, SPRING_BERLIN, SPRING_BERLIN + 23 * H, out, 16);
    check_list(out, n, spring, 5, SPRING_BERLIN);
    assert_int_equal(out[4].deadline_ms - out[4].earliest_ms, 11 * H);
    check_job(&out[0], "whole@2016-03-27", 3, 0, SPRING_BERLIN, SPRING_BERLIN + 23 * H, 1500, true, false);
    check_job(&out[1], "night@2016-03-27", 1, 0, SPRING_BERLIN + H, SPRING_BERLIN + 3 * H, 1000, false, false);
    check_job(&out[2], "once", 4, 0, SPRING_BERLIN + H, SPRING_BERLIN + 4 * H, 1500, true, false);
    check_job(&out[4], "work@2016-03-27", 0, 0, SPRING_BERLIN + 6 * H, SPRING_BERLIN + 17 * H, 10000, true, false);
    n = bal_jobs_expand(c, FALL_BERLIN, FALL_BERLIN + 25 * H, out, 16);
    check_list(out, n, fall, 4, FALL_BERLIN);
    assert_int_equal(out[3].deadline_ms - out[3].earliest_ms, 11 * H);
    bal_config_free(c);
}

static void test_expand_days_across_dst(void **state)
{
    /* Saturday 24 h, Sunday 23 h, Monday 24 h; a modulating machine's duration job at its maximum */
    struct bal_config *c = load_ok(FIX "days.json");
    struct bal_job out[32];
    size_t n, wholes = 0;
    int64_t sat = SPRING_BERLIN - 24 * H, day_h[3] = { 24, 23, 24 }, start = sat;
    (void)state;
    bal_tz_apply("Europe/Berlin");
    n = bal_jobs_expand(c, sat, SPRING_BERLIN + 47 * H, out, 32);
    assert_int_equal(n, 4 + 5 + 3); /* sat: whole night work charge; sun: whole night once gap work; mon */
    for (size_t i = 0; i < n; i++)
        if (out[i].cfg == 3) {
            assert_int_equal(out[i].earliest_ms, start);
            assert_int_equal(out[i].deadline_ms - out[i].earliest_ms, day_h[wholes] * H);
            start = out[i].deadline_ms;
            wholes++;
        }
    assert_int_equal(wholes, 3);
    check_job(&out[3], "charge@2016-03-26", 5, 1, sat + 8 * H, sat + 20 * H, 6000, true, false);
    assert_string_equal(out[n - 1].id, "work@2016-03-28");
    bal_config_free(c);
}

static void test_expand_dst_denver(void **state)
{
    static const struct want spring[] = {
        { "whole@2016-03-13", 3, 0, 23 }, { "night@2016-03-13", 1, 1, 3 },
        { "gap@2016-03-13", 2, 2.5, 4 },  { "work@2016-03-13", 0, 6, 17 },
    };
    static const struct want fall[] = {
        { "whole@2016-11-06", 3, 0, 25 }, { "night@2016-11-06", 1, 1, 5 },
        { "gap@2016-11-06", 2, 3.5, 6 },  { "work@2016-11-06", 0, 8, 19 },
    };
    struct bal_config *c = load_ok(FIX "days.json");
    struct bal_job out[16];
    size_t n;
    (void)state;
    bal_tz_apply("America/Denver");
    n = bal_jobs_expand(c, SPRING_DENVER, SPRING_DENVER + 23 * H, out, 16);
    check_list(out, n, spring, 4, SPRING_DENVER);
    n = bal_jobs_expand(c, FALL_DENVER, FALL_DENVER + 25 * H, out, 16);
    check_list(out, n, fall, 4, FALL_DENVER);
    bal_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_actuators),
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_err_out_of_range),
        cmocka_unit_test(test_err_unknown_key),
        cmocka_unit_test(test_err_dup_id),
        cmocka_unit_test(test_err_unknown_ref),
        cmocka_unit_test(test_err_power),
        cmocka_unit_test(test_err_windows),
        cmocka_unit_test(test_err_job_times),
        cmocka_unit_test(test_err_job_amount),
        cmocka_unit_test(test_err_surplus_required),
        cmocka_unit_test(test_err_actuator),
        cmocka_unit_test(test_err_balancer),
        cmocka_unit_test(test_err_shape),
        cmocka_unit_test(test_calendar_berlin),
        cmocka_unit_test(test_calendar_denver),
        cmocka_unit_test(test_allowed_edges),
        cmocka_unit_test(test_allowed_dst),
        cmocka_unit_test(test_expand_week),
        cmocka_unit_test(test_expand_bounds),
        cmocka_unit_test(test_expand_dst_berlin),
        cmocka_unit_test(test_expand_days_across_dst),
        cmocka_unit_test(test_expand_dst_denver),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
