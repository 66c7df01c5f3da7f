/* col_coalesce: plans the fewest Modbus read requests that cover a set of points, so a device is
 * polled with a few block reads instead of one request per point. Pure: no I/O, no logging. */
#ifndef COL_COALESCE_H
#define COL_COALESCE_H
#include <stddef.h>
#include <stdint.h>

#include "col_point.h"

/* One read request: `count` registers (bits, for coil/discrete) from `address` in `table`. */
struct col_req {
    enum col_table table;
    uint16_t address;
    uint16_t count;
};

#define COL_MAX_READ_REGS 125  /* Modbus read holding/input registers: at most 125 per request */
#define COL_MAX_READ_BITS 2000 /* Modbus read coils/discrete inputs: at most 2000 per request */

/* Plans the fewest read requests that cover the selected points.
 * sel: indices into pts (NULL = all of 0..nsel-1); indices are trusted to be inside pts.
 * A point covers [address, address + col_point_span(p)) and, when sf_address >= 0 on a register
 * table, also its scale-factor register and everything between (one request must read both, so
 * the value and its exponent come from the same moment). sf_address is ignored for coil/discrete
 * points, as col_decode ignores it there.
 * A request holds points of one table only, at most COL_MAX_READ_REGS registers
 * (COL_MAX_READ_BITS bits), and may contain holes of at most max_gap registers (max_gap * 16 bits
 * for bit tables). A hole is a run of addresses covered by no selected point of that table: those
 * may be unmapped and make a device answer "illegal data address" for the whole request, whereas
 * an address covered by any selected point is known to exist.
 * out receives the requests sorted by table, then address; out may be NULL when outcap is 0.
 * sel_req (may be NULL) receives, for each j < nsel, the index in out of the request that covers
 * the j-th selected point entirely.
 * Returns the number of requests (0 when nsel is 0), or
 *   -EINVAL  a point's table is invalid, its covered range (with its sf) is longer than the
 *            request limit, or it reaches past address 65535 (checked before -ENOSPC);
 *   -ENOSPC  more than outcap requests are needed (out and sel_req are then partly written).
 * Allocates one array of nsel entries (freed before returning); O(nsel log nsel). */
int col_coalesce(const struct col_point *pts, const uint32_t *sel, size_t nsel, unsigned max_gap,
                 struct col_req *out, size_t outcap, uint32_t *sel_req);

#endif
