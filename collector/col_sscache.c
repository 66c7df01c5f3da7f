/* col_sscache: a small reference-counted list of SunSpec point tables keyed by the model map
 * (base, and each model's id, address and length), guarded by one mutex. */
#include "col_sscache.h"
#include "fg_mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *next;
    struct col_ss_map key;
    struct col_point *pts;
    size_t n;
    unsigned refs;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *cache;

static bool same_map(const struct col_ss_map *a, const struct col_ss_map *b)
{
    if (a->base != b->base || a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (a->models[i].id != b->models[i].id || a->models[i].address != b->models[i].address ||
            a->models[i].length != b->models[i].length)
            return false;
    return true;
}

static struct entry *build(const struct col_ss_map *m, int *rc)
{
    struct col_point *tmp = fg_malloc(COL_SS_MAX_POINTS * sizeof *tmp);
    int n = col_sunspec_points(m, tmp, COL_SS_MAX_POINTS);
    if (n < 0) {
        free(tmp);
        *rc = n;
        return NULL;
    }
    struct entry *e = fg_calloc(1, sizeof *e);
    e->key = *m;
    e->n = (size_t)n;
    e->pts = fg_malloc((size_t)(n ? n : 1) * sizeof *e->pts);
    memcpy(e->pts, tmp, (size_t)n * sizeof *tmp);
    free(tmp);
    return e;
}

const struct col_point *col_sscache_get(const struct col_ss_map *m, size_t *n, int *rc)
{
    pthread_mutex_lock(&cache_lock);
    struct entry *e = cache;
    while (e && !same_map(&e->key, m))
        e = e->next;
    if (!e && (e = build(m, rc)) != NULL) {
        e->next = cache;
        cache = e;
    }
    if (e) {
        e->refs++;
        *n = e->n;
        *rc = 0;
    }
    pthread_mutex_unlock(&cache_lock);
    return e ? e->pts : NULL;
}

void col_sscache_put(const struct col_point *pts)
{
    if (!pts)
        return;
    pthread_mutex_lock(&cache_lock);
    for (struct entry **pp = &cache; *pp; pp = &(*pp)->next) {
        struct entry *e = *pp;
        if (e->pts != pts)
            continue;
        if (--e->refs == 0) {
            *pp = e->next;
            free(e->pts);
            free(e);
        }
        break;
    }
    pthread_mutex_unlock(&cache_lock);
}
