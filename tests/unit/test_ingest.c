/* Unit tests of col_ingest: real payloads of Shelly Gen2, Tasmota and OpenDTU mapped to exact fields,
 * generic JSON pointers, every kind of malformed message with its exact code and reason (and no field
 * made up as 0), and fabgrid's own topics as exact line protocol lines. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "col_ingest.h"

/* ---- helpers ---- */

static struct col_mqtt_device_cfg device(int preset, const char *topic)
{
    struct col_mqtt_device_cfg d;
    memset(&d, 0, sizeof d);
    strcpy(d.id, "dev1");
    d.preset = preset;
    strcpy(d.topic, topic);
    d.role = FG_ROLE_LOAD;
    d.interval_s = 30;
    return d;
}

static void add_generic(struct col_mqtt_device_cfg *d, const char *field, const char *pointer, double scale)
{
    struct col_mqtt_field *f = &d->fields[d->nfields++];
    strcpy(f->field, field);
    strcpy(f->pointer, pointer);
    f->scale = scale;
}

struct result {
    int rc;
    struct col_field f[COL_INGEST_FIELDS_MAX];
    char err[256];
};

/* Runs col_ingest_device on a string payload; out[] starts with no name so that tests can check that a
 * failure wrote no field. */
static struct result ingest(const struct col_mqtt_device_cfg *d, const char *topic, const char *payload, size_t len)
{
    struct result r;
    memset(&r, 0, sizeof r);
    strcpy(r.err, "untouched");
    r.rc = col_ingest_device(d, topic, payload, len, r.f, COL_INGEST_FIELDS_MAX, r.err, sizeof r.err);
    return r;
}

static struct result ingest_s(const struct col_mqtt_device_cfg *d, const char *topic, const char *payload)
{
    return ingest(d, topic, payload, strlen(payload));
}

static void assert_field(const struct result *r, int i, const char *name, double v)
{
    assert_true(i < r->rc);
    assert_non_null(r->f[i].name);
    assert_string_equal(r->f[i].name, name);
    assert_int_equal(r->f[i].v.kind, COL_VAL_NUMBER);
    if (r->f[i].v.number != v)
        fail_msg("%s: got %.17g, expected %.17g", name, r->f[i].v.number, v);
}

static void assert_fails(const struct result *r, int code, const char *err)
{
    assert_int_equal(r->rc, -code);
    assert_string_equal(r->err, err);
    assert_null(r->f[0].name); /* nothing written, in particular no 0 */
}

/* ---- topics ---- */

static void test_topic_patterns(void **state)
{
    (void)state;
    char buf[128];
    struct col_mqtt_device_cfg d = device(COL_PRESET_SHELLY_GEN2, "shellyplugsg2-laser");
    assert_int_equal(col_ingest_topic(&d, buf, sizeof buf), 35);
    assert_string_equal(buf, "shellyplugsg2-laser/status/switch:0");
    d = device(COL_PRESET_TASMOTA, "tasmota_5A9AE8");
    assert_int_equal(col_ingest_topic(&d, buf, sizeof buf), 26);
    assert_string_equal(buf, "tele/tasmota_5A9AE8/SENSOR");
    d = device(COL_PRESET_OPENDTU, "solar");
    strcpy(d.serial, "114172220001");
    assert_int_equal(col_ingest_topic(&d, buf, sizeof buf), 22);
    assert_string_equal(buf, "solar/114172220001/0/+");
    d = device(COL_PRESET_GENERIC, "meters/heatpump/json");
    assert_int_equal(col_ingest_topic(&d, buf, sizeof buf), 20);
    assert_string_equal(buf, "meters/heatpump/json");
    /* exactly fitting needs room for the terminator */
    assert_int_equal(col_ingest_topic(&d, buf, 20), -ENOSPC);
    assert_int_equal(col_ingest_topic(&d, buf, 21), 20);
}

static void test_topic_matches(void **state)
{
    (void)state;
    struct col_mqtt_device_cfg d = device(COL_PRESET_SHELLY_GEN2, "plug");
    assert_true(col_ingest_matches(&d, "plug/status/switch:0"));
    assert_false(col_ingest_matches(&d, "plug/status/switch:1"));
    assert_false(col_ingest_matches(&d, "plug/status/switch:0/x"));
    assert_false(col_ingest_matches(&d, "plug/status"));
    assert_false(col_ingest_matches(&d, NULL));
    d = device(COL_PRESET_TASMOTA, "plug");
    assert_true(col_ingest_matches(&d, "tele/plug/SENSOR"));
    assert_false(col_ingest_matches(&d, "tele/plug/STATE"));
    assert_false(col_ingest_matches(&d, "stat/plug/SENSOR"));
    d = device(COL_PRESET_OPENDTU, "solar");
    strcpy(d.serial, "114172220001");
    assert_true(col_ingest_matches(&d, "solar/114172220001/0/power"));
    assert_true(col_ingest_matches(&d, "solar/114172220001/0/efficiency"));
    assert_false(col_ingest_matches(&d, "solar/114172220001/1/power"));      /* a DC input, not AC */
    assert_false(col_ingest_matches(&d, "solar/114172220002/0/power"));      /* another inverter */
    assert_false(col_ingest_matches(&d, "solar/114172220001/0/power/extra"));
    assert_false(col_ingest_matches(&d, "solar/114172220001/status/reachable"));
    d = device(COL_PRESET_GENERIC, "meters/+/json");
    assert_true(col_ingest_matches(&d, "meters/heatpump/json"));
    assert_true(col_ingest_matches(&d, "meters//json"));
    assert_false(col_ingest_matches(&d, "meters/a/b/json"));
    d = device(COL_PRESET_GENERIC, "meters/#");
    assert_true(col_ingest_matches(&d, "meters"));
    assert_true(col_ingest_matches(&d, "meters/a/b"));
    assert_false(col_ingest_matches(&d, "meterss"));
    d = device(COL_PRESET_GENERIC, "#");
    assert_true(col_ingest_matches(&d, "a/b"));
    assert_false(col_ingest_matches(&d, "$SYS/broker/uptime"));
}

/* ---- presets with real payloads ---- */

/* Shelly script example (shelly-script-examples) of a Gen2 switch status: relay off, firmware without freq. */
static const char shelly_off[] =
    "{\"temperature\":{\"tF\":121.1,\"tC\":49.5},\"aenergy\":{\"minute_ts\":1632600459,\"by_minute\":[0,0,0],"
    "\"total\":0.134},\"current\":0,\"voltage\":238.215,\"apower\":0,\"output\":false,\"source\":\"switch\",\"id\":0}";

/* Shelly Plus Plug S (Gen2, firmware 1.x) status/switch:0 notification with freq and ret_aenergy. */
static const char shelly_on[] =
    "{\"id\":0, \"source\":\"WS_in\", \"output\":true, \"apower\":1184.7, \"voltage\":231.9, \"freq\":50.0, "
    "\"current\":5.129, \"aenergy\":{\"total\":41370.412,\"by_minute\":[19733.133,19718.301,19726.560],"
    "\"minute_ts\":1717171200}, \"ret_aenergy\":{\"total\":0.000,\"by_minute\":[0.000,0.000,0.000],"
    "\"minute_ts\":1717171200}, \"temperature\":{\"tC\":41.3, \"tF\":106.4}}";

static void test_shelly(void **state)
{
    (void)state;
    struct col_mqtt_device_cfg d = device(COL_PRESET_SHELLY_GEN2, "shellyplugsg2-laser");
    struct result r = ingest_s(&d, "shellyplugsg2-laser/status/switch:0", shelly_on);
    assert_int_equal(r.rc, 7);
    assert_string_equal(r.err, "");
    assert_field(&r, 0, "power_w", 1184.7);
    assert_field(&r, 1, "energy_wh", 41370.412);
    assert_field(&r, 2, "voltage_v", 231.9);
    assert_field(&r, 3, "current_a", 5.129);
    assert_field(&r, 4, "frequency_hz", 50.0);
    assert_field(&r, 5, "temperature_c", 41.3);
    assert_field(&r, 6, "on", 1);

    /* a relay that is off reports real zeros: those are written, freq is absent and left out */
    r = ingest_s(&d, "shellyplugsg2-laser/status/switch:0", shelly_off);
    assert_int_equal(r.rc, 6);
    assert_field(&r, 0, "power_w", 0);
    assert_field(&r, 1, "energy_wh", 0.134);
    assert_field(&r, 2, "voltage_v", 238.215);
    assert_field(&r, 3, "current_a", 0);
    assert_field(&r, 4, "temperature_c", 49.5);
    assert_field(&r, 5, "on", 0);
}

/* Tasmota tele/<topic>/SENSOR of a plug with an energy monitor (as published on the Local Bytes blog). */
static const char tasmota_sensor[] =
    "{\"Time\":\"2022-01-11T21:57:38\",\"ENERGY\":{\"TotalStartTime\":\"2020-10-21T22:15:00\",\"Total\":3.705,"
    "\"Yesterday\":0.028,\"Today\":0.026,\"Period\":1,\"Power\":5,\"ApparentPower\":5,\"ReactivePower\":0,"
    "\"Factor\":1.00,\"Voltage\":233,\"Current\":0.021}}";

static void test_tasmota(void **state)
{
    (void)state;
    struct col_mqtt_device_cfg d = device(COL_PRESET_TASMOTA, "livingroom-lamp");
    struct result r = ingest_s(&d, "tele/livingroom-lamp/SENSOR", tasmota_sensor);
    assert_int_equal(r.rc, 6);
    assert_string_equal(r.err, "");
    assert_field(&r, 0, "power_w", 5);
    assert_field(&r, 1, "energy_wh", 3705);      /* 3.705 kWh; plain 3.705 * 1000 is 3705.0000000000005 */
    assert_field(&r, 2, "voltage_v", 233);
    assert_field(&r, 3, "current_a", 0.021);
    assert_field(&r, 4, "power_factor", 1);
    assert_field(&r, 5, "energy_today_wh", 26);  /* 0.026 kWh */

    /* a sensor message of a plug without energy monitor (only a DS18B20) has nothing for us */
    r = ingest_s(&d, "tele/livingroom-lamp/SENSOR",
                 "{\"Time\":\"2022-01-11T21:57:38\",\"DS18B20\":{\"Temperature\":21.4},\"TempUnit\":\"C\"}");
    assert_fails(&r, COL_INGEST_ENOFIELD, "no usable field in payload");

    /* a two-channel device reports Power as an array: not a number, left out */
    r = ingest_s(&d, "tele/livingroom-lamp/SENSOR", "{\"ENERGY\":{\"Power\":[12,0],\"Voltage\":230}}");
    assert_int_equal(r.rc, 1);
    assert_field(&r, 0, "voltage_v", 230);
    assert_string_equal(r.err, "ENERGY.Power: expected a number, got an array");
}

/* OpenDTU publishes one plain number per topic (docs/MQTT_Topics.md, AC channel 0). */
static void test_opendtu(void **state)
{
    (void)state;
    static const struct {
        const char *leaf, *payload, *field;
        double v;
    } cases[] = {
        { "power", "231.4", "power_w", 231.4 },
        { "yieldtotal", "1234.567", "energy_wh", 1234567 },
        { "yieldday", "1520", "energy_today_wh", 1520 },
        { "voltage", "230.1", "voltage_v", 230.1 },
        { "current", "1.01", "current_a", 1.01 },
        { "frequency", "49.99", "frequency_hz", 49.99 },
        { "temperature", "28.3", "temperature_c", 28.3 },
        { "power", " 0\n", "power_w", 0 },
        { "temperature", "-4.5", "temperature_c", -4.5 },
        { "yieldtotal", "1.5e3", "energy_wh", 1500000 },
    };
    struct col_mqtt_device_cfg d = device(COL_PRESET_OPENDTU, "solar");
    strcpy(d.serial, "114172220001");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char topic[96];
        snprintf(topic, sizeof topic, "solar/114172220001/0/%s", cases[i].leaf);
        struct result r = ingest_s(&d, topic, cases[i].payload);
        assert_int_equal(r.rc, 1);
        assert_string_equal(r.err, "");
        assert_field(&r, 0, cases[i].field, cases[i].v);
    }
}

static void test_opendtu_malformed(void **state)
{
    (void)state;
    struct col_mqtt_device_cfg d = device(COL_PRESET_OPENDTU, "solar");
    strcpy(d.serial, "114172220001");
    struct result r = ingest_s(&d, "solar/114172220001/0/efficiency", "95.1");
    assert_fails(&r, COL_INGEST_ETOPIC, "opendtu leaf \"efficiency\" is not mapped");
    r = ingest_s(&d, "solar/114172220001/0/powerdc", "240.0");
    assert_fails(&r, COL_INGEST_ETOPIC, "opendtu leaf \"powerdc\" is not mapped");
    r = ingest_s(&d, "solar/114172220001/1/power", "120.0");
    assert_fails(&r, COL_INGEST_ETOPIC, "topic \"solar/114172220001/1/power\" is not device dev1's");
    r = ingest_s(&d, "solar/114172220001/0/power", "nan");
    assert_fails(&r, COL_INGEST_ETYPE, "power: expected a number, got \"nan\"");
    r = ingest_s(&d, "solar/114172220001/0/power", "NaN");
    assert_fails(&r, COL_INGEST_ETYPE, "power: expected a number, got \"NaN\"");
    r = ingest_s(&d, "solar/114172220001/0/power", "inf");
    assert_fails(&r, COL_INGEST_ETYPE, "power: expected a number, got \"inf\"");
    r = ingest_s(&d, "solar/114172220001/0/power", "0x10");
    assert_fails(&r, COL_INGEST_ETYPE, "power: expected a number, got \"0x10\"");
    r = ingest_s(&d, "solar/114172220001/0/power", "12 W");
    assert_fails(&r, COL_INGEST_ETYPE, "power: expected a number, got \"12 W\"");
    r = ingest_s(&d, "solar/114172220001/0/power", "1.");
    assert_fails(&r, COL_INGEST_ETYPE, "power: expected a number, got \"1.\"");
    r = ingest_s(&d, "solar/114172220001/0/power", "\"231\"");
    assert_fails(&r, COL_INGEST_ETYPE, "power: expected a number, got \"?231?\"");
    r = ingest_s(&d, "solar/114172220001/0/yieldtotal", "1e999");
    assert_fails(&r, COL_INGEST_ETYPE, "yieldtotal: expected a finite number");
    r = ingest_s(&d, "solar/114172220001/0/power", "");
    assert_fails(&r, COL_INGEST_ENOTJSON, "payload is empty");
}

/* ---- generic ---- */

static void test_generic_pointers(void **state)
{
    (void)state;
    struct col_mqtt_device_cfg d = device(COL_PRESET_GENERIC, "meters/heatpump");
    add_generic(&d, "power_w", "/data/P", 1);
    add_generic(&d, "energy_wh", "/data/E_kWh", 1000);
    add_generic(&d, "voltage_v", "/phases/1/U", 0.1);   /* array index, deci-volts */
    add_generic(&d, "current_a", "/a~1b/m~0n", 1);      /* key "a/b", then key "m~n" */
    add_generic(&d, "frequency_hz", "/", 1);            /* the member named "" */
    add_generic(&d, "temperature_c", "/phases/01/U", 1); /* leading zero: not an index, absent */
    add_generic(&d, "soc_pct", "/phases/-", 1);         /* past the end: absent */
    add_generic(&d, "power_factor", "/missing/deeper", 1);
    const char *p = "{\"data\":{\"P\":-1520.5,\"E_kWh\":12.3456},\"phases\":[{\"U\":2301},{\"U\":2298}],"
                    "\"a/b\":{\"m~n\":4.25},\"\":50.02}";
    struct result r = ingest_s(&d, "meters/heatpump", p);
    assert_int_equal(r.rc, 5);
    assert_string_equal(r.err, "");
    assert_field(&r, 0, "power_w", -1520.5);
    assert_field(&r, 1, "energy_wh", 12345.6);
    assert_field(&r, 2, "voltage_v", 229.8);
    assert_field(&r, 3, "current_a", 4.25);
    assert_field(&r, 4, "frequency_hz", 50.02);
    /* names point into the config */
    assert_ptr_equal(r.f[0].name, d.fields[0].field);
}

static void test_generic_bare_number(void **state)
{
    (void)state;
    struct col_mqtt_device_cfg d = device(COL_PRESET_GENERIC, "meters/pv/power");
    add_generic(&d, "power_w", "", 1000); /* a bare number in kW */
    struct result r = ingest_s(&d, "meters/pv/power", "3.2185");
    assert_int_equal(r.rc, 1);
    assert_field(&r, 0, "power_w", 3218.5);
    r = ingest_s(&d, "meters/pv/power", "{\"p\":1}");
    assert_fails(&r, COL_INGEST_ETYPE, "power_w (): expected a number, got an object");

    /* a pointer into a bare number finds nothing */
    struct col_mqtt_device_cfg g = device(COL_PRESET_GENERIC, "x");
    add_generic(&g, "power_w", "/p", 1);
    r = ingest_s(&g, "x", "42");
    assert_fails(&r, COL_INGEST_ENOFIELD, "no usable field in payload");
    r = ingest_s(&g, "x", "{\"p\":\"42\"}");
    assert_fails(&r, COL_INGEST_ETYPE, "power_w (/p): expected a number, got a string");
    r = ingest_s(&g, "x", "{\"p\":true}");
    assert_fails(&r, COL_INGEST_ETYPE, "power_w (/p): expected a number, got a bool");
}

/* ---- malformed device payloads: exact code and reason, never a field ---- */

static void test_malformed_json(void **state)
{
    (void)state;
    struct col_mqtt_device_cfg d = device(COL_PRESET_SHELLY_GEN2, "plug");
    const char *t = "plug/status/switch:0";
    struct result r = ingest_s(&d, t, "apower=12");
    assert_fails(&r, COL_INGEST_ENOTJSON, "payload is not JSON at byte 0");
    r = ingest_s(&d, t, "{\"apower\":12.5"); /* truncated */
    assert_fails(&r, COL_INGEST_ENOTJSON, "payload is not JSON at byte 14");
    r = ingest_s(&d, t, "{\"apower\":12.5,\"voltage\":231.9,\"current\":"); /* cut in the middle */
    assert_fails(&r, COL_INGEST_ENOTJSON, "payload is not JSON at byte 41");
    r = ingest_s(&d, t, "{\"apower\":NaN}");
    assert_fails(&r, COL_INGEST_ENOTJSON, "payload is not JSON at byte 10");
    r = ingest_s(&d, t, "{\"apower\":12} trailing");
    assert_fails(&r, COL_INGEST_ENOTJSON, "payload is not JSON at byte 14");
    r = ingest(&d, t, "{\"apower\":1}\0{\"x\":2}", 20); /* an embedded NUL */
    assert_fails(&r, COL_INGEST_ENOTJSON, "payload is not JSON at byte 12");
    r = ingest_s(&d, t, "");
    assert_fails(&r, COL_INGEST_ENOTJSON, "payload is empty");
    r = ingest_s(&d, t, "   ");
    assert_fails(&r, COL_INGEST_ENOTJSON, "payload is not JSON at byte 3");
    r = ingest_s(&d, t, "[1,2]");
    assert_fails(&r, COL_INGEST_ETYPE, "payload: expected an object, got an array");
    r = ingest_s(&d, t, "{}");
    assert_fails(&r, COL_INGEST_ENOFIELD, "no usable field in payload");
    r = ingest_s(&d, "plug/status/switch:1", "{\"apower\":12}");
    assert_fails(&r, COL_INGEST_ETOPIC, "topic \"plug/status/switch:1\" is not device dev1's");
}

static void test_wrong_types(void **state)
{
    (void)state;
    struct col_mqtt_device_cfg d = device(COL_PRESET_SHELLY_GEN2, "plug");
    const char *t = "plug/status/switch:0";
    struct result r = ingest_s(&d, t, "{\"id\":0,\"apower\":\"52.3\"}");
    assert_fails(&r, COL_INGEST_ETYPE, "apower: expected a number, got a string");
    r = ingest_s(&d, t, "{\"id\":0,\"apower\":null}");
    assert_fails(&r, COL_INGEST_ETYPE, "apower: expected a number, got null");
    r = ingest_s(&d, t, "{\"id\":0,\"apower\":true}");
    assert_fails(&r, COL_INGEST_ETYPE, "apower: expected a number, got a bool");
    r = ingest_s(&d, t, "{\"apower\":1e999}");
    assert_fails(&r, COL_INGEST_ETYPE, "apower: expected a finite number");
    r = ingest_s(&d, t, "{\"output\":1}");
    assert_fails(&r, COL_INGEST_ETYPE, "output: expected a bool, got a number");
    r = ingest_s(&d, t, "{\"aenergy\":{\"total\":[1]}}");
    assert_fails(&r, COL_INGEST_ETYPE, "aenergy.total: expected a number, got an array");

    /* one bad value does not throw away the good ones, and the bad one is not made 0 */
    r = ingest_s(&d, t, "{\"apower\":\"52.3\",\"voltage\":231.4,\"temperature\":{\"tC\":null}}");
    assert_int_equal(r.rc, 1);
    assert_field(&r, 0, "voltage_v", 231.4);
    assert_null(r.f[1].name);
    assert_string_equal(r.err, "apower: expected a number, got a string");
}

static char *filled(size_t n, const char *head, const char *tail)
{
    char *p = malloc(n + 1);
    assert_non_null(p);
    memset(p, ' ', n);
    memcpy(p, head, strlen(head));
    memcpy(p + n - strlen(tail), tail, strlen(tail));
    p[n] = '\0';
    return p;
}

static void test_size_limit(void **state)
{
    (void)state;
    struct col_mqtt_device_cfg d = device(COL_PRESET_SHELLY_GEN2, "plug");
    const char *t = "plug/status/switch:0";
    char *big = filled(70000, "{\"apower\":5,\"pad\":\"", "\"}");
    memset(big + 20, 'x', 70000 - 22);
    struct result r = ingest(&d, t, big, 70000);
    assert_fails(&r, COL_INGEST_ETOOBIG, "payload of 70000 bytes exceeds 65536");
    free(big);
    /* exactly at the limit is accepted */
    big = filled(65536, "{\"apower\":5", "}");
    r = ingest(&d, t, big, 65536);
    assert_int_equal(r.rc, 1);
    assert_field(&r, 0, "power_w", 5);
    r = ingest(&d, t, big, 65537); /* the size is checked before anything else */
    assert_int_equal(r.rc, -COL_INGEST_ETOOBIG);
    free(big);
}

static void test_depth_limit(void **state)
{
    (void)state;
    struct col_mqtt_device_cfg d = device(COL_PRESET_SHELLY_GEN2, "plug");
    const char *t = "plug/status/switch:0";
    char p[512];
    /* 100 deep */
    memset(p, '[', 100);
    memset(p + 100, ']', 100);
    struct result r = ingest(&d, t, p, 200);
    assert_fails(&r, COL_INGEST_EDEPTH, "nesting deeper than 16");
    /* an unterminated 100-deep prefix is refused the same way, before any parse */
    r = ingest(&d, t, p, 100);
    assert_fails(&r, COL_INGEST_EDEPTH, "nesting deeper than 16");
    /* 16 levels (the object plus 15 arrays) pass, 17 do not */
    strcpy(p, "{\"apower\":5,\"x\":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}");
    r = ingest_s(&d, t, p);
    assert_int_equal(r.rc, 1);
    strcpy(p, "{\"apower\":5,\"x\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}");
    r = ingest_s(&d, t, p);
    assert_fails(&r, COL_INGEST_EDEPTH, "nesting deeper than 16");
    /* brackets inside strings (with escaped quotes) do not count */
    strcpy(p, "{\"apower\":5,\"s\":\"\\\"[[[[[[[[[[[[[[[[[[[[[[[[\"}");
    r = ingest_s(&d, t, p);
    assert_int_equal(r.rc, 1);
    assert_field(&r, 0, "power_w", 5);
}

/* ---- fabgrid topics ---- */

struct sink {
    int calls;
    char text[16384];
};

static void sink_line(void *ud, const char *line, size_t len)
{
    struct sink *s = ud;
    assert_int_equal(strlen(line), len);
    assert_true(len > 0 && line[len - 1] == '\n');
    assert_true(strlen(s->text) + len < sizeof s->text);
    strcat(s->text, line);
    s->calls++;
}

struct fab_result {
    int rc;
    struct sink s;
    char err[256];
};

static struct fab_result *fab(const char *subtopic, const char *payload)
{
    static struct fab_result r;
    memset(&r, 0, sizeof r);
    strcpy(r.err, "untouched");
    r.rc = col_ingest_fabgrid("hof3", subtopic, payload, strlen(payload), sink_line, &r.s, r.err, sizeof r.err);
    return &r;
}

static void assert_fab_fails(const struct fab_result *r, int code, const char *err)
{
    assert_int_equal(r->rc, -code);
    assert_string_equal(r->err, err);
    assert_int_equal(r->s.calls, 0);
}

static void test_machine_state(void **state)
{
    (void)state;
    struct fab_result *r = fab("machine/kiln/state", "{\"ts\":1700000000000,\"on\":true,\"power_w\":6012.5,"
                                                     "\"job\":\"kiln-daily\",\"reason\":\"surplus\"}");
    assert_int_equal(r->rc, 1);
    assert_string_equal(r->err, "");
    assert_string_equal(r->s.text, "machine,machine=kiln,site=hof3 on=1i,power_w=6012.5,reason=\"surplus\","
                                   "job=\"kiln-daily\" 1700000000000\n");
    r = fab("machine/kiln/state", "{\"ts\":1700000010000,\"on\":false,\"power_w\":0,\"job\":null,"
                                  "\"reason\":\"waiting for \\\"surplus\\\"\"}");
    assert_int_equal(r->rc, 1);
    assert_string_equal(r->err, "");
    assert_string_equal(r->s.text, "machine,machine=kiln,site=hof3 on=0i,power_w=0,reason=\"waiting for \\\"surplus\\\"\" "
                                   "1700000010000\n");
    /* a reason of the wrong type or too long is left out with a warning, the rest is written */
    r = fab("machine/kiln/state", "{\"ts\":7,\"on\":true,\"reason\":42,\"job\":\"j1\"}");
    assert_int_equal(r->rc, 1);
    assert_string_equal(r->err, "reason: expected a string, got a number");
    assert_string_equal(r->s.text, "machine,machine=kiln,site=hof3 on=1i,job=\"j1\" 7\n");
    char longer[400];
    snprintf(longer, sizeof longer, "{\"ts\":7,\"on\":true,\"reason\":\"%0257d\"}", 0);
    r = fab("machine/kiln/state", longer);
    assert_int_equal(r->rc, 1);
    assert_string_equal(r->err, "reason: longer than 256 bytes");
    assert_string_equal(r->s.text, "machine,machine=kiln,site=hof3 on=1i 7\n");
    /* power unknown: left out, not 0 */
    r = fab("machine/laser-2/state", "{\"ts\":1700000010000,\"on\":false}");
    assert_int_equal(r->rc, 1);
    assert_string_equal(r->s.text, "machine,machine=laser-2,site=hof3 on=0i 1700000010000\n");
    r = fab("machine/kiln/state", "{\"ts\":1700000010000,\"on\":\"yes\",\"power_w\":null}");
    assert_fab_fails(r, COL_INGEST_ETYPE, "on: expected a bool, got a string");
    r = fab("machine/kiln/state", "{\"on\":true,\"power_w\":10}");
    assert_fab_fails(r, COL_INGEST_ENOFIELD, "ts: missing");
    r = fab("machine/kiln/state", "{\"ts\":\"2026-01-01\",\"on\":true}");
    assert_fab_fails(r, COL_INGEST_ETYPE, "ts: expected an integer ms timestamp, got a string");
    r = fab("machine/kiln/state", "{\"ts\":1.5,\"on\":true}");
    assert_fab_fails(r, COL_INGEST_ETYPE, "ts: expected an integer ms timestamp, got a number");
    r = fab("machine/kiln/state", "{\"ts\":1700000010000}");
    assert_fab_fails(r, COL_INGEST_ENOFIELD, "no usable field in payload");
    r = fab("machine/Kiln/state", "{\"ts\":1,\"on\":true}");
    assert_fab_fails(r, COL_INGEST_ETOPIC, "machine id \"Kiln\" of topic \"machine/Kiln/state\" is not an id");
    r = fab("machine//state", "{\"ts\":1,\"on\":true}");
    assert_fab_fails(r, COL_INGEST_ETOPIC, "machine id \"\" of topic \"machine//state\" is not an id");
    r = fab("machine/kiln/state", "[]");
    assert_fab_fails(r, COL_INGEST_ETYPE, "payload: expected an object, got an array");
    r = fab("machine/kiln/state", "online");
    assert_fab_fails(r, COL_INGEST_ENOTJSON, "payload is not JSON at byte 0");
}

static void test_unknown_topics(void **state)
{
    (void)state;
    struct fab_result *r = fab("balancer/status", "online");
    assert_fab_fails(r, COL_INGEST_ETOPIC, "unknown fabgrid topic \"balancer/status\"");
    r = fab("machine/kiln/state/extra", "{}");
    assert_fab_fails(r, COL_INGEST_ETOPIC, "unknown fabgrid topic \"machine/kiln/state/extra\"");
    r = fab("jobs/kiln-daily/x", "{\"state\":\"queued\"}");
    assert_fab_fails(r, COL_INGEST_ETOPIC, "unknown fabgrid topic \"jobs/kiln-daily/x\"");
    r = fab("jobs", "{\"state\":\"queued\"}");
    assert_fab_fails(r, COL_INGEST_ETOPIC, "unknown fabgrid topic \"jobs\"");
    r = fab("advice/x", "{}");
    assert_fab_fails(r, COL_INGEST_ETOPIC, "unknown fabgrid topic \"advice/x\"");
}

static const char plan_json[] =
    "{\"ts\":1700000000000,\"slot_min\":15,\"slots\":["
    "{\"start\":1700000900000,\"pv_w\":5200.5,\"load_w\":1800,\"machines\":{\"kiln\":6000,\"laser\":0}},"
    "{\"start\":1700001800000,\"pv_w\":4100,\"load_w\":1750,\"machines\":{\"laser\":1200}},"
    "{\"start\":1700002700000,\"pv_w\":0,\"load_w\":900,\"machines\":{}}]}";

static void test_plan(void **state)
{
    (void)state;
    struct fab_result *r = fab("balancer/plan", plan_json);
    assert_int_equal(r->rc, 9);
    assert_int_equal(r->s.calls, 9);
    assert_string_equal(r->err, "");
    assert_string_equal(r->s.text, "forecast,site=hof3 pv_w=5200.5,load_w=1800 1700000900000\n"
                                   "plan,machine=kiln,site=hof3 planned_w=6000 1700000900000\n"
                                   "plan,machine=laser,site=hof3 planned_w=0 1700000900000\n"
                                   "forecast,site=hof3 pv_w=4100,load_w=1750 1700001800000\n"
                                   "plan,machine=kiln,site=hof3 planned_w=0 1700001800000\n"
                                   "plan,machine=laser,site=hof3 planned_w=1200 1700001800000\n"
                                   "forecast,site=hof3 pv_w=0,load_w=900 1700002700000\n"
                                   "plan,machine=kiln,site=hof3 planned_w=0 1700002700000\n"
                                   "plan,machine=laser,site=hof3 planned_w=0 1700002700000\n");
}

static void test_plan_partial(void **state)
{
    (void)state;
    /* slot 0 has no start (skipped), slot 1 a string for kiln (kiln left out there, not 0) and no
       load_w, slot 2 a wrong "machines" (no plan lines), slot 3 no "machines" (everything planned 0) */
    struct fab_result *r = fab("balancer/plan", "{\"ts\":1,\"slots\":["
                                                "{\"pv_w\":1,\"machines\":{\"kiln\":1}},"
                                                "{\"start\":1000,\"pv_w\":2,\"machines\":{\"kiln\":\"6000\",\"saw\":300}},"
                                                "{\"start\":2000,\"pv_w\":3,\"machines\":[1]},"
                                                "{\"start\":3000,\"load_w\":4}]}");
    assert_int_equal(r->rc, 6);
    assert_string_equal(r->err, "slots[0].start: expected an integer ms timestamp, got nothing");
    assert_string_equal(r->s.text, "forecast,site=hof3 pv_w=2 1000\n"
                                   "plan,machine=saw,site=hof3 planned_w=300 1000\n"
                                   "forecast,site=hof3 pv_w=3 2000\n"
                                   "forecast,site=hof3 load_w=4 3000\n"
                                   "plan,machine=kiln,site=hof3 planned_w=0 3000\n"
                                   "plan,machine=saw,site=hof3 planned_w=0 3000\n");
    r = fab("balancer/plan", "{\"slots\":[{\"start\":1000,\"machines\":{\"kiln\":\"6000\"}}]}");
    assert_int_equal(r->rc, -COL_INGEST_ETYPE);
    assert_string_equal(r->err, "slots[0].machines.kiln: expected a number, got a string");
    assert_int_equal(r->s.calls, 0);
    r = fab("balancer/plan", "{\"slots\":[{\"start\":1000,\"machines\":{\"Bad Id\":5,\"kiln\":7}}]}");
    assert_int_equal(r->rc, 1);
    assert_string_equal(r->err, "slots[0].machines: \"Bad Id\" is not a machine id");
    assert_string_equal(r->s.text, "plan,machine=kiln,site=hof3 planned_w=7 1000\n");
}

struct counter {
    int calls;
    char last[128];
};

static void count_line(void *ud, const char *line, size_t len)
{
    struct counter *c = ud;
    assert_int_equal(strlen(line), len);
    snprintf(c->last, sizeof c->last, "%s", line);
    c->calls++;
}

static void test_plan_limits(void **state)
{
    (void)state;
    struct fab_result *r = fab("balancer/plan", "{\"ts\":1,\"slot_min\":15,\"slots\":[]}");
    assert_int_equal(r->rc, 0);
    assert_string_equal(r->err, "");
    assert_int_equal(r->s.calls, 0);
    r = fab("balancer/plan", "{\"ts\":1}");
    assert_fab_fails(r, COL_INGEST_ENOFIELD, "slots: missing");
    r = fab("balancer/plan", "{\"slots\":{}}");
    assert_fab_fails(r, COL_INGEST_ETYPE, "slots: expected an array, got an object");

    /* 10,000 slots are written, 10,001 refused before any line */
    size_t cap = 10001 * 40 + 64, n = 0;
    char *p = malloc(cap);
    assert_non_null(p);
    n += (size_t)snprintf(p + n, cap - n, "{\"slots\":[");
    for (int i = 0; i < 10001; i++)
        n += (size_t)snprintf(p + n, cap - n, "%s{\"start\":%d,\"pv_w\":%d}", i ? "," : "", 1000 + i, i);
    snprintf(p + n, cap - n, "]}");
    struct counter c = { 0, "" };
    char err[128];
    int rc = col_ingest_fabgrid("hof3", "balancer/plan", p, strlen(p), count_line, &c, err, sizeof err);
    assert_int_equal(rc, -COL_INGEST_ETOOBIG);
    assert_string_equal(err, "plan of 10001 slots exceeds 10000");
    assert_int_equal(c.calls, 0);
    /* without the last slot: 10,000 forecast lines */
    strcpy(strrchr(p, '{') - 1, "]}");
    rc = col_ingest_fabgrid("hof3", "balancer/plan", p, strlen(p), count_line, &c, err, sizeof err);
    assert_int_equal(rc, 10000);
    assert_int_equal(c.calls, 10000);
    assert_string_equal(err, "");
    assert_string_equal(c.last, "forecast,site=hof3 pv_w=9999 10999\n");
    free(p);
}

static void test_advice(void **state)
{
    (void)state;
    struct fab_result *r = fab("advice", "{\"ts\":1700000000000,\"level\":\"green\",\"surplus_w\":3200.5,"
                                         "\"next_green\":null}");
    assert_int_equal(r->rc, 1);
    assert_string_equal(r->err, "");
    assert_string_equal(r->s.text, "advice,site=hof3 level=\"green\",level_code=2i,surplus_w=3200.5 1700000000000\n");
    r = fab("advice", "{\"ts\":1700000000000,\"level\":\"red\",\"surplus_w\":-450,\"next_green\":1700003600000,"
                      "\"machine\":\"laser\"}");
    assert_int_equal(r->rc, 1);
    assert_string_equal(r->s.text, "advice,machine=laser,site=hof3 level=\"red\",level_code=0i,surplus_w=-450,"
                                   "next_green_ms=1700003600000i 1700000000000\n");
    r = fab("advice", "{\"ts\":5,\"level\":\"yellow\",\"surplus_w\":120}");
    assert_string_equal(r->s.text, "advice,site=hof3 level=\"yellow\",level_code=1i,surplus_w=120 5\n");
    /* an unknown level is left out, the rest is written */
    r = fab("advice", "{\"ts\":5,\"level\":\"purple\",\"surplus_w\":120}");
    assert_int_equal(r->rc, 1);
    assert_string_equal(r->err, "level: expected green, yellow or red, got \"purple\"");
    assert_string_equal(r->s.text, "advice,site=hof3 surplus_w=120 5\n");
    r = fab("advice", "{\"ts\":5,\"level\":2,\"surplus_w\":\"120\"}");
    assert_fab_fails(r, COL_INGEST_ETYPE, "level: expected a string, got a number");
    /* a machine tag that cannot be written refuses the message rather than making it site advice */
    r = fab("advice", "{\"ts\":5,\"level\":\"green\",\"machine\":7}");
    assert_fab_fails(r, COL_INGEST_ETYPE, "machine: expected a machine id, got a number");
    r = fab("advice", "{\"ts\":5,\"level\":\"green\",\"machine\":\"Laser Cutter\"}");
    assert_fab_fails(r, COL_INGEST_ETYPE, "machine: expected a machine id, got a string \"Laser Cutter\"");
    r = fab("advice", "{\"ts\":5,\"level\":\"green\",\"next_green\":\"soon\"}");
    assert_int_equal(r->rc, 1);
    assert_string_equal(r->err, "next_green: expected an integer ms timestamp or null, got a string");
    assert_string_equal(r->s.text, "advice,site=hof3 level=\"green\",level_code=2i 5\n");
}

static void test_jobs(void **state)
{
    (void)state;
    struct fab_result *r = fab("jobs/kiln-daily@2026-12-01",
                               "{\"ts\":1764576000000,\"job\":\"kiln-daily@2026-12-01\",\"machine\":\"kiln\","
                               "\"state\":\"planned\",\"earliest\":1764572400000,\"deadline\":1764612000000,"
                               "\"energy_wh\":36000,\"done_wh\":1500.5,\"planned_start\":1764583200000,"
                               "\"planned_end\":1764604800000,\"reason\":\"best PV window\"}");
    assert_int_equal(r->rc, 1);
    assert_string_equal(r->err, "");
    assert_string_equal(r->s.text, "job,job=kiln-daily@2026-12-01,machine=kiln,site=hof3 state=\"planned\",state_code=1i,"
                                   "earliest_ms=1764572400000i,deadline_ms=1764612000000i,energy_wh=36000,"
                                   "done_wh=1500.5,planned_start_ms=1764583200000i,planned_end_ms=1764604800000i,"
                                   "reason=\"best PV window\" 1764576000000\n");
    /* null plan times and an absent reason are left out */
    r = fab("jobs/laser-batch@2026-12-01", "{\"ts\":10,\"machine\":\"laser\",\"state\":\"queued\",\"earliest\":1,"
                                           "\"deadline\":2,\"energy_wh\":6000,\"done_wh\":0,\"planned_start\":null,"
                                           "\"planned_end\":null}");
    assert_int_equal(r->rc, 1);
    assert_string_equal(r->err, "");
    assert_string_equal(r->s.text, "job,job=laser-batch@2026-12-01,machine=laser,site=hof3 state=\"queued\","
                                   "state_code=0i,earliest_ms=1i,deadline_ms=2i,energy_wh=6000,done_wh=0 10\n");
    static const char *const states[] = { "queued", "planned", "running", "done", "missed", "rejected" };
    for (int i = 0; i < 6; i++) {
        char p[128], want[128];
        snprintf(p, sizeof p, "{\"ts\":5,\"machine\":\"ev\",\"state\":\"%s\"}", states[i]);
        snprintf(want, sizeof want, "job,job=req-%d,machine=ev,site=hof3 state=\"%s\",state_code=%di 5\n", i, states[i], i);
        char topic[32];
        snprintf(topic, sizeof topic, "jobs/req-%d", i);
        r = fab(topic, p);
        assert_int_equal(r->rc, 1);
        assert_string_equal(r->s.text, want);
    }
    /* wrongly typed values are left out with the first one named */
    r = fab("jobs/j", "{\"ts\":5,\"machine\":\"ev\",\"state\":\"paused\",\"deadline\":\"18:00\",\"done_wh\":7}");
    assert_int_equal(r->rc, 1);
    assert_string_equal(r->err, "state: expected queued, planned, running, done, missed or rejected, got \"paused\"");
    assert_string_equal(r->s.text, "job,job=j,machine=ev,site=hof3 done_wh=7 5\n");
    r = fab("jobs/j", "{\"ts\":5,\"machine\":\"ev\",\"state\":3,\"planned_end\":1.5}");
    assert_fab_fails(r, COL_INGEST_ETYPE, "state: expected a string, got a number");
    r = fab("jobs/j", "{\"ts\":5,\"machine\":\"ev\",\"planned_end\":1.5}");
    assert_fab_fails(r, COL_INGEST_ETYPE, "planned_end: expected an integer ms timestamp or null, got a number");
    r = fab("jobs/j", "{\"ts\":5,\"machine\":\"ev\"}");
    assert_fab_fails(r, COL_INGEST_ENOFIELD, "no usable field in payload");
    /* the machine tag is required and must be an id */
    r = fab("jobs/j", "{\"ts\":5,\"state\":\"done\"}");
    assert_fab_fails(r, COL_INGEST_ENOFIELD, "machine: missing");
    r = fab("jobs/j", "{\"ts\":5,\"machine\":\"EV 1\",\"state\":\"done\"}");
    assert_fab_fails(r, COL_INGEST_ETYPE, "machine: expected a machine id, got a string \"EV 1\"");
    r = fab("jobs/j", "{\"machine\":\"ev\",\"state\":\"done\"}");
    assert_fab_fails(r, COL_INGEST_ENOFIELD, "ts: missing");
    /* job ids: printable ASCII without space, quote or backslash, at most 96 bytes */
    r = fab("jobs/a b", "{\"ts\":5,\"machine\":\"ev\",\"state\":\"done\"}");
    assert_fab_fails(r, COL_INGEST_ETOPIC, "job id \"a b\" of topic \"jobs/a b\" is not an id");
    r = fab("jobs/", "{\"ts\":5,\"machine\":\"ev\",\"state\":\"done\"}");
    assert_fab_fails(r, COL_INGEST_ETOPIC, "job id \"\" of topic \"jobs/\" is not an id");
    char topic[128];
    snprintf(topic, sizeof topic, "jobs/%097d", 0);
    r = fab(topic, "{\"ts\":5,\"machine\":\"ev\",\"state\":\"done\"}");
    assert_int_equal(r->rc, -COL_INGEST_ETOPIC);
    assert_int_equal(r->s.calls, 0);
    snprintf(topic, sizeof topic, "jobs/%096d", 0);
    r = fab(topic, "{\"ts\":5,\"machine\":\"ev\",\"state\":\"done\"}");
    assert_int_equal(r->rc, 1);
}

static void test_fabgrid_limits(void **state)
{
    (void)state;
    char p[256];
    memset(p, '[', 100);
    memset(p + 100, ']', 100);
    struct sink s = { 0, "" };
    char err[128];
    int rc = col_ingest_fabgrid("hof3", "advice", p, 200, sink_line, &s, err, sizeof err);
    assert_int_equal(rc, -COL_INGEST_EDEPTH);
    assert_string_equal(err, "nesting deeper than 16");
    rc = col_ingest_fabgrid("hof3", "advice", p, COL_INGEST_FABGRID_MAX_BYTES + 1u, sink_line, &s, err, sizeof err);
    assert_int_equal(rc, -COL_INGEST_ETOOBIG);
    assert_string_equal(err, "payload of 4194305 bytes exceeds 4194304");
    rc = col_ingest_fabgrid("hof3", "advice", "", 0, sink_line, &s, err, sizeof err);
    assert_int_equal(rc, -COL_INGEST_ENOTJSON);
    assert_string_equal(err, "payload is empty");
    assert_int_equal(s.calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_patterns),   cmocka_unit_test(test_topic_matches),
        cmocka_unit_test(test_shelly),           cmocka_unit_test(test_tasmota),
        cmocka_unit_test(test_opendtu),          cmocka_unit_test(test_opendtu_malformed),
        cmocka_unit_test(test_generic_pointers), cmocka_unit_test(test_generic_bare_number),
        cmocka_unit_test(test_malformed_json),   cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_size_limit),       cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_machine_state),    cmocka_unit_test(test_unknown_topics),
        cmocka_unit_test(test_plan),             cmocka_unit_test(test_plan_partial),
        cmocka_unit_test(test_plan_limits),      cmocka_unit_test(test_advice),
        cmocka_unit_test(test_jobs),             cmocka_unit_test(test_fabgrid_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
