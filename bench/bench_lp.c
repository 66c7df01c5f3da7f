/* bench_lp: lines per second of the line protocol encoder (fg_lp via col_lines_device) for a
 * typical inverter reading, against a naive snprintf of the same line without any escaping or
 * round-trip float formatting (%.15g), measured in the same process.
 * usage: bench_lp [LINES] (default 2000000); prints one line (a figure, never pass/fail). */
#include "col_lines.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NFIELDS 8

static const char *const names[NFIELDS] = { "power_w", "energy_wh", "voltage_v", "current_a",
                                            "frequency_hz", "temperature_c", "power_factor", "dc_power_w" };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A reading that changes every line the way a real one does: fractional watts and volts,
 * an integral energy counter, a power factor below 1. */
static void reading(struct col_field *f, long i)
{
    const double v[NFIELDS] = { 3000 + (i % 1000) * 0.25, 12345678 + (double)i, 230 + (i % 50) * 0.1,
                                13.04 + (i % 7) * 0.01, 49.98 + (i % 5) * 0.01, 41.5, -0.95, 3100.75 };
    for (int k = 0; k < NFIELDS; k++) {
        f[k].name = names[k];
        f[k].v.kind = COL_VAL_NUMBER;
        f[k].v.number = v[k];
    }
}

static int naive(char *buf, size_t len, const struct col_field *f, int64_t ts_ms)
{
    return snprintf(buf, len, "device,device=%s,role=%s,site=%s %s=%.15g,%s=%.15g,%s=%.15g,%s=%.15g,%s=%.15g,"
                    "%s=%.15g,%s=%.15g,%s=%.15g %lld\n", "inv1", "pv", "hof3", f[0].name, f[0].v.number,
                    f[1].name, f[1].v.number, f[2].name, f[2].v.number, f[3].name, f[3].v.number, f[4].name,
                    f[4].v.number, f[5].name, f[5].v.number, f[6].name, f[6].v.number, f[7].name,
                    f[7].v.number, (long long)ts_ms);
}

int main(int argc, char **argv)
{
    long lines = 2000000;
    if (argc > 1) {
        char *end;
        errno = 0;
        lines = strtol(argv[1], &end, 10);
        if (errno || *end || lines < 1 || lines > 1000000000L) {
            fprintf(stderr, "usage: bench_lp [LINES 1..1000000000]\n");
            return 2;
        }
    }
    struct col_field f[NFIELDS];
    char buf[512];
    unsigned long long bytes = 0, naive_bytes = 0;
    const int64_t ts0_ms = 1468587600000LL;

    double t0 = now_s();
    for (long i = 0; i < lines; i++) {
        reading(f, i);
        int n = col_lines_device(buf, sizeof buf, "hof3", "inv1", "pv", ts0_ms + i, f, NFIELDS);
        if (n <= 0)
            return fprintf(stderr, "bench_lp: encoder returned %d\n", n), 1;
        bytes += (unsigned)n;
    }
    double t1 = now_s();
    for (long i = 0; i < lines; i++) {
        reading(f, i);
        naive_bytes += (unsigned)naive(buf, sizeof buf, f, ts0_ms + i);
    }
    double t2 = now_s();

    double enc_rate = lines / (t1 - t0), naive_rate = lines / (t2 - t1);
    printf("line protocol encoder: %.0f lines/s (%.1f bytes/line), baseline snprintf-only: %.0f lines/s, "
           "ratio %.2f\n", enc_rate, (double)bytes / lines, naive_rate, enc_rate / naive_rate);
    return naive_bytes > 0 ? 0 : 1;
}
