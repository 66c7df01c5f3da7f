/* fg_site: "site" and "mqtt" sections, shared by collector, balancer and simulator so that one
 * site file means the same to all of them. Errors go to the caller's fg_cfg collector. */
#include "fg_site.h"

#include "fg_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ZONEINFO_DIR "/usr/share/zoneinfo"

static const char *const role_names[] = { "pv", "grid", "load", "battery", "machine", NULL };

const char *fg_role_name(enum fg_role r)
{
    return r >= FG_ROLE_PV && r < FG_ROLE_COUNT ? role_names[r] : "?";
}

const char *const *fg_role_names(void)
{
    return role_names;
}

/* ---- site ---- */

static const char *const site_keys[] = { "id", "timezone", "latitude", "longitude", "grid_limit_w", "pv_kwp",
                                         "tilt_deg", "azimuth_deg", NULL };

static bool is_path_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '/' || ch == '_' || ch == '-' || ch == '+';
}

/* A zone the C library can load: a file under ZONEINFO_DIR. Without a zone database on the
 * machine nothing can be checked, so a well-formed name is then accepted. */
static bool zone_exists(const char *tz)
{
    char path[sizeof ZONEINFO_DIR + 64];
    struct stat st;
    if (strcmp(tz, "UTC") == 0)
        return true;
    if (tz[0] == '/' || strstr(tz, ".."))
        return false;
    for (const char *p = tz; *p; p++)
        if (!is_path_char(*p))
            return false;
    if (stat(ZONEINFO_DIR, &st) < 0)
        return true;
    snprintf(path, sizeof path, "%s/%s", ZONEINFO_DIR, tz);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int site_timezone(struct fg_cfg *c, const cJSON *site, struct fg_site_cfg *out)
{
    char got[64];
    int rc = fg_cfg_strbuf(c, site, "site", "timezone", false, "UTC", out->timezone, sizeof out->timezone);
    if (rc != 0 || zone_exists(out->timezone))
        return rc < 0 ? -1 : 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(site, "timezone");
    fg_cfg_errorf(c, v, "site.timezone", "must be a time zone under " ZONEINFO_DIR " (e.g. \"Europe/Berlin\"), got %s",
                  fg_cfg_got_value(v, got, sizeof got));
    fg_strlcpy(out->timezone, "UTC", sizeof out->timezone);
    return -1;
}

/* Latitude and longitude only make sense together (the PV forecast needs both). */
static int site_position(struct fg_cfg *c, const cJSON *site, struct fg_site_cfg *out)
{
    int a = fg_cfg_num(c, site, "site", "latitude", false, -90, 90, 0, &out->latitude);
    int b = fg_cfg_num(c, site, "site", "longitude", false, -180, 180, 0, &out->longitude);
    if (a < 0 || b < 0)
        return -1;
    if (a != b) {
        fg_cfg_errorf(c, site, a ? "site.latitude" : "site.longitude", "missing (required with %s)",
                      a ? "longitude" : "latitude");
        return -1;
    }
    out->has_latlon = a == 0;
    return 0;
}

/* The PV array: a typical roof (30 degrees, facing south) unless told otherwise. */
static int site_array(struct fg_cfg *c, const cJSON *site, struct fg_site_cfg *out)
{
    int bad = 0;
    bad += fg_cfg_num(c, site, "site", "pv_kwp", false, 0, 10000, 0, &out->pv_kwp) < 0;
    bad += fg_cfg_num(c, site, "site", "tilt_deg", false, 0, 90, 30, &out->tilt_deg) < 0;
    bad += fg_cfg_num(c, site, "site", "azimuth_deg", false, 0, 360, 180, &out->azimuth_deg) < 0;
    if (!bad && out->pv_kwp > 0 && !out->has_latlon) {
        /* the clear-sky model needs the sun's position: without it the forecast would be nonsense */
        fg_cfg_errorf(c, cJSON_GetObjectItemCaseSensitive(site, "pv_kwp"), "site.pv_kwp",
                      "requires \"latitude\" and \"longitude\"");
        bad++;
    }
    return bad ? -1 : 0;
}

int fg_site_parse(struct fg_cfg *c, const cJSON *root, struct fg_site_cfg *out)
{
    const cJSON *site;
    int bad = 0;
    memset(out, 0, sizeof *out);
    fg_strlcpy(out->timezone, "UTC", sizeof out->timezone);
    out->tilt_deg = 30;
    out->azimuth_deg = 180;
    if (fg_cfg_container(c, root, NULL, "site", true, cJSON_Object, &site) != 0)
        return -1;
    bad += fg_cfg_known_keys(c, site, "site", site_keys) > 0;
    bad += fg_cfg_id(c, site, "site", "id", true, NULL, out->id, sizeof out->id) < 0;
    bad += site_timezone(c, site, out) < 0;
    bad += site_position(c, site, out) < 0;
    bad += fg_cfg_num(c, site, "site", "grid_limit_w", false, 0, 10e6, 0, &out->grid_limit_w) < 0;
    bad += site_array(c, site, out) < 0;
    return bad ? -1 : 0;
}

/* ---- mqtt ---- */

static const char *const mqtt_keys[] = { "host", "port", "prefix", "username", "password_file", "ca_file",
                                         "cert_file", "key_file", "keepalive_s", "queue_max", "client_id", NULL };

static bool prefix_ok(const char *p)
{
    size_t n = strlen(p);
    return n && p[0] != '/' && p[n - 1] != '/' && !strpbrk(p, "+#");
}

static int mqtt_prefix(struct fg_cfg *c, const cJSON *m, struct fg_mqtt_cfg *out)
{
    char got[64];
    int rc = fg_cfg_strbuf(c, m, "mqtt", "prefix", false, "fabgrid", out->prefix, sizeof out->prefix);
    if (rc != 0 || prefix_ok(out->prefix))
        return rc < 0 ? -1 : 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "prefix");
    fg_cfg_errorf(c, v, "mqtt.prefix", "must be a topic prefix without '+', '#' or a leading or trailing '/', got %s",
                  fg_cfg_got_value(v, got, sizeof got));
    fg_strlcpy(out->prefix, "fabgrid", sizeof out->prefix);
    return -1;
}

/* An optional file key that must name a readable file; stored resolved. */
static int mqtt_file(struct fg_cfg *c, const cJSON *m, const char *key, char *dst, size_t dstlen)
{
    char kp[FG_CFG_PATH_MAX], name[256];
    int rc = fg_cfg_strbuf(c, m, "mqtt", key, false, NULL, name, sizeof name);
    dst[0] = '\0';
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    fg_cfg_path(kp, sizeof kp, "mqtt", -1, key);
    return fg_cfg_check_file(c, cJSON_GetObjectItemCaseSensitive(m, key), kp, name, dst, dstlen);
}

static int mqtt_tls(struct fg_cfg *c, const cJSON *m, struct fg_mqtt_cfg *out)
{
    int bad = 0;
    bad += mqtt_file(c, m, "ca_file", out->ca_file, sizeof out->ca_file) < 0;
    bad += mqtt_file(c, m, "cert_file", out->cert_file, sizeof out->cert_file) < 0;
    bad += mqtt_file(c, m, "key_file", out->key_file, sizeof out->key_file) < 0;
    if (!bad && !out->cert_file[0] != !out->key_file[0]) {
        bool cert = out->cert_file[0];
        fg_cfg_errorf(c, m, cert ? "mqtt.key_file" : "mqtt.cert_file", "missing (required with %s)",
                      cert ? "cert_file" : "key_file");
        bad++;
    }
    return bad ? -1 : 0;
}

static int mqtt_auth(struct fg_cfg *c, const cJSON *m, struct fg_mqtt_cfg *out)
{
    const char *file;
    int bad = 0;
    bad += fg_cfg_strbuf(c, m, "mqtt", "username", false, NULL, out->username, sizeof out->username) < 0;
    int rc = fg_cfg_str(c, m, "mqtt", "password_file", false, 255, NULL, &file);
    if (rc != 0)
        return rc < 0 || bad ? -1 : 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "password_file");
    if (!out->username[0]) {
        fg_cfg_errorf(c, v, "mqtt.password_file", "requires \"username\"");
        return -1;
    }
    bad += fg_cfg_read_secret(c, v, "mqtt.password_file", file, &out->password) < 0;
    return bad ? -1 : 0;
}

static void mqtt_defaults(struct fg_mqtt_cfg *out)
{
    memset(out, 0, sizeof *out);
    fg_strlcpy(out->host, "127.0.0.1", sizeof out->host);
    fg_strlcpy(out->prefix, "fabgrid", sizeof out->prefix);
    out->port = 1883;
    out->keepalive_s = 10;
    out->queue_max = 10000;
}

int fg_mqtt_parse(struct fg_cfg *c, const cJSON *root, struct fg_mqtt_cfg *out)
{
    const cJSON *m;
    long port, keepalive_s, queue_max;
    int bad = 0, rc;
    mqtt_defaults(out);
    rc = fg_cfg_container(c, root, NULL, "mqtt", false, cJSON_Object, &m);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    bad += fg_cfg_known_keys(c, m, "mqtt", mqtt_keys) > 0;
    bad += fg_cfg_strbuf(c, m, "mqtt", "host", false, "127.0.0.1", out->host, sizeof out->host) < 0;
    bad += mqtt_tls(c, m, out) < 0;
    bad += fg_cfg_int(c, m, "mqtt", "port", false, 1, 65535, out->ca_file[0] ? 8883 : 1883, &port) < 0;
    bad += mqtt_prefix(c, m, out) < 0;
    bad += mqtt_auth(c, m, out) < 0;
    bad += fg_cfg_int(c, m, "mqtt", "keepalive_s", false, 5, 3600, 10, &keepalive_s) < 0;
    bad += fg_cfg_int(c, m, "mqtt", "queue_max", false, 10, 1000000, 10000, &queue_max) < 0;
    bad += fg_cfg_strbuf(c, m, "mqtt", "client_id", false, NULL, out->client_id, sizeof out->client_id) < 0;
    out->port = (int)port;
    out->keepalive_s = (int)keepalive_s;
    out->queue_max = (int)queue_max;
    return bad ? -1 : 0;
}

void fg_mqtt_cfg_clear(struct fg_mqtt_cfg *m)
{
    if (!m || !m->password)
        return;
    explicit_bzero(m->password, strlen(m->password));
    free(m->password);
    m->password = NULL;
}
