/* sim_model: the pure core of fabgrid-sim: what each simulated device measures at a given
 * instant (PV from a CSV, a constant or a clear-sky curve; site load; machines switched by relay
 * coils), the energy integrals, and the register images (SunSpec 1/103/160/203, Eastron SDM630/
 * SDM120, an 8-coil relay). Clock-injected: no sockets, no global time, no logging. */
#ifndef SIM_MODEL_H
#define SIM_MODEL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bal_series.h"
#include "sim_series.h"

#define SIM_ID_MAX 33     /* ids are at most 32 characters */
#define SIM_RELAY_COILS 8
#define SIM_SUNSPEC_BASE 40000 /* "SunS" marker address (0-based protocol address) */

enum sim_kind {
    SIM_KIND_INVERTER,       /* profile sunspec, role pv: models 1, 103, 160 */
    SIM_KIND_SUNSPEC_METER,  /* profile sunspec, role grid/load/machine: models 1, 203 */
    SIM_KIND_SDM630,         /* Eastron SDM630, float32 input registers */
    SIM_KIND_SDM120,         /* Eastron SDM120, float32 input registers */
    SIM_KIND_RELAY8          /* 8 coils */
};

enum sim_role { SIM_ROLE_NONE, SIM_ROLE_PV, SIM_ROLE_GRID, SIM_ROLE_LOAD, SIM_ROLE_MACHINE };

enum sim_table { SIM_TABLE_COILS, SIM_TABLE_HOLDING, SIM_TABLE_INPUT };

/* Where an inverter's AC power comes from, in this order of preference. */
struct sim_pv_params {
    const struct sim_series *csv; /* borrowed, must outlive the model; NULL: none */
    double scale;                 /* multiplies the CSV values */
    bool has_power_w;
    double power_w;               /* constant power when there is no CSV */
    double kwp;                   /* clear-sky curve when there is neither */
};

struct sim_device_params {
    char id[SIM_ID_MAX];
    enum sim_kind kind;
    enum sim_role role;
    uint8_t unit;                 /* Modbus unit id (SunSpec model 1 DA) */
    int model1_len;               /* SunSpec model 1 length: 66 (with Pad) or 65 */
    double energy_start_wh;       /* energy counters start here (import and export) */
    struct sim_pv_params pv;      /* SIM_KIND_INVERTER only */
};

struct sim_machine_params {
    char id[SIM_ID_MAX];
    double power_w;
    int relay_dev;                /* index of its relay8 device, or -1: the sim never runs it */
    int coil;                     /* 0..7 on that relay */
    int meter_dev;                /* index of the role-machine meter that meters it, or -1 */
};

struct sim_site_params {
    double latitude_deg, longitude_deg;   /* for the clear-sky curve */
    double base_load_w;                   /* constant base load when there is no load CSV */
    const struct bal_series *load;        /* borrowed; NULL: none. Read by the site's local time of day
                                           * on the paired date, as the balancer's replay reads it */
    double load_max_w;                    /* the load file's largest value (unscaled) */
    double load_scale;
    char timezone[64];                    /* the site's zone (the sim sets TZ to it) */
    const struct sim_device_params *devices; /* copied by sim_model_new */
    size_t ndevices;
    const struct sim_machine_params *machines; /* copied by sim_model_new */
    size_t nmachines;
};

/* The register table a device answers on: [start, start + count). */
struct sim_layout {
    enum sim_table table;
    uint16_t start;
    uint16_t count;
};

/* Scale factors chosen for a SunSpec device (fixed for its lifetime, like a real device's). */
struct sim_sunspec_sf {
    int16_t w, dcw, mppt_dcw, a;
};

struct sim_model;

/* Creates a model whose energy integrals start at start_ms (unix ms), all coils off. The device
 * and machine tables are copied; the series stay borrowed. Indexes in machines must be valid.
 * Never fails (aborts on out-of-memory). Free with sim_model_free. */
struct sim_model *sim_model_new(const struct sim_site_params *p, int64_t start_ms);
/* Frees m; NULL is a no-op. */
void sim_model_free(struct sim_model *m);

/* Power of the PV inverter dev at t_ms, W (>= 0). A pure function of time. */
double sim_model_pv_w(const struct sim_model *m, size_t dev, int64_t t_ms);
/* Base load of the site at t_ms, W (>= 0), without machines. A pure function of time. */
double sim_model_base_load_w(const struct sim_model *m, int64_t t_ms);
/* Clear-sky AC power of a horizontal array of kwp at the given place and time, W (>= 0). */
double sim_model_clear_sky_w(double kwp, double latitude_deg, double longitude_deg, int64_t t_ms);
/* What device dev measures at t_ms, W: PV production (>= 0) for inverters; for meters import
 * is positive (grid: load + machines - PV; load: base load; machine: its machines); 0 for relays. */
double sim_model_power_w(const struct sim_model *m, size_t dev, int64_t t_ms);

/* Energy counters of dev at t_ms, Wh: *import_wh is production for inverters and import for
 * meters, *export_wh export for meters (energy_start_wh for others). Integrates up to t_ms first
 * (times before the model's latest time count as that time). Returns 0, or -EINVAL for a bad dev. */
int sim_model_energy(struct sim_model *m, size_t dev, int64_t t_ms, double *import_wh,
                     double *export_wh);

/* Sets coil (0..7) of relay dev at t_ms; a machine on it adds its power from then on.
 * Returns 0, or -EINVAL when dev is no relay or coil is out of range. */
int sim_model_set_coil(struct sim_model *m, size_t dev, unsigned coil, bool on, int64_t t_ms);
/* Current state of a coil (false for a bad dev or coil). */
bool sim_model_coil(const struct sim_model *m, size_t dev, unsigned coil);

/* The register table of dev. */
struct sim_layout sim_model_layout(const struct sim_model *m, size_t dev);
/* The scale factors of SunSpec device dev (zeros for others). */
struct sim_sunspec_sf sim_model_sunspec_sf(const struct sim_model *m, size_t dev);
/* Writes the register image of dev at t_ms into words[0 .. layout.count) (coils as 0/1 words).
 * Integrates energy up to t_ms first. Returns 0, or -EINVAL for a bad dev or nwords < count. */
int sim_model_read(struct sim_model *m, size_t dev, int64_t t_ms, uint16_t *words, size_t nwords);

#endif
