/* fg_mem: allocation wrappers that abort with a clear message on out-of-memory,
 * so that no caller checks malloc by hand (as chrony's memory.h does). */
#ifndef FG_MEM_H
#define FG_MEM_H
#include <stddef.h>

/* Never return NULL: on failure they print to stderr and abort(). fg_malloc(0) returns a unique pointer. */
void *fg_malloc(size_t n);
void *fg_calloc(size_t n, size_t size);
void *fg_realloc(void *p, size_t n);
char *fg_strdup(const char *s);
/* Copies at most n bytes of s and terminates the copy. */
char *fg_strndup(const char *s, size_t n);
/* Copies src into dst of size dstlen, always terminated; returns strlen(src) like strlcpy. */
size_t fg_strlcpy(char *dst, const char *src, size_t dstlen);

#endif
