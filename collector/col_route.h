/* col_route: where the collector's data goes. Readings of Modbus devices (from the poller) and of
 * devices that report over MQTT become device/DEV/state, device/DEV/status and balance messages and
 * InfluxDB lines; fabgrid's own topics (machine states, the plan, advice) become lines; writes
 * requested over MQTT go to the poller. One object, shared by the bus threads and the MQTT thread. */
#ifndef COL_ROUTE_H
#define COL_ROUTE_H
#include "col_config.h"
#include "col_poller.h"
#include "col_store.h"
#include "fg_clock.h"
#include "fg_mqtt.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct col_route_stats {
    uint64_t ingest_ok;        /* MQTT messages turned into readings or lines */
    uint64_t ingest_rejected;  /* malformed or unknown MQTT messages (counted, logged rate-limited) */
    uint64_t ingest_ignored;   /* empty payloads (a retained topic being cleared) and device topics that
                                  carry nothing fabgrid maps (e.g. OpenDTU's efficiency) */
    uint64_t bad_writes;       /* refused device/DEV/set/POINT requests */
};

struct col_route;
/* cfg and clk must outlive the route. once: print readings as JSON lines to this stream instead of MQTT. */
struct col_route *col_route_new(const struct col_config *cfg, const struct fg_clock *clk, FILE *once);
/* Connects the outputs and the poller (each may be NULL). Call before any data flows. */
void col_route_attach(struct col_route *r, struct fg_mqtt *mqtt, struct col_store *store, struct col_poller *poller);
void col_route_free(struct col_route *r);
/* The poller's sink (ud = the route). */
void col_route_reading(void *ud, size_t dev, int64_t ts_ms, const struct col_field *f, size_t n);
void col_route_status(void *ud, size_t dev, bool online);
/* The MQTT message callback (ud = the route). */
void col_route_message(void *ud, const char *topic, const void *payload, size_t len);
/* Makes the subscriptions (writes, fabgrid topics, MQTT devices). */
void col_route_subscribe(struct col_route *r);
/* Periodic work from the main loop: MQTT devices that went silent are set offline (after 3 x their
 * interval), and every 10 s of clock time the self-monitoring point is written. */
void col_route_tick(struct col_route *r);
/* The self-monitoring numbers (also what SIGUSR1 logs). */
void col_route_stats(struct col_route *r, struct col_route_stats *out);
/* Logs one line with every counter of the collector. */
void col_route_log_stats(struct col_route *r);

#endif
