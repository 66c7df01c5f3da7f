/* Unit tests of bal_act: the exact command of every actuator type (and of the actuators a config
 * fixture loads), feedback topics, feedback parsing of valid, partial, malformed and random payloads,
 * and the confirmation tracker's event sequences. Run from the repository root. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bal_act.h"
#include "bal_model.h"

#define FIX "tests/fixtures/balancer/"

static struct bal_actuator act(enum bal_act_type type, const char *device, const char *point, const char *topic)
{
    struct bal_actuator a;
    memset(&a, 0, sizeof a);
    a.type = type;
    snprintf(a.device, sizeof a.device, "%s", device);
    snprintf(a.point, sizeof a.point, "%s", point);
    snprintf(a.topic, sizeof a.topic, "%s", topic);
    snprintf(a.payload_on, sizeof a.payload_on, "on");
    snprintf(a.payload_off, sizeof a.payload_off, "off");
    return a;
}

static void cmd_is(const struct bal_actuator *a, bool on, double power_w, const char *topic, const char *payload)
{
    char t[300], p[300];
    assert_int_equal(bal_act_command(a, "fabgrid", "hof3", on, power_w, t, sizeof t, p, sizeof p), 0);
    assert_string_equal(t, topic);
    assert_string_equal(p, payload);
}

/* ---- commands ---- */

static void test_command_types(void **state)
{
    struct bal_actuator m = act(BAL_ACT_MODBUS, "relays", "coil_3", "");
    struct bal_actuator s = act(BAL_ACT_SHELLY, "", "", "shellyplus1pm-a8");
    struct bal_actuator t = act(BAL_ACT_TASMOTA, "", "", "tasmota_plug");
    struct bal_actuator q = act(BAL_ACT_MQTT, "", "", "dryer/cmd");
    (void)state;
    cmd_is(&m, true, 6000, "fabgrid/hof3/device/relays/set/coil_3", "1");
    cmd_is(&m, false, 0, "fabgrid/hof3/device/relays/set/coil_3", "0");
    cmd_is(&s, true, 800, "shellyplus1pm-a8/rpc",
           "{\"id\":1,\"src\":\"fabgrid\",\"method\":\"Switch.Set\",\"params\":{\"id\":0,\"on\":true}}");
    cmd_is(&s, false, 0, "shellyplus1pm-a8/rpc",
           "{\"id\":1,\"src\":\"fabgrid\",\"method\":\"Switch.Set\",\"params\":{\"id\":0,\"on\":false}}");
    cmd_is(&t, true, 300, "cmnd/tasmota_plug/POWER", "ON");
    cmd_is(&t, false, 0, "cmnd/tasmota_plug/POWER", "OFF");
    cmd_is(&q, true, 1500, "dryer/cmd", "on");
    cmd_is(&q, false, 0, "dryer/cmd", "off");
}

static void test_command_power(void **state)
{
    char t[128], p[128];
    struct bal_actuator m = act(BAL_ACT_MODBUS, "wallbox", "charge_w", "");
    struct bal_actuator q = act(BAL_ACT_MQTT, "", "", "wallbox/set");
    (void)state;
    m.power_setpoint = true;
    cmd_is(&m, true, 7400, "fabgrid/hof3/device/wallbox/set/charge_w", "7400");
    cmd_is(&m, true, 4140.6, "fabgrid/hof3/device/wallbox/set/charge_w", "4141");
    cmd_is(&m, false, 7400, "fabgrid/hof3/device/wallbox/set/charge_w", "0");
    /* a setpoint of 0 W, a negative or NaN one cannot switch a modulating machine on */
    assert_int_equal(bal_act_command(&m, "fabgrid", "hof3", true, 0.4, t, sizeof t, p, sizeof p), -EINVAL);
    assert_int_equal(bal_act_command(&m, "fabgrid", "hof3", true, -5, t, sizeof t, p, sizeof p), -EINVAL);
    assert_int_equal(bal_act_command(&m, "fabgrid", "hof3", true, NAN, t, sizeof t, p, sizeof p), -EINVAL);
    assert_int_equal(bal_act_command(&m, "fabgrid", "hof3", false, NAN, t, sizeof t, p, sizeof p), 0);
    snprintf(q.payload_on, sizeof q.payload_on, "{\"w\":{power_w},\"max\":{power_w}}");
    snprintf(q.payload_off, sizeof q.payload_off, "{\"w\":{power_w}}");
    cmd_is(&q, true, 11040.4, "wallbox/set", "{\"w\":11040,\"max\":11040}");
    cmd_is(&q, false, 0, "wallbox/set", "{\"w\":0}");
    cmd_is(&q, true, 1e9, "wallbox/set", "{\"w\":1000000000,\"max\":1000000000}");
    assert_int_equal(bal_act_command(&q, "fabgrid", "hof3", true, INFINITY, t, sizeof t, p, sizeof p), -EINVAL);
    assert_int_equal(bal_act_command(&q, "fabgrid", "hof3", true, 1.1e9, t, sizeof t, p, sizeof p), -EINVAL);
    /* without the token the power does not matter */
    snprintf(q.payload_on, sizeof q.payload_on, "{power_w");
    cmd_is(&q, true, NAN, "wallbox/set", "{power_w");
}

static void test_command_errors(void **state)
{
    char t[128], p[128];
    struct bal_actuator n = act(BAL_ACT_NONE, "", "", "");
    struct bal_actuator m = act(BAL_ACT_MODBUS, "relays", "coil_3", "");
    struct bal_actuator q = act(BAL_ACT_MQTT, "", "", "a/b");
    const char *mt = "fabgrid/hof3/device/relays/set/coil_3"; /* 37 bytes */
    (void)state;
    assert_int_equal(bal_act_command(&n, "fabgrid", "hof3", true, 100, t, sizeof t, p, sizeof p), -EINVAL);
    assert_int_equal(bal_act_command(NULL, "fabgrid", "hof3", true, 100, t, sizeof t, p, sizeof p), -EINVAL);
    assert_int_equal(strlen(mt), 37);
    assert_int_equal(bal_act_command(&m, "fabgrid", "hof3", true, 1, t, 38, p, 2), 0); /* exact fit */
    assert_string_equal(t, mt);
    assert_int_equal(bal_act_command(&m, "fabgrid", "hof3", true, 1, t, 37, p, 2), -ENOSPC);
    assert_int_equal(bal_act_command(&m, "fabgrid", "hof3", true, 1, t, 38, p, 1), -ENOSPC);
    assert_int_equal(bal_act_command(&m, "fabgrid", "hof3", true, 1, t, 38, p, 0), -ENOSPC);
    snprintf(q.payload_on, sizeof q.payload_on, "x{power_w}y");
    assert_int_equal(bal_act_command(&q, "fabgrid", "hof3", true, 12345, t, 4, p, 8), 0);
    assert_string_equal(p, "x12345y");
    assert_int_equal(bal_act_command(&q, "fabgrid", "hof3", true, 12345, t, 4, p, 7), -ENOSPC);
    assert_int_equal(bal_act_command(&q, "fabgrid", "hof3", true, 12345, t, 3, p, 8), -ENOSPC);
}

/* The fixture's actuators as the loader resolved them give these commands. */
static void test_command_from_config(void **state)
{
    char err[2048];
    struct bal_config *c = bal_config_load(FIX "actuators.json", err, sizeof err);
    (void)state;
    assert_non_null(c);
    cmd_is(&c->act[0], true, 7400, "fabgrid/hof3/device/wallbox/set/charge_w", "7400");
    cmd_is(&c->act[1], true, 2000, "cmnd/tasmota_plug/POWER", "ON");
    cmd_is(&c->act[2], false, 0, "cmnd/tasmota_fan/POWER", "OFF");
    cmd_is(&c->act[3], true, 800, "custom/shelly/rpc",
           "{\"id\":1,\"src\":\"fabgrid\",\"method\":\"Switch.Set\",\"params\":{\"id\":0,\"on\":true}}");
    cmd_is(&c->act[4], true, 1500, "dryer/cmd", "on");
    bal_config_free(c);
}

/* ---- feedback topics ---- */

static void topic_is(const struct bal_actuator *a, const char *meter, const char *want)
{
    char buf[300] = "x";
    assert_int_equal(bal_act_feedback_topic(a, meter, "fabgrid", "hof3", buf, sizeof buf), (int)strlen(want));
    assert_string_equal(buf, want);
}

static void test_feedback_topic(void **state)
{
    char buf[64];
    struct bal_actuator m = act(BAL_ACT_MODBUS, "relays", "coil_3", "");
    struct bal_actuator s = act(BAL_ACT_SHELLY, "", "", "shellyplus1pm-a8");
    struct bal_actuator t = act(BAL_ACT_TASMOTA, "", "", "tasmota_plug");
    struct bal_actuator q = act(BAL_ACT_MQTT, "", "", "dryer/cmd");
    struct bal_actuator n = act(BAL_ACT_NONE, "", "", "");
    (void)state;
    topic_is(&m, "", "fabgrid/hof3/device/relays/state");
    topic_is(&s, NULL, "shellyplus1pm-a8/status/switch:0");
    topic_is(&t, "", "stat/tasmota_plug/POWER");
    topic_is(&q, "", "");
    topic_is(&n, NULL, "");
    topic_is(&q, "dryer-meter", "fabgrid/hof3/device/dryer-meter/state");
    topic_is(&s, "plug-s", "fabgrid/hof3/device/plug-s/state");
    topic_is(NULL, "m1", "fabgrid/hof3/device/m1/state");
    assert_int_equal(bal_act_feedback_topic(&t, "", "fabgrid", "hof3", buf, 24), 23);
    assert_int_equal(bal_act_feedback_topic(&t, "", "fabgrid", "hof3", buf, 23), -ENOSPC);
}

/* ---- feedback payloads ---- */

static int fb(const struct bal_actuator *a, const char *meter, const char *payload, bool *on, double *power_w)
{
    return bal_act_parse_feedback(a, meter, 50, payload, strlen(payload), on, power_w);
}

static void fb_is(const struct bal_actuator *a, const char *meter, const char *payload, int rc, bool on_want,
                  double power_want)
{
    bool on = !on_want;
    double p = 123;
    assert_int_equal(fb(a, meter, payload, &on, &p), rc);
    assert_int_equal(on, rc == 1 ? on_want : false);
    if (rc == 1 && !isnan(power_want))
        assert_true(p == power_want);
    else
        assert_true(isnan(p));
}

static void test_feedback_shelly(void **state)
{
    struct bal_actuator s = act(BAL_ACT_SHELLY, "", "", "shellyplus1pm-a8");
    (void)state;
    fb_is(&s, "", "{\"id\":0,\"source\":\"MQTT\",\"output\":true,\"apower\":812.5,\"voltage\":231.2}", 1, true,
          812.5);
    fb_is(&s, "", "{\"id\":0,\"output\":false}", 1, false, NAN);
    fb_is(&s, "", " {\"output\":false,\"apower\":null}\n", 1, false, NAN);
    fb_is(&s, "", "{\"id\":0,\"apower\":0}", 0, false, NAN);       /* no output: says nothing */
    fb_is(&s, "", "{\"output\":null}", 0, false, NAN);
    fb_is(&s, "", "{\"output\":1}", -EINVAL, false, NAN);
    fb_is(&s, "", "{\"output\":true,\"apower\":\"800\"}", -EINVAL, false, NAN);
    fb_is(&s, "", "{\"output\":true,\"apower\":1e999}", -EINVAL, false, NAN);
    fb_is(&s, "", "[true]", -EINVAL, false, NAN);
    fb_is(&s, "", "{\"output\":true} x", -EINVAL, false, NAN);
    fb_is(&s, "", "{\"output\":tru", -EINVAL, false, NAN);
    fb_is(&s, "", "", 0, false, NAN);
}

static void test_feedback_tasmota(void **state)
{
    struct bal_actuator t = act(BAL_ACT_TASMOTA, "", "", "tasmota_plug");
    (void)state;
    fb_is(&t, "", "ON", 1, true, NAN);
    fb_is(&t, "", "OFF", 1, false, NAN);
    fb_is(&t, "", " off\r\n", 1, false, NAN);
    fb_is(&t, "", "{\"POWER\":\"ON\"}", 1, true, NAN);
    fb_is(&t, "", "{\"Time\":\"2016-07-15T10:00:00\",\"POWER\":\"OFF\",\"Wifi\":{}}", 1, false, NAN);
    fb_is(&t, "", "{\"Dimmer\":40}", 0, false, NAN);
    fb_is(&t, "", "   ", 0, false, NAN);
    fb_is(&t, "", "TOGGLE", -EINVAL, false, NAN);
    fb_is(&t, "", "ONN", -EINVAL, false, NAN);
    fb_is(&t, "", "1", -EINVAL, false, NAN);
    fb_is(&t, "", "{\"POWER\":1}", -EINVAL, false, NAN);
    fb_is(&t, "", "{\"POWER\":\"BLINK\"}", -EINVAL, false, NAN);
    fb_is(&t, "", "{\"POWER\":\"ON\"", -EINVAL, false, NAN);
}

static void test_feedback_modbus_meter(void **state)
{
    struct bal_actuator m = act(BAL_ACT_MODBUS, "relays", "coil_3", "");
    struct bal_actuator w = act(BAL_ACT_MODBUS, "wallbox", "charge_w", "");
    struct bal_actuator q = act(BAL_ACT_MQTT, "", "", "dryer/cmd");
    (void)state;
    w.power_setpoint = true;
    fb_is(&m, "", "{\"ts\":1468569600000,\"coil_0\":0,\"coil_3\":1}", 1, true, NAN);
    fb_is(&m, "", "{\"ts\":1468569600000,\"coil_3\":0}", 1, false, NAN);
    fb_is(&m, "", "{\"coil_3\":true}", 1, true, NAN);
    fb_is(&m, "", "{\"coil_0\":1}", 0, false, NAN);
    fb_is(&m, "", "{\"coil_3\":\"1\"}", -EINVAL, false, NAN);
    fb_is(&m, "", "1", -EINVAL, false, NAN);
    fb_is(&w, "", "{\"charge_w\":7400}", 1, true, 7400);
    fb_is(&w, "", "{\"charge_w\":0}", 1, false, 0);
    /* a meter decides instead of the actuator's own report: on above on_above_w (50 W here) */
    fb_is(&m, "m1", "{\"ts\":1,\"power_w\":50.5,\"coil_3\":0}", 1, true, 50.5);
    fb_is(&m, "m1", "{\"ts\":1,\"power_w\":50}", 1, false, 50);
    fb_is(&q, "m1", "{\"power_w\":-3}", 1, false, -3);
    fb_is(&q, "m1", "{\"energy_wh\":100}", 0, false, NAN);
    fb_is(&q, "m1", "{\"power_w\":\"x\"}", -EINVAL, false, NAN);
    fb_is(&q, "m1", "{\"power_w\":-1e999}", -EINVAL, false, NAN);
    fb_is(&q, "", "{\"power_w\":100}", 0, false, NAN); /* plain mqtt: no feedback */
    fb_is(NULL, NULL, "ON", 0, false, NAN);
}

static void test_feedback_limits(void **state)
{
    static char big[BAL_ACT_FEEDBACK_MAX + 2];
    struct bal_actuator s = act(BAL_ACT_SHELLY, "", "", "t");
    bool on;
    double p;
    size_t n;
    (void)state;
    /* exactly the maximum is read; one byte more is refused unread */
    n = (size_t)snprintf(big, sizeof big, "{\"output\":true,\"pad\":\"");
    memset(big + n, 'a', BAL_ACT_FEEDBACK_MAX - n - 2);
    memcpy(big + BAL_ACT_FEEDBACK_MAX - 2, "\"}", 2);
    assert_int_equal(bal_act_parse_feedback(&s, "", 50, big, BAL_ACT_FEEDBACK_MAX, &on, &p), 1);
    assert_true(on);
    big[BAL_ACT_FEEDBACK_MAX] = ' ';
    assert_int_equal(bal_act_parse_feedback(&s, "", 50, big, BAL_ACT_FEEDBACK_MAX + 1, &on, &p), -EINVAL);
    /* never reads past len: the text after it is not part of the message */
    assert_int_equal(bal_act_parse_feedback(&s, "", 50, "{\"output\":true}garbage", 15, &on, &p), 1);
    assert_int_equal(bal_act_parse_feedback(&s, "", 50, "{\"output\":true}", 14, &on, &p), -EINVAL);
    /* a NUL inside the payload is malformed, not the end of it */
    assert_int_equal(bal_act_parse_feedback(&s, "", 50, "{\"output\":true}\0x", 17, &on, &p), -EINVAL);
    /* deep nesting is refused without exhausting the stack */
    n = 0;
    for (size_t i = 0; i < 5000; i++)
        big[n++] = '[';
    assert_int_equal(bal_act_parse_feedback(&s, "", 50, big, n, &on, &p), -EINVAL);
}

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

/* Random bytes, and valid messages with random bytes changed, never crash and always give -EINVAL,
 * 0 or 1 with *on false and *power_w NaN unless 1. */
static void test_feedback_fuzz(void **state)
{
    static const char *const seeds[] = { "{\"output\":true,\"apower\":812.5}", "{\"POWER\":\"ON\"}", "OFF",
                                         "{\"ts\":1,\"coil_3\":1,\"power_w\":70}" };
    struct bal_actuator as[4] = { act(BAL_ACT_SHELLY, "", "", "t"), act(BAL_ACT_TASMOTA, "", "", "t"),
                                  act(BAL_ACT_MODBUS, "d", "coil_3", ""), act(BAL_ACT_MQTT, "", "", "t") };
    const char *meters[2] = { "", "m1" };
    unsigned char buf[256];
    unsigned counts[3] = { 0, 0, 0 }, runs = 0;
    (void)state;
    for (int i = 0; i < 20000; i++) {
        size_t n;
        if (i % 2) {
            n = next_rand() % sizeof buf;
            for (size_t k = 0; k < n; k++)
                buf[k] = (unsigned char)next_rand();
        } else {
            const char *s = seeds[(i / 2) % 4];
            n = strlen(s);
            memcpy(buf, s, n);
            for (int k = 0; k < 3; k++)
                buf[next_rand() % n] = (unsigned char)next_rand();
        }
        for (int a = 0; a < 4; a++)
            for (int m = 0; m < 2; m++) {
                bool on = true;
                double p = 0;
                int rc = bal_act_parse_feedback(&as[a], meters[m], 50, buf, n, &on, &p);
                assert_true(rc == -EINVAL || rc == 0 || rc == 1);
                if (rc != 1)
                    assert_true(!on && isnan(p));
                counts[rc + (rc == -EINVAL ? EINVAL : 1)]++;
                runs++;
            }
    }
    assert_int_equal(runs, 160000);
    assert_int_equal(counts[0] + counts[1] + counts[2], 160000);
    assert_true(counts[0] > 0 && counts[1] > 0 && counts[2] > 0); /* all three outcomes were reached */
}

/* ---- confirmation ---- */

static void test_confirm_ok(void **state)
{
    struct bal_confirm c;
    (void)state;
    memset(&c, 0, sizeof c);
    assert_int_equal(bal_confirm_tick(&c, 0, 15, 2), BAL_CONF_IDLE);
    bal_confirm_sent(&c, true, 1000);
    assert_true(c.pending && c.want_on);
    assert_int_equal(c.tries, 1);
    assert_int_equal(c.sent_ms, 1000);
    assert_int_equal(bal_confirm_tick(&c, 1000, 15, 2), BAL_CONF_WAIT);
    assert_false(bal_confirm_feedback(&c, false)); /* not yet switched: keeps waiting */
    assert_int_equal(bal_confirm_tick(&c, 5000, 15, 2), BAL_CONF_WAIT);
    assert_false(bal_confirm_feedback(&c, true));
    assert_int_equal(bal_confirm_tick(&c, 6000, 15, 2), BAL_CONF_OK);
    assert_false(c.pending || c.faulted);
    assert_true(c.confirmed);
    assert_int_equal(bal_confirm_tick(&c, 7000, 15, 2), BAL_CONF_IDLE); /* OK is reported once */
    assert_false(bal_confirm_feedback(&c, true));                     /* agreeing reports */
    assert_int_equal(bal_confirm_tick(&c, 8000, 15, 2), BAL_CONF_IDLE);
}

static void test_confirm_retry_fault(void **state)
{
    struct bal_confirm c;
    (void)state;
    memset(&c, 0, sizeof c);
    bal_confirm_sent(&c, true, 0);
    assert_int_equal(bal_confirm_tick(&c, 14999, 15, 2), BAL_CONF_WAIT);
    assert_int_equal(bal_confirm_tick(&c, 15000, 15, 2), BAL_CONF_RETRY);
    assert_int_equal(bal_confirm_tick(&c, 15500, 15, 2), BAL_CONF_RETRY); /* until it is resent */
    bal_confirm_sent(&c, true, 16000);
    assert_int_equal(c.tries, 2);
    assert_int_equal(bal_confirm_tick(&c, 30999, 15, 2), BAL_CONF_WAIT);
    assert_int_equal(bal_confirm_tick(&c, 31000, 15, 2), BAL_CONF_RETRY);
    bal_confirm_sent(&c, true, 31000);
    assert_int_equal(c.tries, 3);
    assert_int_equal(bal_confirm_tick(&c, 45999, 15, 2), BAL_CONF_WAIT);
    assert_int_equal(bal_confirm_tick(&c, 46000, 15, 2), BAL_CONF_FAULT);
    assert_true(c.faulted);
    assert_false(c.pending);
    assert_int_equal(bal_confirm_tick(&c, 47000, 15, 2), BAL_CONF_IDLE); /* FAULT is reported once */
    assert_true(c.faulted);
    /* the device comes back and reports the wanted state late: confirmed, fault cleared */
    assert_false(bal_confirm_feedback(&c, false));
    assert_int_equal(bal_confirm_tick(&c, 48000, 15, 2), BAL_CONF_IDLE);
    assert_false(bal_confirm_feedback(&c, true));
    assert_int_equal(bal_confirm_tick(&c, 49000, 15, 2), BAL_CONF_OK);
    assert_false(c.faulted);
    /* retries 0: one send, then FAULT */
    memset(&c, 0, sizeof c);
    bal_confirm_sent(&c, false, 100);
    assert_int_equal(bal_confirm_tick(&c, 1099, 1, 0), BAL_CONF_WAIT);
    assert_int_equal(bal_confirm_tick(&c, 1100, 1, 0), BAL_CONF_FAULT);
    /* a clock that goes back does not time out */
    memset(&c, 0, sizeof c);
    bal_confirm_sent(&c, true, 100000);
    assert_int_equal(bal_confirm_tick(&c, 0, 15, 2), BAL_CONF_WAIT);
}

static void test_confirm_new_command(void **state)
{
    struct bal_confirm c;
    (void)state;
    memset(&c, 0, sizeof c);
    bal_confirm_sent(&c, true, 0);
    bal_confirm_sent(&c, true, 15000);
    assert_int_equal(c.tries, 2);
    bal_confirm_sent(&c, false, 20000); /* the other way: a new command */
    assert_int_equal(c.tries, 1);
    assert_false(c.want_on);
    assert_false(bal_confirm_feedback(&c, true)); /* an old report of the previous state */
    assert_int_equal(bal_confirm_tick(&c, 21000, 15, 2), BAL_CONF_WAIT);
    assert_false(bal_confirm_feedback(&c, false));
    assert_int_equal(bal_confirm_tick(&c, 22000, 15, 2), BAL_CONF_OK);
    /* the device already said it is off: an "off" command is confirmed at the next tick (Shelly reports
     * on change only) */
    bal_confirm_sent(&c, false, 30000);
    assert_int_equal(c.tries, 1);
    assert_int_equal(bal_confirm_tick(&c, 30000, 15, 2), BAL_CONF_OK);
    /* a faulted machine's next command starts over */
    memset(&c, 0, sizeof c);
    bal_confirm_sent(&c, true, 0);
    assert_int_equal(bal_confirm_tick(&c, 15000, 15, 0), BAL_CONF_FAULT);
    bal_confirm_sent(&c, true, 20000);
    assert_int_equal(c.tries, 1);
    assert_true(c.faulted && c.pending);
    assert_int_equal(bal_confirm_tick(&c, 20000, 15, 0), BAL_CONF_WAIT);
}

static void test_confirm_manual(void **state)
{
    struct bal_confirm c;
    (void)state;
    memset(&c, 0, sizeof c);
    assert_false(bal_confirm_feedback(&c, true)); /* nothing commanded yet: no contradiction */
    assert_false(bal_confirm_feedback(&c, false));
    bal_confirm_sent(&c, true, 0);
    assert_false(bal_confirm_feedback(&c, true));
    assert_int_equal(bal_confirm_tick(&c, 1000, 15, 2), BAL_CONF_OK);
    assert_true(bal_confirm_feedback(&c, false)); /* switched off by hand: reported once */
    assert_false(bal_confirm_feedback(&c, false));
    assert_false(bal_confirm_feedback(&c, true)); /* back as commanded */
    assert_true(bal_confirm_feedback(&c, false)); /* off again: a new change */
    assert_int_equal(bal_confirm_tick(&c, 2000, 15, 2), BAL_CONF_IDLE);
    assert_true(c.confirmed && c.want_on && c.dev_known && !c.dev_on);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_types),
        cmocka_unit_test(test_command_power),
        cmocka_unit_test(test_command_errors),
        cmocka_unit_test(test_command_from_config),
        cmocka_unit_test(test_feedback_topic),
        cmocka_unit_test(test_feedback_shelly),
        cmocka_unit_test(test_feedback_tasmota),
        cmocka_unit_test(test_feedback_modbus_meter),
        cmocka_unit_test(test_feedback_limits),
        cmocka_unit_test(test_feedback_fuzz),
        cmocka_unit_test(test_confirm_ok),
        cmocka_unit_test(test_confirm_retry_fault),
        cmocka_unit_test(test_confirm_new_command),
        cmocka_unit_test(test_confirm_manual),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
