/* col_ingest: the pure part of MQTT ingest. Turns messages of devices that report over MQTT (Shelly Gen2,
 * Tasmota, OpenDTU, generic JSON-pointer mappings) into readings, and fabgrid's own balancer topics
 * (machine state, plan, advice, jobs) into line protocol per CONTRACT.md section 6. No MQTT, no I/O, no logging. */
#ifndef COL_INGEST_H
#define COL_INGEST_H
#include "col_config.h"
#include "col_poller.h"

#include <stdbool.h>
#include <stddef.h>

/* Limits checked before anything is parsed: a device message larger than COL_INGEST_MAX_BYTES, a fabgrid
 * message larger than COL_INGEST_FABGRID_MAX_BYTES (a plan of many slots is legitimately large), or JSON
 * nested deeper than COL_INGEST_MAX_DEPTH is refused. A plan has at most COL_INGEST_PLAN_SLOTS_MAX slots
 * and names at most COL_INGEST_PLAN_MACHINES_MAX machines. */
#define COL_INGEST_MAX_BYTES 65536u
#define COL_INGEST_FABGRID_MAX_BYTES (4u * 1024u * 1024u)
#define COL_INGEST_MAX_DEPTH 16
#define COL_INGEST_PLAN_SLOTS_MAX 10000
#define COL_INGEST_PLAN_MACHINES_MAX 128
/* The most fields one device message can yield (the generic preset's limit); size out[] with it. */
#define COL_INGEST_FIELDS_MAX COL_MQTT_FIELDS_MAX

enum {
    COL_INGEST_ENOTJSON = 1, /* not JSON (or, for opendtu, not a plain number), or empty */
    COL_INGEST_ETYPE,        /* the only usable values had the wrong type (string, null, bool, NaN text...) */
    COL_INGEST_ETOOBIG,      /* payload, plan or line over its limit */
    COL_INGEST_EDEPTH,       /* JSON nested deeper than COL_INGEST_MAX_DEPTH */
    COL_INGEST_ENOFIELD,     /* nothing known in the message */
    COL_INGEST_ETOPIC        /* topic not the device's, an unmapped opendtu leaf, or an unknown fabgrid topic */
};

/* Writes the subscription pattern of device d (below the broker root, not under the fabgrid prefix):
 * shelly-gen2 "<topic>/status/switch:0", tasmota "tele/<topic>/SENSOR", opendtu "<topic>/<serial>/0/+",
 * generic "<topic>" (which may itself hold MQTT wildcards). Returns the length (buf is terminated) or
 * -ENOSPC if buf is too small. */
int col_ingest_topic(const struct col_mqtt_device_cfg *d, char *buf, size_t len);

/* Whether topic is delivered by device d's subscription (MQTT wildcard rules: '+' one level, '#' the rest;
 * topics starting with '$' never match a leading wildcard). */
bool col_ingest_matches(const struct col_mqtt_device_cfg *d, const char *topic);

/* Parses one message of device d received on topic into at most cap fields (cap >= COL_INGEST_FIELDS_MAX
 * never truncates). Field names point to static strings or into d (valid while d is); values are numbers
 * with the unit of the name (energy in Wh, scaled values rounded to 15 significant digits so that 3.705 kWh
 * is exactly 3705 Wh). A value that is absent or not a finite number is left out, never made 0.
 * Returns the number of fields (>= 1); err is then "" or names the first value left out for its type
 * ("apower: expected a number, got a string") so that the caller may log it. On failure returns
 * -COL_INGEST_* with a one-line reason in err:
 *   ETOPIC   "topic \"x/y\" is not device plug's", "opendtu leaf \"efficiency\" is not mapped"
 *   ETOOBIG  "payload of 70000 bytes exceeds 65536"        (checked first)
 *   EDEPTH   "nesting deeper than 16"                        (checked by a scan before parsing)
 *   ENOTJSON "payload is empty", "payload is not JSON at byte 17"
 *   ETYPE    "payload: expected an object, got an array", "apower: expected a number, got null",
 *            "power: expected a number, got \"nan\"" (opendtu)
 *   ENOFIELD "no usable field in payload" */
int col_ingest_device(const struct col_mqtt_device_cfg *d, const char *topic, const void *payload, size_t len,
                      struct col_field *out, size_t cap, char *err, size_t errlen);

/* Receives one complete line protocol line (ending in '\n', also NUL-terminated, len excludes the NUL);
 * the line is valid only during the call. */
typedef void (*col_ingest_emit)(void *ud, const char *line, size_t len);

/* Turns a message of fabgrid's own topics, given as the part after "PREFIX/SITE/", into line protocol
 * (ms timestamps, tags sorted by key as fg_lp writes them):
 *   machine/M/state {"ts":..,"on":true,"power_w":..,"reason":"..","job":".."}
 *       -> machine,machine=M,site=S on=1i,power_w=..,reason="..",job=".." ts  (strings up to 256 bytes)
 *   jobs/J {"ts":..,"machine":"kiln","state":"planned","earliest":ms,"deadline":ms,"energy_wh":..,"done_wh":..,
 *       "planned_start":ms|null,"planned_end":ms|null,"reason":".."} -> job,job=J,machine=M,site=S
 *       state="planned",state_code=1i,earliest_ms=Ni,deadline_ms=Ni,energy_wh=..,done_wh=..,planned_start_ms=Ni,
 *       planned_end_ms=Ni,reason=".." ts  (state_code: queued 0, planned 1, running 2, done 3, missed 4,
 *       rejected 5; absent or null values left out; J is 1..96 printable ASCII bytes without space, '"', '\\';
 *       a missing or invalid machine refuses the message)
 *   balancer/plan {"slots":[{"start":..,"pv_w":..,"load_w":..,"machines":{"kiln":6000}}]} -> per slot
 *       forecast,site=S pv_w=..,load_w=.. start  and  plan,machine=M,site=S planned_w=.. start  for every
 *       machine named anywhere in the plan (planned_w=0 where a slot does not name it: the plan's 0 is a
 *       real 0 W; a value of the wrong type is left out, not made 0)
 *   advice {"ts":..,"level":"green","surplus_w":..,"next_green":ms|null,"machine":"laser"?} ->
 *       advice[,machine=M],site=S level="green",level_code=2i,surplus_w=..[,next_green_ms=Ni] ts
 * Every line is checked (or built) completely before the first emit, so a message that fails emits
 * nothing. Returns the number of lines emitted (0 for a plan without slots); err is then "" or names
 * the first value or slot left out. On failure -COL_INGEST_* with err: ETOPIC for an unknown subtopic or
 * an invalid machine or job id in the topic, ETOOBIG over COL_INGEST_FABGRID_MAX_BYTES or COL_INGEST_PLAN_SLOTS_MAX slots,
 * EDEPTH, ENOTJSON, ETYPE (wrong root or ts type, or nothing usable but wrongly typed values),
 * ENOFIELD (no ts, or nothing usable). */
int col_ingest_fabgrid(const char *site, const char *subtopic, const void *payload, size_t len, col_ingest_emit emit,
                       void *ud, char *err, size_t errlen);

#endif
