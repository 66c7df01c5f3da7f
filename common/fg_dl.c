/* fg_dl: dlopen + dlsym into a caller's table of function pointers, once per library. The pointers
 * are copied with memcpy: POSIX guarantees that dlsym's void * converts to a function pointer. */
#include "fg_dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int fail(const struct fg_dl_lib *lib, const char *what, char *err, size_t errlen)
{
    const char *why = dlerror();
    snprintf(err, errlen, "cannot load %s%s (install the Debian package %s): %s", lib->soname, what,
             lib->package, why ? why : "unknown error");
    return -ENOENT;
}

static int load_locked(struct fg_dl_lib *lib, char *err, size_t errlen)
{
    /* RTLD_LOCAL: the library's symbols serve only this table, never the process's own lookups */
    void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return fail(lib, "", err, errlen);
    for (size_t i = 0; i < lib->nsyms; i++) {
        dlerror();
        void *p = dlsym(h, lib->syms[i].name);
        if (!p) {
            char what[96];
            snprintf(what, sizeof what, " (function %s)", lib->syms[i].name);
            int rc = fail(lib, what, err, errlen);
            dlclose(h);
            return rc;
        }
        memcpy((char *)lib->table + lib->syms[i].off, &p, sizeof p);
    }
    lib->loaded = 1;
    return 0;
}

int fg_dl_load(struct fg_dl_lib *lib, char *err, size_t errlen)
{
    pthread_mutex_lock(&lib->lock);
    int rc = lib->loaded ? 0 : load_locked(lib, err, errlen);
    pthread_mutex_unlock(&lib->lock);
    return rc;
}
