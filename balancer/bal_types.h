/* bal_types: the balancer's data model, shared by the pure core (model, forecast, planner,
 * dispatcher, replay). Times are unix ms; local times of day are minutes after local midnight in the
 * site's time zone (the process sets TZ once, so localtime_r/mktime are the conversion). Powers in W,
 * energies in Wh. */
#ifndef BAL_TYPES_H
#define BAL_TYPES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BAL_ID_MAX 33
#define BAL_MAX_MACHINES 64
#define BAL_MAX_WINDOWS 8
#define BAL_MAX_SLOTS 1024      /* 72 h of 5-min slots fits */

/* An opening window: on the weekdays of days_mask (bit 0 = Monday .. bit 6 = Sunday), from from_min
 * to to_min local minutes (0..1440, from < to). */
struct bal_window {
    uint8_t days_mask;
    uint16_t from_min, to_min;
};

struct bal_machine {
    char id[BAL_ID_MAX];
    double power_w;            /* fixed loads: their power; modulating loads: the maximum */
    double min_power_w;        /* modulating when 0 < min_power_w < power_w */
    double step_w;             /* modulating: power levels min, min+step, ..., max (0: continuous) */
    bool interruptible;        /* may pause between slots (a kiln may not) */
    unsigned min_on_s, min_off_s;
    unsigned max_starts_per_day; /* 0: no limit */
    struct bal_window windows[BAL_MAX_WINDOWS];
    size_t nwindows;           /* 0: always allowed */
    bool manual;               /* a person starts it: fabgrid plans and advises, never switches it */
    int priority;              /* higher first when machines compete for the same surplus */
};

/* A job as configured (recurring or one-off). */
struct bal_job_cfg {
    char id[BAL_ID_MAX];
    size_t machine;            /* index into the machines */
    unsigned duration_min;     /* either a duration at the machine's power ... */
    double energy_wh;          /* ... or an energy (modulating loads); 0 when duration is given */
    uint16_t earliest_min, deadline_min; /* recurring: local minutes; deadline_min > earliest_min */
    uint8_t days_mask;         /* recurring on these weekdays; 0: one-off */
    int64_t once_earliest_ms, once_deadline_ms; /* one-off */
    bool required;             /* must finish by the deadline (from grid power if need be) */
    bool surplus_only;         /* optional: runs only on solar surplus (required == false) */
};

/* A concrete job to plan: one occurrence of a job_cfg. */
struct bal_job {
    char id[48];               /* "kiln-daily@2016-07-15" */
    size_t cfg;                /* index into the job configs */
    size_t machine;
    int64_t earliest_ms, deadline_ms;
    double energy_wh;          /* to deliver in all */
    double done_wh;            /* delivered so far */
    bool required, surplus_only;
    bool running;              /* started; if its machine is not interruptible the block is fixed */
    int64_t started_ms;
};

/* What the balancer knows of a machine right now. */
struct bal_mstate {
    bool on;
    double power_w;            /* commanded power when on */
    int64_t since_ms;          /* last switch (on or off); INT64_MIN: unknown, long ago */
    unsigned starts_today;
    int job;                   /* index into the jobs being served, -1 none */
};

/* The planner's input. Arrays of nslots values are per slot starting at start_ms. */
struct bal_problem {
    int64_t start_ms;          /* first slot start, a multiple of slot_min minutes */
    int64_t now_ms;            /* within the first slot */
    int slot_min;
    size_t nslots;
    const double *pv_w;        /* forecast PV, W, mean over each slot */
    const double *load_w;      /* forecast base load (without planned machines) */
    const double *price_import; /* optional (NULL): per kWh; with prices the objective is least cost */
    const double *price_export;
    double grid_limit_w;       /* 0: no limit; planned loads never push import above it */
    const struct bal_machine *machines;
    size_t nmachines;
    const struct bal_mstate *mstate; /* nmachines entries */
    const struct bal_job *jobs;
    size_t njobs;
};

enum bal_job_status { BAL_JOB_PLANNED, BAL_JOB_INFEASIBLE, BAL_JOB_DONE, BAL_JOB_UNPLANNED };

struct bal_job_plan {
    enum bal_job_status status;
    char reason[120];          /* why infeasible/unplanned: "deadline too close: needs 360 min, 250 left" */
    int64_t first_ms, end_ms;  /* first planned slot start, end of the last planned slot */
};

struct bal_plan {
    int64_t start_ms;
    int slot_min;
    size_t nslots, nmachines, njobs;
    double *power_w;           /* [m * nslots + s]: planned power of machine m in slot s */
    int *job;                  /* [m * nslots + s]: the job served, -1 none */
    struct bal_job_plan *jobs; /* njobs */
    double import_wh, export_wh, cost; /* of the plan against the forecast */
    unsigned starts;
};

/* How a machine is switched (config machines[].actuator; the command and feedback formats are
 * bal_act's). MQTT, Shelly and Tasmota actuators always have a topic after loading: a preset
 * without "topic" takes the topic of its mqtt_devices entry. */
enum bal_act_type { BAL_ACT_NONE, BAL_ACT_MODBUS, BAL_ACT_MQTT, BAL_ACT_SHELLY, BAL_ACT_TASMOTA };

struct bal_actuator {
    enum bal_act_type type;
    char device[BAL_ID_MAX];   /* modbus: the device written through the collector; others: the
                                * mqtt_devices entry or "" */
    char point[64];            /* modbus: the writable point */
    char topic[256];           /* mqtt/shelly/tasmota: the base topic from the broker's root */
    char payload_on[256];      /* mqtt: templates, "{power_w}" replaced (defaults "on"/"off") */
    char payload_off[256];
    char preset[32];           /* "generic", "shelly-gen2", "tasmota"; "" for modbus */
    bool power_setpoint;       /* the machine modulates (min_power_w > 0): a modbus point gets the
                                * power in W instead of 1 when on */
};

/* What SIGTERM leaves a machine in (config machines[].shutdown). AUTO: optional loads off, a running
 * non-interruptible job left on, everything else off. */
enum bal_shutdown { BAL_SHUT_AUTO, BAL_SHUT_OFF, BAL_SHUT_ON, BAL_SHUT_KEEP };

#endif
