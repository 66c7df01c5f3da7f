/* Unit tests of config loading: fg_cfg (syntax positions, getters, keys, ids, secrets), fg_site,
 * col_profile (the shipped profiles and a broken one) and col_config (one fixture per error
 * class under tests/fixtures/config/, and config/example.json with every value checked).
 * Run from the repository root. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "col_bus.h"
#include "col_config.h"
#include "col_profile.h"
#include "fg_cfg.h"
#include "fg_site.h"

#define FIX "tests/fixtures/config/"
#define PROFILES "config/profiles"

static char tmpdir[64];

/* ---- helpers ---- */

/* Parses text as file "t.json" and returns the error text (static buffer). */
static const char *syntax_of(const char *text)
{
    static char out[512];
    struct fg_cfg *c = fg_cfg_new("t.json");
    cJSON *root = fg_cfg_parse_text(c, text, strlen(text));
    snprintf(out, sizeof out, "%s", root ? "OK" : fg_cfg_errors(c));
    assert_int_equal(fg_cfg_nerrors(c), root ? 0 : 1);
    cJSON_Delete(root);
    fg_cfg_free(c);
    return out;
}

/* Loads a fixture with the shipped profiles; returns the error text, or "OK". */
static const char *load_errors(const char *file)
{
    static char err[4096];
    struct col_config *cfg = col_config_load(file, PROFILES, err, sizeof err);
    if (cfg) {
        col_config_free(cfg);
        return "OK";
    }
    return err;
}

/* Writes text to tmpdir/name and returns the path (static buffer). */
static const char *write_tmp(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fg_test_config.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    static const char *const names[] = { "site.json", "tok", "ca.pem", NULL };
    char path[128];
    (void)state;
    for (size_t i = 0; names[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    return rmdir(tmpdir);
}

/* A parsed object for getter tests; the caller frees it. */
static cJSON *obj_of(const char *text)
{
    cJSON *o = cJSON_Parse(text);
    assert_non_null(o);
    return o;
}

/* ---- fg_cfg: syntax ---- */

static void test_syntax_positions(void **state)
{
    (void)state;
    assert_string_equal(syntax_of("{\"a\":1 \"b\":2}"), "t.json:1:8: syntax error: expected ',' or '}'");
    assert_string_equal(syntax_of("{\"a\":1,}"), "t.json:1:8: syntax error: trailing comma before '}'");
    assert_string_equal(syntax_of("[1,2,]"), "t.json:1:6: syntax error: trailing comma before ']'");
    assert_string_equal(syntax_of("[1 2]"), "t.json:1:4: syntax error: expected ',' or ']'");
    assert_string_equal(syntax_of("{\"a\" 1}"), "t.json:1:6: syntax error: expected ':'");
    assert_string_equal(syntax_of("{a:1}"), "t.json:1:2: syntax error: expected a key in double quotes");
    assert_string_equal(syntax_of("{\"a\":tru}"),
                        "t.json:1:6: syntax error: expected a value (strings need double quotes)");
    assert_string_equal(syntax_of("{\"a\":\"x"), "t.json:1:6: syntax error: unterminated string");
    assert_string_equal(syntax_of("{\"a\":1}}"), "t.json:1:8: syntax error: text after the end of the document");
    assert_string_equal(syntax_of("{\"a\":1}  x"), "t.json:1:10: syntax error: text after the end of the document");
    assert_string_equal(syntax_of(""), "t.json:1:1: syntax error: empty file");
    assert_string_equal(syntax_of("  \n "), "t.json:1:1: syntax error: empty file");
    assert_string_equal(syntax_of("{\"a\":01}"), "t.json:1:6: syntax error: invalid number (leading zero)");
    assert_string_equal(syntax_of("{\"a\":-}"), "t.json:1:6: syntax error: invalid number");
    assert_string_equal(syntax_of("{\"a\":\"\\q\"}"), "t.json:1:7: syntax error: invalid escape in string");
    assert_string_equal(syntax_of("{\n  \"a\": [1,\n  2\n"), "t.json:4:1: syntax error: unexpected end of file");
    assert_string_equal(syntax_of("{\"a\":\"x\ny\"}"), "t.json:1:6: syntax error: unterminated string");
    /* columns count characters: the two-byte "ä" is one column */
    assert_string_equal(syntax_of("{\"\xC3\xA4\":1 \"b\":2}"), "t.json:1:8: syntax error: expected ',' or '}'");
    assert_string_equal(syntax_of("\xEF\xBB\xBF{\"a\":1}"), "OK"); /* byte order mark */
    assert_string_equal(syntax_of("{\"a\":[1.5e3,-0.25,true,false,null,\"\\u00e4\\n\"]}"), "OK");
}

static void test_syntax_nesting(void **state)
{
    char deep[1200];
    (void)state;
    memset(deep, '[', 600);
    deep[600] = '\0';
    assert_string_equal(syntax_of(deep), "t.json:1:513: syntax error: nesting too deep");
}

static void test_parse_file_errors(void **state)
{
    struct fg_cfg *c = fg_cfg_new(FIX "no-such-file.json");
    (void)state;
    assert_null(fg_cfg_parse_file(c));
    assert_string_equal(fg_cfg_errors(c), FIX "no-such-file.json: cannot read: No such file or directory");
    fg_cfg_free(c);
    assert_string_equal(load_errors(FIX "syntax.json"), FIX "syntax.json:5:5: syntax error: expected ',' or ']'");
    assert_string_equal(load_errors(FIX "empty.json"), FIX "empty.json:1:1: syntax error: empty file");
    fg_cfg_free(NULL); /* no-op */
}

/* ---- fg_cfg: paths, getters, keys, ids ---- */

static void test_path(void **state)
{
    char buf[FG_CFG_PATH_MAX], small[8];
    (void)state;
    assert_string_equal(fg_cfg_path(buf, sizeof buf, "devices", 2, "unit"), "devices[2].unit");
    assert_string_equal(fg_cfg_path(buf, sizeof buf, NULL, -1, "site"), "site");
    assert_string_equal(fg_cfg_path(buf, sizeof buf, "", -1, "site"), "site");
    assert_string_equal(fg_cfg_path(buf, sizeof buf, "points", 0, NULL), "points[0]");
    assert_string_equal(fg_cfg_path(buf, sizeof buf, "a.b", 3, "c"), "a.b[3].c");
    assert_string_equal(fg_cfg_path(small, sizeof small, "devices", 12, "unit"), "devices");
}

static void test_getters_int(void **state)
{
    cJSON *o = obj_of("{\"u\":300,\"f\":1.5,\"s\":\"x\",\"ok\":17,\"n\":null,\"big\":1e300,\"w\":2.0}");
    struct fg_cfg *c = fg_cfg_new("f.json");
    long v;
    (void)state;
    assert_int_equal(fg_cfg_int(c, o, "devices[2]", "ok", true, 1, 247, 9, &v), 0);
    assert_int_equal(v, 17);
    assert_int_equal(fg_cfg_int(c, o, "devices[2]", "w", true, 1, 247, 9, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(fg_cfg_int(c, o, "devices[2]", "absent", false, 1, 247, 9, &v), 1);
    assert_int_equal(v, 9);
    assert_int_equal(fg_cfg_int(c, o, "devices[2]", "n", false, 1, 247, 8, &v), 1); /* null = absent */
    assert_int_equal(v, 8);
    assert_int_equal(fg_cfg_nerrors(c), 0);
    assert_int_equal(fg_cfg_int(c, o, "devices[2]", "u", true, 1, 247, 9, &v), -1);
    assert_int_equal(v, 9);
    assert_int_equal(fg_cfg_int(c, o, "devices[2]", "f", true, 1, 247, 9, &v), -1);
    assert_int_equal(fg_cfg_int(c, o, "devices[2]", "s", true, 1, 247, 9, &v), -1);
    assert_int_equal(fg_cfg_int(c, o, "devices[2]", "big", true, 1, 247, 9, &v), -1);
    assert_int_equal(fg_cfg_int(c, o, "devices[2]", "absent", true, 1, 247, 9, &v), -1);
    assert_string_equal(fg_cfg_errors(c),
                        "f.json: devices[2].u: must be an integer 1..247, got 300\n"
                        "f.json: devices[2].f: must be an integer 1..247, got 1.5\n"
                        "f.json: devices[2].s: must be an integer 1..247, got a string\n"
                        "f.json: devices[2].big: must be an integer 1..247, got 1e+300\n"
                        "f.json: devices[2].absent: missing (required)");
    assert_int_equal(fg_cfg_nerrors(c), 5);
    fg_cfg_free(c);
    cJSON_Delete(o);
}

static void test_getters_other(void **state)
{
    static const char *const types[] = { "tcp", "rtu", "rtu-over-tcp", NULL };
    static const long bauds[] = { 1200, 9600 };
    cJSON *o = obj_of("{\"t\":\"udp\",\"t2\":\"rtu\",\"t3\":5,\"b\":300,\"lat\":91,\"x\":\"yes\",\"e\":\"\","
                      "\"long\":\"abcdefghij\",\"q\":\"a\\\"b\",\"on\":true,\"arr\":{}}");
    struct fg_cfg *c = fg_cfg_new("f.json");
    const char *s;
    const cJSON *arr;
    char buf[16];
    int e;
    long l;
    double d;
    bool b;
    (void)state;
    assert_int_equal(fg_cfg_enum(c, o, "buses[0]", "t2", true, types, 0, &e), 0);
    assert_int_equal(e, 1);
    assert_int_equal(fg_cfg_bool(c, o, NULL, "on", true, false, &b), 0);
    assert_true(b);
    assert_int_equal(fg_cfg_str(c, o, NULL, "q", true, 10, NULL, &s), 0);
    assert_string_equal(s, "a\"b");
    assert_int_equal(fg_cfg_nerrors(c), 0);
    assert_int_equal(fg_cfg_enum(c, o, "buses[0]", "t", true, types, 0, &e), -1);
    assert_int_equal(fg_cfg_enum(c, o, "buses[0]", "t3", true, types, 0, &e), -1);
    assert_int_equal(fg_cfg_int_oneof(c, o, "buses[1]", "b", false, bauds, 2, 9600, &l), -1);
    assert_int_equal(l, 9600);
    assert_int_equal(fg_cfg_num(c, o, "site", "lat", false, -90, 90, 0, &d), -1);
    assert_int_equal(fg_cfg_bool(c, o, NULL, "x", false, false, &b), -1);
    assert_int_equal(fg_cfg_str(c, o, NULL, "e", false, 10, "def", &s), -1);
    assert_string_equal(s, "def");
    assert_int_equal(fg_cfg_strbuf(c, o, NULL, "long", false, NULL, buf, 8), -1);
    assert_string_equal(buf, "");
    assert_int_equal(fg_cfg_container(c, o, NULL, "arr", false, cJSON_Array, &arr), -1);
    assert_null(arr);
    assert_string_equal(fg_cfg_errors(c),
                        "f.json: buses[0].t: must be one of \"tcp\", \"rtu\", \"rtu-over-tcp\", got \"udp\"\n"
                        "f.json: buses[0].t3: must be one of \"tcp\", \"rtu\", \"rtu-over-tcp\", got a number\n"
                        "f.json: buses[1].b: must be one of 1200, 9600, got 300\n"
                        "f.json: site.lat: must be a number -90..90, got 91\n"
                        "f.json: x: must be true or false, got a string\n"
                        "f.json: e: must be a string of 1..10 bytes, got \"\"\n"
                        "f.json: long: must be a string of 1..7 bytes, got a string of 10 bytes\n"
                        "f.json: arr: must be an array, got an object");
    fg_cfg_free(c);
    cJSON_Delete(o);
}

static void test_ids(void **state)
{
    cJSON *o = obj_of("{\"a\":\"inv1\",\"b\":\"Inv 1\",\"c\":\"-x\",\"d\":\"abcdefghijabcdefghijabcdefghijabcdefghijabcde\",\"e\":7}");
    struct fg_cfg *c = fg_cfg_new("f.json");
    char id[FG_CFG_ID_MAX + 1];
    (void)state;
    assert_true(fg_cfg_is_id("a"));
    assert_true(fg_cfg_is_id("0plug_laser-2"));
    assert_true(fg_cfg_is_id("abcdefghijabcdefghijabcdefghijab")); /* 32 */
    assert_false(fg_cfg_is_id("abcdefghijabcdefghijabcdefghijabc"));
    assert_false(fg_cfg_is_id("_a"));
    assert_false(fg_cfg_is_id(""));
    assert_false(fg_cfg_is_id("aB"));
    assert_int_equal(fg_cfg_id(c, o, "devices[0]", "a", true, "id", id, sizeof id), 0);
    assert_string_equal(id, "inv1");
    assert_int_equal(fg_cfg_id(c, o, "machines[0]", "a", true, "machine", id, sizeof id), 0); /* other namespace */
    assert_int_equal(fg_cfg_id(c, o, "devices[1]", "a", true, "id", id, sizeof id), -1);
    assert_int_equal(fg_cfg_id(c, o, "devices[2]", "b", true, "id", id, sizeof id), -1);
    assert_int_equal(fg_cfg_id(c, o, "devices[3]", "c", true, NULL, id, sizeof id), -1);
    assert_int_equal(fg_cfg_id(c, o, "devices[4]", "d", true, NULL, id, sizeof id), -1);
    assert_int_equal(fg_cfg_id(c, o, "devices[5]", "e", true, NULL, id, sizeof id), -1);
    assert_string_equal(fg_cfg_errors(c),
                        "f.json: devices[1].a: duplicate id \"inv1\" (first at devices[0].a)\n"
                        "f.json: devices[2].b: must match [a-z0-9][a-z0-9_-]{0,31}, got \"Inv 1\"\n"
                        "f.json: devices[3].c: must match [a-z0-9][a-z0-9_-]{0,31}, got \"-x\"\n"
                        "f.json: devices[4].d: must match [a-z0-9][a-z0-9_-]{0,31}, got "
                        "\"abcdefghijabcdefghijabcdefghijabcdefghij...\"\n"
                        "f.json: devices[5].e: must match [a-z0-9][a-z0-9_-]{0,31}, got a number");
    fg_cfg_free(c);
    cJSON_Delete(o);
}

static void test_known_keys(void **state)
{
    static const char *const known[] = { "id", "port", "poll_ms", "keepalive_s", "spool_max_mb", "host", NULL };
    cJSON *o = obj_of("{\"id\":1,\"prot\":1,\"pol_ms\":1,\"keepalive\":1,\"spool_max\":1,\"xy\":1,"
                      "\"colour\":1,\"host\":1,\"id\":2,\"Port\":1}");
    struct fg_cfg *c = fg_cfg_new("f.json");
    (void)state;
    assert_int_equal(fg_cfg_known_keys(c, o, "mqtt", known), 8);
    assert_string_equal(fg_cfg_errors(c),
                        "f.json: mqtt.prot: unknown key (did you mean \"port\"?)\n"
                        "f.json: mqtt.pol_ms: unknown key (did you mean \"poll_ms\"?)\n"
                        "f.json: mqtt.keepalive: unknown key (did you mean \"keepalive_s\"?)\n"
                        "f.json: mqtt.spool_max: unknown key (did you mean \"spool_max_mb\"?)\n"
                        "f.json: mqtt.xy: unknown key\n"
                        "f.json: mqtt.colour: unknown key\n"
                        "f.json: mqtt.id: duplicate key\n"
                        "f.json: mqtt.Port: unknown key (did you mean \"port\"?)");
    fg_cfg_free(c);
    cJSON_Delete(o);
}

static void test_only_for_and_got(void **state)
{
    cJSON *o = obj_of("{\"baud\":9600,\"s\":\"a\\u0001\\\\b\",\"n\":-0.125,\"t\":false,\"z\":null,"
                      "\"u\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xC3\xA4" "b\"}");
    struct fg_cfg *c = fg_cfg_new("f.json");
    char buf[64];
    (void)state;
    assert_int_equal(fg_cfg_only_for(c, o, "buses[0]", "port", "types tcp and rtu-over-tcp"), 0);
    assert_int_equal(fg_cfg_only_for(c, o, "buses[0]", "baud", "type rtu"), -1);
    assert_string_equal(fg_cfg_errors(c), "f.json: buses[0].baud: only for type rtu");
    assert_string_equal(fg_cfg_got_value(cJSON_GetObjectItem(o, "s"), buf, sizeof buf), "\"a\\u0001\\\\b\"");
    assert_string_equal(fg_cfg_got_value(cJSON_GetObjectItem(o, "n"), buf, sizeof buf), "-0.125");
    /* shortened after 40 bytes, never inside a UTF-8 sequence */
    assert_string_equal(fg_cfg_got_value(cJSON_GetObjectItem(o, "u"), buf, sizeof buf),
                        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"");
    assert_string_equal(fg_cfg_got_value(cJSON_GetObjectItem(o, "t"), buf, sizeof buf), "false");
    assert_string_equal(fg_cfg_got_kind(cJSON_GetObjectItem(o, "z")), "null");
    assert_string_equal(fg_cfg_got_kind(o), "an object");
    fg_cfg_free(c);
    cJSON_Delete(o);
}

/* Errors recorded out of order come back in document order; items outside the tree stay put. */
static void test_sort_and_merge(void **state)
{
    cJSON *o = obj_of("{\"a\":{\"x\":1},\"b\":[1,2],\"c\":3}");
    struct fg_cfg *c = fg_cfg_new("f.json"), *p = fg_cfg_new("p.json");
    const cJSON *b = cJSON_GetObjectItem(o, "b");
    (void)state;
    fg_cfg_errorf(c, cJSON_GetObjectItem(o, "c"), "c", "third");
    fg_cfg_errorf(c, NULL, NULL, "after third");
    fg_cfg_errorf(c, cJSON_GetArrayItem(b, 1), "b[1]", "second");
    fg_cfg_errorf(p, NULL, "points[0]", "from the profile");
    fg_cfg_merge(c, p, cJSON_GetArrayItem(b, 0));
    fg_cfg_errorf(c, cJSON_GetObjectItem(cJSON_GetObjectItem(o, "a"), "x"), "a.x", "first");
    fg_cfg_sort(c, o);
    assert_string_equal(fg_cfg_errors(c), "f.json: a.x: first\n"
                                          "p.json: points[0]: from the profile\n"
                                          "f.json: b[1]: second\n"
                                          "f.json: c: third\n"
                                          "f.json: after third");
    fg_cfg_free(p);
    fg_cfg_free(c);
    cJSON_Delete(o);
}

/* ---- fg_cfg: files and secrets ---- */

static void test_secret(void **state)
{
    struct fg_cfg *c = fg_cfg_new(FIX "secret.json");
    char *pw = (char *)1;
    (void)state;
    assert_int_equal(chmod(FIX "secret.pass", 0600), 0);
    assert_int_equal(fg_cfg_read_secret(c, NULL, "mqtt.password_file", "secret.pass", &pw), 0);
    assert_string_equal(pw, "hunter2"); /* one trailing newline stripped */
    free(pw);
    assert_int_equal(chmod(FIX "secret.pass", 0644), 0);
    assert_int_equal(fg_cfg_read_secret(c, NULL, "mqtt.password_file", "secret.pass", &pw), -1);
    assert_null(pw);
    assert_int_equal(fg_cfg_read_secret(c, NULL, "mqtt.password_file", "/nonexistent/x.pass", &pw), -1);
    assert_int_equal(fg_cfg_read_secret(c, NULL, "influx.token_file", "profiles", &pw), -1);
    assert_string_equal(fg_cfg_errors(c),
                        FIX "secret.json: mqtt.password_file: " FIX "secret.pass is readable by group or others "
                            "(chmod 600 it)\n"
                        FIX "secret.json: mqtt.password_file: cannot read /nonexistent/x.pass: No such file or directory\n"
                        FIX "secret.json: influx.token_file: cannot read " FIX "profiles: Is a directory");
    fg_cfg_free(c);
}

static void test_secret_empty_and_resolve(void **state)
{
    struct fg_cfg *c = fg_cfg_new("site.json");
    char buf[256], *tok;
    const char *tokfile = write_tmp("tok", "\n");
    (void)state;
    assert_int_equal(fg_cfg_resolve(c, "x.pass", buf, sizeof buf), 0);
    assert_string_equal(buf, "x.pass");
    fg_cfg_free(c);
    c = fg_cfg_new("/etc/fabgrid/site.json");
    assert_int_equal(fg_cfg_resolve(c, "x.pass", buf, sizeof buf), 0);
    assert_string_equal(buf, "/etc/fabgrid/x.pass");
    assert_int_equal(fg_cfg_resolve(c, "/run/x", buf, sizeof buf), 0);
    assert_string_equal(buf, "/run/x");
    assert_int_equal(fg_cfg_resolve(c, "x.pass", buf, 8), -ENAMETOOLONG);
    assert_int_equal(chmod(tokfile, 0600), 0);
    assert_int_equal(fg_cfg_read_secret(c, NULL, "influx.token_file", tokfile, &tok), -1);
    snprintf(buf, sizeof buf, "/etc/fabgrid/site.json: influx.token_file: %s is empty", tokfile);
    assert_string_equal(fg_cfg_errors(c), buf);
    fg_cfg_free(c);
}

/* ---- col_profile ---- */

static struct col_point *profile(const char *file, size_t *n, int *gap)
{
    struct fg_cfg *e = fg_cfg_new("x");
    struct col_point *pts = NULL;
    assert_int_equal(col_profile_load(file, &pts, n, gap, e), 0);
    assert_int_equal(fg_cfg_nerrors(e), 0);
    fg_cfg_free(e);
    return pts;
}

static void test_profile_sdm630(void **state)
{
    static const char *const names[] = { "voltage_l1_v", "voltage_l2_v", "voltage_l3_v", "current_l1_a",
        "current_l2_a", "current_l3_a", "power_l1_w", "power_l2_w", "power_l3_w", "power_factor_l1",
        "power_factor_l2", "power_factor_l3", "power_w", "power_factor", "frequency_hz", "energy_import_wh",
        "energy_export_wh", "energy_total_wh" };
    static const uint16_t addrs[] = { 0, 2, 4, 6, 8, 10, 12, 14, 16, 30, 32, 34, 52, 62, 70, 72, 74, 342 };
    size_t n;
    int gap;
    struct col_point *p = profile(PROFILES "/sdm630.json", &n, &gap);
    (void)state;
    assert_int_equal(n, 18);
    assert_int_equal(gap, 16);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(p[i].name, names[i]);
        assert_int_equal(p[i].address, addrs[i]);
        assert_int_equal(p[i].table, COL_INPUT);
        assert_int_equal(p[i].type, COL_F32);
        assert_int_equal(p[i].order, COL_ABCD);
        assert_int_equal(p[i].count, 2);
        assert_int_equal(p[i].bit, -1);
        assert_int_equal(p[i].sf_address, -1);
        assert_int_equal(p[i].nsentinel, 0);
        assert_true(p[i].nan_is_sentinel);
        assert_false(p[i].writable);
        assert_true(p[i].offset == 0);
    }
    assert_true(p[0].has_min && p[0].min == 0 && p[0].has_max && p[0].max == 300);
    assert_false(p[3].has_min || p[3].has_max);
    assert_true(p[12].scale == 1 && p[12].min == -1e6 && p[12].max == 1e6);
    assert_true(p[13].min == -1 && p[13].max == 1);
    assert_true(p[14].min == 45 && p[14].max == 65);
    assert_true(p[17].scale == 1000 && p[17].has_min && p[17].min == 0 && !p[17].has_max);
    free(p);
}

static void test_profile_sdm120_relay8(void **state)
{
    static const uint16_t addrs[] = { 0, 6, 12, 30, 70, 72, 74, 342 };
    size_t n;
    int gap;
    struct col_point *p = profile(PROFILES "/sdm120.json", &n, &gap);
    (void)state;
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i].address, addrs[i]);
    assert_string_equal(p[0].name, "voltage_v");
    assert_string_equal(p[1].name, "current_a");
    assert_string_equal(p[2].name, "power_w");
    assert_true(p[5].scale == 1000 && p[6].scale == 1000 && p[7].scale == 1000 && p[4].scale == 1);
    free(p);
    p = profile(PROFILES "/relay8.json", &n, &gap);
    assert_int_equal(n, 8);
    assert_int_equal(gap, -1);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "coil_%zu", i);
        assert_string_equal(p[i].name, name);
        assert_int_equal(p[i].table, COL_COIL);
        assert_int_equal(p[i].type, COL_BITS);
        assert_int_equal(p[i].address, i);
        assert_int_equal(p[i].count, 1);
        assert_true(p[i].writable);
    }
    free(p);
}

static void test_profile_broken(void **state)
{
    struct fg_cfg *e = fg_cfg_new("site.json");
    struct col_point *pts = (struct col_point *)1;
    size_t n = 99;
    (void)state;
    assert_int_equal(col_profile_load(FIX "profiles/broken.json", &pts, &n, NULL, e), -EINVAL);
    assert_null(pts);
    assert_int_equal(n, 0);
    assert_string_equal(fg_cfg_errors(e),
        FIX "profiles/broken.json: points[1].type: must be one of \"u16\", \"s16\", \"u32\", \"s32\", \"u64\", "
            "\"s64\", \"f32\", \"f64\", \"string\", \"bits\", got \"float\"\n"
        FIX "profiles/broken.json: points[2].name: duplicate name \"power_w\" (first at points[0].name)\n"
        FIX "profiles/broken.json: points[2].bit: only for type bits on tables holding and input\n"
        FIX "profiles/broken.json: points[3].sentinel[1]: must be an integer or a \"0x\" hex string that fits u16, "
            "got \"0x10000\"\n"
        FIX "profiles/broken.json: points[3].sentinel[2]: must be an integer or a \"0x\" hex string that fits u16, "
            "got -1");
    fg_cfg_free(e);
}

/* Parses an in-memory profile; returns the points (caller frees) and leaves errors in *errs. */
static struct col_point *profile_text(const char *text, size_t *n, struct fg_cfg **errs)
{
    struct col_point *pts = NULL;
    cJSON *root = obj_of(text);
    *errs = fg_cfg_new("p.json");
    col_profile_parse(*errs, root, &pts, n, NULL);
    fg_cfg_sort(*errs, root);
    cJSON_Delete(root);
    return pts;
}

static void test_profile_kinds(void **state)
{
    struct fg_cfg *e;
    size_t n;
    struct col_point *p = profile_text(
        "{\"name\":\"inv\",\"points\":["
        "{\"name\":\"temp_c\",\"table\":\"holding\",\"address\":10,\"type\":\"s16\",\"sentinel\":[-32768],\"scale\":0.1},"
        "{\"name\":\"energy_wh\",\"table\":\"input\",\"address\":20,\"type\":\"u32\",\"order\":\"CDAB\","
        "\"sentinel\":[\"0xFFFFFFFF\",4294967294]},"
        "{\"name\":\"serial\",\"table\":\"holding\",\"address\":40,\"type\":\"string\",\"count\":8},"
        "{\"name\":\"fault\",\"table\":\"input\",\"address\":50,\"type\":\"bits\",\"bit\":3},"
        "{\"name\":\"total_wh\",\"table\":\"input\",\"address\":60,\"type\":\"u64\",\"sentinel\":[\"0xFFFFFFFFFFFFFFFF\"]},"
        "{\"name\":\"limit_w\",\"table\":\"holding\",\"address\":70,\"type\":\"f64\",\"order\":\"DCBA\","
        "\"nan_sentinel\":false,\"writable\":true,\"offset\":-5},"
        "{\"name\":\"enabled\",\"table\":\"discrete\",\"address\":65535}]}",
        &n, &e);
    (void)state;
    assert_string_equal(fg_cfg_errors(e), "");
    assert_non_null(p);
    assert_int_equal(n, 7);
    assert_int_equal(p[0].type, COL_S16);
    assert_int_equal(p[0].count, 1);
    assert_int_equal(p[0].nsentinel, 1);
    assert_true(p[0].sentinel[0] == 0x8000);
    assert_true(p[0].scale == 0.1);
    assert_int_equal(p[1].order, COL_CDAB);
    assert_int_equal(p[1].count, 2);
    assert_int_equal(p[1].nsentinel, 2);
    assert_true(p[1].sentinel[0] == 0xFFFFFFFFu && p[1].sentinel[1] == 0xFFFFFFFEu);
    assert_int_equal(p[2].type, COL_STRING);
    assert_int_equal(p[2].count, 8);
    assert_int_equal(p[3].type, COL_BITS);
    assert_int_equal(p[3].bit, 3);
    assert_int_equal(p[3].count, 1);
    assert_int_equal(p[4].count, 4);
    assert_true(p[4].sentinel[0] == UINT64_MAX);
    assert_int_equal(p[5].order, COL_DCBA);
    assert_false(p[5].nan_is_sentinel);
    assert_true(p[5].writable);
    assert_true(p[5].offset == -5);
    assert_int_equal(p[6].table, COL_DISCRETE);
    assert_int_equal(p[6].type, COL_BITS);
    assert_int_equal(p[6].address, 65535);
    assert_false(p[6].writable);
    free(p);
    fg_cfg_free(e);
}

static void test_profile_errors(void **state)
{
    struct fg_cfg *e;
    size_t n;
    struct col_point *p = profile_text(
        "{\"name\":\"Bad Name\",\"max_gap\":200,\"note\":\"x\",\"points\":["
        "{\"name\":\"a_w\",\"table\":\"input\",\"address\":65535,\"type\":\"f32\"},"
        "{\"name\":\"Power\",\"table\":\"input\",\"address\":0,\"type\":\"u16\",\"scale\":0,\"writable\":true},"
        "{\"name\":\"s\",\"table\":\"holding\",\"address\":0,\"type\":\"string\",\"min\":1},"
        "{\"name\":\"c\",\"table\":\"coil\",\"address\":0,\"type\":\"u16\"},"
        "{\"name\":\"d\",\"table\":\"input\",\"address\":0,\"type\":\"u16\",\"nan_sentinel\":true,\"min\":5,\"max\":1},"
        "{\"name\":\"e\",\"table\":\"input\",\"address\":0,\"type\":\"s16\",\"sentinel\":[1,2,3,4,5]},"
        "{\"table\":\"input\",\"address\":-1,\"type\":\"u16\",\"bit\":1},"
        "7]}",
        &n, &e);
    (void)state;
    assert_null(p);
    assert_int_equal(n, 0);
    assert_string_equal(fg_cfg_errors(e),
        "p.json: name: must match [a-z0-9][a-z0-9_-]{0,31}, got \"Bad Name\"\n"
        "p.json: max_gap: must be an integer 0..125, got 200\n"
        "p.json: note: unknown key (did you mean \"notes\"?)\n"
        "p.json: points[0].address: the point's 2 registers run past address 65535\n"
        "p.json: points[1].name: must match [a-z][a-z0-9_]{0,46}, got \"Power\"\n"
        "p.json: points[1].scale: must not be 0\n"
        "p.json: points[1].writable: only for numeric points on tables holding and coil\n"
        "p.json: points[2].count: missing (required)\n"
        "p.json: points[3].type: must be \"bits\" for table coil, got \"u16\"\n"
        "p.json: points[4].nan_sentinel: only for types f32 and f64\n"
        "p.json: points[4].max: must be >= min\n"
        "p.json: points[5].sentinel: must have at most 4 entries, got 5\n"
        "p.json: points[6].address: must be an integer 0..65535, got -1\n"
        "p.json: points[6].name: missing (required)\n" /* reported where the object ends */
        "p.json: points[6].bit: only for type bits\n"
        "p.json: points[7]: must be an object, got a number");
    fg_cfg_free(e);
}

/* ---- col_config: one fixture per error class ---- */

static void test_fixture_errors(void **state)
{
    (void)state;
    assert_string_equal(load_errors(FIX "wrong_type.json"),
                        FIX "wrong_type.json: devices[0].unit: must be an integer 1..247, got a string");
    assert_string_equal(load_errors(FIX "out_of_range.json"),
                        FIX "out_of_range.json: devices[2].unit: must be an integer 1..247, got 300");
    assert_string_equal(load_errors(FIX "unknown_key_suggest.json"),
                        FIX "unknown_key_suggest.json: devices[0].pol_ms: unknown key (did you mean \"poll_ms\"?)");
    assert_string_equal(load_errors(FIX "unknown_key.json"), FIX "unknown_key.json: devices[0].colour: unknown key");
    assert_string_equal(load_errors(FIX "missing.json"), FIX "missing.json: devices[1].bus: missing (required)");
    assert_string_equal(load_errors(FIX "dup_id.json"),
                        FIX "dup_id.json: devices[1].id: duplicate id \"inv1\" (first at devices[0].id)");
    assert_string_equal(load_errors(FIX "dup_key.json"), FIX "dup_key.json: mqtt.port: duplicate key");
    assert_string_equal(load_errors(FIX "unknown_bus.json"),
                        FIX "unknown_bus.json: devices[0].bus: no bus with id \"lan2\"");
    assert_string_equal(load_errors(FIX "unknown_profile.json"),
                        FIX "unknown_profile.json: devices[0].profile: no profile \"sdm999\" (looked in config/profiles)");
    assert_string_equal(load_errors(FIX "bus_type_key.json"),
                        FIX "bus_type_key.json: buses[0].baud: only for type rtu\n"
                        FIX "bus_type_key.json: buses[1].port: only for types tcp and rtu-over-tcp");
    assert_string_equal(load_errors(FIX "dup_unit.json"),
                        FIX "dup_unit.json: devices[2].unit: duplicate unit 2 on bus \"lan\" (first at devices[0].unit)");
}

static void test_fixture_bad_profile(void **state)
{
    const char *err = load_errors(FIX "bad_profile.json");
    (void)state;
    assert_string_equal(err,
        FIX "profiles/broken.json: points[1].type: must be one of \"u16\", \"s16\", \"u32\", \"s32\", \"u64\", "
            "\"s64\", \"f32\", \"f64\", \"string\", \"bits\", got \"float\"\n"
        FIX "profiles/broken.json: points[2].name: duplicate name \"power_w\" (first at points[0].name)\n"
        FIX "profiles/broken.json: points[2].bit: only for type bits on tables holding and input\n"
        FIX "profiles/broken.json: points[3].sentinel[1]: must be an integer or a \"0x\" hex string that fits u16, "
            "got \"0x10000\"\n"
        FIX "profiles/broken.json: points[3].sentinel[2]: must be an integer or a \"0x\" hex string that fits u16, "
            "got -1");
}

static void test_fixture_secret(void **state)
{
    char err[512];
    struct col_config *cfg;
    (void)state;
    assert_int_equal(chmod(FIX "secret.pass", 0644), 0);
    assert_string_equal(load_errors(FIX "secret.json"),
                        FIX "secret.json: mqtt.password_file: " FIX "secret.pass is readable by group or others "
                            "(chmod 600 it)");
    assert_int_equal(chmod(FIX "secret.pass", 0600), 0);
    cfg = col_config_load(FIX "secret.json", PROFILES, err, sizeof err);
    assert_non_null(cfg);
    assert_string_equal(cfg->mqtt.username, "collector");
    assert_string_equal(cfg->mqtt.password, "hunter2");
    col_config_free(cfg);
    assert_int_equal(chmod(FIX "secret.pass", 0644), 0); /* as git checks it out */
}

static void test_fixture_multi(void **state)
{
    (void)state;
    assert_string_equal(load_errors(FIX "multi.json"),
        FIX "multi.json: devices[0].id: must match [a-z0-9][a-z0-9_-]{0,31}, got \"Inv 1\"\n"
        FIX "multi.json: devices[0].unit: must be an integer 1..247, got 0\n"
        FIX "multi.json: devices[0].role: must be one of \"pv\", \"grid\", \"load\", \"battery\", \"machine\", got \"solar\"\n"
        FIX "multi.json: devices[0].poll_ms: must be an integer 100..3600000, got 50\n"
        FIX "multi.json: devices[1].timeout: unknown key (did you mean \"timeout_ms\"?)\n"
        FIX "multi.json: site.timezone: must be a time zone under /usr/share/zoneinfo (e.g. \"Europe/Berlin\"), "
            "got \"Mars/Olympus\"\n"
        FIX "multi.json: site.latitude: must be a number -90..90, got 91\n"
        FIX "multi.json: buses[0].type: must be one of \"tcp\", \"rtu\", \"rtu-over-tcp\", got \"udp\"\n"
        FIX "multi.json: mqtt.prefix: must be a topic prefix without '+', '#' or a leading or trailing '/', "
            "got \"fabgrid/#\"\n"
        FIX "multi.json: mqtt.keepalive_s: must be an integer 5..3600, got 1\n"
        FIX "multi.json: mqtt_devices[0].id: duplicate id \"grid\" (first at devices[1].id)\n"
        FIX "multi.json: mqtt_devices[0].serial: missing (required)\n"
        FIX "multi.json: influx.url: must start with http:// or https://, got \"ftp://db\"\n"
        FIX "multi.json: influx.org: missing (required)\n"
        FIX "multi.json: influx.bucket: missing (required)\n"
        FIX "multi.json: influx.token_file: missing (required)\n"
        FIX "multi.json: influx.database: only for api v1\n"
        FIX "multi.json: machines: must be an array, got an object\n"
        FIX "multi.json: extra: unknown key");
}

/* ---- col_config: the example, every value ---- */

static void check_example_site(const struct col_config *c)
{
    assert_string_equal(c->file, "config/example.json");
    assert_string_equal(c->site.id, "hof3");
    assert_string_equal(c->site.timezone, "Europe/Berlin");
    assert_true(c->site.has_latlon && c->site.latitude == 52.5 && c->site.longitude == 13.4);
    assert_true(c->site.grid_limit_w == 30000);
    /* no PV array keys: the defaults */
    assert_true(c->site.pv_kwp == 0 && c->site.tilt_deg == 30 && c->site.azimuth_deg == 180);
    assert_string_equal(c->mqtt.host, "127.0.0.1");
    assert_int_equal(c->mqtt.port, 1883);
    assert_string_equal(c->mqtt.prefix, "fabgrid");
    assert_string_equal(c->mqtt.username, "collector");
    assert_null(c->mqtt.password);
    assert_string_equal(c->mqtt.ca_file, "");
    assert_string_equal(c->mqtt.cert_file, "");
    assert_int_equal(c->mqtt.keepalive_s, 10);
    assert_int_equal(c->mqtt.queue_max, 10000);
    assert_string_equal(c->mqtt.client_id, "");
    assert_true(c->influx.enabled);
    assert_string_equal(c->influx.url, "http://127.0.0.1:8086");
    assert_int_equal(c->influx.api, 1);
    assert_string_equal(c->influx.database, "fabgrid");
    assert_string_equal(c->influx.rp, "");
    assert_null(c->influx.password);
    assert_null(c->influx.token);
    assert_string_equal(c->influx.spool_dir, "/var/lib/fabgrid/spool");
    assert_int_equal(c->influx.spool_max_mb, 256);
    assert_int_equal(c->influx.flush_s, 5);
    assert_int_equal(c->influx.batch_max, 5000);
    assert_string_equal(c->profile_dir, PROFILES);
}

static void check_example_buses(const struct col_config *c)
{
    const struct col_bus_cfg *b = c->buses;
    assert_int_equal(c->nbuses, 3);
    assert_string_equal(b[0].id, "lan");
    assert_int_equal(b[0].type, COL_BUS_TCP);
    assert_string_equal(b[0].host, "127.0.0.1");
    assert_int_equal(b[0].port, 502);
    assert_int_equal(b[0].frame_gap_ms, 0);
    assert_string_equal(b[1].id, "rs485");
    assert_int_equal(b[1].type, COL_BUS_RTU);
    assert_string_equal(b[1].device, "/dev/ttyUSB0");
    assert_int_equal(b[1].baud, 9600);
    assert_int_equal(b[1].parity, 'N');
    assert_int_equal(b[1].data_bits, 8);
    assert_int_equal(b[1].stop_bits, 1);
    assert_int_equal(b[1].frame_gap_ms, 5);
    assert_string_equal(b[2].id, "gw");
    assert_int_equal(b[2].type, COL_BUS_RTU_OVER_TCP);
    assert_string_equal(b[2].host, "10.0.0.9");
    assert_int_equal(b[2].port, 8899);
    assert_int_equal(b[2].frame_gap_ms, 5);
}

static void check_device(const struct col_device_cfg *d, const char *id, size_t bus, int unit, const char *profile,
                         enum fg_role role, unsigned poll_ms, unsigned timeout_ms, unsigned max_gap, size_t npoints)
{
    assert_string_equal(d->id, id);
    assert_int_equal(d->bus, bus);
    assert_int_equal(d->unit, unit);
    assert_string_equal(d->profile, profile);
    assert_int_equal(d->role, role);
    assert_int_equal(d->poll_ms, poll_ms);
    assert_int_equal(d->timeout_ms, timeout_ms);
    assert_int_equal(d->max_gap, max_gap);
    assert_int_equal(d->npoints, npoints);
    assert_int_equal(d->sunspec, strcmp(profile, "sunspec") == 0);
    assert_int_equal(d->points == NULL, npoints == 0);
}

static void check_example_mqtt_devices(const struct col_config *c)
{
    const struct col_mqtt_device_cfg *m = c->mqtt_devices;
    assert_int_equal(c->nmqtt_devices, 4);
    assert_string_equal(m[0].id, "plug-laser");
    assert_int_equal(m[0].preset, COL_PRESET_SHELLY_GEN2);
    assert_string_equal(m[0].topic, "shellyplug-laser");
    assert_int_equal(m[0].role, FG_ROLE_LOAD);
    assert_int_equal(m[0].interval_s, 30);
    assert_int_equal(m[0].nfields, 0);
    assert_int_equal(m[1].preset, COL_PRESET_TASMOTA);
    assert_int_equal(m[1].interval_s, 10);
    assert_string_equal(m[2].id, "balcony-pv");
    assert_int_equal(m[2].preset, COL_PRESET_OPENDTU);
    assert_string_equal(m[2].serial, "114172220001");
    assert_int_equal(m[2].role, FG_ROLE_PV);
    assert_int_equal(m[2].interval_s, 5);
    assert_int_equal(m[3].preset, COL_PRESET_GENERIC);
    assert_string_equal(m[3].topic, "heatpump/state");
    assert_int_equal(m[3].nfields, 2);
    assert_string_equal(m[3].fields[0].field, "power_w");
    assert_string_equal(m[3].fields[0].pointer, "/power/active");
    assert_true(m[3].fields[0].scale == 1);
    assert_string_equal(m[3].fields[1].field, "energy_wh");
    assert_string_equal(m[3].fields[1].pointer, "/energy/total_kwh");
    assert_true(m[3].fields[1].scale == 1000);
}

static void test_example(void **state)
{
    char err[2048] = "";
    struct col_config *c = col_config_load("config/example.json", PROFILES, err, sizeof err);
    (void)state;
    assert_string_equal(err, "");
    assert_non_null(c);
    check_example_site(c);
    check_example_buses(c);
    assert_int_equal(c->ndevices, 4);
    check_device(&c->devices[0], "inv1", 0, 1, "sunspec", FG_ROLE_PV, 1000, 1000, 16, 0);
    check_device(&c->devices[1], "grid", 0, 2, "sdm630", FG_ROLE_GRID, 1000, 1000, 16, 18);
    check_device(&c->devices[2], "laser-meter", 1, 3, "sdm120", FG_ROLE_MACHINE, 2000, 500, 16, 8);
    check_device(&c->devices[3], "relays", 2, 1, "relay8", FG_ROLE_LOAD, 1000, 1000, 0, 8);
    assert_string_equal(c->devices[1].points[12].name, "power_w");
    assert_int_equal(c->devices[1].points[12].address, 52);
    assert_true(c->devices[3].points[7].writable);
    check_example_mqtt_devices(c);
    col_config_free(c);
    col_config_free(NULL); /* no-op */
}

/* ---- col_config: inline configs for the remaining rules ---- */

static const char *load_tmp(const char *text, const char *profile_dir)
{
    static char err[2048];
    const char *path = write_tmp("site.json", text);
    struct col_config *c = col_config_load(path, profile_dir, err, sizeof err);
    if (!c)
        return err;
    col_config_free(c);
    return "OK";
}

static void test_inline_rules(void **state)
{
    char want[512];
    const char *path = write_tmp("site.json", "");
    (void)state;
    /* unit 0 is valid on a TCP bus only; buses may come after devices */
    assert_string_equal(load_tmp("{\"devices\":[{\"id\":\"a\",\"bus\":\"lan\",\"unit\":0,\"profile\":\"sunspec\","
                                 "\"role\":\"pv\"}],\"site\":{\"id\":\"s\"},"
                                 "\"buses\":[{\"id\":\"lan\",\"type\":\"tcp\",\"host\":\"h\"}]}", PROFILES), "OK");
    snprintf(want, sizeof want,
             "%s: devices[0].unit: must be an integer 1..247, got 0\n"
             "%s: devices[1].id: duplicate id \"gw\" (first at buses[0].id)", path, path);
    assert_string_equal(load_tmp("{\"site\":{\"id\":\"s\"},\"buses\":[{\"id\":\"gw\",\"type\":\"rtu-over-tcp\","
                                 "\"host\":\"h\"}],\"devices\":[{\"id\":\"a\",\"bus\":\"gw\",\"unit\":0,"
                                 "\"profile\":\"sunspec\",\"role\":\"pv\"},{\"id\":\"gw\",\"bus\":\"gw\",\"unit\":1,"
                                 "\"profile\":\"sunspec\",\"role\":\"pv\"}]}", PROFILES), want);
    snprintf(want, sizeof want, "%s: site: missing (required)", path);
    assert_string_equal(load_tmp("{}", PROFILES), want);
    snprintf(want, sizeof want, "%s: must be a JSON object, got an array", path);
    assert_string_equal(load_tmp("[]", PROFILES), want);
    snprintf(want, sizeof want,
             "%s: site.longitude: missing (required with latitude)\n"
             "%s: devices[0].profile: must be \"sunspec\", a profile name or a path ending in .json, got \"SDM 630\"",
             path, path);
    assert_string_equal(load_tmp("{\"site\":{\"id\":\"s\",\"latitude\":1},\"buses\":[{\"id\":\"l\",\"type\":\"tcp\","
                                 "\"host\":\"h\"}],\"devices\":[{\"id\":\"a\",\"bus\":\"l\",\"unit\":1,"
                                 "\"profile\":\"SDM 630\",\"role\":\"grid\"}]}", PROFILES), want);
}

/* The PV array keys of "site" (used by the balancer's forecast; the collector accepts them too). */
static void test_site_pv_array(void **state)
{
    char want[512], err[512] = "";
    const char *path = write_tmp("site.json", "{\"site\":{\"id\":\"s\",\"pv_kwp\":12.5,\"tilt_deg\":0,"
                                              "\"azimuth_deg\":158,\"latitude\":39.7,\"longitude\":-105.2}}");
    struct col_config *c = col_config_load(path, PROFILES, err, sizeof err);
    (void)state;
    assert_string_equal(err, "");
    assert_non_null(c);
    assert_true(c->site.pv_kwp == 12.5);
    assert_true(c->site.tilt_deg == 0);
    assert_true(c->site.azimuth_deg == 158);
    col_config_free(c);
    snprintf(want, sizeof want,
             "%s: site.pv_kwp: must be a number 0..10000, got 10001\n"
             "%s: site.tilt_deg: must be a number 0..90, got 91\n"
             "%s: site.azimuth_deg: must be a number 0..360, got -1\n"
             "%s: site.azimut_deg: unknown key (did you mean \"azimuth_deg\"?)",
             path, path, path, path);
    assert_string_equal(load_tmp("{\"site\":{\"id\":\"s\",\"pv_kwp\":10001,\"tilt_deg\":91,\"azimuth_deg\":-1,"
                                 "\"azimut_deg\":5}}", PROFILES), want);
    snprintf(want, sizeof want, "%s: site.tilt_deg: must be a number 0..90, got a string", path);
    assert_string_equal(load_tmp("{\"site\":{\"id\":\"s\",\"tilt_deg\":\"30\"}}", PROFILES), want);
    /* the limits themselves are valid */
    assert_string_equal(load_tmp("{\"site\":{\"id\":\"s\",\"pv_kwp\":10000,\"tilt_deg\":90,\"azimuth_deg\":360,"
                                 "\"latitude\":0,\"longitude\":0}}", PROFILES), "OK");
    /* an array needs the site's position for the sun */
    snprintf(want, sizeof want, "%s: site.pv_kwp: requires \"latitude\" and \"longitude\"", path);
    assert_string_equal(load_tmp("{\"site\":{\"id\":\"s\",\"pv_kwp\":5}}", PROFILES), want);
}

static void test_inline_mqtt_influx(void **state)
{
    char want[1024], text[512];
    const char *tok = write_tmp("tok", "secret-token\r\n");
    const char *path;
    struct col_config *c;
    (void)state;
    assert_int_equal(chmod(tok, 0600), 0);
    write_tmp("ca.pem", "x");
    path = write_tmp("site.json", "{\"site\":{\"id\":\"s\"},\"mqtt\":{\"ca_file\":\"ca.pem\",\"client_id\":\"c1\"},"
                                  "\"influx\":{\"url\":\"https://db\",\"api\":\"v2\",\"org\":\"o\",\"bucket\":\"b\","
                                  "\"token_file\":\"tok\",\"spool_dir\":\"spool\"}}");
    c = col_config_load(path, PROFILES, want, sizeof want);
    assert_non_null(c);
    assert_int_equal(c->mqtt.port, 8883); /* TLS default */
    snprintf(text, sizeof text, "%s/ca.pem", tmpdir);
    assert_string_equal(c->mqtt.ca_file, text);
    assert_string_equal(c->mqtt.client_id, "c1");
    assert_int_equal(c->influx.api, 2);
    assert_string_equal(c->influx.token, "secret-token");
    snprintf(text, sizeof text, "%s/spool", tmpdir);
    assert_string_equal(c->influx.spool_dir, text);
    assert_int_equal(c->nbuses + c->ndevices + c->nmqtt_devices, 0);
    col_config_free(c);
    snprintf(want, sizeof want,
             "%s: mqtt.password_file: requires \"username\"\n"
             "%s: mqtt.cert_file: cannot read %s/nope.pem: No such file or directory\n"
             "%s: mqtt_devices[0].topic: must not contain '+' or '#', got \"a/+\"\n"
             "%s: mqtt_devices[0].fields: only for preset generic\n"
             "%s: mqtt_devices[1].fields[0].pointer: must be a JSON pointer: \"\" or starting with \"/\", got \"p\"\n"
             "%s: mqtt_devices[1].fields[1].field: duplicate field \"x_w\" (first at fields[0].field)",
             path, path, tmpdir, path, path, path, path);
    assert_string_equal(load_tmp("{\"site\":{\"id\":\"s\"},\"mqtt\":{\"password_file\":\"tok\",\"cert_file\":\"nope.pem\","
                                 "\"key_file\":\"ca.pem\"},\"mqtt_devices\":[{\"id\":\"a\",\"preset\":\"tasmota\","
                                 "\"topic\":\"a/+\",\"fields\":[]},{\"id\":\"b\",\"preset\":\"generic\",\"topic\":\"t\","
                                 "\"fields\":[{\"field\":\"x_w\",\"pointer\":\"p\"},{\"field\":\"x_w\",\"pointer\":\"/q\"}]}]}",
                                 PROFILES), want);
}

static void test_profile_dir_choice(void **state)
{
    char want[512];
    const char *path;
    (void)state;
    /* the config's own profile_dir, relative to the config file */
    assert_string_equal(load_errors(FIX "profile_dir.json"), "OK");
    {
        char err[256];
        struct col_config *c = col_config_load(FIX "profile_dir.json", NULL, err, sizeof err);
        assert_non_null(c);
        assert_string_equal(c->profile_dir, FIX "../../../config/profiles");
        assert_int_equal(c->devices[0].npoints, 8);
        col_config_free(c);
    }
    /* then $FABGRID_PROFILE_DIR */
    setenv("FABGRID_PROFILE_DIR", "/nonexistent/profiles", 1);
    path = write_tmp("site.json", "{\"site\":{\"id\":\"s\"},\"buses\":[{\"id\":\"l\",\"type\":\"tcp\",\"host\":\"h\"}],"
                                  "\"devices\":[{\"id\":\"a\",\"bus\":\"l\",\"unit\":1,\"profile\":\"sdm630\","
                                  "\"role\":\"grid\"}]}");
    snprintf(want, sizeof want, "%s: devices[0].profile: no profile \"sdm630\" (looked in /nonexistent/profiles)", path);
    {
        char err[512];
        struct col_config *c = col_config_load(path, NULL, err, sizeof err);
        assert_null(c);
        assert_string_equal(err, want);
    }
    unsetenv("FABGRID_PROFILE_DIR");
}

static void test_roles(void **state)
{
    (void)state;
    assert_string_equal(fg_role_name(FG_ROLE_PV), "pv");
    assert_string_equal(fg_role_name(FG_ROLE_GRID), "grid");
    assert_string_equal(fg_role_name(FG_ROLE_LOAD), "load");
    assert_string_equal(fg_role_name(FG_ROLE_BATTERY), "battery");
    assert_string_equal(fg_role_name(FG_ROLE_MACHINE), "machine");
    assert_string_equal(fg_role_name(FG_ROLE_COUNT), "?");
    assert_null(fg_role_names()[FG_ROLE_COUNT]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_positions),
        cmocka_unit_test(test_syntax_nesting),
        cmocka_unit_test(test_parse_file_errors),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_getters_int),
        cmocka_unit_test(test_getters_other),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_known_keys),
        cmocka_unit_test(test_only_for_and_got),
        cmocka_unit_test(test_sort_and_merge),
        cmocka_unit_test(test_secret),
        cmocka_unit_test(test_secret_empty_and_resolve),
        cmocka_unit_test(test_profile_sdm630),
        cmocka_unit_test(test_profile_sdm120_relay8),
        cmocka_unit_test(test_profile_broken),
        cmocka_unit_test(test_profile_kinds),
        cmocka_unit_test(test_profile_errors),
        cmocka_unit_test(test_fixture_errors),
        cmocka_unit_test(test_fixture_bad_profile),
        cmocka_unit_test(test_fixture_secret),
        cmocka_unit_test(test_fixture_multi),
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_inline_rules),
        cmocka_unit_test(test_site_pv_array),
        cmocka_unit_test(test_inline_mqtt_influx),
        cmocka_unit_test(test_profile_dir_choice),
        cmocka_unit_test(test_roles),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
