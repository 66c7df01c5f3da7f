/* fg_cfg: JSON config reading with errors a user can act on: exact syntax positions (a small
 * strict scanner finds them, because cJSON's error pointer is often one token off), typed
 * getters with ranges, unknown-key suggestions, duplicate keys and ids, secret files. */
#include "fg_cfg.h"
#include "fg_file.h"

#include "fg_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE_BYTES (16u << 20)  /* a config is a few kB; refuse absurd files */
#define MAX_SECRET_BYTES 65536u
#define MAX_DEPTH 512               /* below cJSON's own nesting limit (1000) */
#define GOT_MAX 64

struct cfg_msg {
    char *text;
    const cJSON *at;
    long rank;
};

struct cfg_id {
    char *ns, *id, *path;
};

struct fg_cfg {
    char *file;
    struct cfg_msg *msgs;
    size_t nmsgs, capmsgs;
    struct cfg_id *ids;
    size_t nids, capids;
    char *joined;      /* all messages, kept current so that fg_cfg_errors can be const */
    size_t joined_len;
};

struct fg_cfg *fg_cfg_new(const char *file)
{
    struct fg_cfg *c = fg_calloc(1, sizeof *c);
    c->file = fg_strdup(file ? file : "");
    c->joined = fg_strdup("");
    return c;
}

void fg_cfg_free(struct fg_cfg *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nmsgs; i++)
        free(c->msgs[i].text);
    for (size_t i = 0; i < c->nids; i++) {
        free(c->ids[i].ns);
        free(c->ids[i].id);
        free(c->ids[i].path);
    }
    free(c->msgs);
    free(c->ids);
    free(c->joined);
    free(c->file);
    free(c);
}

const char *fg_cfg_file(const struct fg_cfg *c)
{
    return c->file;
}

int fg_cfg_nerrors(const struct fg_cfg *c)
{
    return (int)c->nmsgs;
}

const char *fg_cfg_errors(const struct fg_cfg *c)
{
    return c->joined;
}

static void join_append(struct fg_cfg *c, const char *text)
{
    size_t n = strlen(text), sep = c->joined_len ? 1 : 0;
    c->joined = fg_realloc(c->joined, c->joined_len + sep + n + 1);
    if (sep)
        c->joined[c->joined_len] = '\n';
    memcpy(c->joined + c->joined_len + sep, text, n + 1);
    c->joined_len += sep + n;
}

/* Takes ownership of text. */
static void add_msg(struct fg_cfg *c, char *text, const cJSON *at)
{
    if (c->nmsgs == c->capmsgs) {
        c->capmsgs = c->capmsgs ? 2 * c->capmsgs : 8;
        c->msgs = fg_realloc(c->msgs, c->capmsgs * sizeof *c->msgs);
    }
    c->msgs[c->nmsgs++] = (struct cfg_msg){ .text = text, .at = at, .rank = 0 };
    join_append(c, text);
}

void fg_cfg_errorf(struct fg_cfg *c, const cJSON *at, const char *path, const char *fmt, ...)
{
    char body[1024], *text;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (path && *path) {
        if (asprintf(&text, "%s: %s: %s", c->file, path, body) < 0)
            text = NULL;
    } else if (asprintf(&text, "%s: %s", c->file, body) < 0) {
        text = NULL;
    }
    if (!text)
        text = fg_strdup(body); /* asprintf fails only on OOM; fg_strdup then aborts cleanly */
    add_msg(c, text, at);
}

void fg_cfg_merge(struct fg_cfg *dst, const struct fg_cfg *src, const cJSON *at)
{
    for (size_t i = 0; i < src->nmsgs; i++)
        add_msg(dst, fg_strdup(src->msgs[i].text), at);
}

static long preorder_index(const cJSON *node, const cJSON *target, long *counter)
{
    long me = (*counter)++;
    if (node == target)
        return me;
    for (const cJSON *ch = node->child; ch; ch = ch->next) {
        long r = preorder_index(ch, target, counter);
        if (r >= 0)
            return r;
    }
    return -1;
}

void fg_cfg_sort(struct fg_cfg *c, const cJSON *root)
{
    long prev = 0;
    for (size_t i = 0; i < c->nmsgs; i++) {
        long counter = 0, r = -1;
        if (root && c->msgs[i].at)
            r = preorder_index(root, c->msgs[i].at, &counter);
        c->msgs[i].rank = prev = r >= 0 ? r : prev;
    }
    /* insertion sort: stable, and error lists are short */
    for (size_t i = 1; i < c->nmsgs; i++) {
        struct cfg_msg m = c->msgs[i];
        size_t j = i;
        for (; j > 0 && c->msgs[j - 1].rank > m.rank; j--)
            c->msgs[j] = c->msgs[j - 1];
        c->msgs[j] = m;
    }
    c->joined[0] = '\0';
    c->joined_len = 0;
    for (size_t i = 0; i < c->nmsgs; i++)
        join_append(c, c->msgs[i].text);
}

/* ---- syntax: a strict RFC 8259 scanner that only locates the first error ---- */

struct scan {
    const char *s;
    size_t len, pos, errpos;
    const char *hint;
    int depth;
};

static int scan_fail(struct scan *sc, size_t pos, const char *hint)
{
    sc->errpos = pos;
    sc->hint = hint;
    return -1;
}

static int scan_peek(const struct scan *sc)
{
    return sc->pos < sc->len ? (unsigned char)sc->s[sc->pos] : -1;
}

static void scan_ws(struct scan *sc)
{
    int ch;
    while ((ch = scan_peek(sc)) == ' ' || ch == '\t' || ch == '\n' || ch == '\r')
        sc->pos++;
}

static bool is_hex(int ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static bool is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static int scan_escape(struct scan *sc)
{
    size_t at = sc->pos;
    int ch;
    sc->pos++; /* the backslash */
    ch = scan_peek(sc);
    if (ch >= 0 && strchr("\"\\/bfnrt", ch)) {
        sc->pos++;
        return 0;
    }
    if (ch != 'u')
        return scan_fail(sc, at, "invalid escape in string");
    sc->pos++;
    for (int i = 0; i < 4; i++, sc->pos++)
        if (!is_hex(scan_peek(sc)))
            return scan_fail(sc, at, "invalid \\u escape in string");
    return 0;
}

static int scan_string(struct scan *sc)
{
    size_t start = sc->pos++;
    int ch;
    while ((ch = scan_peek(sc)) >= 0) {
        if (ch == '"') {
            sc->pos++;
            return 0;
        }
        if (ch == '\\') {
            if (scan_escape(sc) < 0)
                return -1;
            continue;
        }
        if (ch == '\n')
            return scan_fail(sc, start, "unterminated string");
        if (ch < 0x20)
            return scan_fail(sc, sc->pos, "control character in string");
        sc->pos++;
    }
    return scan_fail(sc, start, "unterminated string");
}

static int scan_digits(struct scan *sc)
{
    if (!is_digit(scan_peek(sc)))
        return -1;
    while (is_digit(scan_peek(sc)))
        sc->pos++;
    return 0;
}

static int scan_number(struct scan *sc)
{
    size_t start = sc->pos;
    if (scan_peek(sc) == '-')
        sc->pos++;
    if (scan_peek(sc) == '0') {
        sc->pos++;
        if (is_digit(scan_peek(sc)))
            return scan_fail(sc, start, "invalid number (leading zero)");
    } else if (scan_digits(sc) < 0) {
        return scan_fail(sc, start, "invalid number");
    }
    if (scan_peek(sc) == '.') {
        sc->pos++;
        if (scan_digits(sc) < 0)
            return scan_fail(sc, start, "invalid number");
    }
    if (scan_peek(sc) == 'e' || scan_peek(sc) == 'E') {
        sc->pos++;
        if (scan_peek(sc) == '+' || scan_peek(sc) == '-')
            sc->pos++;
        if (scan_digits(sc) < 0)
            return scan_fail(sc, start, "invalid number");
    }
    return 0;
}

static int scan_word(struct scan *sc, const char *word)
{
    size_t n = strlen(word);
    if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, word, n) != 0)
        return scan_fail(sc, sc->pos, "expected a value (strings need double quotes)");
    sc->pos += n;
    return 0;
}

static int scan_value(struct scan *sc);

/* After a member or element: a comma, the closing bracket, or an error naming both. */
static int scan_after_item(struct scan *sc, char close, bool *done)
{
    int ch;
    scan_ws(sc);
    ch = scan_peek(sc);
    *done = ch == close;
    if (ch == ',' || ch == close) {
        sc->pos++;
        return 0;
    }
    if (ch < 0)
        return scan_fail(sc, sc->pos, "unexpected end of file");
    return scan_fail(sc, sc->pos, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

static int scan_member(struct scan *sc)
{
    int ch;
    scan_ws(sc);
    ch = scan_peek(sc);
    if (ch != '"') {
        if (ch < 0)
            return scan_fail(sc, sc->pos, "unexpected end of file");
        return scan_fail(sc, sc->pos, ch == '}' ? "trailing comma before '}'" : "expected a key in double quotes");
    }
    if (scan_string(sc) < 0)
        return -1;
    scan_ws(sc);
    ch = scan_peek(sc);
    if (ch != ':')
        return scan_fail(sc, sc->pos, ch < 0 ? "unexpected end of file" : "expected ':'");
    sc->pos++;
    return scan_value(sc);
}

static int scan_object(struct scan *sc)
{
    bool done = false;
    sc->pos++;
    scan_ws(sc);
    if (scan_peek(sc) == '}') {
        sc->pos++;
        return 0;
    }
    while (!done)
        if (scan_member(sc) < 0 || scan_after_item(sc, '}', &done) < 0)
            return -1;
    return 0;
}

static int scan_array(struct scan *sc)
{
    bool done = false;
    sc->pos++;
    scan_ws(sc);
    if (scan_peek(sc) == ']') {
        sc->pos++;
        return 0;
    }
    while (!done) {
        scan_ws(sc);
        if (scan_peek(sc) == ']')
            return scan_fail(sc, sc->pos, "trailing comma before ']'");
        if (scan_value(sc) < 0 || scan_after_item(sc, ']', &done) < 0)
            return -1;
    }
    return 0;
}

static int scan_container(struct scan *sc, bool object)
{
    int rc;
    if (++sc->depth > MAX_DEPTH)
        return scan_fail(sc, sc->pos, "nesting too deep");
    rc = object ? scan_object(sc) : scan_array(sc);
    sc->depth--;
    return rc;
}

static int scan_value(struct scan *sc)
{
    int ch;
    scan_ws(sc);
    ch = scan_peek(sc);
    switch (ch) {
    case -1: return scan_fail(sc, sc->pos, "unexpected end of file");
    case '{': return scan_container(sc, true);
    case '[': return scan_container(sc, false);
    case '"': return scan_string(sc);
    case 't': return scan_word(sc, "true");
    case 'f': return scan_word(sc, "false");
    case 'n': return scan_word(sc, "null");
    default:
        if (ch == '-' || is_digit(ch))
            return scan_number(sc);
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
            return scan_fail(sc, sc->pos, "expected a value (strings need double quotes)");
        return scan_fail(sc, sc->pos, "expected a value");
    }
}

/* Returns 0 if text is one valid JSON document, else -1 with errpos and hint set. */
static int scan_document(struct scan *sc)
{
    if (sc->len >= 3 && memcmp(sc->s, "\xEF\xBB\xBF", 3) == 0)
        sc->pos = 3; /* a UTF-8 byte order mark, as some editors write */
    scan_ws(sc);
    if (sc->pos == sc->len)
        return scan_fail(sc, 0, "empty file");
    if (scan_value(sc) < 0)
        return -1;
    scan_ws(sc);
    if (sc->pos < sc->len)
        return scan_fail(sc, sc->pos, "text after the end of the document");
    return 0;
}

/* Line and column (1-based; columns count characters, not UTF-8 continuation bytes). */
static void line_col(const char *s, size_t pos, long *line, long *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (s[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)s[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

static void syntax_error(struct fg_cfg *c, const char *s, size_t pos, const char *hint)
{
    long line, col;
    char *text;
    line_col(s, pos, &line, &col);
    if (asprintf(&text, "%s:%ld:%ld: syntax error%s%s", c->file, line, col, hint ? ": " : "",
                 hint ? hint : "") < 0)
        text = fg_strdup("syntax error");
    add_msg(c, text, NULL);
}

cJSON *fg_cfg_parse_text(struct fg_cfg *c, const char *text, size_t len)
{
    struct scan sc = { .s = text, .len = len };
    const char *end = NULL;
    char *copy;
    cJSON *root;

    if (scan_document(&sc) < 0) {
        syntax_error(c, text, sc.errpos, sc.hint);
        return NULL;
    }
    copy = fg_strndup(text, len); /* cJSON wants a terminated buffer */
    root = cJSON_ParseWithOpts(copy, &end, 1);
    if (!root) /* the scanner accepted it: only a cJSON limit (e.g. a very long number) is left */
        syntax_error(c, copy, end ? (size_t)(end - copy) : 0, NULL);
    free(copy);
    return root;
}

static void errno_text(int e, char *buf, size_t len)
{
    const char *s = strerror_r(e, buf, len); /* GNU variant: may return a static string */
    if (s != buf)
        fg_strlcpy(buf, s, len);
}

cJSON *fg_cfg_parse_file(struct fg_cfg *c)
{
    char *buf = NULL, why[128];
    size_t n = 0;
    int rc, fd = open(c->file, O_RDONLY | O_CLOEXEC);
    cJSON *root;

    if (fd < 0) {
        errno_text(errno, why, sizeof why);
        fg_cfg_errorf(c, NULL, NULL, "cannot read: %s", why);
        return NULL;
    }
    rc = fg_file_read_fd(fd, MAX_FILE_BYTES, &buf, &n);
    close(fd);
    if (rc < 0) {
        errno_text(-rc, why, sizeof why);
        fg_cfg_errorf(c, NULL, NULL, "cannot read: %s", why);
        return NULL;
    }
    root = fg_cfg_parse_text(c, buf, n);
    free(buf);
    return root;
}

/* ---- paths, keys, ids ---- */

char *fg_cfg_path(char *buf, size_t len, const char *base, long index, const char *key)
{
    size_t n;
    if (!len)
        return buf;
    fg_strlcpy(buf, base ? base : "", len);
    n = strlen(buf);
    if (index >= 0 && n < len)
        n += (size_t)snprintf(buf + n, len - n, "[%ld]", index);
    if (key && n < len)
        snprintf(buf + n, len - n, "%s%s", *buf ? "." : "", key);
    return buf;
}

/* Optimal string alignment distance (a swap of two neighbours counts 1). -1 if too long. */
static int edit_distance(const char *a, const char *b)
{
    enum { MAXL = 64 };
    int rows[3][MAXL + 1];
    size_t la = strlen(a), lb = strlen(b);
    if (la > MAXL || lb > MAXL)
        return -1;
    int *pp = rows[0], *p = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        p[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = p[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (p[j - 1] + cost < v)
                v = p[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
        }
        int *t = pp;
        pp = p;
        p = cur;
        cur = t;
    }
    return p[lb];
}

/* The known key nearest to key, if near enough to be a typo: distance at most 2 or at most a
 * third of the known key's length, and less than the length of key (else any two-letter key
 * would "suggest" every other two-letter key). */
static const char *suggest(const char *key, const char *const *known)
{
    const char *best = NULL;
    int bestd = 0;
    for (size_t i = 0; known[i]; i++) {
        int d = edit_distance(key, known[i]);
        if (d < 0 || (best && d >= bestd))
            continue;
        if ((d <= 2 || 3 * (size_t)d <= strlen(known[i])) && (size_t)d < strlen(key)) {
            best = known[i];
            bestd = d;
        }
    }
    return best;
}

int fg_cfg_check_key(struct fg_cfg *c, const cJSON *obj, const cJSON *item, const char *path,
                     const char *const *known)
{
    char kp[FG_CFG_PATH_MAX];
    const char *hint;
    fg_cfg_path(kp, sizeof kp, path, -1, item->string);
    for (const cJSON *s = obj->child; s && s != item; s = s->next)
        if (strcmp(s->string, item->string) == 0) {
            fg_cfg_errorf(c, item, kp, "duplicate key");
            return -1;
        }
    for (size_t i = 0; known[i]; i++)
        if (strcmp(known[i], item->string) == 0)
            return 0;
    hint = suggest(item->string, known);
    if (hint)
        fg_cfg_errorf(c, item, kp, "unknown key (did you mean \"%s\"?)", hint);
    else
        fg_cfg_errorf(c, item, kp, "unknown key");
    return -1;
}

int fg_cfg_known_keys(struct fg_cfg *c, const cJSON *obj, const char *path, const char *const *known)
{
    int n = 0;
    if (!cJSON_IsObject(obj))
        return 0;
    for (const cJSON *it = obj->child; it; it = it->next)
        n += fg_cfg_check_key(c, obj, it, path, known) < 0;
    return n;
}

bool fg_cfg_is_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > FG_CFG_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || is_digit(ch) || (i > 0 && (ch == '_' || ch == '-'));
        if (!ok)
            return false;
    }
    return true;
}

/* Claims id in namespace ns for path; -1 (recorded) if another path has it. */
static int claim_id(struct fg_cfg *c, const cJSON *at, const char *ns, const char *id, const char *path)
{
    for (size_t i = 0; i < c->nids; i++)
        if (strcmp(c->ids[i].ns, ns) == 0 && strcmp(c->ids[i].id, id) == 0) {
            fg_cfg_errorf(c, at, path, "duplicate id \"%s\" (first at %s)", id, c->ids[i].path);
            return -1;
        }
    if (c->nids == c->capids) {
        c->capids = c->capids ? 2 * c->capids : 16;
        c->ids = fg_realloc(c->ids, c->capids * sizeof *c->ids);
    }
    c->ids[c->nids++] = (struct cfg_id){ fg_strdup(ns), fg_strdup(id), fg_strdup(path) };
    return 0;
}

int fg_cfg_only_for(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, const char *what)
{
    char kp[FG_CFG_PATH_MAX];
    const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    fg_cfg_errorf(c, v, fg_cfg_path(kp, sizeof kp, path, -1, key), "only for %s", what);
    return -1;
}

/* ---- describing values ---- */

const char *fg_cfg_got_kind(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    return "null";
}

static void fmt_num(char *buf, size_t len, double v)
{
    if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
        snprintf(buf, len, "%lld", (long long)v);
    else
        snprintf(buf, len, "%.15g", v);
}

/* "text" with JSON escapes, cut after about 40 bytes (at a character boundary) with "...". */
static void fmt_quoted(char *buf, size_t len, const char *s)
{
    size_t o = 0, i = 0;
    if (len < 8) {
        fg_strlcpy(buf, "\"\"", len);
        return;
    }
    buf[o++] = '"';
    for (; s[i] && o + 8 < len && i < 40; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            o += (size_t)snprintf(buf + o, len - o, "\\%c", ch);
        else if (ch < 0x20)
            o += (size_t)snprintf(buf + o, len - o, "\\u%04x", ch);
        else
            buf[o++] = (char)ch;
    }
    while (s[i] && i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80 && o > 1) {
        i--; /* do not cut inside a UTF-8 sequence */
        o--;
    }
    if (s[i])
        o += (size_t)snprintf(buf + o, len - o, "...");
    snprintf(buf + o, len - o, "\"");
}

const char *fg_cfg_got_value(const cJSON *v, char *buf, size_t len)
{
    if (cJSON_IsNumber(v))
        fmt_num(buf, len, v->valuedouble);
    else if (cJSON_IsString(v))
        fmt_quoted(buf, len, v->valuestring);
    else if (cJSON_IsBool(v))
        fg_strlcpy(buf, cJSON_IsTrue(v) ? "true" : "false", len);
    else
        fg_strlcpy(buf, fg_cfg_got_kind(v), len);
    return buf;
}

/* ---- typed getters ---- */

const cJSON *fg_cfg_last_leaf(const cJSON *obj)
{
    while (obj && obj->child) {
        const cJSON *ch = obj->child;
        while (ch->next)
            ch = ch->next;
        obj = ch;
    }
    return obj;
}

/* obj[key] (null counts as absent), or NULL with *rc = 1 (optional) or -1 (required:
 * "missing (required)" recorded). kp receives "path.key". */
static const cJSON *lookup(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key,
                           bool required, char *kp, int *rc)
{
    const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    fg_cfg_path(kp, FG_CFG_PATH_MAX, path, -1, key);
    if (v && !cJSON_IsNull(v))
        return v;
    *rc = 1;
    if (required) {
        fg_cfg_errorf(c, fg_cfg_last_leaf(obj), kp, "missing (required)");
        *rc = -1;
    }
    return NULL;
}

static bool as_long(const cJSON *v, long *out)
{
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || !(d > -9e15 && d < 9e15) || d != (double)(long)d)
        return false;
    *out = (long)d;
    return true;
}

int fg_cfg_int(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, bool required,
               long min, long max, long def, long *out)
{
    char kp[FG_CFG_PATH_MAX], got[GOT_MAX];
    int rc;
    long x;
    const cJSON *v = lookup(c, obj, path, key, required, kp, &rc);
    *out = def;
    if (!v)
        return rc;
    if (!cJSON_IsNumber(v)) {
        fg_cfg_errorf(c, v, kp, "must be an integer %ld..%ld, got %s", min, max, fg_cfg_got_kind(v));
        return -1;
    }
    if (!as_long(v, &x) || x < min || x > max) {
        fg_cfg_errorf(c, v, kp, "must be an integer %ld..%ld, got %s", min, max,
                      fg_cfg_got_value(v, got, sizeof got));
        return -1;
    }
    *out = x;
    return 0;
}

int fg_cfg_int_oneof(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key,
                     bool required, const long *allowed, size_t nallowed, long def, long *out)
{
    char kp[FG_CFG_PATH_MAX], got[GOT_MAX], list[256] = "";
    int rc;
    long x = 0;
    const cJSON *v = lookup(c, obj, path, key, required, kp, &rc);
    *out = def;
    if (!v)
        return rc;
    if (as_long(v, &x))
        for (size_t i = 0; i < nallowed; i++)
            if (allowed[i] == x) {
                *out = x;
                return 0;
            }
    for (size_t i = 0, n = 0; i < nallowed && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%ld", i ? ", " : "", allowed[i]);
    fg_cfg_errorf(c, v, kp, "must be one of %s, got %s", list,
                  cJSON_IsNumber(v) ? fg_cfg_got_value(v, got, sizeof got) : fg_cfg_got_kind(v));
    return -1;
}

int fg_cfg_num(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, bool required,
               double min, double max, double def, double *out)
{
    char kp[FG_CFG_PATH_MAX], got[GOT_MAX], lo[32], hi[32];
    int rc;
    const cJSON *v = lookup(c, obj, path, key, required, kp, &rc);
    *out = def;
    if (!v)
        return rc;
    fmt_num(lo, sizeof lo, min);
    fmt_num(hi, sizeof hi, max);
    if (!cJSON_IsNumber(v)) {
        fg_cfg_errorf(c, v, kp, "must be a number %s..%s, got %s", lo, hi, fg_cfg_got_kind(v));
        return -1;
    }
    if (!(v->valuedouble >= min && v->valuedouble <= max)) { /* also false for NaN */
        fg_cfg_errorf(c, v, kp, "must be a number %s..%s, got %s", lo, hi, fg_cfg_got_value(v, got, sizeof got));
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

int fg_cfg_bool(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, bool required,
                bool def, bool *out)
{
    char kp[FG_CFG_PATH_MAX];
    int rc;
    const cJSON *v = lookup(c, obj, path, key, required, kp, &rc);
    *out = def;
    if (!v)
        return rc;
    if (!cJSON_IsBool(v)) {
        fg_cfg_errorf(c, v, kp, "must be true or false, got %s", fg_cfg_got_kind(v));
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

int fg_cfg_str(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, bool required,
               size_t maxlen, const char *def, const char **out)
{
    char kp[FG_CFG_PATH_MAX];
    int rc;
    size_t n;
    const cJSON *v = lookup(c, obj, path, key, required, kp, &rc);
    *out = def;
    if (!v)
        return rc;
    if (!cJSON_IsString(v)) {
        fg_cfg_errorf(c, v, kp, "must be a string of 1..%zu bytes, got %s", maxlen, fg_cfg_got_kind(v));
        return -1;
    }
    n = strlen(v->valuestring);
    if (n == 0 || n > maxlen) {
        if (n)
            fg_cfg_errorf(c, v, kp, "must be a string of 1..%zu bytes, got a string of %zu bytes", maxlen, n);
        else
            fg_cfg_errorf(c, v, kp, "must be a string of 1..%zu bytes, got \"\"", maxlen);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

int fg_cfg_strbuf(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key,
                  bool required, const char *def, char *dst, size_t dstlen)
{
    const char *s;
    int rc = fg_cfg_str(c, obj, path, key, required, dstlen - 1, def, &s);
    fg_strlcpy(dst, s ? s : "", dstlen);
    return rc;
}

int fg_cfg_enum(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, bool required,
                const char *const *allowed, int def, int *out)
{
    char kp[FG_CFG_PATH_MAX], got[GOT_MAX], list[512] = "";
    int rc;
    const cJSON *v = lookup(c, obj, path, key, required, kp, &rc);
    *out = def;
    if (!v)
        return rc;
    for (int i = 0; cJSON_IsString(v) && allowed[i]; i++)
        if (strcmp(allowed[i], v->valuestring) == 0) {
            *out = i;
            return 0;
        }
    for (size_t i = 0, n = 0; allowed[i] && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s\"%s\"", i ? ", " : "", allowed[i]);
    fg_cfg_errorf(c, v, kp, "must be one of %s, got %s", list,
                  cJSON_IsString(v) ? fg_cfg_got_value(v, got, sizeof got) : fg_cfg_got_kind(v));
    return -1;
}

int fg_cfg_id(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, bool required,
              const char *ns, char *dst, size_t dstlen)
{
    char kp[FG_CFG_PATH_MAX], got[GOT_MAX];
    int rc;
    const cJSON *v = lookup(c, obj, path, key, required, kp, &rc);
    dst[0] = '\0';
    if (!v)
        return rc;
    if (!cJSON_IsString(v) || !fg_cfg_is_id(v->valuestring)) {
        fg_cfg_errorf(c, v, kp, "must match " FG_CFG_ID_PATTERN ", got %s",
                      cJSON_IsString(v) ? fg_cfg_got_value(v, got, sizeof got) : fg_cfg_got_kind(v));
        return -1;
    }
    fg_strlcpy(dst, v->valuestring, dstlen);
    if (ns && claim_id(c, v, ns, v->valuestring, kp) < 0)
        return -1;
    return 0;
}

int fg_cfg_container(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key,
                     bool required, int type, const cJSON **out)
{
    char kp[FG_CFG_PATH_MAX];
    int rc;
    const cJSON *v = lookup(c, obj, path, key, required, kp, &rc);
    *out = NULL;
    if (!v)
        return rc;
    if ((v->type & 0xFF) != type) {
        fg_cfg_errorf(c, v, kp, "must be %s, got %s", type == cJSON_Array ? "an array" : "an object",
                      fg_cfg_got_kind(v));
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- files ---- */

int fg_cfg_resolve(const struct fg_cfg *c, const char *rel, char *buf, size_t len)
{
    const char *slash = strrchr(c->file, '/');
    int n;
    if (rel[0] == '/' || !slash)
        n = snprintf(buf, len, "%s", rel);
    else
        n = snprintf(buf, len, "%.*s/%s", (int)(slash - c->file), c->file, rel);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Opens a regular file for reading; -errno on failure (-EISDIR, -EINVAL for other kinds). */
static int open_regular(const char *file, struct stat *st)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
    }
    return fd;
}

static int cannot_read(struct fg_cfg *c, const cJSON *at, const char *path, const char *file, int neg)
{
    char why[128];
    if (neg == -EINVAL)
        fg_strlcpy(why, "not a regular file", sizeof why);
    else
        errno_text(-neg, why, sizeof why);
    fg_cfg_errorf(c, at, path, "cannot read %s: %s", file, why);
    return -1;
}

int fg_cfg_check_file(struct fg_cfg *c, const cJSON *at, const char *path, const char *file,
                      char *resolved, size_t rlen)
{
    char full[FG_CFG_PATH_MAX * 2];
    struct stat st;
    int fd;
    if (fg_cfg_resolve(c, file, full, sizeof full) < 0)
        return cannot_read(c, at, path, file, -ENAMETOOLONG);
    if (resolved)
        fg_strlcpy(resolved, full, rlen);
    fd = open_regular(full, &st);
    if (fd < 0)
        return cannot_read(c, at, path, full, fd);
    close(fd);
    return 0;
}

static void strip_newline(char *s, size_t *n)
{
    if (*n && s[*n - 1] == '\n')
        s[--*n] = '\0';
    if (*n && s[*n - 1] == '\r')
        s[--*n] = '\0';
}

int fg_cfg_read_secret(struct fg_cfg *c, const cJSON *at, const char *path, const char *file, char **out)
{
    char full[FG_CFG_PATH_MAX * 2], *buf = NULL;
    struct stat st;
    size_t n = 0;
    int fd, rc;

    *out = NULL;
    if (fg_cfg_resolve(c, file, full, sizeof full) < 0)
        return cannot_read(c, at, path, file, -ENAMETOOLONG);
    fd = open_regular(full, &st);
    if (fd < 0)
        return cannot_read(c, at, path, full, fd);
    if (st.st_mode & (S_IRGRP | S_IROTH)) {
        close(fd);
        fg_cfg_errorf(c, at, path, "%s is readable by group or others (chmod 600 it)", full);
        return -1;
    }
    rc = fg_file_read_fd(fd, MAX_SECRET_BYTES, &buf, &n);
    close(fd);
    if (rc < 0)
        return cannot_read(c, at, path, full, rc);
    strip_newline(buf, &n);
    if (n == 0 || strlen(buf) != n) {
        fg_cfg_errorf(c, at, path, n ? "%s contains a NUL byte" : "%s is empty", full);
        explicit_bzero(buf, n);
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}
