/* sim_config: reads what fabgrid-sim needs from a site config (site, buses, devices, machines and
 * its own "sim" section) and checks it, naming the file and the key path in every error.
 * Other top-level keys belong to the collector and balancer and are ignored here. */
#ifndef SIM_CONFIG_H
#define SIM_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_model.h"

/* Misbehaviour of one device, counted per request to its unit (0 / false: off). */
struct sim_faults {
    int delay_ms;          /* answer after this real-time delay */
    int drop_every;        /* every Nth request gets no answer */
    int exception;         /* exception code 1..11 ... */
    int exception_every;   /* ... sent instead of the answer to every Nth request */
    int bad_tid_every;     /* every Nth answer carries a wrong transaction id */
    int garbage_every;     /* every Nth answer is 7 bytes of garbage */
    int disconnect_after;  /* close a connection after N requests to this unit on it */
    bool dead;             /* never answers */
};

/* A range of addresses whose reads get exception 2. */
struct sim_hole {
    uint16_t addr;
    uint32_t count;
};

/* How a device is served (index-aligned with sim_config.devices). */
struct sim_serve {
    size_t bus;            /* index into sim_config.buses */
    struct sim_faults faults;
    int max_read;          /* longer register reads get exception 2 */
    struct sim_hole *holes;
    size_t nholes;
};

/* A Modbus TCP bus: one listening port. */
struct sim_bus {
    char id[SIM_ID_MAX];
    char host[256];
    int port;
};

struct sim_config {
    char *path;                          /* as given to sim_config_load */
    struct sim_bus *buses;               /* the "tcp" buses only */
    size_t nbuses;
    struct sim_device_params *devices;   /* the devices on those buses */
    struct sim_serve *serve;
    size_t ndevices;
    struct sim_machine_params *machines;
    size_t nmachines;
    struct sim_site_params site;         /* for sim_model_new; points into this config */
    struct sim_series **series;          /* loaded CSVs, shared by path */
    char **series_paths;
    size_t nseries;
    struct bal_series *load;              /* sim.load_csv, owned */
};

/* Reads and checks the config file at path (with fg_cfg, so "site" follows fg_site_parse).
 * Relative CSV paths are looked up beside the config file first, then in the current directory.
 * Returns a config owned by the caller (sim_config_free), or NULL with every error in err, one
 * per line: "FILE:LINE:COL: syntax error: ..." or "FILE: key.path: message" (truncated to
 * errlen). */
struct sim_config *sim_config_load(const char *path, char *err, size_t errlen);

/* Frees c and everything it owns (the series too: free the model first); NULL is a no-op. */
void sim_config_free(struct sim_config *c);

#endif
