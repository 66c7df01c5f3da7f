/* Unit tests of col_sunspec: the discovery walk over hand-built model chains, and the points
 * (addresses, scale-factor registers, sentinels) it derives for each supported model.
 * Addresses are computed by hand from the SunSpec layouts, never by calling the module. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <string.h>

#include "col_sunspec.h"

#if defined(__has_include)
#if __has_include("col_decode.h")
#include "col_decode.h"
#define HAVE_COL_DECODE 1
#endif
#endif

/* Feeds one header and checks the step's result. */
static int step(struct col_ss_map *m, uint16_t id, uint16_t len, uint16_t *next)
{
    uint16_t hdr[2] = {id, len};
    char err[128] = "";
    return col_sunspec_walk_step(m, hdr, 2, next, err, sizeof err);
}

static const struct col_point *find(const struct col_point *pts, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(pts[i].name, name) == 0)
            return &pts[i];
    return NULL;
}

static void map_of(struct col_ss_map *m, uint16_t base, const struct col_ss_model *models, size_t n)
{
    col_sunspec_walk_init(m, base);
    memcpy(m->models, models, n * sizeof(*models));
    m->n = n;
}

static void test_marker(void **state)
{
    (void)state;
    const uint16_t suns[2] = {0x5375, 0x6e53};
    const uint16_t swapped[2] = {0x6e53, 0x5375};
    const uint16_t half[2] = {0x5375, 0x0000};
    assert_true(col_sunspec_is_marker(suns));
    assert_false(col_sunspec_is_marker(swapped));
    assert_false(col_sunspec_is_marker(half));
    assert_false(col_sunspec_is_marker(NULL));
    assert_int_equal(COL_SUNSPEC_BASES[0], 40000);
    assert_int_equal(COL_SUNSPEC_BASES[1], 0);
    assert_int_equal(COL_SUNSPEC_BASES[2], 50000);
}

static void test_walk_chain(void **state)
{
    (void)state;
    struct col_ss_map m;
    col_sunspec_walk_init(&m, 40000);
    uint16_t next = 40002;
    assert_int_equal(step(&m, 1, 66, &next), 1);
    assert_int_equal(next, 40070);
    assert_int_equal(step(&m, 103, 50, &next), 1);
    assert_int_equal(next, 40122);
    assert_int_equal(step(&m, 160, 48, &next), 1); /* 8 + 2 modules of 20 */
    assert_int_equal(next, 40172);
    assert_int_equal(step(&m, 0xFFFF, 0, &next), 0);
    assert_int_equal(next, 40172);
    assert_int_equal(m.base, 40000);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.models[0].id, 1);
    assert_int_equal(m.models[0].address, 40002);
    assert_int_equal(m.models[0].length, 66);
    assert_int_equal(m.models[1].id, 103);
    assert_int_equal(m.models[1].address, 40070);
    assert_int_equal(m.models[2].id, 160);
    assert_int_equal(m.models[2].address, 40122);
    assert_int_equal(m.models[2].length, 48);
}

/* Model 1 with L=65 (no pad register): the walk follows the reported length, and the end marker
 * arrives as a single register. */
static void test_walk_l65_short_end(void **state)
{
    (void)state;
    struct col_ss_map m;
    col_sunspec_walk_init(&m, 40000);
    uint16_t next = 40002;
    assert_int_equal(step(&m, 1, 65, &next), 1);
    assert_int_equal(next, 40069);
    assert_int_equal(step(&m, 103, 50, &next), 1);
    assert_int_equal(next, 40121);
    assert_int_equal(m.models[1].address, 40069);
    const uint16_t end[1] = {0xFFFF};
    assert_int_equal(col_sunspec_walk_step(&m, end, 1, &next, NULL, 0), 0);
    assert_int_equal(m.n, 2);
}

/* A vendor model in the middle is skipped by its length; base 0 works like any other. */
static void test_walk_unknown_model(void **state)
{
    (void)state;
    struct col_ss_map m;
    col_sunspec_walk_init(&m, 0);
    uint16_t next = 2;
    assert_int_equal(step(&m, 1, 66, &next), 1);
    assert_int_equal(step(&m, 64001, 30, &next), 1);
    assert_int_equal(next, 2 + 68 + 32);
    assert_int_equal(step(&m, 103, 50, &next), 1);
    assert_int_equal(step(&m, 0xFFFF, 0, &next), 0);
    assert_int_equal(m.n, 3);
    assert_false(col_sunspec_supported(64001));

    struct col_point pts[64];
    int n = col_sunspec_points(&m, pts, 64);
    assert_int_equal(n, 5 + 23);
    const struct col_point *w = find(pts, n, "power_w");
    assert_non_null(w);
    assert_int_equal(w->address, 102 + 2 + 12); /* model 103 header at 102 */
    assert_int_equal(w->sf_address, 102 + 2 + 13);
}

static void test_walk_errors(void **state)
{
    (void)state;
    struct col_ss_map m;
    char err[160];
    uint16_t next;

    col_sunspec_walk_init(&m, 40000);
    next = 40002;
    const uint16_t zero[2] = {0, 66};
    assert_int_equal(col_sunspec_walk_step(&m, zero, 2, &next, err, sizeof err), -EBADMSG);
    assert_string_equal(err, "sunspec: model id 0 at register 40002");
    assert_int_equal(next, 40002);
    assert_int_equal(m.n, 0);

    const uint16_t lone[1] = {103};
    assert_int_equal(col_sunspec_walk_step(&m, lone, 1, &next, err, sizeof err), -EBADMSG);
    assert_string_equal(err, "sunspec: model 103 at register 40002 has no length");

    /* 40002 + 2 + 25532 = 65536: one past the address space. */
    const uint16_t huge[2] = {103, 25532};
    assert_int_equal(col_sunspec_walk_step(&m, huge, 2, &next, err, sizeof err), -EBADMSG);
    assert_string_equal(err,
                        "sunspec: model 103 at register 40002 with length 25532 runs past register 65535");
    assert_int_equal(next, 40002);
    /* ... and one register less is still a valid chain. */
    const uint16_t edge[2] = {103, 25531};
    assert_int_equal(col_sunspec_walk_step(&m, edge, 2, &next, err, sizeof err), 1);
    assert_int_equal(next, 65535);

    /* Going back to an address already walked is a loop. */
    col_sunspec_walk_init(&m, 40000);
    next = 40002;
    assert_int_equal(step(&m, 1, 66, &next), 1);
    next = 40002;
    const uint16_t again[2] = {1, 66};
    assert_int_equal(col_sunspec_walk_step(&m, again, 2, &next, err, sizeof err), -EBADMSG);
    assert_string_equal(err,
                        "sunspec: header read at register 40002, expected 40070 (loop in the model chain)");
    assert_int_equal(m.n, 1);

    assert_int_equal(col_sunspec_walk_step(&m, NULL, 2, &next, err, sizeof err), -EINVAL);
    assert_int_equal(col_sunspec_walk_step(&m, again, 0, &next, err, sizeof err), -EINVAL);
}

static void test_walk_too_many(void **state)
{
    (void)state;
    struct col_ss_map m;
    char err[160];
    col_sunspec_walk_init(&m, 40000);
    uint16_t next = 40002;
    for (int i = 0; i < COL_SS_MAX_MODELS; i++)
        assert_int_equal(step(&m, 1, 0, &next), 1);
    assert_int_equal(next, 40002 + 2 * COL_SS_MAX_MODELS);
    const uint16_t one[2] = {1, 0};
    assert_int_equal(col_sunspec_walk_step(&m, one, 2, &next, err, sizeof err), -EBADMSG);
    assert_string_equal(err, "sunspec: more than 32 models (next: 1 at register 40066)");
    assert_int_equal(m.n, COL_SS_MAX_MODELS);
    /* The end marker after exactly 32 models is still fine. */
    const uint16_t end[2] = {0xFFFF, 0};
    assert_int_equal(col_sunspec_walk_step(&m, end, 2, &next, err, sizeof err), 0);
}

static void test_points_103(void **state)
{
    (void)state;
    const struct col_ss_model models[] = {{1, 40002, 66}, {103, 40070, 50}};
    struct col_ss_map m;
    map_of(&m, 40000, models, 2);
    struct col_point pts[64];
    int n = col_sunspec_points(&m, pts, 64);
    assert_int_equal(n, 28);

    const struct col_point *p = find(pts, n, "manufacturer");
    assert_non_null(p);
    assert_int_equal(p->address, 40004);
    assert_int_equal(p->count, 16);
    assert_int_equal(p->type, COL_STRING);
    assert_true(p->static_value);
    assert_int_equal(p->sf_address, -1);
    p = find(pts, n, "serial");
    assert_int_equal(p->address, 40052);
    assert_int_equal(p->count, 16);
    p = find(pts, n, "version");
    assert_int_equal(p->address, 40044);
    assert_int_equal(p->count, 8);

    p = find(pts, n, "power_w");
    assert_non_null(p);
    assert_int_equal(p->table, COL_HOLDING);
    assert_int_equal(p->address, 40084);
    assert_int_equal(p->sf_address, 40085);
    assert_int_equal(p->type, COL_S16);
    assert_int_equal(p->count, 1);
    assert_int_equal(p->order, COL_ABCD);
    assert_int_equal(p->bit, -1);
    assert_int_equal(p->nsentinel, 1);
    assert_int_equal(p->sentinel[0], 0x8000);
    assert_false(p->static_value);
    assert_true(p->has_min && p->has_max);
    assert_true(p->min == -1e7 && p->max == 1e7);
    assert_true(p->scale == 1.0);

    p = find(pts, n, "current_a");
    assert_int_equal(p->address, 40072);
    assert_int_equal(p->sf_address, 40076);
    assert_int_equal(p->type, COL_U16);
    assert_int_equal(p->sentinel[0], 0xFFFF);
    p = find(pts, n, "voltage_l3_v");
    assert_int_equal(p->address, 40082);
    assert_int_equal(p->sf_address, 40083);
    p = find(pts, n, "power_factor");
    assert_int_equal(p->address, 40092);
    assert_int_equal(p->sf_address, 40093);
    assert_true(p->scale == 0.01);
    assert_true(p->min == -1.0 && p->max == 1.0);
    p = find(pts, n, "energy_wh");
    assert_int_equal(p->address, 40094);
    assert_int_equal(p->count, 2);
    assert_int_equal(p->type, COL_U32);
    assert_int_equal(p->sf_address, 40096);
    assert_true(p->zero_is_sentinel);
    assert_int_equal(p->nsentinel, 0);
    p = find(pts, n, "temperature_heatsink_c");
    assert_int_equal(p->address, 40104);
    assert_int_equal(p->sf_address, 40107);
    p = find(pts, n, "state");
    assert_int_equal(p->address, 40108);
    assert_int_equal(p->sf_address, -1);
    assert_false(p->has_min);
    p = find(pts, n, "events");
    assert_int_equal(p->address, 40110);
    assert_int_equal(p->count, 2);
    assert_int_equal(p->sentinel[0], 0xFFFFFFFFu);
    assert_null(find(pts, n, "options_x"));
}

static void test_points_160(void **state)
{
    (void)state;
    const struct col_ss_model two[] = {{160, 40122, 48}};
    struct col_ss_map m;
    map_of(&m, 40000, two, 1);
    struct col_point pts[64];
    int n = col_sunspec_points(&m, pts, 64);
    assert_int_equal(n, 10);
    const struct col_point *p = find(pts, n, "mppt2_dc_power_w");
    assert_non_null(p);
    assert_int_equal(p->address, 40124 + 28 + 11); /* fixed 8 + one module of 20 */
    assert_int_equal(p->sf_address, 40126);
    p = find(pts, n, "mppt1_dc_current_a");
    assert_int_equal(p->address, 40124 + 8 + 9);
    assert_int_equal(p->sf_address, 40124);
    p = find(pts, n, "mppt2_energy_wh");
    assert_int_equal(p->address, 40124 + 28 + 12);
    assert_int_equal(p->sf_address, 40127);
    assert_true(p->zero_is_sentinel);
    p = find(pts, n, "mppt1_temperature_c");
    assert_int_equal(p->address, 40124 + 8 + 16);
    assert_int_equal(p->sf_address, -1);
    assert_null(find(pts, n, "mppt3_dc_power_w"));

    /* L not a multiple: 8 + 2*20 + 9 -> two modules, the rest ignored. */
    const struct col_ss_model odd[] = {{160, 40122, 57}};
    map_of(&m, 40000, odd, 1);
    assert_int_equal(col_sunspec_points(&m, pts, 64), 10);

    /* Eight modules: module 7's DCA is 8+120+9 = 137 registers past DCA_SF, too far for one
     * request, so modules 7 and 8 are left out; module 6 (DCA at 117) still fits. */
    const struct col_ss_model eight[] = {{160, 40122, 168}};
    map_of(&m, 40000, eight, 1);
    n = col_sunspec_points(&m, pts, 64);
    assert_int_equal(n, 30);
    p = find(pts, n, "mppt6_energy_wh");
    assert_non_null(p);
    assert_int_equal(p->address, 40124 + 108 + 12);
    assert_null(find(pts, n, "mppt7_temperature_c"));
}

static void test_points_meters(void **state)
{
    (void)state;
    const struct col_ss_model models[] = {{1, 40002, 65}, {203, 40069, 105}};
    struct col_ss_map m;
    map_of(&m, 40000, models, 2);
    struct col_point pts[64];
    int n = col_sunspec_points(&m, pts, 64);
    assert_int_equal(n, 26);
    const struct col_point *p = find(pts, n, "power_w");
    assert_int_equal(p->address, 40087);
    assert_int_equal(p->sf_address, 40091);
    assert_int_equal(p->type, COL_S16);
    p = find(pts, n, "energy_import_wh");
    assert_int_equal(p->address, 40115);
    assert_int_equal(p->sf_address, 40123);
    assert_int_equal(p->count, 2);
    p = find(pts, n, "energy_export_wh");
    assert_int_equal(p->address, 40107);
    p = find(pts, n, "voltage_v");
    assert_int_equal(p->address, 40076);
    assert_int_equal(p->sf_address, 40084);
    p = find(pts, n, "power_factor");
    assert_int_equal(p->address, 40102);
    assert_int_equal(p->sf_address, 40106);

    const struct col_ss_model fl[] = {{1, 40002, 65}, {213, 40069, 124}};
    map_of(&m, 40000, fl, 2);
    n = col_sunspec_points(&m, pts, 64);
    assert_int_equal(n, 26);
    p = find(pts, n, "power_w");
    assert_int_equal(p->address, 40097);
    assert_int_equal(p->type, COL_F32);
    assert_int_equal(p->count, 2);
    assert_int_equal(p->sf_address, -1);
    assert_true(p->nan_is_sentinel);
    assert_int_equal(p->nsentinel, 0);
    p = find(pts, n, "energy_import_wh");
    assert_int_equal(p->address, 40137);
    p = find(pts, n, "power_factor");
    assert_int_equal(p->address, 40121);
    assert_true(p->scale == 0.01);
}

static void test_points_counts(void **state)
{
    (void)state;
    static const struct {
        uint16_t id, len;
        int npoints;
    } cases[] = {
        {1, 66, 5},    {101, 50, 23}, {102, 50, 23}, {103, 50, 23}, {111, 60, 23},
        {113, 60, 23}, {120, 26, 7},  {124, 24, 7},  {201, 105, 21}, {204, 105, 21},
        {211, 124, 21}, {214, 124, 21}, {160, 8, 0},  {121, 30, 0},  {64001, 10, 0},
        /* model 103 cut short at L=20: only A..VAr (offsets 0..19) remain */
        {103, 20, 14},
        /* model 111 at L=49: Evt1 (48-49) would end one register past the model */
        {111, 49, 22}, {111, 50, 23},
    };
    struct col_point pts[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct col_ss_model md = {cases[i].id, 40002, cases[i].len};
        struct col_ss_map m;
        map_of(&m, 40000, &md, 1);
        int n = col_sunspec_points(&m, pts, 64);
        if (n != cases[i].npoints)
            fail_msg("model %u L=%u: %d points, expected %d", cases[i].id, cases[i].len, n,
                     cases[i].npoints);
    }
}

static void test_points_storage_nameplate(void **state)
{
    (void)state;
    const struct col_ss_model models[] = {{120, 40200, 26}, {124, 40228, 24}};
    struct col_ss_map m;
    map_of(&m, 40000, models, 2);
    struct col_point pts[64];
    int n = col_sunspec_points(&m, pts, 64);
    assert_int_equal(n, 14);
    const struct col_point *p = find(pts, n, "rated_power_w");
    assert_int_equal(p->address, 40203);
    assert_int_equal(p->sf_address, 40204);
    assert_true(p->static_value);
    p = find(pts, n, "rated_energy_wh");
    assert_int_equal(p->address, 40219);
    assert_int_equal(p->sf_address, 40220);
    p = find(pts, n, "soc_pct");
    assert_int_equal(p->address, 40236);
    assert_int_equal(p->sf_address, 40250);
    assert_false(p->static_value);
    assert_true(p->min == 0 && p->max == 100);
    p = find(pts, n, "charge_rate_pct");
    assert_int_equal(p->address, 40241);
    assert_int_equal(p->sf_address, 40253);
    assert_int_equal(p->type, COL_S16);
    p = find(pts, n, "max_charge_power_w");
    assert_int_equal(p->address, 40230);
    assert_int_equal(p->sf_address, 40246);
}

/* An inverter with its meter in the same chain (1, 103, 1, 203): the later models get prefixes. */
static void test_points_unique_names(void **state)
{
    (void)state;
    const struct col_ss_model models[] = {
        {1, 40002, 66}, {103, 40070, 50}, {1, 40122, 65}, {203, 40189, 105}};
    struct col_ss_map m;
    map_of(&m, 40000, models, 4);
    struct col_point pts[128];
    int n = col_sunspec_points(&m, pts, 128);
    assert_int_equal(n, 5 + 23 + 5 + 21);
    assert_int_equal(find(pts, n, "power_w")->address, 40084);
    assert_int_equal(find(pts, n, "m4_power_w")->address, 40189 + 2 + 16);
    assert_int_equal(find(pts, n, "m3_manufacturer")->address, 40124);
    assert_int_equal(find(pts, n, "m4_energy_import_wh")->sf_address, 40189 + 2 + 52);
    assert_null(find(pts, n, "energy_import_wh"));
}

static void test_points_errors(void **state)
{
    (void)state;
    const struct col_ss_model models[] = {{1, 40002, 66}, {103, 40070, 50}};
    struct col_ss_map m;
    map_of(&m, 40000, models, 2);
    struct col_point pts[28];
    assert_int_equal(col_sunspec_points(&m, pts, 27), -ENOSPC);
    assert_int_equal(col_sunspec_points(&m, pts, 28), 28);
    assert_int_equal(col_sunspec_points(&m, NULL, 0), -ENOSPC);
    assert_int_equal(col_sunspec_points(NULL, pts, 28), -EINVAL);
    assert_int_equal(col_sunspec_points(&m, NULL, 5), -EINVAL);
}

static void test_supported(void **state)
{
    (void)state;
    static const uint16_t yes[] = {1, 101, 102, 103, 111, 112, 113, 120, 124, 160,
                                   201, 202, 203, 204, 211, 212, 213, 214};
    static const uint16_t no[] = {0, 2, 100, 104, 110, 114, 121, 123, 125, 159,
                                  161, 200, 205, 210, 215, 64001, 0xFFFF};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!col_sunspec_supported(yes[i]))
            fail_msg("model %u should be supported", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (col_sunspec_supported(no[i]))
            fail_msg("model %u should not be supported", no[i]);
}

#ifdef HAVE_COL_DECODE
/* End to end with the decoder: a hand-built model 103 block read in one request from 40070. */
static void test_decode_103(void **state)
{
    (void)state;
    const struct col_ss_model models[] = {{103, 40070, 50}};
    struct col_ss_map m;
    map_of(&m, 40000, models, 1);
    struct col_point pts[32];
    int n = col_sunspec_points(&m, pts, 32);
    assert_int_equal(n, 23);

    uint16_t regs[52] = {103, 50};
    uint16_t *d = regs + 2;
    d[0] = 0xFFFF;  /* A: not implemented */
    d[4] = 0xFFFE;  /* A_SF = -2 */
    d[12] = 1234;   /* W */
    d[13] = 0xFFFF; /* W_SF = -1 */
    d[14] = 5001;   /* Hz */
    d[15] = 0xFFFE; /* Hz_SF = -2 */
    d[20] = 0xFFA1; /* PF = -95 */
    d[21] = 0;      /* PF_SF */
    d[22] = 0;      /* WH (acc32) = 0: not implemented */
    d[23] = 0;
    d[24] = 0;
    d[36] = 4;      /* St = MPPT */
    d[38] = 0x0001; /* Evt1 = 0x00010080 */
    d[39] = 0x0080;
    struct col_value v;
    assert_int_equal(col_decode(find(pts, n, "power_w"), 40070, regs, 52, &v), COL_DECODE_OK);
    assert_true(fabs(v.number - 123.4) < 1e-9);
    assert_int_equal(col_decode(find(pts, n, "power_factor"), 40070, regs, 52, &v), COL_DECODE_OK);
    assert_true(fabs(v.number - -0.95) < 1e-12);
    assert_int_equal(col_decode(find(pts, n, "frequency_hz"), 40070, regs, 52, &v), COL_DECODE_OK);
    assert_true(fabs(v.number - 50.01) < 1e-9);
    assert_int_equal(col_decode(find(pts, n, "state"), 40070, regs, 52, &v), COL_DECODE_OK);
    assert_true(v.number == 4.0);
    assert_int_equal(col_decode(find(pts, n, "events"), 40070, regs, 52, &v), COL_DECODE_OK);
    assert_true(v.number == 65664.0);
    assert_int_equal(col_decode(find(pts, n, "energy_wh"), 40070, regs, 52, &v), COL_DECODE_NOTIMPL);
    assert_int_equal(col_decode(find(pts, n, "current_a"), 40070, regs, 52, &v), COL_DECODE_NOTIMPL);
    /* W_SF = 0x8000 (not implemented) makes the power unusable */
    d[13] = 0x8000;
    assert_int_equal(col_decode(find(pts, n, "power_w"), 40070, regs, 52, &v), COL_DECODE_BADSF);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marker),
        cmocka_unit_test(test_walk_chain),
        cmocka_unit_test(test_walk_l65_short_end),
        cmocka_unit_test(test_walk_unknown_model),
        cmocka_unit_test(test_walk_errors),
        cmocka_unit_test(test_walk_too_many),
        cmocka_unit_test(test_points_103),
        cmocka_unit_test(test_points_160),
        cmocka_unit_test(test_points_meters),
        cmocka_unit_test(test_points_counts),
        cmocka_unit_test(test_points_storage_nameplate),
        cmocka_unit_test(test_points_unique_names),
        cmocka_unit_test(test_points_errors),
        cmocka_unit_test(test_supported),
#ifdef HAVE_COL_DECODE
        cmocka_unit_test(test_decode_103),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
