/* col_sscache: SunSpec point tables shared between devices with the same model map. A site with
 * 100 identical inverters then holds one table instead of 100 (memory is the collector's budget). */
#ifndef COL_SSCACHE_H
#define COL_SSCACHE_H
#include "col_point.h"
#include "col_sunspec.h"

#include <stddef.h>

/* Returns the immutable points of map m (built with col_sunspec_points on first use), and their count in
 * *n. Thread-safe. Returns NULL with a negative errno-style code in *rc (e.g. -ENOSPC). Each successful
 * get is paired with one col_sscache_put. */
const struct col_point *col_sscache_get(const struct col_ss_map *m, size_t *n, int *rc);
/* Releases a table from col_sscache_get; the last user frees it. NULL is a no-op. */
void col_sscache_put(const struct col_point *pts);

#endif
