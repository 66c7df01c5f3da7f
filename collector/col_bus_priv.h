/* col_bus_priv: the inside of struct col_bus and the backend table, shared only by the files
 * of the col_bus module (col_bus.c, col_bus_lm.c, col_bus_rot.c); like libmodbus keeps its
 * backends behind function pointers in modbus-private.h. Nothing else includes this. */
#ifndef COL_BUS_PRIV_H
#define COL_BUS_PRIV_H
#include "col_bus.h"

/* One backend. col_bus.c has already checked arguments (unit, count, range, connected)
 * before any of read / write_* is called, and counts requests itself. Every function
 * returns what the public one of the same name documents. */
struct col_bus_ops {
    const char *name;
    /* Creates the backend state in b->impl from b->params; returns 0 or -errno + err. */
    int (*init)(struct col_bus *b, char *err, size_t errlen);
    /* Frees b->impl (called after close). */
    void (*destroy)(struct col_bus *b);
    int (*connect)(struct col_bus *b, char *err, size_t errlen);
    void (*close)(struct col_bus *b);
    /* Called on every col_bus_set_timeout and before connect; b->timeout_ms holds the value. */
    void (*apply_timeout)(struct col_bus *b);
    void (*flush)(struct col_bus *b);
    /* fc is the Modbus function code chosen by col_bus.c for the table. */
    int (*read)(struct col_bus *b, int unit, uint8_t fc, uint16_t addr, uint16_t count,
                uint16_t *out);
    int (*write_regs)(struct col_bus *b, int unit, uint16_t addr, const uint16_t *vals,
                      uint16_t n);
    int (*write_coil)(struct col_bus *b, int unit, uint16_t addr, bool on);
};

struct col_bus {
    const struct col_bus_ops *ops;
    struct col_bus_params params; /* host and device point at the copies below */
    char *host;                   /* owned copies of the caller's strings (or NULL) */
    char *device;
    unsigned timeout_ms;
    bool connected;
    uint64_t requests;
    uint64_t bytes;
    void *impl; /* backend state, owned by the backend */
};

extern const struct col_bus_ops col_bus_tcp_ops; /* col_bus_lm.c */
extern const struct col_bus_ops col_bus_rtu_ops; /* col_bus_lm.c */
extern const struct col_bus_ops col_bus_rot_ops; /* col_bus_rot.c */

#endif
