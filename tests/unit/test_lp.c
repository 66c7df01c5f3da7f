/* Unit tests of fg_lp: exact lines for a table of tricky names and values (escaping, backslashes,
 * newlines, unicode, dropped values, number formats, tag order), and -ENOSPC at every short size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_lp.h"

#define MAXT 6
#define MAXF 8

struct lp_case {
    const char *name;
    const char *measurement;
    struct fg_lp_tag tags[MAXT];
    size_t ntags;
    struct fg_lp_field fields[MAXF];
    size_t nfields;
    int64_t ts_ms;
    const char *want;   /* NULL: nothing to write (0) */
};

#define FL(k, v) { .key = (k), .type = FG_LP_FLOAT, .f = (v) }
#define IN(k, v) { .key = (k), .type = FG_LP_INT, .i = (v) }
#define ST(k, v) { .key = (k), .type = FG_LP_STRING, .s = (v) }
#define BO(k, v) { .key = (k), .type = FG_LP_BOOL, .b = (v) }
#define ONE_F { FL("f", 1) }, 1

static const struct lp_case cases[] = {
    { "plain", "cpu", { { "host", "a" } }, 1, { FL("f", 1.5) }, 1, 1, "cpu,host=a f=1.5 1\n" },
    { "measurement specials", "my m,e=a\"s", { { 0 } }, 0, ONE_F, 0, "my\\ m\\,e=a\"s f=1 0\n" },
    { "measurement leading comma and space", ",x y", { { 0 } }, 0, ONE_F, 0, "\\,x\\ y f=1 0\n" },
    { "tag specials", "m", { { "k y,=", "v a,l=" } }, 1, ONE_F, 0, "m,k\\ y\\,\\==v\\ a\\,l\\= f=1 0\n" },
    { "tag quote kept", "m", { { "k\"", "\"v\"" } }, 1, ONE_F, 0, "m,k\"=\"v\" f=1 0\n" },
    { "field key specials", "m", { { 0 } }, 0, { FL("f 1,=", 2), FL("\"q", 3) }, 2, 0,
      "m f\\ 1\\,\\==2,\"q=3 0\n" },
    { "string escapes", "m", { { 0 } }, 0, { ST("s", "say \"hi\" \\ back\\") }, 1, 7,
      "m s=\"say \\\"hi\\\" \\\\ back\\\\\" 7\n" },
    { "string with separators", "m", { { 0 } }, 0, { ST("s", "a,b c=d"), ST("e", "") }, 2, 0,
      "m s=\"a,b c=d\",e=\"\" 0\n" },
    { "backslash inside names kept", "m\\x", { { "C:\\k", "C:\\dir\\x" } }, 1, { FL("a\\\\b", 1) }, 1, 0,
      "m\\x,C:\\k=C:\\dir\\x a\\\\b=1 0\n" },
    { "trailing backslash dropped", "m\\", { { "k\\\\", "a\\" } }, 1, { FL("f\\", 1) }, 1, 0,
      "m,k=a f=1 0\n" },
    { "backslash before escaped byte dropped", "m\\=n\\\"o\\ p", { { "t\\,u", "a\\,b\\ c\\=d\\\"e" } }, 1,
      { FL("k\\\"x\\=y", 1) }, 1, 0, "m=n\"o\\ p,t\\,u=a\\,b\\ c\\=d\\\"e k\"x\\=y=1 0\n" },
    { "newline and CR", "a\nb", { { "t", "x\r\ny" } }, 1, { ST("s", "l1\nl2\r"), FL("k\n", 1) }, 2, 0,
      "a\\ b,t=x\\ \\ y s=\"l1 l2 \",k\\ =1 0\n" },
    { "backslash before newline", "m", { { "t", "a\\\nb" } }, 1, ONE_F, 0, "m,t=a\\ b f=1 0\n" },
    { "unicode", "Z\xc3\xa4hler \xe2\x9a\xa1", { { "ort", "K\xc3\xbc" "che \xe2\x82\xac" } }, 1,
      { ST("s", "\xf0\x9f\x98\x80 gr\xc3\xbc\xc3\x9f" "e") }, 1, 0,
      "Z\xc3\xa4hler\\ \xe2\x9a\xa1,ort=K\xc3\xbc" "che\\ \xe2\x82\xac s=\"\xf0\x9f\x98\x80 gr\xc3\xbc\xc3\x9f" "e\" 0\n" },
    { "empty and NULL tags omitted", "m",
      { { "site", "" }, { "dev", NULL }, { "", "x" }, { NULL, "y" }, { "\\", "z" }, { "k", "v" } }, 6, ONE_F, 0,
      "m,k=v f=1 0\n" },
    { "NaN and Inf dropped", "m", { { 0 } }, 0,
      { FL("a", NAN), FL("b", INFINITY), FL("c", -INFINITY), FL("d", 2.5), FL("e", NAN) }, 5, 0, "m d=2.5 0\n" },
    { "all fields dropped", "m", { { "t", "v" } }, 1, { FL("a", NAN), FL("", 1), ST("s", NULL) }, 3, 0, NULL },
    { "no fields", "m", { { 0 } }, 0, { FL("f", 1) }, 0, 0, NULL },
    { "empty measurement", "", { { 0 } }, 0, ONE_F, 0, NULL },
    { "NULL measurement", NULL, { { 0 } }, 0, ONE_F, 0, NULL },
    { "measurement of backslashes only", "\\\\", { { 0 } }, 0, ONE_F, 0, NULL },
    { "measurement read as a comment", "#m", { { 0 } }, 0, ONE_F, 0, NULL },
    { "measurement read as a comment after a tab", "\t#m", { { 0 } }, 0, ONE_F, 0, NULL },
    { "escaped hash", "\\#m", { { 0 } }, 0, ONE_F, 0, "\\#m f=1 0\n" },
    { "empty and NULL field keys dropped", "m", { { 0 } }, 0,
      { FL("", 1), FL(NULL, 2), FL("\\", 3), ST("s", NULL), IN("i", 4) }, 5, 0, "m i=4i 0\n" },
    { "floats", "m", { { 0 } }, 0,
      { FL("a", 0.1), FL("b", 1e-7), FL("c", 1e20), FL("d", -0.0), FL("e", 123456789012345678.0),
        FL("f", 0.1 + 0.2), FL("g", 1.0), FL("h", -1234.5678) }, 8, 0,
      "m a=0.1,b=1e-07,c=1e+20,d=-0,e=1.2345678901234568e+17,f=0.30000000000000004,g=1,h=-1234.5678 0\n" },
    { "float edges", "m", { { 0 } }, 0,
      { FL("a", 1e15), FL("b", 999999999999999.0), FL("c", 5e-324), FL("d", DBL_MAX), FL("e", 100.0 / 3),
        FL("f", 0.1 + 0.7), FL("g", 0.0), FL("h", -999999999999999.0) }, 8, 0,
      "m a=1e+15,b=999999999999999,c=4.94065645841247e-324,d=1.7976931348623157e+308,e=33.333333333333336,"
      "f=0.7999999999999999,g=0,h=-999999999999999 0\n" },
    { "integers and booleans", "m", { { 0 } }, 0,
      { IN("a", INT64_MIN), IN("b", INT64_MAX), IN("c", 0), IN("d", -7), BO("t", true), BO("u", false) }, 6,
      INT64_MIN, "m a=-9223372036854775808i,b=9223372036854775807i,c=0i,d=-7i,t=true,u=false -9223372036854775808\n" },
    { "tags sorted by written key", "m",
      { { "zeta", "1" }, { "alpha", "2" }, { "Mid", "3" }, { "_u", "4" }, { "a b", "5" }, { "a!b", "6" } }, 6,
      ONE_F, 0, "m,Mid=3,_u=4,a!b=6,a\\ b=5,alpha=2,zeta=1 f=1 0\n" },
    { "duplicate tag keys: first usable wins", "m",
      { { "k", "" }, { "k", "2" }, { "k", "3" }, { "a\n", "x" }, { "a ", "y" } }, 5, ONE_F, 0,
      "m,a\\ =x,k=2 f=1 0\n" },
};

static void test_table(void **state)
{
    (void)state;
    char buf[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct lp_case *c = &cases[i];
        memset(buf, 'X', sizeof buf);
        int n = fg_lp_encode(buf, sizeof buf, c->measurement, c->tags, c->ntags, c->fields, c->nfields, c->ts_ms);
        if (!c->want) {
            if (n != 0 || buf[0] != '\0')
                fail_msg("case '%s': got %d '%s', want 0", c->name, n, buf);
            continue;
        }
        if (n != (int)strlen(c->want) || strcmp(buf, c->want) != 0)
            fail_msg("case '%s':\n got  %d '%s'\n want %d '%s'", c->name, n, buf, (int)strlen(c->want), c->want);
    }
}

/* Every size below the needed one (line + NUL) is -ENOSPC with an empty buffer, the exact size works. */
static void enospc_every_size(const struct lp_case *c)
{
    char buf[512];
    size_t need = strlen(c->want) + 1;
    for (size_t len = 0; len < need; len++) {
        memset(buf, 'X', sizeof buf);
        int n = fg_lp_encode(buf, len, c->measurement, c->tags, c->ntags, c->fields, c->nfields, c->ts_ms);
        if (n != -ENOSPC)
            fail_msg("case '%s' len %zu: got %d, want -ENOSPC", c->name, len, n);
        if (len > 0 && buf[0] != '\0')
            fail_msg("case '%s' len %zu: buffer not emptied", c->name, len);
        assert_int_equal(buf[len], 'X');   /* nothing written past len */
    }
    memset(buf, 'X', sizeof buf);
    int n = fg_lp_encode(buf, need, c->measurement, c->tags, c->ntags, c->fields, c->nfields, c->ts_ms);
    assert_int_equal(n, (int)need - 1);
    assert_string_equal(buf, c->want);
    assert_int_equal(buf[need], 'X');
}

static void test_enospc(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (cases[i].want)
            enospc_every_size(&cases[i]);
}

/* A line with no field is 0 whatever the buffer, even one too small for anything. */
static void test_nothing_beats_enospc(void **state)
{
    (void)state;
    struct fg_lp_field f = FL("f", NAN);
    char buf[4] = "abc";
    assert_int_equal(fg_lp_encode(buf, 1, "m", NULL, 0, &f, 1, 0), 0);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(fg_lp_encode(NULL, 0, "m", NULL, 0, &f, 1, 0), 0);
    f.f = 1;
    assert_int_equal(fg_lp_encode(NULL, 0, "m", NULL, 0, &f, 1, 0), -ENOSPC);
}

/* Written floats parse back to the same double, over a spread of magnitudes and digit counts. */
static void test_float_round_trip(void **state)
{
    (void)state;
    char buf[128];
    double v = 1.0 / 7;
    for (int i = 0; i < 2000; i++) {
        v = -v * 3.7 + (i % 2 ? 1e-3 : 0);
        if (!isfinite(v) || fabs(v) > 1e300)
            v = 1.0 / (i + 3);
        struct fg_lp_field f = FL("f", v);
        int n = fg_lp_encode(buf, sizeof buf, "m", NULL, 0, &f, 1, 0);
        assert_true(n > 0);
        double back = strtod(buf + 4, NULL);
        if (back != v)
            fail_msg("%.17g written as %s", v, buf);
    }
}

/* The specification of the float text, written the slow way: the shortest of %.15g/%.16g/%.17g
 * that reads back as v. */
static void ref_float(char *out, size_t len, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, len, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static uint64_t rng_next(uint64_t *x)
{
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return *x >> 11;
}

static void expect_float_text(double v)
{
    char want[64], line[128];
    ref_float(want, sizeof want, v);
    struct fg_lp_field f = FL("f", v);
    fg_lp_encode(line, sizeof line, "m", NULL, 0, &f, 1, 0);
    line[strlen(line) - 3] = '\0';   /* cut " 0\n" */
    if (strcmp(line + 4, want) != 0)
        fail_msg("%.17g: got %s, want %s", v, line + 4, want);
}

/* The fast paths (whole numbers, short decimals) give exactly the text of the specification,
 * around their edges (1e-4, 1e15, 6 decimals) and for random doubles. */
static void test_float_text_matches_spec(void **state)
{
    (void)state;
    static const double p10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8 };
    static const double edges[] = { 1e-4, 9.9999e-5, 0.00015, 1e15, 999999999999999.9, 99999999999999.9,
                                    123456.123456, 123456.1234567, 0.5, 0.05, 1e-5, 230.1, 49.99, 1e300,
                                    2.5e-310, 4503599627370497.0, 9007199254740993.0, 0.1 * 3 };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        expect_float_text(edges[i]);
        expect_float_text(-edges[i]);
    }
    uint64_t x = 42;
    for (int i = 0; i < 200000; i++) {
        int k = (int)(rng_next(&x) % 9);
        double mag = (double)(rng_next(&x) % 1000000000000000ULL >> (rng_next(&x) % 50));
        double v = (i % 3 ? mag / p10[k] : mag * p10[k] / 7.0);
        expect_float_text(i % 2 ? v : -v);
        uint64_t bits = rng_next(&x) << 11 ^ rng_next(&x);
        double r;
        memcpy(&r, &bits, sizeof r);
        if (isfinite(r))
            expect_float_text(r);
    }
}

/* A long string is not truncated: the length comes back exact. */
static void test_long_string(void **state)
{
    (void)state;
    static char s[3001], buf[6100];
    memset(s, '"', sizeof s - 1);
    struct fg_lp_field f = ST("s", s);
    int n = fg_lp_encode(buf, sizeof buf, "m", NULL, 0, &f, 1, 0);
    assert_int_equal(n, 2 + 2 + 2 + 6000 + 1 + 2);   /* "m " + "s=" + quotes + escaped + ' ' + "0\n" */
    assert_int_equal(fg_lp_encode(buf, (size_t)n, "m", NULL, 0, &f, 1, 0), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_enospc),
        cmocka_unit_test(test_nothing_beats_enospc),
        cmocka_unit_test(test_float_round_trip),
        cmocka_unit_test(test_float_text_matches_spec),
        cmocka_unit_test(test_long_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
