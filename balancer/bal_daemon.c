/* bal_daemon: the live balancer's loop. MQTT messages arrive on libmosquitto's thread and are queued
 * (bounded, counted) for the control thread, which alone touches the controller: it handles them as
 * they come and steps the controller every interval_s on absolute deadlines. */
#include "bal_daemon.h"
#include "bal_act.h"
#include "bal_ctl.h"
#include "bal_jobreq.h"
#include "bal_msg.h"
#include "bal_persist.h"
#include "fg_log.h"
#include "fg_mem.h"
#include "fg_mqtt.h"
#include "fg_notify.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INBOX_MAX_MSGS 50000             /* a flood of 1,000 requests a second for 10 s fits */
#define INBOX_MAX_BYTES (64u << 20)
#define SAVE_EVERY_MS 60000              /* progress is saved at least this often (simulated ms) */
#define JUMP_MS 2000                     /* wall vs monotonic drift counted as a clock jump */

struct inmsg {
    struct inmsg *next;
    char *topic;
    size_t len;                          /* the payload's real length */
    size_t kept;                         /* bytes kept (oversized payloads are cut, their length stays) */
    char payload[];
};

struct inbox {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct inmsg *head, *tail;
    size_t n, bytes;
    uint64_t dropped;
};

/* Per machine: where its commands go, where its feedback comes from, and the confirmation. */
struct mio {
    char id[BAL_ID_MAX];
    char cmd_topic[320], cmd_payload[320];
    char fb_topic[320];
    bool dev_offline;                    /* its relay module or meter said offline */
    struct bal_confirm conf;
    int last_level;                      /* advice: last published level, -1 none */
    int64_t last_next_green, advice_ms;
};

struct daemon {
    const struct bal_daemon_opts *o;
    const struct fg_clock *clk;
    struct bal_config *cfg;
    struct bal_ctl *ctl;
    struct fg_mqtt *mq;
    char base[200];                      /* "PREFIX/SITE/" */
    size_t base_len;
    struct inbox in;
    struct mio *mio;
    size_t nm;
    int64_t offset_ms;                   /* wall - tick, for clock jumps */
    int64_t last_save_ms;
    uint64_t req_seq, requests, rejected, bad_msgs;
    bool was_stale;
    int64_t event_ms;                    /* the controller's time of the changes being published */
    struct fg_complain bad_balance, bad_feedback, bad_forecast, inbox_full, save_err;
    char state_path[512];
};

/* ---- the inbox (filled on the MQTT thread) ------------------------------------------------------- */

static size_t keep_limit(const char *topic)
{
    /* a forecast may be large; anything else is judged by its length alone beyond this */
    return strstr(topic, "forecast") ? BAL_MSG_FORECAST_MAX_BYTES + 1 : BAL_MSG_MAX_BYTES + 1;
}

static void on_message(void *ud, const char *topic, const void *payload, size_t len)
{
    struct daemon *d = ud;
    size_t kept = len < keep_limit(topic) ? len : keep_limit(topic);
    pthread_mutex_lock(&d->in.mu);
    if (d->in.n >= INBOX_MAX_MSGS || d->in.bytes + kept > INBOX_MAX_BYTES) {
        d->in.dropped++;
        pthread_mutex_unlock(&d->in.mu);
        return;
    }
    struct inmsg *m = fg_malloc(sizeof *m + kept + 1);
    m->next = NULL;
    m->topic = fg_strdup(topic);
    m->len = len;
    m->kept = kept;
    memcpy(m->payload, payload, kept);
    m->payload[kept] = 0;
    if (d->in.tail)
        d->in.tail->next = m;
    else
        d->in.head = m;
    d->in.tail = m;
    d->in.n++;
    d->in.bytes += kept;
    pthread_cond_signal(&d->in.cv);
    pthread_mutex_unlock(&d->in.mu);
}

/* Takes every queued message (in order), waiting until deadline_ns (CLOCK_MONOTONIC) if none. */
static struct inmsg *inbox_take(struct inbox *in, int64_t deadline_ns)
{
    struct timespec ts = { .tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000 };
    pthread_mutex_lock(&in->mu);
    if (!in->head)
        pthread_cond_timedwait(&in->cv, &in->mu, &ts);
    struct inmsg *list = in->head;
    in->head = in->tail = NULL;
    in->n = 0;
    in->bytes = 0;
    pthread_mutex_unlock(&in->mu);
    return list;
}

static void inbox_init(struct inbox *in)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&in->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&in->mu, NULL);
}

static void inbox_free_list(struct inmsg *m)
{
    while (m) {
        struct inmsg *n = m->next;
        free(m->topic);
        free(m);
        m = n;
    }
}

/* ---- publishing ---------------------------------------------------------------------------------- */

static void publish(struct daemon *d, const char *sub, const char *payload, bool retain)
{
    char topic[512];
    snprintf(topic, sizeof topic, "%s%s", d->base, sub);
    int rc = fg_mqtt_publish(d->mq, topic, payload, strlen(payload), 1, retain);
    if (rc && rc != -ENOBUFS)
        fg_log(FG_LOG_WARN, "mqtt", NULL, "publish %s failed: %s", topic, strerror(-rc));
}

static void publish_free(struct daemon *d, const char *sub, char *payload, bool retain)
{
    if (payload)
        publish(d, sub, payload, retain);
    free(payload);
}

static int64_t now_ms(const struct daemon *d)
{
    return fg_clock_now_ms(d->clk);
}

/* machine/M/state at t_ms; reason (may be NULL) overrides the controller's. */
static void publish_machine(struct daemon *d, size_t m, int64_t t_ms, const char *reason)
{
    char sub[128];
    snprintf(sub, sizeof sub, "machine/%s/state", bal_ctl_machine(d->ctl, m)->id);
    publish_free(d, sub, bal_msg_machine(d->ctl, m, t_ms, reason), true);
}

static void on_machine_event(void *ud, size_t m)
{
    struct daemon *d = ud;
    publish_machine(d, m, d->event_ms, NULL);
}

static void on_job_event(void *ud, const struct bal_cjob *j)
{
    struct daemon *d = ud;
    char sub[128];
    snprintf(sub, sizeof sub, "jobs/%s", j->j.id);
    publish_free(d, sub, bal_msg_job(d->ctl, j, d->event_ms), true);
    if (j->state == BAL_JS_REJECTED || j->state == BAL_JS_MISSED)
        fg_log(FG_LOG_INFO, "jobs", j->j.id, "%s: %s", bal_jstate_name(j->state), j->reason);
    else
        fg_log(FG_LOG_DEBUG, "jobs", j->j.id, "%s", bal_jstate_name(j->state));
}

/* Publishes what changed; the messages carry t_ms, the time the controller made the changes, so that a
 * switch's ts is the instant min on/off times count from. */
static void publish_events(struct daemon *d, int64_t t_ms)
{
    d->event_ms = t_ms;
    bal_ctl_take_machine_events(d->ctl, on_machine_event, d);
    bal_ctl_take_job_events(d->ctl, on_job_event, d);
}

/* Advice for the machines a person starts: on a change of level or of the next green slot, and
 * once a minute of simulated time so a dashboard always has a fresh light. */
static void publish_advice(struct daemon *d, int64_t now)
{
    for (size_t m = 0; m < d->nm; m++) {
        if (!bal_ctl_machine(d->ctl, m)->manual)
            continue;
        double sur;
        int64_t next;
        int level = bal_ctl_advice(d->ctl, m, now, &sur, &next);
        struct mio *io = &d->mio[m];
        if (level == io->last_level && next == io->last_next_green && now - io->advice_ms < 60000)
            continue;
        io->last_level = level;
        io->last_next_green = next;
        io->advice_ms = now;
        publish_free(d, "advice", bal_msg_advice(d->ctl, m, now), true);
    }
}

/* ---- machines: commands and their confirmation -------------------------------------------------- */

static const char *meter_of(const struct daemon *d, size_t m)
{
    return d->cfg->meter ? d->cfg->meter[m] : "";
}

/* (Re)builds the per-machine I/O for the controller's machines; a machine that was known before (a
 * reload) keeps its confirmation and advice state, found by id. */
static void setup_mio(struct daemon *d)
{
    struct mio *old = d->mio;
    size_t nold = d->nm;
    d->nm = bal_ctl_nmachines(d->ctl);
    d->mio = fg_calloc(d->nm ? d->nm : 1, sizeof *d->mio);
    for (size_t m = 0; m < d->nm; m++) {
        struct mio *io = &d->mio[m];
        const char *id = bal_ctl_machine(d->ctl, m)->id;
        io->last_level = -1;
        for (size_t k = 0; k < nold; k++)
            if (strcmp(old[k].id, id) == 0)
                *io = old[k];
        fg_strlcpy(io->id, id, sizeof io->id);
        int n = bal_act_feedback_topic(&d->cfg->act[m], meter_of(d, m), d->cfg->mqtt.prefix, d->cfg->site.id,
                                       io->fb_topic, sizeof io->fb_topic);
        if (n > 0)
            fg_mqtt_subscribe(d->mq, io->fb_topic, 1);
        else
            io->fb_topic[0] = 0;
    }
    free(old);
}

/* After a restart the restored states are what fabgrid last commanded, and the device may not have
 * executed the command yet (a kill -9 right after it): each is treated as a command waiting for its
 * confirmation, so a reading from before it is not taken for the truth, and a machine that really
 * is not in the state is switched again (the kiln keeps firing) instead of being started anew. */
static void expect_restored(struct daemon *d)
{
    for (size_t m = 0; m < d->nm; m++) {
        const struct bal_cmach *cm = bal_ctl_mach_state(d->ctl, m);
        struct mio *io = &d->mio[m];
        if (cm->known || cm->ms.since_ms == INT64_MIN || !io->fb_topic[0] || bal_ctl_machine(d->ctl, m)->manual ||
            bal_act_command(&d->cfg->act[m], d->cfg->mqtt.prefix, d->cfg->site.id, cm->ms.on, cm->ms.power_w,
                            io->cmd_topic, sizeof io->cmd_topic, io->cmd_payload, sizeof io->cmd_payload) < 0)
            continue;
        bal_confirm_sent(&io->conf, cm->ms.on, fg_clock_tick_ms(d->clk));
    }
}

static void send_cmd(struct daemon *d, size_t m, bool on, double power_w)
{
    struct mio *io = &d->mio[m];
    const char *id = bal_ctl_machine(d->ctl, m)->id;
    int rc = bal_act_command(&d->cfg->act[m], d->cfg->mqtt.prefix, d->cfg->site.id, on, power_w, io->cmd_topic,
                             sizeof io->cmd_topic, io->cmd_payload, sizeof io->cmd_payload);
    if (rc == -EINVAL && d->cfg->act[m].type == BAL_ACT_NONE) {
        fg_log(FG_LOG_DEBUG, "machine", id, "no actuator: switch %s is published only", on ? "on" : "off");
        return;
    }
    if (rc) {
        fg_log(FG_LOG_ERROR, "machine", id, "cannot build the command: %s", strerror(-rc));
        return;
    }
    fg_mqtt_publish(d->mq, io->cmd_topic, io->cmd_payload, strlen(io->cmd_payload), 1, false);
    if (io->fb_topic[0])
        bal_confirm_sent(&io->conf, on, fg_clock_tick_ms(d->clk));
    fg_log(FG_LOG_INFO, "machine", id, "switch %s (%s), %.0f W", on ? "on" : "off", io->cmd_topic, power_w);
}

static void resend(struct daemon *d, size_t m)
{
    struct mio *io = &d->mio[m];
    fg_mqtt_publish(d->mq, io->cmd_topic, io->cmd_payload, strlen(io->cmd_payload), 1, false);
    bal_confirm_sent(&io->conf, io->conf.want_on, fg_clock_tick_ms(d->clk));
    fg_log(FG_LOG_WARN, "machine", bal_ctl_machine(d->ctl, m)->id, "no confirmation yet: command sent again (%u)",
           io->conf.tries);
}

static void confirm_tick(struct daemon *d)
{
    const struct bal_settings *s = &d->cfg->set;
    for (size_t m = 0; m < d->nm; m++) {
        const char *id = bal_ctl_machine(d->ctl, m)->id;
        switch (bal_confirm_tick(&d->mio[m].conf, fg_clock_tick_ms(d->clk), s->confirm_timeout_s, s->confirm_retries)) {
        case BAL_CONF_OK:
            bal_ctl_confirmed(d->ctl, m);
            break;
        case BAL_CONF_RETRY:
            resend(d, m);
            break;
        case BAL_CONF_FAULT:
            fg_log(FG_LOG_ERROR, "machine", id, "switch %s not confirmed after %u tries: marked faulted",
                   d->mio[m].conf.want_on ? "on" : "off", d->mio[m].conf.tries);
            bal_ctl_fault(d->ctl, m, now_ms(d));
            break;
        default:
            break;
        }
    }
}

/* A feedback message for machine m. Before fabgrid has switched it, it tells the starting state. */
static void feedback(struct daemon *d, size_t m, const struct inmsg *msg)
{
    bool on;
    double power_w;
    int rc = bal_act_parse_feedback(&d->cfg->act[m], meter_of(d, m), d->cfg->set.confirm_power_w, msg->payload,
                                    msg->kept, &on, &power_w);
    const char *id = bal_ctl_machine(d->ctl, m)->id;
    if (rc < 0) {
        d->bad_msgs++;
        fg_complain(&d->bad_feedback, fg_clock_tick_ms(d->clk), FG_LOG_WARN, "machine", id,
                    "malformed feedback on %s", msg->topic);
        return;
    }
    if (rc == 0)
        return;
    struct mio *io = &d->mio[m];
    bool first = !io->conf.pending && !io->conf.confirmed;
    /* a retained reading taken before the last switch this controller knows of (a state restored
     * after a restart) tells nothing about the machine now */
    int64_t ts = bal_msg_ts(msg->payload, msg->kept), since = bal_ctl_mach_state(d->ctl, m)->ms.since_ms;
    if (first && ts && since != INT64_MIN && ts < since)
        return;
    bool by_hand = bal_confirm_feedback(&io->conf, on);
    if (first)
        bal_ctl_observed(d->ctl, m, on, now_ms(d));
    if (by_hand)
        fg_log(FG_LOG_WARN, "machine", id, "switched %s outside fabgrid", on ? "on" : "off");
}

/* ---- incoming messages --------------------------------------------------------------------------- */

static void on_balance(struct daemon *d, const struct inmsg *msg)
{
    int64_t ts;
    double pv, grid, load;
    char err[160];
    if (bal_msg_parse_balance(msg->payload, msg->kept, &ts, &pv, &grid, &load, err, sizeof err) < 0) {
        d->bad_msgs++;
        fg_complain(&d->bad_balance, fg_clock_tick_ms(d->clk), FG_LOG_WARN, "balance", NULL, "ignored: %s", err);
        return;
    }
    fg_complain_release(&d->bad_balance, "balance", NULL, "readable again");
    bal_ctl_balance(d->ctl, ts, pv, grid, load);
}

static void on_forecast(struct daemon *d, const struct inmsg *msg)
{
    int64_t *ts;
    double *w;
    char err[160];
    long n = bal_msg_parse_forecast(msg->payload, msg->kept, &ts, &w, err, sizeof err);
    if (n < 0) {
        d->bad_msgs++;
        fg_complain(&d->bad_forecast, fg_clock_tick_ms(d->clk), FG_LOG_WARN, "forecast", NULL, "ignored: %s", err);
        return;
    }
    bal_ctl_forecast(d->ctl, ts, w, (size_t)n);
    fg_log(FG_LOG_INFO, "forecast", NULL, "external PV forecast of %ld points", n);
    free(ts);
    free(w);
}

/* An id for a request that named none: unique within the process, valid as a job id. */
static void request_id(struct daemon *d, char *buf, size_t len)
{
    snprintf(buf, len, "req-%lld-%llu", (long long)(now_ms(d) / 1000), (unsigned long long)++d->req_seq);
}

/* Answers a request that did not become a job. A request that named a valid id is answered on its
 * retained jobs/ID; an anonymous one on a fresh, unretained jobs/req-... so that a flood of bad
 * requests leaves nothing behind in the broker. */
static void reject(struct daemon *d, const char *id, const char *reason)
{
    char sub[128], gen[48];
    bool named = id && *id;
    if (!named) {
        request_id(d, gen, sizeof gen);
        id = gen;
    }
    snprintf(sub, sizeof sub, "jobs/%s", id);
    publish_free(d, sub, bal_msg_rejected(reason, now_ms(d)), named);
    d->rejected++;
    fg_log(FG_LOG_DEBUG, "jobs", id, "request rejected: %s", reason);
}

static void on_request(struct daemon *d, const struct inmsg *msg)
{
    struct bal_jobreq rq;
    char reason[200];
    d->requests++;
    if (msg->len > BAL_JOBREQ_MAX_BYTES) {
        snprintf(reason, sizeof reason, "payload of %zu bytes exceeds %d", msg->len, BAL_JOBREQ_MAX_BYTES);
        reject(d, NULL, reason);
        return;
    }
    memset(&rq, 0, sizeof rq);
    if (bal_jobreq_parse(d->cfg, msg->payload, msg->len, now_ms(d), &rq, reason, sizeof reason) < 0) {
        reject(d, rq.id, reason);
        return;
    }
    if (rq.cancel) {
        if (bal_ctl_cancel(d->ctl, rq.id, reason, sizeof reason) < 0)
            reject(d, NULL, reason); /* the job itself stays as it is; the refusal is answered anonymously */
        return;
    }
    if (!rq.job.id[0])
        request_id(d, rq.job.id, sizeof rq.job.id);
    if (bal_ctl_add_job(d->ctl, &rq.job, reason, sizeof reason) < 0)
        reject(d, rq.id, reason);
    else
        fg_log(FG_LOG_INFO, "jobs", rq.job.id, "requested on %s: %.0f Wh by %lld", bal_ctl_machine(d->ctl, rq.job.machine)->id,
               rq.job.energy_wh, (long long)rq.job.deadline_ms);
}

/* device/DEV/status: a machine whose relay module or meter is offline can be neither switched nor
 * confirmed; that is said once per change (its commands will then end as faulted). */
static void on_device_status(struct daemon *d, const char *dev, const struct inmsg *msg)
{
    bool online = bal_msg_online(msg->payload, msg->kept);
    for (size_t m = 0; m < d->nm; m++) {
        const struct bal_actuator *a = &d->cfg->act[m];
        bool uses = (a->type == BAL_ACT_MODBUS && strcmp(a->device, dev) == 0) || strcmp(meter_of(d, m), dev) == 0;
        if (!uses || d->mio[m].dev_offline == !online)
            continue;
        d->mio[m].dev_offline = !online;
        fg_log(online ? FG_LOG_INFO : FG_LOG_WARN, "machine", bal_ctl_machine(d->ctl, m)->id,
               online ? "device %s online again" : "device %s offline: the machine can be neither switched nor "
                                                    "confirmed", dev);
    }
}

static bool sub_is(const char *sub, const char *want)
{
    return strcmp(sub, want) == 0;
}

/* Routes one message: the fabgrid topics below PREFIX/SITE/, then the machines' feedback topics
 * (which may lie anywhere: a Shelly's own topic). */
static void handle(struct daemon *d, const struct inmsg *msg)
{
    const char *sub = strncmp(msg->topic, d->base, d->base_len) == 0 ? msg->topic + d->base_len : NULL;
    if (sub && sub_is(sub, "balance"))
        on_balance(d, msg);
    else if (sub && sub_is(sub, "collector/status"))
        bal_ctl_collector(d->ctl, bal_msg_online(msg->payload, msg->kept));
    else if (sub && sub_is(sub, "jobs/request"))
        on_request(d, msg);
    else if (sub && sub_is(sub, d->cfg->set.forecast_topic))
        on_forecast(d, msg);
    else if (sub && strncmp(sub, "device/", 7) == 0 && strlen(sub) > 14 && strcmp(sub + strlen(sub) - 7, "/status") == 0) {
        char dev[BAL_ID_MAX];
        snprintf(dev, sizeof dev, "%.*s", (int)(strlen(sub) - 14), sub + 7);
        on_device_status(d, dev, msg);
    }
    for (size_t m = 0; m < d->nm; m++)
        if (d->mio[m].fb_topic[0] && strcmp(d->mio[m].fb_topic, msg->topic) == 0)
            feedback(d, m, msg);
}

static void drain(struct daemon *d, int64_t deadline_ns)
{
    struct inmsg *list = inbox_take(&d->in, deadline_ns);
    for (struct inmsg *m = list; m; m = m->next)
        handle(d, m);
    inbox_free_list(list);
    pthread_mutex_lock(&d->in.mu);
    uint64_t dropped = d->in.dropped;
    pthread_mutex_unlock(&d->in.mu);
    if (dropped)
        fg_complain(&d->inbox_full, fg_clock_tick_ms(d->clk), FG_LOG_WARN, "mqtt", NULL,
                    "%llu messages dropped: the inbox is full", (unsigned long long)dropped);
}

/* ---- the persisted state ------------------------------------------------------------------------- */

static void export_state(const struct daemon *d, struct bal_pstate *s)
{
    size_t nj = bal_ctl_njobs(d->ctl);
    s->saved_ms = bal_ctl_last_step(d->ctl); /* energy is credited up to there; a restart credits the rest */
    s->jobs = fg_calloc(nj ? nj : 1, sizeof *s->jobs);
    s->machines = fg_calloc(d->nm ? d->nm : 1, sizeof *s->machines);
    for (size_t j = 0; j < nj; j++) {
        const struct bal_cjob *cj = bal_ctl_job(d->ctl, j);
        struct bal_pjob *p = &s->jobs[s->njobs++];
        fg_strlcpy(p->id, cj->j.id, sizeof p->id);
        fg_strlcpy(p->machine, bal_ctl_machine(d->ctl, cj->j.machine)->id, sizeof p->machine);
        p->earliest_ms = cj->j.earliest_ms;
        p->deadline_ms = cj->j.deadline_ms;
        p->energy_wh = cj->j.energy_wh;
        p->done_wh = cj->j.done_wh;
        p->required = cj->j.required;
        p->surplus_only = cj->j.surplus_only;
        p->requested = cj->requested;
        p->running = cj->state == BAL_JS_RUNNING;
        p->done_ms = cj->done_ms;
        p->state = (int)cj->state;
    }
    for (size_t m = 0; m < d->nm; m++) {
        const struct bal_cmach *cm = bal_ctl_mach_state(d->ctl, m);
        struct bal_pmachine *p = &s->machines[s->nmachines++];
        long j = bal_ctl_machine_job(d->ctl, m);
        fg_strlcpy(p->id, bal_ctl_machine(d->ctl, m)->id, sizeof p->id);
        p->on = cm->ms.on;
        p->faulted = cm->faulted;
        p->power_w = cm->ms.power_w;
        p->since_ms = cm->ms.since_ms;
        p->starts_today = cm->ms.starts_today;
        p->starts_day = cm->starts_day;
        if (j >= 0)
            fg_strlcpy(p->job, bal_ctl_job(d->ctl, (size_t)j)->j.id, sizeof p->job);
    }
}

static void save_state(struct daemon *d, int64_t now)
{
    struct bal_pstate s = { 0 };
    char err[300];
    export_state(d, &s);
    if (bal_persist_save(d->state_path, &s, err, sizeof err) < 0)
        fg_complain(&d->save_err, fg_clock_tick_ms(d->clk), FG_LOG_ERROR, "state", NULL, "%s", err);
    else
        fg_complain_release(&d->save_err, "state", NULL, "saved again");
    bal_pstate_free(&s);
    d->last_save_ms = now;
}

static void restore_jobs(struct daemon *d, const struct bal_pstate *s)
{
    for (size_t i = 0; i < s->njobs; i++) {
        const struct bal_pjob *p = &s->jobs[i];
        long m = bal_ctl_machine_index(d->ctl, p->machine);
        if (m < 0)
            continue; /* its machine left the config while the daemon was down */
        struct bal_job j = { .machine = (size_t)m, .earliest_ms = p->earliest_ms, .deadline_ms = p->deadline_ms,
                             .energy_wh = p->energy_wh, .done_wh = p->done_wh, .required = p->required,
                             .surplus_only = p->surplus_only };
        fg_strlcpy(j.id, p->id, sizeof j.id);
        bal_ctl_restore_job(d->ctl, &j, p->requested, (enum bal_jstate)p->state, p->done_ms);
    }
}

static void restore_state(struct daemon *d)
{
    struct bal_pstate s = { 0 };
    char err[300];
    int rc = bal_persist_load(d->state_path, &s, err, sizeof err);
    if (rc == -ENOENT) {
        fg_log(FG_LOG_INFO, "state", NULL, "no saved state at %s: starting afresh", d->state_path);
        return;
    }
    if (rc < 0) {
        fg_log(FG_LOG_ERROR, "state", NULL, "%s: starting afresh", err);
        if (rc == -EINVAL && bal_persist_quarantine(d->state_path, err, sizeof err) == 0)
            fg_log(FG_LOG_WARN, "state", NULL, "the unreadable file is kept as %s.bad", d->state_path);
        return;
    }
    restore_jobs(d, &s);
    for (size_t i = 0; i < s.nmachines; i++) {
        const struct bal_pmachine *p = &s.machines[i];
        long m = bal_ctl_machine_index(d->ctl, p->id);
        if (m >= 0)
            bal_ctl_restore_machine(d->ctl, (size_t)m, p->on, p->power_w, p->since_ms, p->starts_today, p->starts_day,
                                    p->job);
    }
    bal_ctl_resume(d->ctl, s.saved_ms);
    fg_log(FG_LOG_INFO, "state", NULL, "restored %zu jobs and %zu machines saved at %lld", s.njobs, s.nmachines,
           (long long)s.saved_ms);
    bal_pstate_free(&s);
}

/* ---- reload -------------------------------------------------------------------------------------- */

static void log_errors(const char *err)
{
    char line[512];
    for (const char *p = err; *p;) {
        size_t n = strcspn(p, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line - 1 ? n : sizeof line - 1), p);
        fg_log(FG_LOG_ERROR, "config", NULL, "%s", line);
        p += n + (p[n] == '\n');
    }
}

/* SIGHUP: an invalid config is refused with its errors and the old one kept. */
static void reload(struct daemon *d)
{
    static char err[16384];
    fg_notify_reloading();
    struct bal_config *nc = bal_config_load(d->o->config_path, err, sizeof err);
    char why[300];
    if (!nc) {
        log_errors(err);
        fg_log(FG_LOG_ERROR, "config", NULL, "reload refused: keeping the running config");
    } else if (bal_ctl_reconfigure(d->ctl, nc, now_ms(d), why, sizeof why) < 0) {
        fg_log(FG_LOG_ERROR, "config", NULL, "reload refused: %s", why);
        bal_config_free(nc);
    } else {
        bal_config_free(d->cfg);
        d->cfg = nc;
        setup_mio(d);
        fg_log(FG_LOG_INFO, "config", NULL, "reloaded %s: %zu machines, %zu jobs", d->o->config_path, nc->nmachines,
               nc->njobs);
    }
    fg_notify_ready(NULL);
}

/* ---- the loop ------------------------------------------------------------------------------------ */

/* A wall clock that moved against the monotonic one (an NTP step, a manual change) is a jump: the
 * controller's remembered instants move with it, so no interval is cut short. */
static void check_jump(struct daemon *d)
{
    int64_t off = now_ms(d) - fg_clock_tick_ms(d->clk);
    if (llabs(off - d->offset_ms) > JUMP_MS) {
        fg_log(FG_LOG_WARN, "clock", NULL, "wall clock jumped by %lld ms", (long long)(off - d->offset_ms));
        bal_ctl_clock_jump(d->ctl, off - d->offset_ms);
    }
    d->offset_ms = off;
}

static void send_cmds(struct daemon *d, const struct bal_cmd *cmds, size_t n)
{
    for (size_t k = 0; k < n; k++)
        send_cmd(d, cmds[k].machine, cmds[k].on, cmds[k].power_w);
}

static void step(struct daemon *d)
{
    struct bal_cmd cmds[BAL_MAX_MACHINES];
    enum bal_replan_why why;
    char err[300];
    check_jump(d);
    int64_t now = now_ms(d);
    int n = bal_ctl_step(d->ctl, now, cmds, BAL_MAX_MACHINES, &why, err, sizeof err);
    if (n < 0) {
        fg_log(FG_LOG_ERROR, "plan", NULL, "planner refused its problem: %s", err);
        n = 0;
    }
    /* on disk before it is commanded or announced: a kill -9 right after a switch must not leave a
     * state file that knows nothing of it (the kiln would look like a machine on without a job) */
    if (n > 0 || bal_ctl_dirty(d->ctl) || now - d->last_save_ms >= SAVE_EVERY_MS)
        save_state(d, now);
    send_cmds(d, cmds, (size_t)n);
    confirm_tick(d);
    bool stale = bal_ctl_stale(d->ctl, now);
    if (stale != d->was_stale)
        fg_log(stale ? FG_LOG_WARN : FG_LOG_INFO, "balance", NULL, stale ? "readings stale: optional loads off"
                                                                        : "readings fresh again");
    if (why != BAL_RP_NONE || stale != d->was_stale) {
        publish_free(d, "balancer/plan", bal_msg_plan(d->ctl, now, why, stale), true);
        if (why != BAL_RP_NONE && why != BAL_RP_SLOT)
            fg_log(FG_LOG_INFO, "plan", NULL, "re-planned (%s)", bal_replan_name(why));
    }
    d->was_stale = stale;
    publish_events(d, now);
    publish_advice(d, now);
}

/* Runs steps on absolute deadlines (a late step does not shift the next ones; missed ones are
 * skipped) and handles messages in between. The watchdog is pinged from here, so a stuck loop is
 * restarted. */
static void loop(struct daemon *d)
{
    const int64_t interval = (int64_t)d->cfg->set.interval_s * 1000;
    int64_t next = fg_clock_tick_ms(d->clk);
    long wd_ms = fg_notify_watchdog_interval_ms();
    int64_t next_wd_ns = fg_mono_ns();
    while (!*d->o->stop) {
        int64_t due_ns = fg_clock_tick_to_mono_ns(d->clk, next);
        int64_t wake_ns = wd_ms > 0 && next_wd_ns < due_ns ? next_wd_ns : due_ns;
        if (wake_ns > fg_mono_ns() + 100000000)
            wake_ns = fg_mono_ns() + 100000000; /* signals are flags: look at them every 100 ms */
        drain(d, wake_ns);
        if (wd_ms > 0 && fg_mono_ns() >= next_wd_ns) {
            fg_notify_watchdog();
            next_wd_ns = fg_mono_ns() + (int64_t)wd_ms * 500000;
        }
        if (*d->o->reload) {
            *d->o->reload = 0;
            reload(d);
        }
        int64_t tick = fg_clock_tick_ms(d->clk);
        if (tick < next)
            continue;
        step(d);
        next += interval;
        if (next <= tick)
            next = tick - (tick - next) % interval + interval;
    }
}

/* ---- start and stop ------------------------------------------------------------------------------ */

static int start_mqtt(struct daemon *d)
{
    const struct fg_mqtt_cfg *mc = &d->cfg->mqtt;
    char status[300], err[300];
    snprintf(status, sizeof status, "%sbalancer/status", d->base);
    struct fg_mqtt_opts mo = { .host = mc->host, .port = mc->port, .client_id = mc->client_id[0] ? mc->client_id : NULL,
        .username = mc->username[0] ? mc->username : NULL, .password = mc->password,
        .ca_file = mc->ca_file[0] ? mc->ca_file : NULL, .cert_file = mc->cert_file[0] ? mc->cert_file : NULL,
        .key_file = mc->key_file[0] ? mc->key_file : NULL, .keepalive_s = mc->keepalive_s,
        .queue_max = mc->queue_max > 20000 ? (unsigned)mc->queue_max : 20000u, .status_topic = status,
        .reconnect_min_s = 1, .reconnect_max_s = 30 };
    d->mq = fg_mqtt_new(&mo, on_message, d, err, sizeof err);
    if (!d->mq) {
        fg_log(FG_LOG_ERROR, "mqtt", NULL, "%s", err);
        return -1;
    }
    static const char *const subs[] = { "balance", "collector/status", "jobs/request", "device/+/status" };
    char topic[400];
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        snprintf(topic, sizeof topic, "%s%s", d->base, subs[i]);
        fg_mqtt_subscribe(d->mq, topic, 1);
    }
    snprintf(topic, sizeof topic, "%s%s", d->base, d->cfg->set.forecast_topic);
    fg_mqtt_subscribe(d->mq, topic, 1);
    setup_mio(d);
    expect_restored(d);
    if (fg_mqtt_start(d->mq, err, sizeof err) < 0) {
        fg_log(FG_LOG_ERROR, "mqtt", NULL, "%s", err);
        return -1;
    }
    return 0;
}

static void ignore_machine_event(void *ud, size_t m)
{
    (void)ud;
    (void)m;
}

/* SIGTERM: the machines as their shutdown rule says, their states published, the state saved, then
 * the status goes offline. */
static void stop(struct daemon *d)
{
    struct bal_cmd cmds[BAL_MAX_MACHINES];
    int64_t now = now_ms(d);
    fg_notify_stopping();
    publish_events(d, now); /* what the last step changed, before the shutdown's own states */
    size_t n = bal_ctl_shutdown(d->ctl, now, cmds, BAL_MAX_MACHINES);
    save_state(d, now);
    send_cmds(d, cmds, n);
    for (size_t k = 0; k < n; k++)
        publish_machine(d, cmds[k].machine, now, "shutdown");
    bal_ctl_take_machine_events(d->ctl, ignore_machine_event, NULL); /* published above, as "shutdown" */
    fg_log(FG_LOG_INFO, "balancer", NULL, "stopping: %zu machines switched by their shutdown rule", n);
    fg_mqtt_stop(d->mq, 3000);
}

static void resolve_state_path(struct daemon *d)
{
    const char *f = d->cfg->set.state_file, *cfgp = d->o->config_path;
    const char *slash = strrchr(cfgp, '/');
    if (f[0] == '/' || !slash)
        snprintf(d->state_path, sizeof d->state_path, "%s", f);
    else
        snprintf(d->state_path, sizeof d->state_path, "%.*s/%s", (int)(slash - cfgp), cfgp, f);
}

int bal_daemon_run(const struct bal_daemon_opts *o)
{
    static struct daemon dd;
    struct daemon *d = &dd;
    char err[300];
    memset(d, 0, sizeof *d);
    d->o = o;
    d->clk = o->clock;
    d->cfg = o->cfg;
    d->base_len = (size_t)snprintf(d->base, sizeof d->base, "%s/%s/", d->cfg->mqtt.prefix, d->cfg->site.id);
    inbox_init(&d->in);
    resolve_state_path(d);
    d->ctl = bal_ctl_new(d->cfg, now_ms(d), err, sizeof err);
    if (!d->ctl) {
        fg_log(FG_LOG_ERROR, "config", NULL, "%s", err);
        return 1;
    }
    d->offset_ms = now_ms(d) - fg_clock_tick_ms(d->clk);
    restore_state(d);
    int rc = 1;
    if (start_mqtt(d) == 0) {
        fg_log(FG_LOG_INFO, "balancer", NULL, "running: %zu machines, %zu jobs configured, state in %s", d->nm,
               d->cfg->njobs, d->state_path);
        fg_notify_ready(NULL);
        publish_events(d, now_ms(d));
        loop(d);
        stop(d);
        rc = 0;
    }
    fg_mqtt_free(d->mq);
    inbox_free_list(d->in.head);
    bal_ctl_free(d->ctl);
    bal_config_free(d->cfg);
    free(d->mio);
    return rc;
}
