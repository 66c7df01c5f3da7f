/* fg_mem: one place that decides what out-of-memory means (abort with a message). */
#include "fg_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fg_oom(size_t n)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
    abort();
}

void *fg_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        fg_oom(n);
    return p;
}

void *fg_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        fg_oom(n * size);
    return p;
}

void *fg_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        fg_oom(n);
    return q;
}

char *fg_strdup(const char *s)
{
    return fg_strndup(s, strlen(s));
}

char *fg_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = fg_malloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

size_t fg_strlcpy(char *dst, const char *src, size_t dstlen)
{
    size_t len = strlen(src);
    if (dstlen) {
        size_t n = len < dstlen - 1 ? len : dstlen - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}
