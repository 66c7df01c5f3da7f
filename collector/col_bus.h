/* col_bus: one Modbus master connection (a TCP socket, a serial line, or an RS-485 gateway
 * speaking RTU over TCP) behind one opaque object, so that the poller never cares which.
 * One bus object is used by exactly one thread. No logging: return codes + err buffers. */
#ifndef COL_BUS_H
#define COL_BUS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "col_point.h"

enum col_bus_type { COL_BUS_TCP, COL_BUS_RTU, COL_BUS_RTU_OVER_TCP };

/* Strings are copied by col_bus_new; the caller keeps ownership of its own. */
struct col_bus_params {
    enum col_bus_type type;
    const char *host; int port;                  /* tcp, rtu-over-tcp: host name or address, 1..65535 */
    const char *device; int baud; char parity; int data_bits; int stop_bits;   /* rtu: parity 'N','E','O' */
};

/* A Modbus exception reply with code c is returned as -(COL_BUS_EXC_BASE + c). Far above
 * any errno value, so the two kinds of codes never collide. */
#define COL_BUS_EXC_BASE 2000

#define COL_BUS_DEFAULT_TIMEOUT_MS 1000u

struct col_bus;

/* Creates an unconnected bus. Validates p: tcp/rtu-over-tcp need a non-empty host and port
 * 1..65535; rtu needs a device path, baud > 0, parity N/E/O, data_bits 5..8, stop_bits 1..2.
 * Returns NULL with a message in err ("port: must be 1..65535, got 0") for bad params.
 * Response timeout starts at COL_BUS_DEFAULT_TIMEOUT_MS. Free with col_bus_free. */
struct col_bus *col_bus_new(const struct col_bus_params *p, char *err, size_t errlen);

/* Closes the connection and frees the bus. NULL is a no-op. */
void col_bus_free(struct col_bus *b);

/* Opens the connection (TCP connect bounded by the current timeout, or opening the serial
 * device). A connected bus is closed first. Returns 0, or a negative errno (-ECONNREFUSED,
 * -ETIMEDOUT, -ENOENT, -EACCES, ...) with a message in err. A host name that does not
 * resolve gives -EHOSTUNREACH on rtu-over-tcp and -ECONNREFUSED on tcp (libmodbus' choice). */
int col_bus_connect(struct col_bus *b, char *err, size_t errlen);

/* Closes the connection; the bus can be connected again. Closing a closed bus is a no-op. */
void col_bus_close(struct col_bus *b);

bool col_bus_connected(const struct col_bus *b);

/* Response timeout (and TCP connect timeout) for the next requests; 0 is taken as 1 ms.
 * Per device: the poller sets it before each device's requests. */
void col_bus_set_timeout(struct col_bus *b, unsigned timeout_ms);

/* Discards whatever is pending on the line, without blocking (call after a timeout, before
 * the next request, so that a late answer is not taken for the next one). Every request
 * also starts with this, so an answer that arrives late but before the next request is
 * always dropped; one that arrives after it is sent can still be mistaken for its answer
 * (RTU has no transaction id) or refuse it (-EBADMSG), once. No-op when not connected. */
void col_bus_flush(struct col_bus *b);

/* Reads count registers (holding/input) or bits (coil/discrete: out[i] = 0 or 1) at addr
 * from unit into out (count elements, caller-owned).
 * Returns 0; -EINVAL for count outside 1..125 registers / 1..2000 bits, a range past 0xFFFF
 * or a unit outside 1..247 (tcp: 0..255); -ENOTCONN when not connected; -ETIMEDOUT (the
 * connection stays usable: flush, then go on); -(COL_BUS_EXC_BASE+code) for an exception
 * reply; -EBADMSG for a malformed, wrong-CRC, wrong-transaction-id, wrong-unit or
 * wrong-length answer (on tcp libmodbus 3.1.6 checks the transaction id but not the unit id:
 * gateways that answer with another unit id keep working); -ECONNRESET / -EPIPE (and other negative errnos) when the connection
 * is broken: the caller then closes and reconnects later. */
int col_bus_read(struct col_bus *b, int unit, enum col_table t, uint16_t addr, uint16_t count,
                 uint16_t *out);

/* Writes one holding register (fc 06) or several (fc 16 when n > 1; n 1..123), or one coil
 * (fc 05). vals is not kept. Same returns as col_bus_read; -EBADMSG also when the echo does
 * not match the request (rtu-over-tcp checks address and value; libmodbus the fc 16 quantity). */
int col_bus_write_regs(struct col_bus *b, int unit, uint16_t addr, const uint16_t *vals, uint16_t n);
int col_bus_write_coil(struct col_bus *b, int unit, uint16_t addr, bool on);

/* Requests sent since creation (for the benchmark and the self-monitoring). */
uint64_t col_bus_requests(const struct col_bus *b);

/* Bytes sent and received since creation. rtu-over-tcp counts every byte on the socket;
 * tcp and rtu count the frame sizes of the requests sent and of the answers accepted
 * (normal or exception), since libmodbus does not report what it moved. */
uint64_t col_bus_bytes(const struct col_bus *b);

/* Human text for a return code of the functions above ("ok", "timeout",
 * "exception 2 (illegal data address)", "malformed answer", or the errno text), written
 * into buf (always terminated). Returns buf. */
const char *col_bus_strerror(int rc, char *buf, size_t buflen);

#endif
