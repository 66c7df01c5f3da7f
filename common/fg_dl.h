/* fg_dl: loads an optional shared library (libcurl, SQLite, zlib) at run time and fills a table of its
 * functions, so that a process loads it only when its config needs it (the collector without an
 * "influx" section never maps libcurl and the 25 libraries libcurl pulls in). */
#ifndef FG_DL_H
#define FG_DL_H
#include <pthread.h>
#include <stddef.h>

/* One function: its name in the library and the offset of its pointer in the caller's table. */
struct fg_dl_sym {
    const char *name;
    size_t off;
};
/* FG_DL_SYM(struct t, member, "name"): the member must be a function pointer. */
#define FG_DL_SYM(type, member, name) { name, offsetof(type, member) }

/* A library and the table it fills; define it static with FG_DL_LIB and pass it to fg_dl_load. */
struct fg_dl_lib {
    const char *soname;  /* "libcurl.so.4": the ABI name, which the runtime package ships */
    const char *package; /* the Debian package that ships it, for the error message */
    const struct fg_dl_sym *syms;
    size_t nsyms;
    void *table;         /* nsyms function pointers are written into it */
    pthread_mutex_t lock;
    int loaded;          /* under lock: 1 once every symbol is in the table */
};
#define FG_DL_LIB(soname, package, syms, table) \
    { soname, package, syms, sizeof(syms) / sizeof((syms)[0]), table, PTHREAD_MUTEX_INITIALIZER, 0 }

/* Loads lib->soname (once per process; later calls return 0 at once) and fills lib->table. The library
 * stays loaded until exit. Thread-safe. Returns 0, or -ENOENT with a message in err naming the library,
 * the package and dlerror's reason when the library or one of its functions is missing (the table is then
 * left unusable and a later call tries again). */
int fg_dl_load(struct fg_dl_lib *lib, char *err, size_t errlen);

#endif
