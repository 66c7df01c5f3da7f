/* col_wpolicy: what the InfluxDB writer does with an HTTP result (pure): acknowledge, count rejected
 * lines, split the batch, or keep the data and back off; and how long that back-off lasts.
 * No sockets, no clock, no logging: the caller passes the time and logs the decision. */
#ifndef COL_WPOLICY_H
#define COL_WPOLICY_H
#include <stddef.h>
#include <stdint.h>

enum col_wact {
    COL_W_ACK,          /* stored: remove the batch from the spool */
    COL_W_ACK_REJECTED, /* the good lines were stored, `rejected` were refused: remove the batch, never retry */
    COL_W_SPLIT,        /* too large (413): send the first half, then the rest */
    COL_W_RETRY,        /* transient (429, 5xx, transport): keep the data, back off exponentially */
    COL_W_AUTH,         /* refused by configuration (401/403/404, other 4xx): keep the data, back off, log loudly */
};

#define COL_WPOLICY_BACKOFF_FIRST_MS 1000
#define COL_WPOLICY_BACKOFF_CAP_MS 60000
#define COL_WPOLICY_RETRY_AFTER_CAP_MS 600000

struct col_wdecision {
    enum col_wact act;
    uint64_t rejected;      /* COL_W_ACK_REJECTED: lines refused (1..nlines) */
    int64_t retry_after_ms; /* the server's Retry-After as a wait in ms (capped at 600 s), -1 none */
    char first_bad[200];    /* COL_W_ACK_REJECTED: the first refused line as the server quoted it, or else the
                             * first line of the server's message; "" if the body said nothing */
};

/* Classifies one write attempt.
 * status: the HTTP status, 0 for a transport failure (timeout, refused, DNS...).
 * retry_after: the Retry-After header value (delta seconds or an HTTP date) or NULL.
 * body: the response body (terminated) or NULL; a JSON body's "error" (v1) or "message" (v2) is read.
 * nlines: the number of lines in the request (a 413 of a single line rejects it).
 * now_unix_ms: wall time, used only to turn an HTTP date into a wait.
 * Never fails; out is fully written. */
void col_wpolicy_classify(long status, const char *retry_after, const char *body, size_t nlines, int64_t now_unix_ms,
                          struct col_wdecision *out);

/* Parses a Retry-After value into a wait in ms, capped at 600 s (0 for a date in the past).
 * Returns -1 if the value is neither delta seconds nor an HTTP date (IMF-fixdate, RFC 850, asctime). */
int64_t col_wpolicy_retry_after_ms(const char *value, int64_t now_unix_ms);

/* The wait before the next attempt after `failures` consecutive failures: 0 for none, then 1 s, 2 s,
 * 4 s ... capped at 60 s. When retry_after_ms >= 0 (the server's Retry-After) that wins instead, capped at
 * 600 s and never below the first step (1 s), so "Retry-After: 0" cannot turn into a request loop. */
int64_t col_wpolicy_backoff_ms(unsigned failures, int64_t retry_after_ms);

#endif
