/* bal_persist: the balancer daemon's state across restarts (jobs with the energy already delivered,
 * machines with their last switch and starts today) as a JSON file that is replaced atomically.
 * Encoding and decoding are pure; bal_persist_save/load/quarantine touch the file system. */
#ifndef BAL_PERSIST_H
#define BAL_PERSIST_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bal_types.h"

#define BAL_PERSIST_VERSION 1
#define BAL_PERSIST_MAX_BYTES (16u << 20) /* a larger file is corrupt */
#define BAL_PERSIST_MAX_JOBS 100000
#define BAL_PERSIST_MAX_MACHINES 1024

struct bal_pjob {
    char id[48];                       /* 1..47 bytes ("kiln-daily@2016-07-15", "laser-42") */
    char machine[BAL_ID_MAX];          /* a machine id (the machine may have left the config since) */
    int64_t earliest_ms, deadline_ms;
    double energy_wh, done_wh;         /* NaN is stored as null */
    bool required, surplus_only, requested, running; /* requested: came over jobs/request */
    int64_t started_ms, done_ms;
    int state;                         /* the daemon's job state code */
};

struct bal_pmachine {
    char id[BAL_ID_MAX];
    bool on, faulted;
    double power_w;                    /* NaN is stored as null */
    int64_t since_ms;                  /* INT64_MIN ("unknown, long ago") is kept exactly */
    unsigned starts_today;             /* 0..1000000 */
    int32_t starts_day;                /* the day starts_today counts (the daemon's day number) */
    char job[48];                      /* the job it serves, "" none */
};

struct bal_pstate {
    int64_t saved_ms;
    struct bal_pjob *jobs;             /* njobs (NULL when 0); owned, freed by bal_pstate_free */
    size_t njobs;
    struct bal_pmachine *machines;     /* nmachines (NULL when 0); owned */
    size_t nmachines;
};

/* The state as one line of JSON and a newline, malloc'd (the caller frees it); never NULL (aborts on
 * OOM). {"version":1,"saved_ms":…,"jobs":[{"id":…,"machine":…,"earliest_ms":…,"deadline_ms":…,
 * "energy_wh":…,"done_wh":…,"required":…,"surplus_only":…,"requested":…,"running":…,
 * "started_ms":…,"done_ms":…,"state":…}],"machines":[{"id":…,"on":…,"faulted":…,"power_w":…,
 * "since_ms":…,"starts_today":…,"starts_day":…,"job":…}]}. Times are integers in ms, written exactly;
 * doubles are written so that they read back bit for bit. */
char *bal_persist_encode(const struct bal_pstate *s);

/* Reads what bal_persist_encode wrote (len bytes, need not be NUL-terminated). Every key is required
 * and unknown keys are errors: a file that is not exactly this format is corrupt. Integers in ms must
 * be whole and within ±(2^53 - 1) (beyond that a JSON number is not exact), or exactly INT64_MIN/INT64_MAX.
 * Returns 0 with *s filled (free it with bal_pstate_free), or -EINVAL with *s empty and the errors,
 * "\n"-joined, in err: "state:1:5: syntax error: …", "state: jobs[0].done_wh: missing (required)",
 * "state: version: must be one of 1, got 2". err may be NULL. */
int bal_persist_decode(const char *text, size_t len, struct bal_pstate *s, char *err, size_t errlen);

/* Writes the state to PATH.tmp, fsyncs it, renames it over path and fsyncs the directory, so that a
 * crash leaves either the old or the new file, never a torn one (a torn PATH.tmp may be left beside;
 * the next save replaces it). Returns 0, or a negative errno with "FILE: what: reason" in err
 * (PATH.tmp is removed again when it was not renamed). */
int bal_persist_save(const char *path, const struct bal_pstate *s, char *err, size_t errlen);

/* Loads path into *s (free it with bal_pstate_free). Returns 0; -ENOENT with *s empty and
 * "PATH: no state file" when there is none (a fresh start); -EINVAL with *s empty for a corrupt file
 * (errors as bal_persist_decode's with PATH instead of "state", or "PATH: larger than 16777216
 * bytes"): the caller logs it, moves it aside with bal_persist_quarantine and starts empty; another
 * negative errno when the file cannot be read ("PATH: cannot read: Permission denied"). PATH.tmp is
 * never read. */
int bal_persist_load(const char *path, struct bal_pstate *s, char *err, size_t errlen);

/* Renames path to PATH.bad (replacing an older one), keeping a corrupt file for inspection. Returns 0
 * or a negative errno with "PATH: rename to PATH.bad: reason" in err. */
int bal_persist_quarantine(const char *path, char *err, size_t errlen);

/* Frees the arrays and zeroes *s. NULL is a no-op. */
void bal_pstate_free(struct bal_pstate *s);

#endif
