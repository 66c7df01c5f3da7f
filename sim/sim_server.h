/* sim_server: the Modbus TCP side of fabgrid-sim: one listening port per tcp bus, one thread per
 * connection (a delayed device blocks only its own connection, as on a real gateway), answers
 * from sim_model recomputed at each request, and the configured fault injection. */
#ifndef SIM_SERVER_H
#define SIM_SERVER_H
#include <stddef.h>

#include "fg_clock.h"
#include "sim_config.h"
#include "sim_model.h"

struct sim_server;

/* Listens on every tcp bus of cfg that has devices (on listen_addr instead of the bus host when
 * it is not NULL) and starts serving. cfg, model and clock are borrowed and must outlive the
 * server; the model is only touched under the server's lock. Logs through fg_log (connections
 * and injected faults at debug level, coil changes at info). Returns NULL with a message in err
 * when a port can't be opened. */
struct sim_server *sim_server_new(const struct sim_config *cfg, struct sim_model *model,
                                  const struct fg_clock *clock, const char *listen_addr,
                                  char *err, size_t errlen);

/* Number of listening ports, and what port i listens on (host is owned by the server). */
size_t sim_server_nports(const struct sim_server *s);
void sim_server_port(const struct sim_server *s, size_t i, const char **host, int *port,
                     size_t *ndevices);

/* Stops accepting, closes every connection (within about a second: delays, reads and writes
 * are all bounded) and frees s. NULL is a no-op. */
void sim_server_free(struct sim_server *s);

#endif
