/* fg_mqtt: the daemons' MQTT connection over libmosquitto: TLS with a CA file, username + password,
 * a retained status topic with last will, keepalive, reconnect with capped exponential backoff,
 * subscriptions restored after each reconnect, and a bounded outgoing queue whose overflow is counted. */
#ifndef FG_MQTT_H
#define FG_MQTT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fg_mqtt_opts {
    const char *host;
    int port;
    const char *client_id;     /* NULL: random */
    const char *username;      /* NULL: anonymous */
    const char *password;
    const char *ca_file;       /* non-NULL: TLS */
    const char *cert_file, *key_file;
    int keepalive_s;
    unsigned queue_max;        /* QoS 1 messages not yet acknowledged, at most */
    const char *status_topic;  /* retained "online" on every connect, "offline" as last will and at stop */
    unsigned reconnect_min_s, reconnect_max_s; /* backoff, e.g. 1 and 30 */
};

struct fg_mqtt_stats {
    uint64_t published;   /* accepted for sending */
    uint64_t acked;       /* QoS 1 acknowledged by the broker */
    uint64_t dropped;     /* refused because the queue was full */
    uint64_t connects, disconnects, received;
    unsigned pending;     /* accepted, not yet acknowledged */
    int last_refusal;     /* the broker's last CONNACK refusal code (5: not authorised), 0 after a success */
    uint64_t refusals;    /* connects the broker refused */
};
/* Text for a CONNACK refusal code ("not authorised", "bad user name or password", ...). */
const char *fg_mqtt_refusal_str(int code);

/* Called on the network thread for each message that matches a subscription. The pointers are valid
 * only during the call. */
typedef void (*fg_mqtt_msg_cb)(void *ud, const char *topic, const void *payload, size_t len);

struct fg_mqtt;
/* Returns NULL with a message in err (bad options, TLS files unreadable). Does not connect.
 * The options' strings are copied. */
struct fg_mqtt *fg_mqtt_new(const struct fg_mqtt_opts *o, fg_mqtt_msg_cb cb, void *ud, char *err, size_t errlen);
/* Connects in the background and keeps reconnecting; returns 0 or a negative code with err. */
int fg_mqtt_start(struct fg_mqtt *m, char *err, size_t errlen);
/* Queues a message (thread-safe). Returns 0, -ENOBUFS when the queue is full (counted in dropped),
 * or another negative code. */
int fg_mqtt_publish(struct fg_mqtt *m, const char *topic, const void *payload, size_t len, int qos, bool retain);
/* Adds a subscription; it is (re)made on every connect. Returns 0 or negative. */
int fg_mqtt_subscribe(struct fg_mqtt *m, const char *pattern, int qos);
bool fg_mqtt_connected(struct fg_mqtt *m);
void fg_mqtt_stats(struct fg_mqtt *m, struct fg_mqtt_stats *out);
/* Waits up to timeout_ms (real) until nothing is pending. Returns true if drained. */
bool fg_mqtt_drain(struct fg_mqtt *m, unsigned timeout_ms);
/* Publishes "offline" on the status topic, waits up to timeout_ms for pending messages, disconnects
 * and stops the network thread. */
void fg_mqtt_stop(struct fg_mqtt *m, unsigned timeout_ms);
void fg_mqtt_free(struct fg_mqtt *m);   /* NULL ok; stops first if running */
/* Library init/cleanup, once per process. */
void fg_mqtt_lib_init(void);
void fg_mqtt_lib_cleanup(void);

#endif
