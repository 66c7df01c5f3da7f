/* lp_encode: a small CLI around fg_lp_encode for tests/integration/test_lp_influx.py. Reads a JSON
 * list of points from stdin and prints, per point, its line (or an empty line when the encoder
 * has nothing to write), so that output line i belongs to point i.
 *   [{"measurement": "m", "tags": {"k": "v", "gone": null}, "ts": 1000,
 *     "fields": {"f": 1.5, "s": "text", "b": true, "i": {"int": "-9223372036854775808"},
 *                "x": {"float": "nan"}, "n": {"string": null}}}, ...]
 * A number is a float field; {"int": "..."} and {"float": "..."} carry exact or special values as
 * text (JSON has no NaN, and cJSON keeps numbers as doubles). Exit 0, or 1 with a message. */
#include "fg_lp.h"
#include "fg_mem.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS 64
#define LINE_MAX_BYTES (1 << 20)

static char *read_all(FILE *in)
{
    size_t cap = 1 << 16, n = 0;
    char *s = fg_malloc(cap);
    for (size_t got; (got = fread(s + n, 1, cap - n - 1, in)) > 0;) {
        n += got;
        if (n + 1 == cap)
            s = fg_realloc(s, cap *= 2);
    }
    s[n] = '\0';
    return s;
}

static int typed_field(struct fg_lp_field *f, const cJSON *v)
{
    const cJSON *x;
    char *end;
    errno = 0;
    if ((x = cJSON_GetObjectItemCaseSensitive(v, "int")) && cJSON_IsString(x)) {
        f->type = FG_LP_INT;
        f->i = strtoll(x->valuestring, &end, 10);
    } else if ((x = cJSON_GetObjectItemCaseSensitive(v, "float")) && cJSON_IsString(x)) {
        f->type = FG_LP_FLOAT;
        f->f = strtod(x->valuestring, &end);
    } else if ((x = cJSON_GetObjectItemCaseSensitive(v, "string")) && cJSON_IsNull(x)) {
        f->type = FG_LP_STRING;
        f->s = NULL;
        return 0;
    } else {
        return -1;
    }
    return (*end || (errno && f->type == FG_LP_INT)) ? -1 : 0;
}

static int field(struct fg_lp_field *f, const cJSON *v)
{
    memset(f, 0, sizeof *f);
    f->key = v->string;
    if (cJSON_IsBool(v)) {
        f->type = FG_LP_BOOL;
        f->b = cJSON_IsTrue(v);
    } else if (cJSON_IsNumber(v)) {
        f->type = FG_LP_FLOAT;
        f->f = v->valuedouble;
    } else if (cJSON_IsString(v)) {
        f->type = FG_LP_STRING;
        f->s = v->valuestring;
    } else if (cJSON_IsObject(v)) {
        return typed_field(f, v);
    } else {
        return -1;
    }
    return 0;
}

/* Encodes one point into out; returns the encoder's result, or -EINVAL for a malformed point. */
static int point(char *out, size_t len, const cJSON *p)
{
    struct fg_lp_tag tags[MAX_ITEMS];
    struct fg_lp_field fields[MAX_ITEMS];
    size_t nt = 0, nf = 0;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(p, "measurement");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(p, "ts");
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(p, "tags")) {
        if (nt == MAX_ITEMS || !(cJSON_IsString(x) || cJSON_IsNull(x)))
            return -EINVAL;
        tags[nt].key = x->string;
        tags[nt++].value = cJSON_IsString(x) ? x->valuestring : NULL;
    }
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(p, "fields")) {
        if (nf == MAX_ITEMS || field(&fields[nf++], x) < 0)
            return -EINVAL;
    }
    if (!cJSON_IsNumber(ts) || !(cJSON_IsString(m) || cJSON_IsNull(m)))
        return -EINVAL;
    return fg_lp_encode(out, len, cJSON_IsString(m) ? m->valuestring : NULL, tags, nt, fields, nf,
                        (int64_t)ts->valuedouble);
}

/* Prints one line per point; stops at the first malformed one. Returns 0 or 1. */
static int encode_all(const cJSON *root)
{
    static char line[LINE_MAX_BYTES];
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, root) {
        int n = point(line, sizeof line, p);
        if (n < 0) {
            fprintf(stderr, "lp_encode: point %d: %s\n", i, strerror(-n));
            return 1;
        }
        fputs(n > 0 ? line : "\n", stdout);
        i++;
    }
    return 0;
}

int main(void)
{
    char *text = read_all(stdin);
    cJSON *root = cJSON_Parse(text);
    int rc = 1;
    if (cJSON_IsArray(root))
        rc = encode_all(root);
    else
        fprintf(stderr, "lp_encode: stdin is not a JSON list\n");
    cJSON_Delete(root);
    free(text);
    return rc;
}
