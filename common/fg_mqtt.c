/* fg_mqtt: libmosquitto in threaded mode (mosquitto_loop_start), publishing from any thread.
 * Counting pending QoS 1 messages ourselves bounds memory while the broker is away. */
#include "fg_mqtt.h"
#include "fg_mem.h"

#include <errno.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FG_MQTT_MAX_SUBS 32

struct fg_mqtt {
    struct mosquitto *mosq;
    char *host, *status_topic;
    int port, keepalive_s;
    unsigned queue_max;
    fg_mqtt_msg_cb cb;
    void *ud;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool connected, started, stopped;
    struct fg_mqtt_stats st;
    char *subs[FG_MQTT_MAX_SUBS];
    int sub_qos[FG_MQTT_MAX_SUBS];
    int nsubs;
};

const char *fg_mqtt_refusal_str(int code)
{
    return mosquitto_connack_string(code);
}

void fg_mqtt_lib_init(void)
{
    mosquitto_lib_init();
}

void fg_mqtt_lib_cleanup(void)
{
    mosquitto_lib_cleanup();
}

static void on_connect(struct mosquitto *mosq, void *ud, int rc)
{
    struct fg_mqtt *m = ud;
    pthread_mutex_lock(&m->lock);
    if (rc != 0) {
        m->st.last_refusal = rc;
        m->st.refusals++;
        pthread_mutex_unlock(&m->lock);
        return;
    }
    m->st.last_refusal = 0;
    m->connected = true;
    m->st.connects++;
    for (int i = 0; i < m->nsubs; i++)
        mosquitto_subscribe(mosq, NULL, m->subs[i], m->sub_qos[i]);
    pthread_mutex_unlock(&m->lock);
    if (m->status_topic)
        mosquitto_publish(mosq, NULL, m->status_topic, 6, "online", 1, true);
}

static void on_disconnect(struct mosquitto *mosq, void *ud, int rc)
{
    struct fg_mqtt *m = ud;
    (void)mosq;
    (void)rc;
    pthread_mutex_lock(&m->lock);
    if (m->connected)
        m->st.disconnects++;
    m->connected = false;
    pthread_mutex_unlock(&m->lock);
}

static void on_publish(struct mosquitto *mosq, void *ud, int mid)
{
    struct fg_mqtt *m = ud;
    (void)mosq;
    (void)mid;
    pthread_mutex_lock(&m->lock);
    m->st.acked++;
    if (m->st.pending)
        m->st.pending--;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static void on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *msg)
{
    struct fg_mqtt *m = ud;
    (void)mosq;
    pthread_mutex_lock(&m->lock);
    m->st.received++;
    pthread_mutex_unlock(&m->lock);
    if (m->cb)
        m->cb(m->ud, msg->topic, msg->payload, (size_t)msg->payloadlen);
}

static int configure(struct fg_mqtt *m, const struct fg_mqtt_opts *o, char *err, size_t errlen)
{
    int rc = MOSQ_ERR_SUCCESS;
    if (o->username)
        rc = mosquitto_username_pw_set(m->mosq, o->username, o->password);
    if (rc == MOSQ_ERR_SUCCESS && o->ca_file)
        rc = mosquitto_tls_set(m->mosq, o->ca_file, NULL, o->cert_file, o->key_file, NULL);
    if (rc == MOSQ_ERR_SUCCESS && o->status_topic)
        rc = mosquitto_will_set(m->mosq, o->status_topic, 7, "offline", 1, true);
    if (rc != MOSQ_ERR_SUCCESS) {
        snprintf(err, errlen, "mqtt: %s", mosquitto_strerror(rc));
        return -EINVAL;
    }
    mosquitto_reconnect_delay_set(m->mosq, o->reconnect_min_s ? o->reconnect_min_s : 1,
                                  o->reconnect_max_s ? o->reconnect_max_s : 30, true);
    mosquitto_connect_callback_set(m->mosq, on_connect);
    mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
    mosquitto_publish_callback_set(m->mosq, on_publish);
    mosquitto_message_callback_set(m->mosq, on_message);
    return 0;
}

struct fg_mqtt *fg_mqtt_new(const struct fg_mqtt_opts *o, fg_mqtt_msg_cb cb, void *ud, char *err, size_t errlen)
{
    struct fg_mqtt *m = fg_calloc(1, sizeof *m);
    m->host = fg_strdup(o->host ? o->host : "127.0.0.1");
    m->port = o->port ? o->port : 1883;
    m->keepalive_s = o->keepalive_s ? o->keepalive_s : 10;
    m->queue_max = o->queue_max ? o->queue_max : 10000;
    m->status_topic = o->status_topic ? fg_strdup(o->status_topic) : NULL;
    m->cb = cb;
    m->ud = ud;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    m->mosq = mosquitto_new(o->client_id, true, m);
    if (!m->mosq) {
        snprintf(err, errlen, "mqtt: cannot create client: %s", strerror(errno));
        fg_mqtt_free(m);
        return NULL;
    }
    if (configure(m, o, err, errlen)) {
        fg_mqtt_free(m);
        return NULL;
    }
    return m;
}

int fg_mqtt_start(struct fg_mqtt *m, char *err, size_t errlen)
{
    /* A refused first connect is not fatal: the loop thread keeps retrying with backoff. */
    int rc = mosquitto_connect_async(m->mosq, m->host, m->port, m->keepalive_s);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_ERRNO) {
        snprintf(err, errlen, "mqtt: connect %s:%d: %s", m->host, m->port, mosquitto_strerror(rc));
        return -EINVAL;
    }
    rc = mosquitto_loop_start(m->mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        snprintf(err, errlen, "mqtt: cannot start network thread: %s", mosquitto_strerror(rc));
        return -EINVAL;
    }
    m->started = true;
    return 0;
}

int fg_mqtt_publish(struct fg_mqtt *m, const char *topic, const void *payload, size_t len, int qos, bool retain)
{
    pthread_mutex_lock(&m->lock);
    if (qos > 0 && m->st.pending >= m->queue_max) {
        m->st.dropped++;
        pthread_mutex_unlock(&m->lock);
        return -ENOBUFS;
    }
    if (qos > 0)
        m->st.pending++;
    m->st.published++;
    pthread_mutex_unlock(&m->lock);
    int rc = mosquitto_publish(m->mosq, NULL, topic, (int)len, payload, qos, retain);
    if (rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_NO_CONN)
        return 0; /* NO_CONN: queued by libmosquitto, sent after reconnect */
    pthread_mutex_lock(&m->lock);
    if (qos > 0)
        m->st.pending--;
    m->st.published--;
    m->st.dropped++;
    pthread_mutex_unlock(&m->lock);
    return rc == MOSQ_ERR_NOMEM ? -ENOMEM : -EINVAL;
}

int fg_mqtt_subscribe(struct fg_mqtt *m, const char *pattern, int qos)
{
    pthread_mutex_lock(&m->lock);
    if (m->nsubs == FG_MQTT_MAX_SUBS) {
        pthread_mutex_unlock(&m->lock);
        return -ENOSPC;
    }
    m->subs[m->nsubs] = fg_strdup(pattern);
    m->sub_qos[m->nsubs++] = qos;
    bool up = m->connected;
    pthread_mutex_unlock(&m->lock);
    if (up)
        mosquitto_subscribe(m->mosq, NULL, pattern, qos);
    return 0;
}

bool fg_mqtt_connected(struct fg_mqtt *m)
{
    pthread_mutex_lock(&m->lock);
    bool c = m->connected;
    pthread_mutex_unlock(&m->lock);
    return c;
}

void fg_mqtt_stats(struct fg_mqtt *m, struct fg_mqtt_stats *out)
{
    pthread_mutex_lock(&m->lock);
    *out = m->st;
    pthread_mutex_unlock(&m->lock);
}

bool fg_mqtt_drain(struct fg_mqtt *m, unsigned timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->lock);
    while (m->st.pending && m->connected)
        if (pthread_cond_timedwait(&m->cond, &m->lock, &ts) == ETIMEDOUT)
            break;
    bool drained = m->st.pending == 0;
    pthread_mutex_unlock(&m->lock);
    return drained;
}

void fg_mqtt_stop(struct fg_mqtt *m, unsigned timeout_ms)
{
    if (!m->started || m->stopped)
        return;
    if (m->status_topic)
        fg_mqtt_publish(m, m->status_topic, "offline", 7, 1, true);
    fg_mqtt_drain(m, timeout_ms);
    mosquitto_disconnect(m->mosq);
    mosquitto_loop_stop(m->mosq, false);
    m->stopped = true;
}

void fg_mqtt_free(struct fg_mqtt *m)
{
    if (!m)
        return;
    if (m->mosq) {
        if (m->started && !m->stopped)
            fg_mqtt_stop(m, 1000);
        mosquitto_destroy(m->mosq);
    }
    for (int i = 0; i < m->nsubs; i++)
        free(m->subs[i]);
    free(m->host);
    free(m->status_topic);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    free(m);
}
