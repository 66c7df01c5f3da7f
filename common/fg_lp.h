/* fg_lp: InfluxDB line protocol encoding (pure). Implements the full escaping rules, drops what
 * the protocol cannot carry (NaN, +-Inf, empty tag values, newlines), and never emits a line
 * without a field. Numbers are floats unless a field is declared an integer counter, so a field
 * keeps one type forever. */
#ifndef FG_LP_H
#define FG_LP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fg_lp_type { FG_LP_FLOAT, FG_LP_INT, FG_LP_STRING, FG_LP_BOOL };

struct fg_lp_tag {
    const char *key;
    const char *value;   /* NULL or "" : the tag is omitted */
};

struct fg_lp_field {
    const char *key;
    enum fg_lp_type type;
    double f;            /* FG_LP_FLOAT: written so that it parses back to the same double */
    int64_t i;           /* FG_LP_INT: written with the "i" suffix */
    const char *s;       /* FG_LP_STRING: quoted, '"' and '\' escaped */
    bool b;              /* FG_LP_BOOL */
};

/* Encodes one line, terminated by '\n', into buf: measurement, tags sorted by key, fields in the given
 * order, timestamp in ms. Returns the length written (excluding the terminating NUL), 0 if nothing is
 * left to write (no valid field, empty measurement), or -ENOSPC if buf is too small. Newlines and
 * carriage returns in any name or string are replaced by spaces.
 * Details: buf needs the length + 1 bytes; on 0 and -ENOSPC it holds "" (when len > 0), never a partial
 * line; a line longer than INT_MAX is -ENOSPC. Tags are sorted by the byte order of their written
 * keys (what InfluxDB checks); a key given twice is written once, with its first usable value. A tag
 * with a NULL or empty key or value is omitted; a field with a NULL or empty key, a NaN or +-Inf
 * float, or a NULL string is dropped. Line protocol has no escape for a backslash in names, so a
 * backslash that ends a name, or stands before a character the parser un-escapes there (measurement
 * and field keys: , = space "; tags: , = space), is dropped; other backslashes are kept. A
 * measurement starting with '#' (a comment to InfluxDB) gives 0. fields may be NULL when nfields is 0,
 * tags when ntags is 0. Nothing is kept after the call. */
int fg_lp_encode(char *buf, size_t len, const char *measurement, const struct fg_lp_tag *tags, size_t ntags,
                 const struct fg_lp_field *fields, size_t nfields, int64_t ts_ms);

#endif
