/* bal_act: how the balancer switches a machine and learns whether it really switched: the MQTT
 * command of each actuator type, the topic and payload of its feedback, and a per-machine tracker
 * that confirms, retries and finally reports a command as failed. Pure: no MQTT, no clock. */
#ifndef BAL_ACT_H
#define BAL_ACT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bal_types.h" /* enum bal_act_type, struct bal_actuator (filled by bal_config_load) */

/* Feedback payloads longer than this are malformed (a Shelly status is about 500 bytes). */
#define BAL_ACT_FEEDBACK_MAX 65536

/* The command that switches a's machine on or off. Writes the topic into topic (tlen bytes) and the
 * payload into payload (plen bytes), both NUL-terminated:
 *   modbus       "PREFIX/SITE/device/DEV/set/POINT", "1" / "0"; with a->power_setpoint (a modulating
 *                machine) the power in whole W when on ("7400", power_w must be > 0) and "0" when off
 *   shelly-gen2  "TOPIC/rpc", {"id":1,"src":"fabgrid","method":"Switch.Set","params":{"id":0,"on":true}}
 *   tasmota      "cmnd/TOPIC/POWER", "ON" / "OFF"
 *   mqtt         TOPIC, payload_on / payload_off with every "{power_w}" replaced by power_w rounded
 *                to whole W ("0" when off and power_w is 0)
 * power_w is the commanded power (W); it must be finite and within 0..1e9 where it is used.
 * Returns 0; -EINVAL for BAL_ACT_NONE (or a NULL a) or an unusable power_w; -ENOSPC if a buffer is too
 * small (its contents are then unspecified). */
int bal_act_command(const struct bal_actuator *a, const char *prefix, const char *site, bool on, double power_w,
                    char *topic, size_t tlen, char *payload, size_t plen);

/* The topic whose messages tell the machine's real state:
 *   meter set (a device id, "" or NULL for none)  "PREFIX/SITE/device/METER/state" (its power_w)
 *   shelly-gen2  "TOPIC/status/switch:0"     tasmota  "stat/TOPIC/POWER"
 *   modbus       "PREFIX/SITE/device/DEV/state" (the point's value in the collector's JSON state)
 *   mqtt, none   no feedback
 * Returns the topic's length (> 0), 0 when there is no feedback (buf is then ""), -ENOSPC. */
int bal_act_feedback_topic(const struct bal_actuator *a, const char *meter, const char *prefix, const char *site,
                           char *buf, size_t len);

/* Reads one message of the feedback topic above (payload need not be NUL-terminated). Returns 1 with
 * *on, and *power_w in W when the message carries it (else NAN); 0 when the message does not mention
 * the state (an empty payload, a state without the point, a status without "output"); -EINVAL when it
 * is malformed (not the expected JSON, wrong types, non-finite numbers, over BAL_ACT_FEEDBACK_MAX
 * bytes). *on and *power_w are false / NAN unless 1 is returned. Never reads past len.
 *   meter        JSON object: power_w (number) > on_above_w is on
 *   shelly-gen2  JSON object: "output" (bool), "apower" (number, W) if present
 *   tasmota      "ON" / "OFF" (any case, surrounding blanks allowed) or {"POWER":"ON"}
 *   modbus       JSON object: the point's value, a number (nonzero is on; with a->power_setpoint also
 *                the power in W) or a bool
 *   mqtt, none   always 0 */
int bal_act_parse_feedback(const struct bal_actuator *a, const char *meter, double on_above_w, const void *payload,
                           size_t len, bool *on, double *power_w);

/* ---- confirmation tracker (one per machine; a zeroed struct is the initial state) ---- */

struct bal_confirm {
    bool pending;       /* a command waits for its confirmation */
    bool want_on;       /* what the last command asked for */
    bool faulted;       /* the last command was never confirmed (cleared by a later confirmation) */
    int64_t sent_ms;    /* when the last command (or resend) went out, monotonic ms */
    unsigned tries;     /* sends of the current command */
    bool confirmed;     /* the device confirmed the last command (and no newer one went out) */
    bool ok_due;        /* matching feedback arrived; the next tick reports BAL_CONF_OK */
    bool dev_known;     /* the device has reported its state at least once ... */
    bool dev_on;        /* ... and this was the last state it reported */
};

enum bal_confirm_ev { BAL_CONF_IDLE, BAL_CONF_WAIT, BAL_CONF_OK, BAL_CONF_RETRY, BAL_CONF_FAULT };

/* A command (on or off) went out at now_ms. The same command again while it is pending is a resend
 * (tries + 1); any other starts over (tries = 1). A device whose last report already shows the wanted
 * state confirms at the next tick (Shelly publishes its status on change only). */
void bal_confirm_sent(struct bal_confirm *c, bool on, int64_t now_ms);

/* The device reported state on. While a command is pending (or after it faulted) the matching state
 * confirms it at the next tick. Returns true when, with the last command confirmed and nothing
 * pending, the device changes to the opposite state: someone switched it by hand (or it tripped). Each
 * such change is reported once; further identical reports return false. */
bool bal_confirm_feedback(struct bal_confirm *c, bool on);

/* Advances the tracker; call every dispatcher interval with a monotonic now_ms. Returns
 *   BAL_CONF_OK     once, when the matching state arrived (pending and faulted cleared)
 *   BAL_CONF_RETRY  timed out (now_ms - sent_ms >= timeout_s s) with tries <= retries: resend and call
 *                   bal_confirm_sent again (until then every tick returns RETRY)
 *   BAL_CONF_FAULT  once, timed out with tries > retries: faulted set, pending cleared; the machine
 *                   is reported faulted, not assumed in the wanted state
 *   BAL_CONF_WAIT   while pending otherwise;  BAL_CONF_IDLE  otherwise.
 * So a command is sent 1 + retries times at most. */
enum bal_confirm_ev bal_confirm_tick(struct bal_confirm *c, int64_t now_ms, unsigned timeout_s, unsigned retries);

#endif
