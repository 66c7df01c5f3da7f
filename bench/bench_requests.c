/* bench_requests: Modbus requests per poll for one SunSpec inverter (models 1 + 103 + 160 with two
 * MPPT modules, as fabgrid-sim serves it) and one SDM630 with all points: coalesced (fabgrid's
 * planner at the default max_gap 16), one request per point (the naive baseline), and the lower
 * bound of the register map (the planner with unlimited gap bridging: nothing can do fewer). */
#include "col_coalesce.h"
#include "col_profile.h"
#include "bench_sunspec.h"
#include "fg_cfg.h"

#include <stdio.h>
#include <stdlib.h>

struct counts {
    size_t points, coalesced, lower, static_reqs;
};

static size_t plan(const struct col_point *pts, size_t n, bool want_static, unsigned gap)
{
    uint32_t *sel = calloc(n + 1, sizeof *sel);
    struct col_req *reqs = calloc(n + 1, sizeof *reqs);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (pts[i].static_value == want_static)
            sel[k++] = (uint32_t)i;
    int r = k ? col_coalesce(pts, sel, k, gap, reqs, k, NULL) : 0;
    free(sel);
    free(reqs);
    return r < 0 ? 0 : (size_t)r;
}

static struct counts count(const struct col_point *pts, size_t n)
{
    struct counts c = { 0, 0, 0, 0 };
    for (size_t i = 0; i < n; i++)
        c.points += !pts[i].static_value;
    c.coalesced = plan(pts, n, false, 16);
    c.lower = plan(pts, n, false, 65535);
    c.static_reqs = plan(pts, n, true, 16);
    return c;
}

static void print(const char *what, struct counts c)
{
    printf("requests per poll, %s: coalesced %zu, one per point %zu, lower bound %zu "
           "(ratio per-point/coalesced %.1f; %zu more once per connection for static points)\n",
           what, c.coalesced, c.points, c.lower, c.coalesced ? (double)c.points / (double)c.coalesced : 0.0,
           c.static_reqs);
}

int main(int argc, char **argv)
{
    const char *sdm = argc > 1 ? argv[1] : "config/profiles/sdm630.json";
    static struct col_point ss[COL_SS_MAX_POINTS];
    int nss = bench_sunspec_points(ss, COL_SS_MAX_POINTS);
    struct fg_cfg *errs = fg_cfg_new(sdm);
    struct col_point *sp = NULL;
    size_t nsp = 0;
    int gap = 16;
    if (nss < 0 || col_profile_load(sdm, &sp, &nsp, &gap, errs) < 0 || fg_cfg_nerrors(errs)) {
        fprintf(stderr, "bench_requests: %s\n", fg_cfg_errors(errs));
        return 1;
    }
    struct counts a = count(ss, (size_t)nss), b = count(sp, nsp);
    print("SunSpec inverter 1+103+160 (2 MPPT)", a);
    print("SDM630 (all points)", b);
    struct counts t = { a.points + b.points, a.coalesced + b.coalesced, a.lower + b.lower,
                        a.static_reqs + b.static_reqs };
    print("both devices", t);
    printf("coalesced == lower bound: %s\n", t.coalesced == t.lower ? "yes" : "NO");
    free(sp);
    fg_cfg_free(errs);
    return 0;
}
