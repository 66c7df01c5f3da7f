/* Unit tests of col_coalesce: exact request lists for hand-made point sets (gaps, limits, tables,
 * scale factors, errors), and a seeded random comparison against a brute-force minimum. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "col_coalesce.h"

#define MAXP 300

static struct col_point pts[MAXP];
static size_t npts;

static int setup(void **state)
{
    (void)state;
    npts = 0;
    memset(pts, 0, sizeof pts);
    return 0;
}

/* Adds a u16-typed point of `count` registers (bits); returns its index. */
static size_t add(enum col_table t, uint16_t address, uint16_t count, int32_t sf_address)
{
    assert_true(npts < MAXP);
    struct col_point *p = &pts[npts];
    strcpy(p->name, "p");
    p->table = t;
    p->address = address;
    p->count = count;
    p->type = COL_U16;
    p->bit = -1;
    p->scale = 1.0;
    p->sf_address = sf_address;
    return npts++;
}

static size_t reg(uint16_t address, uint16_t count)
{
    return add(COL_HOLDING, address, count, -1);
}

/* Plans all points and checks the result against want[0..nwant). */
static void expect_plan(unsigned max_gap, const struct col_req *want, size_t nwant,
                        const uint32_t *want_sel_req)
{
    struct col_req out[MAXP];
    uint32_t sel_req[MAXP];
    memset(out, 0xAB, sizeof out);
    int n = col_coalesce(pts, NULL, npts, max_gap, out, MAXP, sel_req);
    assert_int_equal(n, (int)nwant);
    for (size_t i = 0; i < nwant; i++) {
        if (out[i].table != want[i].table || out[i].address != want[i].address ||
            out[i].count != want[i].count)
            fail_msg("request %zu: {%d,%u,%u} want {%d,%u,%u}", i, out[i].table, out[i].address,
                     out[i].count, want[i].table, want[i].address, want[i].count);
    }
    if (want_sel_req)
        for (size_t j = 0; j < npts; j++)
            if (sel_req[j] != want_sel_req[j])
                fail_msg("point %zu: request %u want %u", j, sel_req[j], want_sel_req[j]);
}

#define H COL_HOLDING
#define I COL_INPUT
#define C COL_COIL
#define D COL_DISCRETE
#define PLAN(gap, sel_req, ...)                                                                  \
    do {                                                                                         \
        const struct col_req w_[] = {__VA_ARGS__};                                               \
        expect_plan(gap, w_, sizeof w_ / sizeof w_[0], sel_req);                                 \
    } while (0)

static void test_empty(void **state)
{
    (void)state;
    assert_int_equal(col_coalesce(pts, NULL, 0, 0, NULL, 0, NULL), 0);
}

static void test_contiguous(void **state)
{
    (void)state;
    reg(3, 1);
    reg(0, 1);
    reg(2, 1);
    reg(1, 1);
    PLAN(0, ((uint32_t[]){0, 0, 0, 0}), {H, 0, 4});
}

static void test_gap_bridged(void **state)
{
    (void)state;
    reg(0, 1);
    reg(6, 1); /* hole 1..5 = 5 registers */
    PLAN(5, NULL, {H, 0, 7});
}

static void test_gap_split(void **state)
{
    (void)state;
    reg(0, 1);
    reg(7, 1); /* hole 1..6 = 6 registers */
    PLAN(5, ((uint32_t[]){0, 1}), {H, 0, 1}, {H, 7, 1});
}

static void test_gap_zero(void **state)
{
    (void)state;
    reg(0, 2);
    reg(2, 1);
    reg(4, 1);
    PLAN(0, ((uint32_t[]){0, 0, 1}), {H, 0, 3}, {H, 4, 1});
}

static void test_limit_exact(void **state)
{
    (void)state;
    for (uint16_t a = 0; a < 125; a++)
        reg(a, 1);
    PLAN(0, NULL, {H, 0, 125});
}

static void test_limit_plus_one(void **state)
{
    (void)state;
    for (uint16_t a = 0; a <= 125; a++)
        reg(a, 1);
    PLAN(0, NULL, {H, 0, 125}, {H, 125, 1});
}

static void test_limit_straddle(void **state)
{
    (void)state;
    for (uint16_t a = 0; a < 124; a++)
        reg(a, 1);
    size_t u32 = add(H, 124, 2, -1);
    pts[u32].type = COL_U32;
    uint32_t sel_req[MAXP];
    struct col_req out[4];
    assert_int_equal(col_coalesce(pts, NULL, npts, 0, out, 4, sel_req), 2);
    assert_int_equal(out[0].address, 0);
    assert_int_equal(out[0].count, 124);
    assert_int_equal(out[1].address, 124);
    assert_int_equal(out[1].count, 2);
    assert_int_equal(sel_req[0], 0);
    assert_int_equal(sel_req[123], 0);
    assert_int_equal(sel_req[u32], 1);
}

static void test_type_span(void **state)
{
    (void)state;
    size_t a = add(H, 10, 0, -1); /* count 0: the type's width counts */
    pts[a].type = COL_F64;
    reg(14, 1);
    PLAN(0, NULL, {H, 10, 5});
}

static void test_mixed_tables(void **state)
{
    (void)state;
    reg(10, 1);
    add(C, 0, 1, -1);
    add(I, 0, 2, -1);
    reg(0, 2);
    add(D, 5, 1, -1);
    add(I, 1, 1, -1);
    PLAN(10, ((uint32_t[]){0, 2, 1, 0, 3, 1}), {H, 0, 11}, {I, 0, 2}, {C, 0, 1}, {D, 5, 1});
}

static void test_bit_limit(void **state)
{
    (void)state;
    add(C, 0, 1, -1);
    add(C, 1999, 1, -1);
    PLAN(125, NULL, {C, 0, 2000}); /* hole of 1998 bits <= 125 * 16 */
}

static void test_bit_limit_plus_one(void **state)
{
    (void)state;
    add(C, 0, 1, -1);
    add(C, 2000, 1, -1);
    PLAN(125, NULL, {C, 0, 1}, {C, 2000, 1});
}

static void test_bit_gap(void **state)
{
    (void)state;
    add(D, 0, 1, -1);
    add(D, 33, 1, -1); /* hole 1..32 = 32 bits = 2 * 16 */
    add(D, 100, 1, -1);
    add(D, 134, 1, -1); /* hole 101..133 = 33 bits */
    PLAN(2, ((uint32_t[]){0, 0, 1, 2}), {D, 0, 34}, {D, 100, 1}, {D, 134, 1});
}

static void test_overlapping(void **state)
{
    (void)state;
    reg(10, 2); /* a u32 */
    size_t b0 = reg(10, 1);
    size_t b5 = reg(10, 1);
    pts[b0].type = pts[b5].type = COL_BITS;
    pts[b0].bit = 0;
    pts[b5].bit = 5;
    reg(9, 4); /* a string over all of them */
    PLAN(0, ((uint32_t[]){0, 0, 0, 0}), {H, 9, 4});
}

/* Overlapping ranges whose union exceeds the limit are split into overlapping requests. */
static void test_overlap_over_limit(void **state)
{
    (void)state;
    reg(0, 100);
    reg(50, 100);
    reg(60, 1);
    reg(90, 1);
    PLAN(0, ((uint32_t[]){0, 1, 1, 1}), {H, 0, 100}, {H, 50, 100});
}

static void test_sf_after(void **state)
{
    (void)state;
    add(H, 40, 1, 50);
    PLAN(0, NULL, {H, 40, 11});
}

static void test_sf_before_and_shared(void **state)
{
    (void)state;
    add(I, 60, 1, 50);
    add(H, 40, 1, 45);
    add(H, 41, 2, 45);
    add(H, 44, 1, 45);
    add(H, 200, 1, 190); /* its own sf, 144 registers after the others: a separate request */
    PLAN(3, ((uint32_t[]){2, 0, 0, 0, 1}), {H, 40, 6}, {H, 190, 11}, {I, 50, 11});
}

static void test_sf_in_limit(void **state)
{
    (void)state;
    add(H, 0, 1, 124);
    reg(125, 1);
    PLAN(0, NULL, {H, 0, 125}, {H, 125, 1});
}

static void test_sf_ignored_on_coils(void **state)
{
    (void)state;
    add(C, 7, 1, 5000);
    PLAN(0, NULL, {C, 7, 1});
}

static void expect_einval(void)
{
    struct col_req out[4];
    assert_int_equal(col_coalesce(pts, NULL, npts, 0, out, 4, NULL), -EINVAL);
    assert_int_equal(col_coalesce(pts, NULL, npts, 0, out, 0, NULL), -EINVAL); /* before ENOSPC */
}

static void test_einval(void **state)
{
    (void)state;
    reg(1000, 1);
    reg(2000, 1);
    size_t p = add(H, 0, 1, 125); /* point + sf span 126 */
    expect_einval();
    pts[p].sf_address = 124;
    pts[p].address = 1;
    pts[p].type = COL_U32; /* ends at 3; sf at 124: span 124 */
    assert_int_equal(col_coalesce(pts, NULL, npts, 0, (struct col_req[4]){0}, 4, NULL), 3);
    pts[p].address = 124;
    pts[p].sf_address = 0; /* u32 at 124..125 with sf at 0: span 126 */
    expect_einval();
    pts[p].sf_address = -1;
    pts[p].count = 126;
    expect_einval();
    pts[p].table = COL_COIL;
    pts[p].count = 2001;
    expect_einval();
    pts[p].count = 2000;
    assert_int_equal(col_coalesce(pts, NULL, npts, 0, (struct col_req[4]){0}, 4, NULL), 3);
    pts[p].table = COL_TABLE_COUNT;
    expect_einval();
}

static void test_einval_address_end(void **state)
{
    (void)state;
    size_t p = reg(65535, 1);
    struct col_req out[1];
    assert_int_equal(col_coalesce(pts, NULL, npts, 0, out, 1, NULL), 1);
    assert_int_equal(out[0].address, 65535);
    assert_int_equal(out[0].count, 1);
    pts[p].type = COL_U32;
    expect_einval();
    pts[p].type = COL_U16;
    pts[p].sf_address = 65536;
    expect_einval();
}

static void test_enospc(void **state)
{
    (void)state;
    reg(0, 1);
    reg(10, 1);
    reg(20, 1);
    struct col_req out[3];
    assert_int_equal(col_coalesce(pts, NULL, npts, 0, out, 2, NULL), -ENOSPC);
    assert_int_equal(col_coalesce(pts, NULL, npts, 0, out, 0, NULL), -ENOSPC);
    assert_int_equal(col_coalesce(pts, NULL, npts, 0, out, 3, NULL), 3);
    assert_int_equal(col_coalesce(pts, NULL, npts, 10, out, 1, NULL), 1);
}

static void test_sel_subset(void **state)
{
    (void)state;
    for (uint16_t a = 0; a < 100; a += 10)
        reg(a, 1);
    const uint32_t sel[] = {7, 2, 3};
    uint32_t sel_req[3] = {99, 99, 99};
    struct col_req out[3];
    /* unselected points 40..60 do not count as covered: 31..69 is one hole of 39 */
    assert_int_equal(col_coalesce(pts, sel, 3, 10, out, 3, sel_req), 2);
    assert_int_equal(out[0].table, COL_HOLDING);
    assert_int_equal(out[0].address, 20);
    assert_int_equal(out[0].count, 11);
    assert_int_equal(out[1].address, 70);
    assert_int_equal(out[1].count, 1);
    assert_int_equal(sel_req[0], 1);
    assert_int_equal(sel_req[1], 0);
    assert_int_equal(sel_req[2], 0);
    assert_int_equal(col_coalesce(pts, sel, 3, 39, out, 3, sel_req), 1);
    assert_int_equal(out[0].address, 20);
    assert_int_equal(out[0].count, 51);
}

/* ---- randomized comparison against a brute-force minimum ---- */

#define RN 7

struct rcase {
    enum col_table table[RN];
    uint32_t lo[RN], hi[RN];
    size_t n;
    unsigned max_gap;
    uint32_t hole_lo[3][2 * RN], hole_hi[3][2 * RN]; /* holes longer than the gap, per table */
    size_t nholes[3];
};

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static uint32_t limit_of(enum col_table t)
{
    return t == COL_COIL ? COL_MAX_READ_BITS : COL_MAX_READ_REGS;
}

/* Holes in the union of all ranges of table t that are longer than the gap. */
static void find_holes(struct rcase *rc, enum col_table t)
{
    uint32_t lim = t == COL_COIL ? rc->max_gap * 16 : rc->max_gap;
    size_t *nh = &rc->nholes[t];
    *nh = 0;
    bool done[RN] = {false};
    uint32_t end = 0;
    bool any = false;
    for (;;) { /* visit ranges of t by increasing lo (selection sort; n is tiny) */
        size_t best = RN;
        for (size_t i = 0; i < rc->n; i++)
            if (!done[i] && rc->table[i] == t && (best == RN || rc->lo[i] < rc->lo[best]))
                best = i;
        if (best == RN)
            return;
        done[best] = true;
        if (any && rc->lo[best] > end && rc->lo[best] - end > lim) {
            rc->hole_lo[t][*nh] = end;
            rc->hole_hi[t][(*nh)++] = rc->lo[best];
        }
        if (!any || rc->hi[best] > end)
            end = rc->hi[best];
        any = true;
    }
}

/* Whether hull [lo, hi) of table t may be one request. */
static bool block_ok(const struct rcase *rc, enum col_table t, uint32_t lo, uint32_t hi)
{
    if (hi - lo > limit_of(t))
        return false;
    for (size_t h = 0; h < rc->nholes[t]; h++)
        if (rc->hole_lo[t][h] >= lo && rc->hole_hi[t][h] <= hi)
            return false;
    return true;
}

/* Minimum number of blocks over all set partitions of points k..n-1 added to the blocks so far. */
static size_t brute(const struct rcase *rc, size_t k, enum col_table *bt, uint32_t *blo,
                    uint32_t *bhi, size_t nb, size_t best)
{
    if (nb >= best)
        return best;
    if (k == rc->n)
        return nb;
    for (size_t b = 0; b < nb; b++) {
        if (bt[b] != rc->table[k])
            continue;
        uint32_t olo = blo[b], ohi = bhi[b];
        uint32_t nlo = rc->lo[k] < olo ? rc->lo[k] : olo, nhi = rc->hi[k] > ohi ? rc->hi[k] : ohi;
        if (!block_ok(rc, bt[b], nlo, nhi))
            continue;
        blo[b] = nlo;
        bhi[b] = nhi;
        best = brute(rc, k + 1, bt, blo, bhi, nb, best);
        blo[b] = olo;
        bhi[b] = ohi;
    }
    bt[nb] = rc->table[k];
    blo[nb] = rc->lo[k];
    bhi[nb] = rc->hi[k];
    return brute(rc, k + 1, bt, blo, bhi, nb + 1, best);
}

/* Makes a random small case in pts[0..n) and the ranges the planner must honour. */
static void random_case(struct rcase *rc)
{
    static const enum col_table tabs[] = {COL_HOLDING, COL_INPUT, COL_COIL};
    npts = 0;
    rc->n = 1 + rnd(RN);
    rc->max_gap = rnd(16);
    for (size_t i = 0; i < rc->n; i++) {
        enum col_table t = tabs[rnd(3)];
        uint32_t scale = t == COL_COIL ? 16 : 1;
        uint16_t addr = (uint16_t)(rnd(300) * scale);
        uint16_t count = (uint16_t)((1 + rnd(rnd(2) ? 120 : 8)) * scale);
        int32_t sf = (t != COL_COIL && rnd(3) == 0) ? (int32_t)addr + (int32_t)rnd(61) - 30 : -1;
        if (sf < 0 && t != COL_COIL)
            sf = -1;
        add(t, addr, count, sf);
        rc->table[i] = t;
        rc->lo[i] = addr;
        rc->hi[i] = (uint32_t)addr + count;
        if (sf >= 0 && (uint32_t)sf < rc->lo[i])
            rc->lo[i] = (uint32_t)sf;
        if (sf >= 0 && (uint32_t)sf + 1 > rc->hi[i])
            rc->hi[i] = (uint32_t)sf + 1;
    }
    for (int t = 0; t < 3; t++)
        find_holes(rc, (enum col_table)t);
}

static void check_random_plan(const struct rcase *rc, const struct col_req *out, int n,
                              const uint32_t *sel_req)
{
    enum col_table bt[RN];
    uint32_t blo[RN], bhi[RN];
    assert_int_equal(n, (int)brute(rc, 0, bt, blo, bhi, 0, RN + 1));
    for (int r = 0; r < n; r++) {
        assert_true(block_ok(rc, out[r].table, out[r].address,
                             (uint32_t)out[r].address + out[r].count));
        if (r > 0)
            assert_true(out[r - 1].table < out[r].table ||
                        (out[r - 1].table == out[r].table && out[r - 1].address < out[r].address));
    }
    for (size_t j = 0; j < rc->n; j++) {
        const struct col_req *q = &out[sel_req[j]];
        assert_true(sel_req[j] < (uint32_t)n);
        assert_int_equal(q->table, rc->table[j]);
        assert_true(q->address <= rc->lo[j] && rc->hi[j] <= (uint32_t)q->address + q->count);
    }
}

static void test_random_vs_brute_force(void **state)
{
    (void)state;
    size_t einval = 0, multi = 0;
    for (int iter = 0; iter < 4000; iter++) {
        struct rcase rc;
        random_case(&rc);
        bool valid = true;
        for (size_t i = 0; i < rc.n; i++)
            valid = valid && rc.hi[i] - rc.lo[i] <= limit_of(rc.table[i]);
        struct col_req out[RN];
        uint32_t sel_req[RN];
        int n = col_coalesce(pts, NULL, rc.n, rc.max_gap, out, RN, sel_req);
        if (!valid) {
            assert_int_equal(n, -EINVAL);
            einval++;
            continue;
        }
        check_random_plan(&rc, out, n, sel_req);
        multi += n > 1;
    }
    /* the generator must exercise both paths, or the check above proves little */
    print_message("random: %zu plans with several requests, %zu -EINVAL cases\n", multi, einval);
    assert_true(einval > 0);
    assert_true(multi > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_empty, setup),
        cmocka_unit_test_setup(test_contiguous, setup),
        cmocka_unit_test_setup(test_gap_bridged, setup),
        cmocka_unit_test_setup(test_gap_split, setup),
        cmocka_unit_test_setup(test_gap_zero, setup),
        cmocka_unit_test_setup(test_limit_exact, setup),
        cmocka_unit_test_setup(test_limit_plus_one, setup),
        cmocka_unit_test_setup(test_limit_straddle, setup),
        cmocka_unit_test_setup(test_type_span, setup),
        cmocka_unit_test_setup(test_mixed_tables, setup),
        cmocka_unit_test_setup(test_bit_limit, setup),
        cmocka_unit_test_setup(test_bit_limit_plus_one, setup),
        cmocka_unit_test_setup(test_bit_gap, setup),
        cmocka_unit_test_setup(test_overlapping, setup),
        cmocka_unit_test_setup(test_overlap_over_limit, setup),
        cmocka_unit_test_setup(test_sf_after, setup),
        cmocka_unit_test_setup(test_sf_before_and_shared, setup),
        cmocka_unit_test_setup(test_sf_in_limit, setup),
        cmocka_unit_test_setup(test_sf_ignored_on_coils, setup),
        cmocka_unit_test_setup(test_einval, setup),
        cmocka_unit_test_setup(test_einval_address_end, setup),
        cmocka_unit_test_setup(test_enospc, setup),
        cmocka_unit_test_setup(test_sel_subset, setup),
        cmocka_unit_test_setup(test_random_vs_brute_force, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
