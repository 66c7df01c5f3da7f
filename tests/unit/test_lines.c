/* Unit tests of col_lines: the exact device, balance and collector lines of the contract's schema. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "col_lines.h"

static struct col_field num(const char *name, double v)
{
    struct col_field f = { name, { COL_VAL_NUMBER, v, "" } };
    return f;
}

static struct col_field str(const char *name, const char *s)
{
    struct col_field f = { name, { COL_VAL_STRING, 0, "" } };
    snprintf(f.v.str, sizeof f.v.str, "%s", s);
    return f;
}

static void test_device(void **state)
{
    (void)state;
    struct col_field f[] = { num("power_w", 3210.5), str("serial", "SN 123"), num("energy_wh", 1000000),
                             num("voltage_v", 230.1), str("model", "X"), num("power_factor", -0.95) };
    char buf[256];
    int n = col_lines_device(buf, sizeof buf, "hof3", "inv1", "pv", 1468587600000LL, f, 6);
    const char *want = "device,device=inv1,role=pv,site=hof3 power_w=3210.5,energy_wh=1000000,voltage_v=230.1,"
                       "power_factor=-0.95 1468587600000\n";
    assert_string_equal(buf, want);
    assert_int_equal(n, (int)strlen(want));
    assert_int_equal(col_lines_device(buf, strlen(want), "hof3", "inv1", "pv", 1468587600000LL, f, 6), -ENOSPC);
}

static void test_device_edge_cases(void **state)
{
    (void)state;
    char buf[256];
    struct col_field only_strings[] = { str("serial", "SN"), str("model", "X") };
    assert_int_equal(col_lines_device(buf, sizeof buf, "hof3", "inv1", "pv", 1, only_strings, 2), 0);
    assert_string_equal(buf, "");
    assert_int_equal(col_lines_device(buf, sizeof buf, "hof3", "inv1", "pv", 1, NULL, 0), 0);
    /* no role: the tag is left out; a NaN that slipped through is not written as a value */
    struct col_field f[] = { num("power_w", NAN), num("energy_wh", 5) };
    col_lines_device(buf, sizeof buf, "hof3", "m 1", NULL, 2, f, 2);
    assert_string_equal(buf, "device,device=m\\ 1,site=hof3 energy_wh=5 2\n");
}

/* More fields than the stack array holds take the allocated path and give the same kind of line. */
static void test_device_many_fields(void **state)
{
    (void)state;
    enum { N = 70 };
    static char names[N][8];
    struct col_field f[N];
    char want[2048];
    size_t w = (size_t)snprintf(want, sizeof want, "device,device=d,role=load,site=s ");
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "f%02d", i);
        f[i] = num(names[i], i + 0.5);
        w += (size_t)snprintf(want + w, sizeof want - w, "%sf%02d=%d.5", i ? "," : "", i, i);
    }
    snprintf(want + w, sizeof want - w, " 9\n");
    char buf[2048];
    int n = col_lines_device(buf, sizeof buf, "s", "d", "load", 9, f, N);
    assert_string_equal(buf, want);
    assert_int_equal(n, (int)strlen(want));
    assert_int_equal(n, 33 + 10 * 7 + 60 * 8 + 69 + 3);   /* tags, "fNN=N.5" / "fNN=NN.5", commas, " 9\n" */
}

static void test_balance(void **state)
{
    (void)state;
    struct col_balance b = { .has_grid = true, .has_pv = true, .has_battery = true, .battery_site = true,
                             .grid_w = -2210.5, .pv_w = 3210.5, .battery_w = 500, .load_w = 1500,
                             .surplus_w = 2210.5 };
    char buf[256];
    int n = col_lines_balance(buf, sizeof buf, "hof3", 5, &b);
    const char *want = "balance,site=hof3 pv_w=3210.5,grid_w=-2210.5,load_w=1500,surplus_w=2210.5,battery_w=500 5\n";
    assert_string_equal(buf, want);
    assert_int_equal(n, (int)strlen(want));

    /* a site without a battery: battery_w is not a field of its balance */
    struct col_balance_dev d[] = { { FG_ROLE_PV, true, true, 1000 }, { FG_ROLE_GRID, true, true, 250.25 } };
    assert_int_equal(col_balance_compute(d, 2, &b), 0);
    col_lines_balance(buf, sizeof buf, "hof3", 6, &b);
    assert_string_equal(buf, "balance,site=hof3 pv_w=1000,grid_w=250.25,load_w=1250.25,surplus_w=-250.25 6\n");

    /* PV stale: grid and surplus only, no load */
    d[0].fresh = false;
    assert_int_equal(col_balance_compute(d, 2, &b), 0);
    col_lines_balance(buf, sizeof buf, "hof3", 7, &b);
    assert_string_equal(buf, "balance,site=hof3 grid_w=250.25,surplus_w=-250.25 7\n");

    struct col_balance none = { 0 };
    assert_int_equal(col_lines_balance(buf, sizeof buf, "hof3", 8, &none), 0);
}

static void test_collector(void **state)
{
    (void)state;
    struct col_selfmon m = { 1, 2, 3, 4, 5, 6, 7 };
    char buf[256];
    int n = col_lines_collector(buf, sizeof buf, "hof3", 10000, &m);
    const char *want = "collector,site=hof3 added=1i,written=2i,dropped=3i,rejected=4i,spool_points=5i,"
                       "write_errors=6i,modbus_errors=7i 10000\n";
    assert_string_equal(buf, want);
    assert_int_equal(n, (int)strlen(want));

    struct col_selfmon zero = { 0 };
    zero.modbus_errors = UINT64_MAX;
    col_lines_collector(buf, sizeof buf, "hof3", 0, &zero);
    assert_string_equal(buf, "collector,site=hof3 added=0i,written=0i,dropped=0i,rejected=0i,spool_points=0i,"
                             "write_errors=0i,modbus_errors=9223372036854775807i 0\n");
    assert_int_equal(col_lines_collector(buf, 20, "hof3", 0, &m), -ENOSPC);
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device),
        cmocka_unit_test(test_device_edge_cases),
        cmocka_unit_test(test_device_many_fields),
        cmocka_unit_test(test_balance),
        cmocka_unit_test(test_collector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
