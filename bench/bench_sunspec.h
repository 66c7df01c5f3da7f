/* bench_sunspec.h: the SunSpec model chain that fabgrid-sim serves (SunS at 40000; models 1 with L=66,
 * 103, 160 with two MPPT modules; end marker), walked with the collector's own code. Header-only: each
 * benchmark program is built from its own single .c file. */
#ifndef BENCH_SUNSPEC_H
#define BENCH_SUNSPEC_H
#include "col_sunspec.h"

#include <stdio.h>

/* Fills pts with the chain's points; returns their number or -1. */
static inline int bench_sunspec_points(struct col_point *pts, size_t cap)
{
    static const uint16_t chain[][2] = { { 1, 66 }, { 103, 50 }, { 160, 48 }, { 0xFFFF, 0 } };
    struct col_ss_map m;
    char err[128];
    uint16_t addr = 40002;
    col_sunspec_walk_init(&m, 40000);
    for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++)
        if (col_sunspec_walk_step(&m, chain[i], 2, &addr, err, sizeof err) < 0) {
            fprintf(stderr, "bench: %s\n", err);
            return -1;
        }
    return col_sunspec_points(&m, pts, cap);
}

#endif
