/* bal_model: the balancer's view of a site config (machines, jobs, the "balancer" section, the site
 * and its PV array), local-calendar helpers in the site's time zone, and the expansion of configured
 * jobs into the concrete occurrences the planner works on. Pure except bal_config_load (reads a file)
 * and bal_tz_apply (sets TZ). */
#ifndef BAL_MODEL_H
#define BAL_MODEL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bal_types.h"
#include "fg_site.h"

/* Config keys read by the balancer (the lead copies this block into docs/config.md). Unknown keys
 * are errors; JSON null counts as absent. "site" and "mqtt" are fg_site's (fg_site.h); the PV array
 * is site.pv_kwp (kWp, 0..10000, default 0 = no array), site.tilt_deg (degrees from horizontal,
 * 0..90, default 30), site.azimuth_deg (compass degrees the array faces, 0..360, 180 = south,
 * default 180). The collector's sections (influx, buses, devices, mqtt_devices, sim, profile_dir)
 * are accepted here without being checked.
 *
 * machines[]: one object per switchable machine.
 *   id                  string [a-z0-9][a-z0-9_-]{0,31}, required, unique among machines
 *   power_w             number, W, 1..1e6: a fixed load's power. Either power_w, or both of:
 *   min_power_w         number, W, 1..1e6: a modulating load's least power (EV charger, heat pump)
 *   max_power_w         number, W, 1..1e6, > min_power_w: its greatest power (stored as power_w)
 *   step_w              number, W, 0..max_power_w - min_power_w, default 0: the levels are min,
 *                       min + step, ..., max (0: any power in between); only with min/max_power_w
 *   interruptible       boolean, default false: may pause between slots (a kiln may not)
 *   min_on_s            integer, s, 0..86400, default 0: shortest run once started
 *   min_off_s           integer, s, 0..86400, default 0: shortest pause between two runs
 *   max_starts_per_day  integer, 0..1000, default 0 = unlimited
 *   windows             array of at most 8 objects, default none = always allowed; the machine
 *                       may run only inside them (e.g. a noisy machine 08:00-20:00 on weekdays):
 *     days              "daily" (default), a day "mon".."sun", a range "mon-fri" (may wrap:
 *                       "fri-mon"), or an array of days and ranges ["mon", "wed-thu"]
 *     from              "HH:MM" local time, 00:00..23:59, required
 *     to                "HH:MM" local time, 00:01..24:00, after from, required; a window over
 *                       midnight is written as two windows (22:00-24:00 and 00:00-06:00)
 *   start               "auto" (default: fabgrid switches it) or "manual" (a person starts it;
 *                       fabgrid plans and advises only)
 *   priority            integer, -100..100, default 0: higher first when machines compete for surplus
 *   actuator            object, optional: how the machine is switched (bal_act.h); stored in act[]
 *     type              "modbus" | "mqtt" | "shelly-gen2" | "tasmota", required
 *     device            device id: for "modbus" required, a device in "devices"; for the other
 *                       types optional, an entry of "mqtt_devices" (for "shelly-gen2"/"tasmota"
 *                       one with the same preset, whose topic is taken when "topic" is absent)
 *     point             string, 1..63 bytes: for "modbus" required, the point to write (the
 *                       collector refuses points its profile does not mark writable)
 *     preset            only for "mqtt": "generic" (default), "shelly-gen2" or "tasmota"; the
 *                       latter two make it that type
 *     topic             string of 1..255 bytes without '+' or '#', not for "modbus"; required
 *                       for "mqtt" (generic), and for "shelly-gen2"/"tasmota" without a device
 *     payload_on, payload_off  strings of 1..255 bytes, only for "mqtt" (generic); default "on",
 *                       "off"; "{power_w}" becomes the commanded power in W
 *   meter               device id, optional: the device (devices or mqtt_devices) whose power_w is
 *                       this machine's consumption; stored in meter[]
 *   shutdown            "auto" (default) | "off" | "on" | "keep": the machine's state when the
 *                       daemon stops (auto: optional loads off, a running non-interruptible job
 *                       left on, others off); stored in shutdown[]
 *
 * jobs[]: work to be done by a machine, once or on recurring days.
 *   id                  string [a-z0-9][a-z0-9_-]{0,31}, required, unique among jobs
 *   machine             a machines[].id, required
 *   duration_min        integer, min, 1..10080: run time at the machine's (maximum) power; or
 *   energy_wh           number, Wh, 1..1e7: energy to deliver (modulating machines). Exactly one.
 *   days                as windows[].days; absent: a one-off job
 *   earliest, deadline  required. Recurring jobs: "HH:MM" local times on each of the days
 *                       (earliest 00:00..23:59, deadline up to 24:00, after earliest); one-off
 *                       jobs: ISO 8601 with offset ("2026-12-01T18:00:00+01:00", or "...Z"),
 *                       deadline after earliest. The duration (energy at full power) must fit in
 *                       between, else the job could never be done
 *   required            boolean, default true (false with surplus_only): must finish by the
 *                       deadline, from grid power if need be
 *   surplus_only        boolean, default false: runs only on solar surplus (an optional job, e.g. a
 *                       compressor topping up its tank); true together with required true is an error
 *
 * balancer: object, optional (every key has a default).
 *   interval_s          integer, s, 1..3600, default 10: dispatcher period
 *   slot_min            integer, min, one of 5, 6, 10, 12, 15, 20, 30, 60 (divides an hour), default 15
 *   horizon_h           integer, h, 1..72, default 36: how far ahead the planner looks
 *   stale_after_s       integer, s, 5..3600, default 30: readings older than this are stale
 *   surplus_margin_w    number, W, 0..1e5, default 100: surplus kept in reserve before a surplus start
 *   surplus_delay_s     integer, s, 0..3600, default 300: surplus must last this long before a
 *                       surplus start
 *   hysteresis_w        number, W, 0..1e5, default 200: import tolerated before a surplus load stops
 *   state_file          string of 1..255 bytes, default "/var/lib/fabgrid/balancer-state.json":
 *                       the daemon's persisted state (relative: to the config file's directory)
 *   replan_margin_w     number, W, 0..1e6, default 1000: re-plan when measured PV or base load
 *                       departs from the forecast slot by more
 *   confirm_timeout_s   integer, s, 1..600, default 15: how long a command waits for the device's
 *                       feedback before it is resent
 *   confirm_retries     integer, 0..10, default 2: resends before the machine is marked faulted
 *   confirm_power_w     number, W, 0..1e5, default 50: a metered machine counts as on above this
 *   forecast_topic      string of 1..127 bytes without '+' or '#', default "forecast/pv": external
 *                       PV forecast, below PREFIX/SITE/
 */

struct bal_settings {
    unsigned interval_s, slot_min, horizon_h, stale_after_s;
    double surplus_margin_w;
    unsigned surplus_delay_s;
    double hysteresis_w;
    char state_file[256];
    double replan_margin_w;
    unsigned confirm_timeout_s, confirm_retries;
    double confirm_power_w;
    char forecast_topic[128];
};

struct bal_config {
    char *file;                    /* the path as given to bal_config_load */
    struct fg_site_cfg site;
    struct fg_mqtt_cfg mqtt;       /* holds the MQTT password, if any (freed by bal_config_free) */
    struct bal_machine *machines;  /* nmachines, in file order; jobs refer to them by index */
    size_t nmachines;
    struct bal_actuator *act;      /* nmachines entries, parallel to machines; BAL_ACT_NONE if absent */
    char (*meter)[BAL_ID_MAX];     /* nmachines entries, "" if none */
    enum bal_shutdown *shutdown;   /* nmachines entries */
    struct bal_job_cfg *jobs;      /* njobs, in file order */
    size_t njobs;
    struct bal_settings set;
};

/* Loads the balancer's view of the site config at path: site, mqtt, machines, jobs, balancer.
 * Errors are as the contract says ("FILE: machines[1].min_on_s: must be an integer 0..86400, got -5",
 * "FILE: jobs[0].machine: no machine with id \"kilnx\"", unknown keys with the nearest known key,
 * duplicate ids), all of them, in document order, "\n"-joined into err (truncated to errlen; err may
 * be NULL). Returns the config (free it with bal_config_free), or NULL when there was any error.
 * Reads the file and the MQTT password file; otherwise pure (no TZ needed). */
struct bal_config *bal_config_load(const char *path, char *err, size_t errlen);
/* NULL is a no-op. Also wipes the MQTT password. */
void bal_config_free(struct bal_config *c);

/* Sets TZ to tz (an IANA zone, e.g. c->site.timezone) and calls tzset(). Call once at start, before
 * any other thread runs and before any local-time conversion below. */
void bal_tz_apply(const char *tz);

/* Local-calendar helpers in the current TZ (see bal_tz_apply). Times are unix ms; a t_ms that is not
 * a whole second counts as the second it is in. They assume at most one offset change within a day
 * either side (true of every zone in use). */
/* Day of the week of t_ms: 0 = Monday .. 6 = Sunday. */
int bal_weekday(int64_t t_ms);
/* Local minute of the day of t_ms, 0..1439. */
int bal_local_minute(int64_t t_ms);
/* Unix ms of the start of the local day containing t_ms: local midnight, or where a zone skips
 * midnight (America/Sao_Paulo 2018-11-04) the instant the clocks jump (01:00 there). */
int64_t bal_local_midnight(int64_t t_ms);
/* Unix ms of local time minute (0..1440; 1440 is the next midnight) on the local day of day_ms.
 * A time that does not exist (spring forward) resolves as mktime() does with tm_isdst = -1: read in
 * the offset before the change (Europe/Berlin 2016-03-27 02:30 gives 03:30 CEST). A time that
 * occurs twice (fall back) gives the earlier instant (2016-10-30 02:30 gives 02:30 CEST), always:
 * glibc's mktime would choose depending on its earlier calls. */
int64_t bal_local_at(int64_t day_ms, int minute);

/* Whether machine m may run during [t_ms, t_ms + slot_min minutes): every local minute of it lies in
 * one of m's windows (adjacent windows join up). Without windows: always true. Pure but for TZ. */
bool bal_machine_allowed(const struct bal_machine *m, int64_t t_ms, int slot_min);

/* Expands c's jobs into occurrences whose [earliest_ms, deadline_ms] intersects [from_ms, to_ms)
 * (precisely: earliest_ms < to_ms and deadline_ms > from_ms; an occurrence whose deadline is
 * from_ms has no time left and is not listed). Recurring jobs give one occurrence per local day
 * with a matching weekday, id "<job>@YYYY-MM-DD" (the local date); one-off jobs one occurrence with
 * the job's id. energy_wh: the job's energy_wh, or duration_min x the machine's power_w / 60
 * (modulating machines: at their maximum). done_wh 0, running false, started_ms 0.
 * Writes at most cap occurrences to out, sorted by earliest_ms then job index; when more match,
 * one-off jobs and earlier days are kept. Returns the number written. Pure but for TZ. */
size_t bal_jobs_expand(const struct bal_config *c, int64_t from_ms, int64_t to_ms, struct bal_job *out,
                       size_t cap);

#endif
