/* sim_series: a measured time series (PV power, site load) from a CSV file, read back by linear
 * interpolation at any instant, so the simulator's devices can replay real data on any clock.
 * Pure after loading: the same instant always gives the same value. */
#ifndef SIM_SERIES_H
#define SIM_SERIES_H
#include <stddef.h>
#include <stdint.h>

struct sim_series;

/* Parses CSV text: one header line, then rows "ISO 8601 time with offset,value" (further
 * columns are ignored, rows with an empty value are gaps that interpolation bridges). Times must
 * increase strictly. name is used in error messages ("NAME:LINE: message").
 * Returns a new series owned by the caller (sim_series_free), or NULL with a message in err. */
struct sim_series *sim_series_parse(const char *text, size_t len, const char *name, char *err,
                                    size_t errlen);

/* Reads and parses the CSV file at path (at most 64 MiB). Returns NULL with a message in err
 * when the file can't be read or parsed. */
struct sim_series *sim_series_load(const char *path, char *err, size_t errlen);

/* Frees s; NULL is a no-op. */
void sim_series_free(struct sim_series *s);

/* The value at t_ms (unix ms): linear interpolation between the two rows around t_ms. An
 * instant outside the file's range maps onto the same time of day (in the UTC offset of the
 * file's first row) of the file's day that has the same calendar-day offset from the file's
 * first day, modulo the file's span in whole days; instants that still fall outside the rows
 * (a partial first or last day) take the nearest row's value. Values are not clamped. */
double sim_series_at(const struct sim_series *s, int64_t t_ms);

/* Number of data rows (>= 1), and the largest and smallest value of all rows. */
size_t sim_series_count(const struct sim_series *s);
double sim_series_max(const struct sim_series *s);
double sim_series_min(const struct sim_series *s);

#endif
