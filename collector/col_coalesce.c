/* col_coalesce: the read planner. Turns the selected points into covered ranges, sorts them per
 * table and packs them greedily into requests; the comment above col_coalesce says why greedy
 * gives the fewest requests. */
#include "col_coalesce.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "col_decode.h"
#include "fg_mem.h"

#define ADDRESS_END 65536u /* one past the last Modbus address */

/* The range [lo, hi) one selected point needs in a single request; pos is its place in sel. */
struct cover {
    enum col_table table;
    uint32_t lo, hi;
    size_t pos;
};

static bool is_bit_table(enum col_table t)
{
    return t == COL_COIL || t == COL_DISCRETE;
}

static uint32_t request_limit(enum col_table t)
{
    return is_bit_table(t) ? COL_MAX_READ_BITS : COL_MAX_READ_REGS;
}

static uint64_t hole_limit(enum col_table t, unsigned max_gap)
{
    return is_bit_table(t) ? (uint64_t)max_gap * 16u : max_gap;
}

/* Fills c for point p; returns 0 or -EINVAL. */
static int cover_of(const struct col_point *p, size_t pos, struct cover *c)
{
    if ((unsigned)p->table >= COL_TABLE_COUNT)
        return -EINVAL;
    c->table = p->table;
    c->pos = pos;
    c->lo = p->address;
    c->hi = (uint32_t)p->address + col_point_span(p);
    if (p->sf_address >= 0 && !is_bit_table(p->table)) {
        if ((uint32_t)p->sf_address >= ADDRESS_END)
            return -EINVAL;
        if ((uint32_t)p->sf_address < c->lo)
            c->lo = (uint32_t)p->sf_address;
        if ((uint32_t)p->sf_address + 1 > c->hi)
            c->hi = (uint32_t)p->sf_address + 1;
    }
    if (c->hi > ADDRESS_END || c->hi - c->lo > request_limit(p->table))
        return -EINVAL;
    return 0;
}

/* Total order (table, lo, hi, pos) so that the plan does not depend on qsort's instability. */
static int cover_cmp(const void *a, const void *b)
{
    const struct cover *x = a, *y = b;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    if (x->hi != y->hi)
        return x->hi < y->hi ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int build_covers(const struct col_point *pts, const uint32_t *sel, size_t nsel,
                        struct cover *c)
{
    for (size_t j = 0; j < nsel; j++) {
        int rc = cover_of(&pts[sel ? sel[j] : j], j, &c[j]);
        if (rc < 0)
            return rc;
    }
    qsort(c, nsel, sizeof c[0], cover_cmp);
    return 0;
}

/* The request being filled by the left-to-right pass. */
struct pass {
    size_t nreq;
    uint32_t req_lo, req_hi;
};

/* True when c continues the cluster of prev: same table and no hole longer than max_gap before it.
 * Holes are meant in the union of all selected ranges, but req_hi is that union's end: a request
 * is only opened by a range that ends past everything before it (see below), and then only grows. */
static bool same_cluster(const struct pass *ps, const struct cover *prev, const struct cover *c,
                         unsigned max_gap)
{
    return prev && prev->table == c->table &&
           (c->lo <= ps->req_hi || c->lo - ps->req_hi <= hole_limit(c->table, max_gap));
}

static bool fits_open(const struct pass *ps, const struct cover *c)
{
    uint32_t hi = c->hi > ps->req_hi ? c->hi : ps->req_hi;
    return hi - ps->req_lo <= request_limit(c->table);
}

/* Why greedy is optimal. Normalise any valid plan so that each request is the hull of the points
 * assigned to it; its ends are then covered addresses, so a request never spans a hole longer than
 * max_gap. The covered union therefore splits each table into clusters (runs of covered ranges
 * with holes <= max_gap between them) that no request crosses, and inside a cluster the only
 * constraint left is the length limit L. In a cluster, the pass (ranges sorted by lo) opens a new
 * request at range r_k only when hi(r_k) - lo_open > L, lo_open being the start of the request open
 * before it (so hi(r_k) > lo_open + L >= every earlier hi). Take the ranges r_1 .. r_m that opened
 * requests: for i < k, hull(r_i, r_k) >= hi(r_k) - lo(r_i) > lo_open(k) + L - lo(r_i) >= L, since
 * lo_open(k) >= lo(r_i). So no two of them can share a request, every plan needs at least m
 * requests, and the pass uses m. (A range that fits an earlier, closed request also fits the open
 * one, whose start is larger, so closing requests early loses nothing.) */
int col_coalesce(const struct col_point *pts, const uint32_t *sel, size_t nsel, unsigned max_gap,
                 struct col_req *out, size_t outcap, uint32_t *sel_req)
{
    if (nsel == 0)
        return 0;
    struct cover *c = fg_malloc(nsel * sizeof *c);
    int rc = build_covers(pts, sel, nsel, c);
    struct pass ps = {0};
    for (size_t i = 0; i < nsel && rc == 0; i++) {
        const struct cover *prev = i ? &c[i - 1] : NULL;
        if (same_cluster(&ps, prev, &c[i], max_gap) && fits_open(&ps, &c[i])) {
            if (c[i].hi > ps.req_hi)
                ps.req_hi = c[i].hi;
        } else if (ps.nreq == outcap) {
            rc = -ENOSPC;
            break;
        } else {
            ps.nreq++;
            ps.req_lo = c[i].lo;
            ps.req_hi = c[i].hi;
        }
        out[ps.nreq - 1] = (struct col_req){c[i].table, (uint16_t)ps.req_lo,
                                            (uint16_t)(ps.req_hi - ps.req_lo)};
        if (sel_req)
            sel_req[c[i].pos] = (uint32_t)(ps.nreq - 1);
    }
    free(c);
    return rc < 0 ? rc : (int)ps.nreq;
}
