/* baseline: the minimal poller that the collector is measured against — one libmodbus connection
 * per inverter, one blocking request after another, one JSON message per reading over libmosquitto,
 * sleeping to the next whole period. It reads and decodes exactly what the collector reads for a
 * SunSpec inverter with models 1+103+160 (one request of 100 registers at 40072).
 * usage: baseline HOST FIRST_PORT N POLL_MS SECONDS MQTT_PORT; prints CPU and reading counts as JSON. */
#include "col_decode.h"
#include "col_publish.h"
#include "bench_sunspec.h"

#include <errno.h>
#include <modbus.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The points the collector reads every poll (model 1 is read once per connection). */
static int dyn_points(struct col_point *pts, size_t cap)
{
    int n = bench_sunspec_points(pts, cap), k = 0;
    for (int i = 0; i < n; i++)
        if (!pts[i].static_value)
            pts[k++] = pts[i];
    return k;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static size_t poll_one(modbus_t *ctx, struct mosquitto *mq, const struct col_point *pts, int npts,
                       int i, struct col_field *f)
{
    uint16_t regs[100];
    char json[8192], topic[64];
    if (modbus_read_registers(ctx, 40072, 100, regs) != 100)
        return 0;
    size_t n = 0;
    for (int k = 0; k < npts; k++)
        if (col_decode(&pts[k], 40072, regs, 100, &f[n].v) == COL_DECODE_OK)
            f[n++].name = pts[k].name;
    int len = col_json_reading(json, sizeof json, (int64_t)time(NULL) * 1000, f, n);
    snprintf(topic, sizeof topic, "baseline/device/inv%d/state", i);
    mosquitto_publish(mq, NULL, topic, len, json, 1, true);
    return 1;
}

static int arg_int(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > 1000000) {
        fprintf(stderr, "baseline: bad number %s\n", s);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: baseline HOST FIRST_PORT N POLL_MS SECONDS MQTT_PORT\n");
        return 2;
    }
    int port0 = arg_int(argv[2]), n = arg_int(argv[3]), poll_ms = arg_int(argv[4]), secs = arg_int(argv[5]);
    static struct col_point pts[COL_SS_MAX_POINTS];
    int npts = dyn_points(pts, COL_SS_MAX_POINTS);
    struct col_field *f = calloc((size_t)npts, sizeof *f);
    modbus_t **ctx = calloc((size_t)n, sizeof *ctx);
    for (int i = 0; i < n; i++) {
        ctx[i] = modbus_new_tcp(argv[1], port0 + i);
        modbus_set_slave(ctx[i], 1);
        if (modbus_connect(ctx[i]) != 0)
            fprintf(stderr, "baseline: connect %d: %s\n", port0 + i, modbus_strerror(errno));
    }
    mosquitto_lib_init();
    struct mosquitto *mq = mosquitto_new(NULL, true, NULL);
    mosquitto_connect(mq, "127.0.0.1", arg_int(argv[6]), 30);
    mosquitto_loop_start(mq);
    double cpu0 = cpu_s();
    uint64_t readings = 0, polls = 0;
    int64_t start = now_ns(), next = start;
    while (next - start < (int64_t)secs * 1000000000LL) {
        for (int i = 0; i < n; i++, polls++)
            readings += poll_one(ctx[i], mq, pts, npts, i, f);
        next += (int64_t)poll_ms * 1000000LL;
        struct timespec ts = { next / 1000000000LL, next % 1000000000LL };
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    double cpu = cpu_s() - cpu0;
    printf("{\"readings\":%llu,\"polls\":%llu,\"cpu_s\":%.3f}\n", (unsigned long long)readings,
           (unsigned long long)polls, cpu);
    mosquitto_disconnect(mq);
    mosquitto_loop_stop(mq, false);
    mosquitto_destroy(mq);
    mosquitto_lib_cleanup();
    for (int i = 0; i < n; i++)
        modbus_free(ctx[i]);
    free(ctx);
    free(f);
    return 0;
}
