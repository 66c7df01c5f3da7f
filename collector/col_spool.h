/* col_spool: the collector's durable queue of line-protocol lines between reading and InfluxDB.
 * A line counts as written only once it is in the spool, and leaves it only when InfluxDB has
 * acknowledged (or rejected for good) it; the spool survives kill -9, power cuts and restarts. */
#ifndef COL_SPOOL_H
#define COL_SPOOL_H
#include <stddef.h>
#include <stdint.h>

/* Opaque; one SQLite database dir/spool.db (WAL, synchronous=FULL) behind one mutex, so append
 * may run in one thread while peek/ack run in another. */
struct col_spool;

/* Opens dir/spool.db, creating dir (and missing parents) with mode 0700 and the database if needed.
 * max_bytes caps the line text held (not the file size, which is larger by SQLite's page overhead);
 * any value >= 1 is allowed. If the spool on disk already holds more than max_bytes (the cap was
 * lowered), the oldest lines are dropped and counted in dropped.
 * A spool file that SQLite finds corrupt (or that is not a database) is renamed aside to
 * dir/spool.db.corrupt-<unix time> (its WAL to ...-wal), a new empty spool is created, and
 * col_spool_stats reports recovered_corrupt = 1: that is a success, not an error.
 * The database is locked exclusively while open: a second opener (another collector on the same
 * spool_dir) fails with "locked by another process".
 * SQLite is loaded at the first open (a process that never opens a spool never maps it); if it is missing
 * the message names the library and its Debian package.
 * Returns the spool (free with col_spool_close), or NULL with a message in err. */
struct col_spool *col_spool_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen);

/* Closes the database (checkpointing its WAL) and frees s. NULL is a no-op. */
void col_spool_close(struct col_spool *s);

/* Appends n lines in one transaction; they are durable (fsynced) when it returns 0. lines[i] has
 * lens[i] bytes (no terminator needed), must end in '\n' and contain no other '\n'; the spool
 * copies them. If the cap would be exceeded, the oldest lines are dropped in the same transaction
 * until bytes <= max_bytes: first those already stored, then the oldest of this batch (a batch
 * larger than the cap keeps its newest lines that fit), so the spool always holds the newest lines.
 * A single line longer than the whole cap can never be stored: it alone is dropped and evicts
 * nothing. Every dropped line is counted in dropped. n == 0 is a no-op.
 * Returns 0, or with a message in err and nothing appended or dropped:
 *   -EINVAL  a line is empty, does not end in '\n' or contains another '\n';
 *   -ENOSPC  the disk is full;  -EIO  an I/O error or a corrupt database;  -ENOMEM, -EBUSY. */
int col_spool_append(struct col_spool *s, const char *const *lines, const size_t *lens, size_t n,
                     char *err, size_t errlen);

/* A copy of the oldest lines of the spool. Owned by the caller; zero-initialise it before its first
 * use ({0}); col_spool_peek and col_spool_batch_clear free what it held before. */
struct col_spool_batch {
    size_t n;      /* lines */
    int64_t *ids;  /* n ids, ascending (ids are never reused, even after a restart) */
    size_t *off;   /* n+1 offsets into body: line i is body[off[i]..off[i+1]) */
    char *body;    /* the lines concatenated (each ends in '\n'), off[n] bytes, not terminated */
};

/* Fills b with the oldest lines: at most max_lines, and at most max_bytes of text unless the first
 * line alone is larger (then b holds that one line). Does not remove them: see col_spool_ack.
 * Returns n (b->n), 0 if the spool is empty, -EINVAL if max_lines is 0, or -EIO / -ENOMEM
 * (b is then empty). */
int col_spool_peek(struct col_spool *s, size_t max_lines, size_t max_bytes,
                   struct col_spool_batch *b);

/* Frees what b holds and sets it empty; b may then be reused. */
void col_spool_batch_clear(struct col_spool_batch *b);

/* Deletes the lines with first_id <= id <= last_id (InfluxDB acknowledged them, or rejected them
 * for good). Ids already gone (dropped for the cap) are skipped, so acking a sub-range of a peeked
 * batch, or a batch partly dropped meanwhile, is fine. Returns the number of lines deleted (>= 0),
 * or -EINVAL if first_id > last_id, -EIO / -ENOSPC / -ENOMEM. */
int col_spool_ack(struct col_spool *s, int64_t first_id, int64_t last_id);

/* The lines of the last peek are no longer in flight (the request failed): the cap may evict them again,
 * oldest first. (While a request is in flight, at most 15 s, the cap evicts other lines first, so that no
 * line is both counted as dropped and stored by a request that then succeeds.) */
void col_spool_release(struct col_spool *s);

struct col_spool_stats {
    uint64_t points, bytes;     /* lines and bytes of text in the spool now */
    uint64_t found_at_open;     /* lines the previous run left (before any drop for a lower cap) */
    uint64_t dropped;           /* since open: lines dropped for the cap (at open, or by append) */
    uint64_t appended;          /* since open: lines passed to successful appends, dropped or not */
    uint64_t acked;             /* since open: lines deleted by col_spool_ack */
    int recovered_corrupt;      /* 1 if open found a corrupt spool and set it aside */
};
/* Copies the counters (kept in memory, O(1)). Invariant:
 * points == found_at_open + appended - dropped - acked. */
void col_spool_stats(struct col_spool *s, struct col_spool_stats *out);

#endif
