/* fg_site: the config sections every daemon reads the same way: "site" (who and where) and
 * "mqtt" (the broker connection), plus the device roles of the contract. */
#ifndef FG_SITE_H
#define FG_SITE_H
#include <stdbool.h>

#include "fg_cfg.h"

enum fg_role { FG_ROLE_PV, FG_ROLE_GRID, FG_ROLE_LOAD, FG_ROLE_BATTERY, FG_ROLE_MACHINE, FG_ROLE_COUNT };

/* "pv", "grid", "load", "battery", "machine"; "?" for a value out of range. */
const char *fg_role_name(enum fg_role r);
/* The role names in enum order, NULL-terminated (for fg_cfg_enum). */
const char *const *fg_role_names(void);

struct fg_site_cfg {
    char id[33];
    char timezone[64];        /* an IANA zone name, default "UTC" */
    double latitude, longitude;
    double grid_limit_w;      /* 0: no limit */
    bool has_latlon;          /* both latitude and longitude given */
    /* The site's PV array, for the balancer's clear-sky forecast */
    double pv_kwp;            /* peak power in kWp, 0..10000; 0: no array known */
    double tilt_deg;          /* from horizontal, 0..90, default 30 */
    double azimuth_deg;       /* compass direction the array faces, 0..360: 180 south (default), 90 east */
};

struct fg_mqtt_cfg {
    char host[256];
    int port;
    char prefix[64];
    char username[65];        /* "" : anonymous */
    char *password;           /* from password_file; owned, NULL if none; freed by fg_mqtt_cfg_clear */
    char ca_file[256];        /* "" : no TLS. Paths are resolved against the config file's directory */
    char cert_file[256];
    char key_file[256];
    int keepalive_s;
    int queue_max;
    char client_id[65];       /* "" : chosen by the daemon */
};

/* Parses root.site into *out (all fields set, defaults applied even on error). "site" is
 * required; keys: id (required), timezone, latitude, longitude, grid_limit_w, pv_kwp, tilt_deg,
 * azimuth_deg.
 * Returns 0, or -1 when errors were recorded in c. */
int fg_site_parse(struct fg_cfg *c, const cJSON *root, struct fg_site_cfg *out);

/* Parses root.mqtt (optional: all defaults when absent) into *out and reads the password file.
 * Returns 0, or -1 when errors were recorded in c. Call fg_mqtt_cfg_clear on *out in both cases. */
int fg_mqtt_parse(struct fg_cfg *c, const cJSON *root, struct fg_mqtt_cfg *out);

/* Zeroes and frees the password; the struct may be parsed into again. NULL is a no-op. */
void fg_mqtt_cfg_clear(struct fg_mqtt_cfg *m);

#endif
