/* bal_series: measured time series (PV production, site load) read from CSV files for the replay.
 * Parsing is pure and forgiving: empty values become gaps, rows whose clock runs backwards are
 * dropped and counted, and values are interpolated only between neighbouring known samples. */
#ifndef BAL_SERIES_H
#define BAL_SERIES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BAL_SERIES_DAY_MIN 1440

/* The rows of one label date (the date written in the rows), as they follow each other in the file. */
struct bal_series_day {
    int32_t day;               /* civil date written in the rows: days since 1970-01-01 */
    size_t first, count;       /* sample indices [first, first + count) */
    size_t known;              /* of those, samples with a value */
};

struct bal_series {
    size_t n;                  /* samples kept, strictly increasing in t_ms */
    int64_t *t_ms;             /* unix ms */
    double *value;             /* NAN: empty or unreadable in the file (a gap) */
    int32_t *label_day;        /* the date written in the row (days since 1970-01-01) ... */
    int16_t *label_min;        /* ... and its wall-clock minute 0..1439, whatever the offset */
    struct bal_series_day *days;
    size_t ndays;
    int step_s;                /* the usual spacing of rows (most frequent difference); 0 if < 2 samples */
    size_t rows;               /* data rows in the file (header and blank lines not counted) */
    size_t empty;              /* kept rows without a readable value */
    size_t bad;                /* rows with an unreadable time (dropped) or value (kept as empty) */
    size_t clock_faults;       /* rows dropped because their time was not after the rows before them */
    size_t missing;            /* rows absent where the spacing is over 1.5 steps (in steps) */
    char column[64];           /* header name of the value column, "" without a header */
};

/* Parses CSV text (len bytes, need not be terminated): an optional header, then rows
 * "TIME,VALUE[,...]". TIME is ISO 8601 "YYYY-MM-DD HH:MM[:SS]" (or 'T') with an offset (Z, +HH:MM,
 * +HHMM); without an offset it is local time in the process's TZ (a repeated hour then shows as
 * a clock fault). A row whose time is not after the last kept row's, or a lone row out of line
 * with both neighbours, is a clock fault and dropped. name prefixes error messages.
 * Returns a series (free with bal_series_free), or NULL with "NAME:LINE: message" or
 * "NAME: no rows with a readable time" in err. */
struct bal_series *bal_series_parse(const char *text, size_t len, const char *name, char *err, size_t errlen);
/* Reads the file whole and parses it (path is the name). NULL with "PATH: cannot read: REASON" or a
 * parse error. */
struct bal_series *bal_series_load(const char *path, char *err, size_t errlen);
/* NULL is a no-op. */
void bal_series_free(struct bal_series *s);

/* The value at t_ms: a sample's own value at its time, else linear between the two samples around
 * t_ms when both are known and at most 1.5 steps apart. Returns true and sets *value, or false when
 * t_ms is in a gap or outside the series (*value = 0). */
bool bal_series_at(const struct bal_series *s, int64_t t_ms, double *value);

/* A label date's profile by wall-clock time (for pairing days of different places and years):
 * out_w[m] and known[m] for m = 0..1439 are the value at minute m + 0.5 of that date as written in
 * the file, linear between the samples around it (a repeated hour of a DST change is read once, a
 * skipped one is bridged). Returns the number of known minutes (0 when the date is not in the file). */
size_t bal_series_wall_day(const struct bal_series *s, int32_t label_day, double *out_w, bool *known);

/* The file's date to pair with civil date `day` of another place or year: among the dates that are
 * nearly complete (known samples for at least 20 h), the one with the same weekday and the nearest
 * day of the year (circular), ties to the nearest date. Returns it, or INT32_MIN when there is none. */
int32_t bal_series_pair_day(const struct bal_series *s, int32_t day);

/* The site-local civil date (days since 1970, in the process TZ) of t_ms and, if minute is not NULL,
 * its local minute of the day 0..1439. */
int32_t bal_series_local_day(int64_t t_ms, int *minute);

/* A series read by site-local time of day on paired dates (how a load profile of another place and
 * year drives a site: the replay's and the simulator's base load). Keeps the paired date's profile of
 * the last date asked; one per thread (zero-initialise, then set s). */
struct bal_series_paired {
    const struct bal_series *s;
    int32_t day;               /* the local date cached (INT32_MIN or 0 before the first call) */
    bool valid;
    double w[BAL_SERIES_DAY_MIN];
    bool known[BAL_SERIES_DAY_MIN];
};
/* The value at the local minute of t_ms on the date paired with t_ms's local date
 * (bal_series_pair_day, bal_series_wall_day). Returns true and sets *value, or false when that
 * minute is unknown or no date pairs (*value = 0). Pure but for TZ. */
bool bal_series_paired_at(struct bal_series_paired *p, int64_t t_ms, double *value);

/* Civil date helpers (proleptic Gregorian, days since 1970-01-01; weekday 0 = Monday). */
int32_t bal_series_civil_day(int y, int m, int d);
void bal_series_civil_date(int32_t day, int *y, int *m, int *d);
int bal_series_civil_weekday(int32_t day);
/* "YYYY-MM-DD" into buf (at least 11 bytes). Returns buf. */
char *bal_series_date_str(int32_t day, char *buf, size_t len);

#endif
