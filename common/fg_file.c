/* fg_file: whole-file reads with a size limit; errors as negative errno, never printed. */
#include "fg_file.h"
#include "fg_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int fg_file_read_fd(int fd, size_t max, char **out, size_t *n)
{
    size_t cap = 4096, len = 0;
    char *buf = fg_malloc(cap + 1);
    for (;;) {
        ssize_t r;
        if (len == cap) {
            if (cap > max) {
                free(buf);
                return -EFBIG;
            }
            cap *= 2;
            buf = fg_realloc(buf, cap + 1);
        }
        r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return -e;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > max) {
        free(buf);
        return -EFBIG;
    }
    buf[len] = '\0';
    *out = buf;
    *n = len;
    return 0;
}

int fg_file_read(const char *path, size_t max, char **out, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fg_file_read_fd(fd, max, out, n);
    close(fd);
    return rc;
}
