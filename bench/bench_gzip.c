/* bench_gzip: bytes on the wire per point, plain and gzipped, for the writer's full batch (5,000 lines)
 * of realistic device readings: 6 SunSpec inverters and 4 three-phase meters polled every second,
 * values quantised as their registers' scale factors make them, encoded with fg_lp and compressed by
 * col_writer_gzip exactly as the writer sends them. Prints figures, never pass/fail. */
#include "col_writer.h"
#include "fg_lp.h"
#include "fg_mem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEVICES 10
#define INVERTERS 6

/* A fixed pseudo-random sequence (LCG) so that every run measures the same bytes. */
static double noise(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (double)((*seed >> 8) & 0xffff) / 65536.0 - 0.5;
}

/* v with `decimals` decimals, as the decoder makes it: raw register / 10^n, which prints shortest */
static double quant(double v, int decimals)
{
    double p10 = decimals == 0 ? 1 : decimals == 1 ? 10 : decimals == 2 ? 100 : 1000;
    return round(v * p10) / p10;
}

/* One reading of device d at poll p; returns the line's length. */
static int device_line(char *buf, size_t len, int d, int p, unsigned *seed, double *energy_wh)
{
    char id[16];
    bool inv = d < INVERTERS;
    snprintf(id, sizeof id, inv ? "inv%d" : "meter%d", inv ? d + 1 : d - INVERTERS + 1);
    const char *role = inv ? "pv" : (d == INVERTERS ? "grid" : "load");
    struct fg_lp_tag tags[] = { { "site", "hof3" }, { "device", id }, { "role", role } };
    double sun = sin(M_PI * (p + 6000) / 43200.0); /* a slowly rising morning */
    double power_w = inv ? quant(5000 * sun + 40 * noise(seed), 0) : quant(1800 + 900 * noise(seed), 1);
    *energy_wh += fabs(power_w) / 3600.0;
    struct fg_lp_field f[] = {
        { "power_w", FG_LP_FLOAT, power_w, 0, NULL, false },
        { "energy_wh", FG_LP_FLOAT, quant(*energy_wh, 0), 0, NULL, false },
        { "voltage_l1_v", FG_LP_FLOAT, quant(230 + 3 * noise(seed), 1), 0, NULL, false },
        { "voltage_l2_v", FG_LP_FLOAT, quant(231 + 3 * noise(seed), 1), 0, NULL, false },
        { "voltage_l3_v", FG_LP_FLOAT, quant(229 + 3 * noise(seed), 1), 0, NULL, false },
        { "current_a", FG_LP_FLOAT, quant(fabs(power_w) / 690.0, 2), 0, NULL, false },
        { "frequency_hz", FG_LP_FLOAT, quant(50 + 0.04 * noise(seed), 2), 0, NULL, false },
        { "power_factor", FG_LP_FLOAT, quant(0.97 + 0.04 * noise(seed), 3), 0, NULL, false },
        { "temperature_c", FG_LP_FLOAT, quant(38 + 10 * sun + noise(seed), 1), 0, NULL, false },
    };
    size_t nf = inv ? 9 : 8; /* meters have no temperature */
    int64_t ts_ms = 1468587600000LL + (int64_t)p * 1000 + d * 7;
    return fg_lp_encode(buf, len, "device", tags, 3, f, nf, ts_ms);
}

/* Encodes `lines` lines into a fresh buffer (caller frees); *len gets its size. */
static char *batch(size_t lines, size_t *len)
{
    size_t cap = lines * 512, n = 0;
    char *buf = fg_malloc(cap);
    double energy_wh[DEVICES];
    unsigned seed = 42;
    for (int d = 0; d < DEVICES; d++)
        energy_wh[d] = 1002345 + 250000.0 * d;
    for (size_t i = 0; i < lines; i++) {
        int k = device_line(buf + n, cap - n, (int)(i % DEVICES), (int)(i / DEVICES), &seed, &energy_wh[i % DEVICES]);
        if (k <= 0) {
            fprintf(stderr, "bench_gzip: fg_lp_encode failed (%d)\n", k);
            free(buf);
            return NULL;
        }
        n += (size_t)k;
    }
    *len = n;
    return buf;
}

static int report(const char *what, size_t lines)
{
    size_t plain = 0, cap = 0;
    unsigned char *gz = NULL;
    char *text = batch(lines, &plain);
    long packed = text ? col_writer_gzip(text, plain, &gz, &cap) : -1;
    if (packed <= 0) {
        free(text);
        free(gz);
        return 1;
    }
    printf("%sbytes on the wire per point: %.1f plain, %.1f gzip (ratio %.1f)\n", what, (double)plain / lines,
           (double)packed / lines, (double)plain / packed);
    free(text);
    free(gz);
    return 0;
}

int main(void)
{
    /* the writer's full batch (an outage's backlog drains in these), then a steady-state one: 10 devices
     * at 1 s polls flushed every 5 s */
    if (report("", 5000) != 0)
        return 1;
    return report("(batch of 50 lines) ", 50);
}
