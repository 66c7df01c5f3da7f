/* bal_msg: the balancer's MQTT payloads (CONTRACT.md section 5): parsing what it reads (balance,
 * forecast) and writing what it publishes (plan, machine state, job, advice). Pure; strings returned
 * are malloc'd JSON text that the caller frees. */
#ifndef BAL_MSG_H
#define BAL_MSG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bal_ctl.h"

/* Largest payload parsed for balance and device topics; a forecast may be larger. */
#define BAL_MSG_MAX_BYTES 65536u
#define BAL_MSG_FORECAST_MAX_BYTES (1024u * 1024u)
#define BAL_MSG_FORECAST_MAX_POINTS 20000

/* Parses a balance message {"ts":ms,"grid_w":W,"pv_w":W?,"load_w":W?,...}. Returns 0, or -EINVAL
 * with a one-line reason (not JSON, no ts, no finite grid_w, over BAL_MSG_MAX_BYTES). pv_w and load_w
 * are NAN when absent. */
int bal_msg_parse_balance(const void *payload, size_t len, int64_t *ts_ms, double *pv_w, double *grid_w,
                          double *load_w, char *err, size_t errlen);

/* Parses an external PV forecast: a JSON array of [ts_ms, watts] pairs (at most
 * BAL_MSG_FORECAST_MAX_POINTS). Returns the number of points written to *ts / *w (malloc'd, the caller
 * frees both), or -EINVAL with a reason ("[3]: expected [ts_ms, watts]"). */
long bal_msg_parse_forecast(const void *payload, size_t len, int64_t **ts, double **w, char *err, size_t errlen);

/* The "ts" (unix ms) of a JSON object payload, 0 when it has none (or is not JSON). */
int64_t bal_msg_ts(const void *payload, size_t len);

/* Whether a status payload ("online"/"offline") says online; other text counts as offline. */
bool bal_msg_online(const void *payload, size_t len);

/* {"ts":now,"slot_min":N,"trigger":"slot","status":"ok"|"stale-data","slots":[{"start":ms,"pv_w":W,
 * "load_w":W,"machines":{"kiln":6000,...}},...]} for the controller's current plan (slots from the one
 * containing now; machines with 0 W left out of a slot); NULL without a plan. */
char *bal_msg_plan(const struct bal_ctl *c, int64_t now_ms, enum bal_replan_why trigger, bool stale);

/* {"ts":now,"on":bool,"power_w":W,"job":"id"|null,"reason":"plan","start":"auto"|"manual","faulted":bool}.
 * reason_override (may be NULL) replaces the controller's reason (e.g. "shutdown", "restored"). */
char *bal_msg_machine(const struct bal_ctl *c, size_t m, int64_t now_ms, const char *reason_override);

/* {"ts":now,"job":id,"machine":m,"state":"planned","earliest":ms,"deadline":ms,"energy_wh":N,
 * "done_wh":N,"planned_start":ms|null,"planned_end":ms|null,"finished":ms|null,"required":bool
 * [,"reason":"..."]}; finished: when a done or missed job's energy was complete (reason only when set). */
char *bal_msg_job(const struct bal_ctl *c, const struct bal_cjob *j, int64_t now_ms);

/* The answer to a request that never became a job: {"ts":now,"state":"rejected","reason":reason}. */
char *bal_msg_rejected(const char *reason, int64_t now_ms);

/* {"ts":now,"machine":m,"level":"green"|"yellow"|"red","surplus_w":W|null,"next_green":ms|null}. */
char *bal_msg_advice(const struct bal_ctl *c, size_t m, int64_t now_ms);

#endif
