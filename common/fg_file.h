/* fg_file: reading a whole file into memory, once for every module that loads one (configs, secrets,
 * CSV series, price files). */
#ifndef FG_FILE_H
#define FG_FILE_H
#include <stddef.h>

/* Reads everything from fd into a new NUL-terminated buffer (*out, owned by the caller; *n excludes the
 * NUL). Returns 0, -EFBIG when there is more than max bytes, or another negative errno. */
int fg_file_read_fd(int fd, size_t max, char **out, size_t *n);
/* The same for the file at path (opened read-only and closed again). */
int fg_file_read(const char *path, size_t max, char **out, size_t *n);

#endif
