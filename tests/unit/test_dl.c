/* Unit tests of fg_dl: a missing library and a missing function give -ENOENT and a message naming the
 * library, the function and the package; a present library fills the table once and stays loaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "fg_dl.h"

struct zlib_api {
    __typeof__(zlibVersion) *version;
    __typeof__(crc32) *crc32;
};

static void test_missing_library(void **state)
{
    (void)state;
    static struct zlib_api t;
    static const struct fg_dl_sym syms[] = { FG_DL_SYM(struct zlib_api, version, "zlibVersion") };
    static struct fg_dl_lib lib = FG_DL_LIB("libfabgrid-no-such.so.0", "fabgrid-none", syms, &t);
    char err[512] = "";
    assert_int_equal(fg_dl_load(&lib, err, sizeof err), -ENOENT);
    assert_string_equal(err, "cannot load libfabgrid-no-such.so.0 (install the Debian package fabgrid-none): "
                             "libfabgrid-no-such.so.0: cannot open shared object file: No such file or directory");
    assert_null(t.version);
    /* a failure is not remembered: the next call tries again, and fails the same way */
    err[0] = '\0';
    assert_int_equal(fg_dl_load(&lib, err, sizeof err), -ENOENT);
    assert_int_equal(strncmp(err, "cannot load libfabgrid-no-such.so.0 ", 36), 0);
}

static void test_missing_function(void **state)
{
    (void)state;
    static struct zlib_api t;
    static const struct fg_dl_sym syms[] = {
        FG_DL_SYM(struct zlib_api, version, "zlibVersion"),
        FG_DL_SYM(struct zlib_api, crc32, "fabgrid_no_such_function"),
    };
    static struct fg_dl_lib lib = FG_DL_LIB("libz.so.1", "zlib1g", syms, &t);
    char err[512] = "";
    assert_int_equal(fg_dl_load(&lib, err, sizeof err), -ENOENT);
    const char *head = "cannot load libz.so.1 (function fabgrid_no_such_function) (install the Debian package "
                       "zlib1g): ";
    assert_int_equal(strncmp(err, head, strlen(head)), 0);
    const char *tail = ": undefined symbol: fabgrid_no_such_function";
    assert_true(strlen(err) > strlen(tail));
    assert_string_equal(err + strlen(err) - strlen(tail), tail);
    assert_int_equal(lib.loaded, 0);
}

static void test_loads_once(void **state)
{
    (void)state;
    static struct zlib_api t;
    static const struct fg_dl_sym syms[] = {
        FG_DL_SYM(struct zlib_api, version, "zlibVersion"),
        FG_DL_SYM(struct zlib_api, crc32, "crc32"),
    };
    static struct fg_dl_lib lib = FG_DL_LIB("libz.so.1", "zlib1g", syms, &t);
    char err[256] = "untouched";
    assert_int_equal(lib.nsyms, 2);
    assert_int_equal(fg_dl_load(&lib, err, sizeof err), 0);
    assert_string_equal(err, "untouched");
    assert_int_equal(lib.loaded, 1);
    assert_string_equal(t.version(), ZLIB_VERSION); /* the runtime library is the one the header describes */
    /* CRC-32 of "123456789" is the standard check value 0xCBF43926 */
    assert_int_equal(t.crc32(0, (const Bytef *)"123456789", 9), 0xCBF43926UL);
    t.crc32 = NULL;
    assert_int_equal(fg_dl_load(&lib, err, sizeof err), 0); /* loaded: the table is not written again */
    assert_null(t.crc32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_library),
        cmocka_unit_test(test_missing_function),
        cmocka_unit_test(test_loads_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
