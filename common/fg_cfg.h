/* fg_cfg: the config reader every daemon shares: parses a JSON file (syntax errors as
 * FILE:LINE:COL), checks keys and typed values against ranges, and collects every error as one
 * line "FILE: path: message" so that a user sees all mistakes of a file at once. Never prints. */
#ifndef FG_CFG_H
#define FG_CFG_H
#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#define FG_CFG_PATH_MAX 256
#define FG_CFG_ID_MAX 32                       /* bytes of an id, without the terminator */
#define FG_CFG_ID_PATTERN "[a-z0-9][a-z0-9_-]{0,31}"

/* Error collector for one file: its name, the messages, the ids claimed so far. */
struct fg_cfg;

/* file is copied; it prefixes every message. Never returns NULL (aborts on OOM). */
struct fg_cfg *fg_cfg_new(const char *file);
/* NULL is a no-op. */
void fg_cfg_free(struct fg_cfg *c);
const char *fg_cfg_file(const struct fg_cfg *c);

/* Reads and parses the file. Returns the document (caller frees it with cJSON_Delete), or NULL
 * after recording "FILE:LINE:COL: syntax error: HINT" (an empty file, trailing text, and
 * anything RFC 8259 forbids are syntax errors) or "FILE: cannot read: REASON". */
cJSON *fg_cfg_parse_file(struct fg_cfg *c);
/* The same for text already in memory (len bytes; need not be terminated). Pure. */
cJSON *fg_cfg_parse_text(struct fg_cfg *c, const char *text, size_t len);

/* Records "FILE: PATH: message" ("FILE: message" when path is NULL or ""). at is the JSON item
 * the error concerns (NULL: none); fg_cfg_sort uses it to put errors in document order. */
void fg_cfg_errorf(struct fg_cfg *c, const cJSON *at, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Appends every message of src (whatever its file) to dst, as if they concerned item at. */
void fg_cfg_merge(struct fg_cfg *dst, const struct fg_cfg *src, const cJSON *at);
/* Stable-sorts the messages by the document position (preorder in root) of their items; a
 * message without an item (or one outside root) stays right after the message before it. */
void fg_cfg_sort(struct fg_cfg *c, const cJSON *root);
int fg_cfg_nerrors(const struct fg_cfg *c);
/* All messages, "\n"-joined, without a final newline ("" when none). Owned by c, valid until
 * the next call that records an error or sorts. */
const char *fg_cfg_errors(const struct fg_cfg *c);

/* Builds "base[index].key" into buf (index < 0: no "[index]"; key NULL: no ".key"; base NULL or
 * "": "key" alone). Truncates safely. Returns buf. */
char *fg_cfg_path(char *buf, size_t len, const char *base, long index, const char *key);

/* Checks one member of an object (item->string is its key): a key seen earlier in the same
 * object gives "duplicate key", a key not in known (NULL-terminated) gives "unknown key" with
 * the nearest known key suggested. Returns 0 if fine, -1 if an error was recorded. */
int fg_cfg_check_key(struct fg_cfg *c, const cJSON *obj, const cJSON *item, const char *path,
                     const char *const *known);
/* fg_cfg_check_key for every member of obj, in document order. Returns the number of errors. */
int fg_cfg_known_keys(struct fg_cfg *c, const cJSON *obj, const char *path, const char *const *known);

/* Typed getters. obj is the object at path; key is looked up case-sensitively, and JSON null
 * counts as absent. Each returns 0 if the key is present and valid (*out set), 1 if absent and
 * not required (*out = def), -1 after recording an error (*out = def). Messages:
 *   missing (required)
 *   must be an integer 1..247, got 300 | got 1.5 | got a string
 *   must be one of 1200, 2400, got 300
 *   must be a number -90..90, got 91
 *   must be true or false, got a string
 *   must be a string of 1..63 bytes, got a number | got a string of 70 bytes | got ""
 *   must be one of "tcp", "rtu", got "udp"
 *   must match [a-z0-9][a-z0-9_-]{0,31}, got "Inv 1" */
int fg_cfg_int(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, bool required,
               long min, long max, long def, long *out);
int fg_cfg_int_oneof(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key,
                     bool required, const long *allowed, size_t nallowed, long def, long *out);
int fg_cfg_num(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, bool required,
               double min, double max, double def, double *out);
int fg_cfg_bool(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, bool required,
                bool def, bool *out);
/* *out points into obj (valid while the document lives) or is def. Strings are 1..maxlen bytes. */
int fg_cfg_str(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, bool required,
               size_t maxlen, const char *def, const char **out);
/* fg_cfg_str copied into dst (maxlen = dstlen - 1); def NULL gives "". */
int fg_cfg_strbuf(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key,
                  bool required, const char *def, char *dst, size_t dstlen);
/* *out = index of the value in allowed (NULL-terminated). */
int fg_cfg_enum(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, bool required,
                const char *const *allowed, int def, int *out);
/* An id (FG_CFG_ID_PATTERN) copied into dst (dstlen > FG_CFG_ID_MAX). With ns non-NULL the id is
 * also claimed in namespace ns: a second claim records
 * "duplicate id "inv1" (first at devices[0].id)" and returns -1 (dst is still set). */
int fg_cfg_id(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, bool required,
              const char *ns, char *dst, size_t dstlen);
bool fg_cfg_is_id(const char *s);
/* obj[key] must be of cJSON type (cJSON_Array or cJSON_Object): "must be an array, got a string".
 * *out is the item or NULL. Same returns as the getters. */
int fg_cfg_container(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key,
                     bool required, int type, const cJSON **out);

/* For a key that is present but meaningless here (its type, table or mode differs): records
 * "path.key: only for WHAT" (e.g. "only for type rtu"). Returns 0 if the key is absent, else -1. */
int fg_cfg_only_for(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, const char *what);

/* Writes how a value reads after "got": a number or a quoted, escaped, shortened string (value),
 * or its kind: "a string", "a number", "a boolean", "null", "an object", "an array" (kind).
 * Return buf. */
const char *fg_cfg_got_value(const cJSON *v, char *buf, size_t len);
const char *fg_cfg_got_kind(const cJSON *v);
/* The last item inside obj in document order: where a missing key is reported, so that it sorts
 * after the errors of the members that are there. */
const cJSON *fg_cfg_last_leaf(const cJSON *obj);

/* A path from the config resolved against the config file's directory (absolute paths stay).
 * Returns 0, or -ENAMETOOLONG (buf then holds a truncated path). */
int fg_cfg_resolve(const struct fg_cfg *c, const char *rel, char *buf, size_t len);
/* Checks that file (resolved as above into resolved, may be NULL) is a readable regular file;
 * records "path: cannot read FILE: REASON" otherwise. Returns 0 or -1. */
int fg_cfg_check_file(struct fg_cfg *c, const cJSON *at, const char *path, const char *file,
                      char *resolved, size_t rlen);
/* Reads a secret (password, token) from file (resolved as above). Refuses a file that group or
 * others may read ("path: FILE is readable by group or others (chmod 600 it)"), a file that
 * cannot be read ("path: cannot read FILE: REASON") and an empty one ("path: FILE is empty").
 * One trailing newline ("\n" or "\r\n") is stripped. Returns 0 with *out owned by the caller
 * (zero it before freeing), or -1 with *out = NULL after recording the error. */
int fg_cfg_read_secret(struct fg_cfg *c, const cJSON *at, const char *path, const char *file, char **out);

#endif
