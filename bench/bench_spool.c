/* bench_spool: throughput of the collector's durable spool (col_spool) with realistic device lines
 * of about 150 bytes: appends in transactions of 1000 lines (one fsync each), then draining with
 * peek + ack in the writer's batches of 5000. Bounded: at most 200 batches or about 10 s each way.
 * usage: bench_spool [DIR]  (default: a temp dir under $TMPDIR or /var/tmp, removed afterwards) */
#include "col_spool.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BATCH_LINES 1000
#define MAX_BATCHES 200
#define DRAIN_LINES 5000
#define TIME_LIMIT_S 10.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* One batch of device lines, as the encoder writes them; the timestamp makes each line unique. */
static void fill_batch(char (*buf)[200], const char **lines, size_t *lens, size_t batch)
{
    for (size_t i = 0; i < BATCH_LINES; i++) {
        int n = snprintf(buf[i], sizeof buf[i],
                         "device,site=hof3,device=inv%03zu,role=pv power_w=%zu.5,energy_wh=%zui,"
                         "voltage_v=230.1,frequency_hz=50.01 %zu\n",
                         i % 100, i * 7 % 9000, 1000000 + batch, 1700000000000 + batch * 1000 + i);
        lines[i] = buf[i];
        lens[i] = (size_t)n;
    }
}

static int bench_append(struct col_spool *s, size_t *lines_done, double *secs)
{
    static char buf[BATCH_LINES][200];
    static const char *lines[BATCH_LINES];
    static size_t lens[BATCH_LINES];
    char err[256];
    double t0 = now_s();
    size_t b;
    for (b = 0; b < MAX_BATCHES && now_s() - t0 < TIME_LIMIT_S; b++) {
        fill_batch(buf, lines, lens, b);
        if (col_spool_append(s, lines, lens, BATCH_LINES, err, sizeof err) != 0) {
            fprintf(stderr, "bench_spool: %s\n", err);
            return -1;
        }
    }
    *secs = now_s() - t0;
    *lines_done = b * BATCH_LINES;
    return 0;
}

static int bench_drain(struct col_spool *s, size_t *lines_done, double *secs)
{
    struct col_spool_batch b = { 0 };
    double t0 = now_s();
    int n;
    *lines_done = 0;
    while (now_s() - t0 < TIME_LIMIT_S && (n = col_spool_peek(s, DRAIN_LINES, 1 << 20, &b)) > 0) {
        if (col_spool_ack(s, b.ids[0], b.ids[n - 1]) != n) {
            fprintf(stderr, "bench_spool: ack failed\n");
            col_spool_batch_clear(&b);
            return -1;
        }
        *lines_done += (size_t)n;
    }
    *secs = now_s() - t0;
    col_spool_batch_clear(&b);
    return 0;
}

int main(int argc, char **argv)
{
    char tmpl[512], err[512];
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    snprintf(tmpl, sizeof tmpl, "%s/fg_bench_spool_XXXXXX", base);
    const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
    if (!dir) {
        perror("bench_spool: mkdtemp");
        return 1;
    }
    struct col_spool *s = col_spool_open(dir, (uint64_t)1 << 30, err, sizeof err);
    if (!s) {
        fprintf(stderr, "bench_spool: %s\n", err);
        return 1;
    }
    size_t appended = 0, drained = 0;
    double append_s = 0, drain_s = 0;
    int rc = bench_append(s, &appended, &append_s);
    if (rc == 0)
        rc = bench_drain(s, &drained, &drain_s);
    col_spool_close(s);
    if (argc <= 1)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc < 0)
        return 1;
    printf("spool: append %.0f lines/s in batches of %d, peek+ack %.0f lines/s\n",
           appended / append_s, BATCH_LINES, drained / drain_s);
    return 0;
}
