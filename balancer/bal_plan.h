/* bal_plan: the planner. A pure function from a problem (forecast PV and base load per slot, machines
 * and their states, job occurrences, the clock as now_ms) to a plan: which machine runs which job at
 * what power in every slot, so that grid import (or cost, with prices) is least and deadlines hold.
 * Among placements of equal forecast import it takes the one likeliest to meet surplus when the
 * forecast errs (under more forecast PV), then fewer starts, then earlier completion (bal_plan.c). */
#ifndef BAL_PLAN_H
#define BAL_PLAN_H
#include <stddef.h>
#include <stdint.h>

#include "bal_types.h"

/* Plans the jobs of p. Returns 0 and fills *out (owned: bal_plan_free), or -EINVAL with err for a
 * malformed problem (nslots 0 or > BAL_MAX_SLOTS, slot_min not in 5..60, a job naming no machine,
 * pv_w/load_w NULL, now_ms after the first slot, a machine with jobs whose power_w is not > 0, a
 * negative job energy); *out is then zeroed and owns nothing. err may be NULL.
 *
 * Jobs that cannot be planned are not an error: their bal_job_plan says BAL_JOB_INFEASIBLE with the
 * reason (required jobs: "deadline passed", "deadline too close: needs N min, M left", "window too
 * short: needs N min in its windows before the deadline", "max starts reached", "grid limit: no
 * block of N min fits under L W", "machine busy: no free time of N min before the deadline"), or
 * BAL_JOB_UNPLANNED (optional ones without enough surplus: "no surplus before the deadline"; any job
 * whose deadline lies beyond the horizon and does not fit in it: "deadline beyond the horizon"; a job
 * whose earliest start is after the horizon: "starts after the horizon"). A surplus-only job that
 * gets part of its energy is BAL_JOB_PLANNED with reason "partial: surplus covers X of Y Wh". A job
 * with done_wh >= energy_wh is BAL_JOB_DONE. first_ms/end_ms are the start of the job's first planned
 * slot and the end of its last one (0 when nothing is planned).
 *
 * Slots: slot s is [start_ms + s*slot_min, +slot_min); slot 0 counts only from now_ms on (energy,
 * import). A job may use slot s when the slot (from now_ms for slot 0) starts at or after its
 * earliest_ms and ends at or before its deadline_ms, and bal_machine_allowed() says yes. Energy:
 * in a job's slots, taken in time order, each delivers min(power x slot time, what is still missing),
 * so the last slot of a job may be used in part (the dispatcher stops the machine when the job is
 * done); power_w holds the power the machine draws while on (fixed loads: machine.power_w). */
int bal_plan_make(const struct bal_problem *p, struct bal_plan *out, char *err, size_t errlen);
/* Frees what bal_plan_make allocated in pl (not pl itself) and zeroes it. NULL is a no-op. */
void bal_plan_free(struct bal_plan *pl);

/* Import and export energy (Wh) of a plan against the problem's forecast (positive numbers), and the
 * number of starts (a slot with power after one without; before slot 0 the machine is as
 * mstate says). Per slot, a planned job's energy is counted as bal_plan_make counts it (time order,
 * capped at the job's remaining energy); a slot with power but no valid job counts its full power.
 * pl must have p's nslots and nmachines. Any output pointer may be NULL. */
void bal_plan_score(const struct bal_problem *p, const struct bal_plan *pl, double *import_wh, double *export_wh,
                    unsigned *starts);

/* The latest start (unix ms) at which job j can still finish by its deadline on its machine, at full
 * power: the start of a slot on p's slot grid (extended past the horizon when the deadline is), such
 * that the slots from it up to the deadline that bal_machine_allowed() permits hold the job's
 * remaining energy (non-interruptible machines: in one contiguous run). It ignores other jobs, min
 * on/off and the grid limit. Slot 0 counts from now_ms. INT64_MIN if already impossible (or job out
 * of range); if the job is done, its deadline. */
int64_t bal_latest_start_ms(const struct bal_problem *p, size_t job);

#endif
