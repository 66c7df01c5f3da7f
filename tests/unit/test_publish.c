/* Unit tests of col_publish: the state JSON and the site balance (signs and identities of the contract). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <string.h>

#include "col_publish.h"

static struct col_field num(const char *name, double v)
{
    struct col_field f = { name, { COL_VAL_NUMBER, v, "" } };
    return f;
}

static void test_reading_json(void **state)
{
    (void)state;
    struct col_field f[4] = { num("power_w", 3210.5), num("energy_wh", 1000000), num("power_factor", -0.95) };
    f[3].name = "serial";
    f[3].v.kind = COL_VAL_STRING;
    strcpy(f[3].v.str, "a\"b\\c\n");
    char buf[256];
    int n = col_json_reading(buf, sizeof buf, 1468587600000LL, f, 4);
    assert_string_equal(buf, "{\"ts\":1468587600000,\"power_w\":3210.5,\"energy_wh\":1000000,"
                             "\"power_factor\":-0.95,\"serial\":\"a\\\"b\\\\c\\u000a\"}");
    assert_int_equal(n, (int)strlen(buf));
    assert_int_equal(col_json_reading(buf, 20, 1, f, 4), -ENOSPC);
}

static void test_reading_json_precision(void **state)
{
    (void)state;
    struct col_field f[2] = { num("a", 123.4), num("b", 0.1 + 0.2) };
    char buf[128];
    col_json_reading(buf, sizeof buf, 0, f, 2);
    assert_string_equal(buf, "{\"ts\":0,\"a\":123.4,\"b\":0.3}");
}

static void test_balance_export(void **state)
{
    (void)state;
    struct col_balance_dev d[] = { { FG_ROLE_PV, true, true, 3210.5 }, { FG_ROLE_GRID, true, true, -2210.5 },
                                   { FG_ROLE_LOAD, true, true, 999 } };
    struct col_balance b;
    assert_int_equal(col_balance_compute(d, 3, &b), 0);
    assert_true(b.has_pv && b.has_grid && b.has_battery);
    assert_true(b.load_w == 1000.0 && b.surplus_w == 2210.5 && b.pv_w == 3210.5);
    char buf[256];
    col_json_balance(buf, sizeof buf, 5, &b);
    assert_string_equal(buf, "{\"ts\":5,\"pv_w\":3210.5,\"grid_w\":-2210.5,\"load_w\":1000,\"surplus_w\":2210.5}");
}

static void test_balance_battery_and_two_pv(void **state)
{
    (void)state;
    /* load = pv + grid + battery; battery > 0 when discharging */
    struct col_balance_dev d[] = { { FG_ROLE_PV, true, true, 1000 }, { FG_ROLE_PV, true, true, 500 },
                                   { FG_ROLE_GRID, true, true, 200 }, { FG_ROLE_BATTERY, true, true, -300 } };
    struct col_balance b;
    assert_int_equal(col_balance_compute(d, 4, &b), 0);
    assert_true(b.pv_w == 1500 && b.battery_w == -300 && b.load_w == 1400 && b.surplus_w == -200);
    char buf[256];
    col_json_balance(buf, sizeof buf, 1, &b);
    assert_string_equal(buf, "{\"ts\":1,\"pv_w\":1500,\"grid_w\":200,\"battery_w\":-300,\"load_w\":1400,\"surplus_w\":-200}");
}

static void test_balance_stale_pv_is_not_zero(void **state)
{
    (void)state;
    /* a stale inverter makes pv_w and load_w unknown: they are left out, never sent as 0 */
    struct col_balance_dev d[] = { { FG_ROLE_PV, false, true, 1000 }, { FG_ROLE_GRID, true, true, 700 } };
    struct col_balance b;
    assert_int_equal(col_balance_compute(d, 2, &b), 0);
    char buf[256];
    col_json_balance(buf, sizeof buf, 1, &b);
    assert_string_equal(buf, "{\"ts\":1,\"grid_w\":700,\"surplus_w\":-700}");
}

static void test_balance_needs_grid(void **state)
{
    (void)state;
    struct col_balance_dev d[] = { { FG_ROLE_PV, true, true, 1000 }, { FG_ROLE_GRID, true, false, 0 } };
    struct col_balance b;
    assert_int_equal(col_balance_compute(d, 2, &b), -ENODATA);
    assert_int_equal(col_balance_compute(d, 1, &b), -ENODATA);
}

static void test_balance_no_pv_device(void **state)
{
    (void)state;
    struct col_balance_dev d[] = { { FG_ROLE_GRID, true, true, 450 } };
    struct col_balance b;
    assert_int_equal(col_balance_compute(d, 1, &b), 0);
    char buf[256];
    col_json_balance(buf, sizeof buf, 2, &b);
    assert_string_equal(buf, "{\"ts\":2,\"pv_w\":0,\"grid_w\":450,\"load_w\":450,\"surplus_w\":-450}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reading_json),
        cmocka_unit_test(test_reading_json_precision),
        cmocka_unit_test(test_balance_export),
        cmocka_unit_test(test_balance_battery_and_two_pv),
        cmocka_unit_test(test_balance_stale_pv_is_not_zero),
        cmocka_unit_test(test_balance_needs_grid),
        cmocka_unit_test(test_balance_no_pv_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
