/* col_config: the collector's view of a site config file: buses, Modbus devices (with their
 * profiles loaded), devices that report over MQTT, InfluxDB, plus the shared site and mqtt
 * sections. Loading validates everything and reports every error at once. */
#ifndef COL_CONFIG_H
#define COL_CONFIG_H
#include <stdbool.h>
#include <stddef.h>

#include "col_point.h"
#include "fg_site.h"

struct col_bus_cfg {
    char id[33];
    int type;                 /* enum col_bus_type (col_bus.h): COL_BUS_TCP, _RTU, _RTU_OVER_TCP */
    char host[256];           /* tcp, rtu-over-tcp */
    int port;
    char device[256];         /* rtu: serial device path */
    int baud;
    char parity;              /* 'N', 'E', 'O' */
    int data_bits, stop_bits;
    unsigned frame_gap_ms;    /* pause between two requests on the line */
};

struct col_device_cfg {
    char id[33];
    size_t bus;               /* index into col_config.buses */
    int unit;
    char profile[256];        /* as written: "sunspec", a NAME, or a path ending in .json */
    enum fg_role role;
    unsigned poll_ms, timeout_ms, max_gap;
    bool sunspec;
    struct col_point *points; /* owned; NULL/0 for sunspec (discovered at run time) */
    size_t npoints;
};

/* In the order of the config's preset names. */
enum col_mqtt_preset { COL_PRESET_SHELLY_GEN2, COL_PRESET_TASMOTA, COL_PRESET_OPENDTU, COL_PRESET_GENERIC };

#define COL_MQTT_FIELDS_MAX 32

struct col_mqtt_field {
    char field[COL_NAME_MAX]; /* published name, with unit ("power_w") */
    char pointer[128];        /* RFC 6901 JSON pointer into the payload, "/ENERGY/Power" */
    double scale;
};

struct col_mqtt_device_cfg {
    char id[33];
    int preset;               /* enum col_mqtt_preset */
    char topic[256];
    char serial[64];          /* opendtu: the inverter's serial number */
    enum fg_role role;
    unsigned interval_s;      /* how often the device is expected to report */
    struct col_mqtt_field fields[COL_MQTT_FIELDS_MAX]; /* generic only */
    size_t nfields;
};

struct fg_influx_cfg {
    bool enabled;             /* the "influx" section is present */
    char url[256];
    int api;                  /* 1 or 2 */
    char database[65], rp[65], org[65], bucket[65], username[65];
    char *password;           /* v1, from password_file; owned, NULL if none */
    char *token;              /* v2, from token_file; owned */
    char spool_dir[256];      /* resolved against the config file's directory */
    double spool_max_mb;
    unsigned flush_s, batch_max;
};

struct col_config {
    char *file;
    struct fg_site_cfg site;
    struct fg_mqtt_cfg mqtt;
    struct fg_influx_cfg influx;
    struct col_bus_cfg *buses;
    size_t nbuses;
    struct col_device_cfg *devices;
    size_t ndevices;
    struct col_mqtt_device_cfg *mqtt_devices;
    size_t nmqtt_devices;
    char profile_dir[256];
};

/* Loads and validates the site config at path. profile_dir is where NAME.json profiles live;
 * NULL means: the config key "profile_dir" (relative to the config file's directory), else
 * $FABGRID_PROFILE_DIR, else the compile-time FG_PROFILE_DIR
 * ("/usr/local/share/fabgrid/profiles" by default).
 * Returns the config (free with col_config_free), or NULL with every error, one per line in
 * document order, in err ("FILE: devices[2].unit: must be an integer 1..247, got 300"). */
struct col_config *col_config_load(const char *path, const char *profile_dir, char *err, size_t errlen);

/* Frees everything, zeroing the secrets first. NULL is a no-op. */
void col_config_free(struct col_config *c);

#endif
