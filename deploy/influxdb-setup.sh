#!/bin/sh
# Sets up InfluxDB 1.x for fabgrid over its HTTP API: applies influxdb/schema.iql (database, retention
# policies raw and year, the continuous query), and creates the users: an admin when authentication
# is on and no user exists yet, "collector" that may only WRITE fabgrid and "grafana" that may only
# READ it. Passwords come from files in /etc/fabgrid (influx-admin.pass, influx-collector.pass,
# influx-grafana.pass); a missing one is created with a random password (mode 0600). Idempotent.
#   usage: influxdb-setup.sh [--url URL] [--root DIR] [--schema FILE] [--admin NAME]
# --url defaults to http://127.0.0.1:8086; --root DIR reads and writes the password files under DIR.
set -eu

URL="http://127.0.0.1:8086"
ROOT=""
HERE=$(cd "$(dirname "$0")" && pwd)
SCHEMA="$HERE/influxdb/schema.iql"
ADMIN="admin"
while [ $# -gt 0 ]; do
    case "$1" in
    --url) URL=${2:?}; shift 2 ;;
    --root) ROOT=${2:?}; shift 2 ;;
    --schema) SCHEMA=${2:?}; shift 2 ;;
    --admin) ADMIN=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "influxdb-setup.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
ETC="$ROOT/etc/fabgrid"
DB="fabgrid"
command -v curl >/dev/null || { echo "influxdb-setup.sh: curl missing (apt-get install curl)" >&2; exit 1; }
mkdir -p "$ETC"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
CURLCFG="$TMP/curl.cfg"   # credentials go through a file, never on the command line (ps shows it)
: >"$CURLCFG"

say() { echo "influxdb-setup: $*"; }
die() { echo "influxdb-setup.sh: $*" >&2; exit 1; }

# secret FILE OWNER: the password in FILE, created (random, mode 0600) when missing.
secret() {
    if [ ! -s "$1" ]; then
        (umask 077 && LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 >"$1.tmp" && echo >>"$1.tmp")
        mv "$1.tmp" "$1"
        if [ "$(id -u)" = 0 ] && [ "$2" != root ] && id "$2" >/dev/null 2>&1; then chown "$2:$2" "$1"; fi
        say "new password in $1" >&2
    fi
    head -n 1 "$1"
}

# InfluxQL string literal: backslash and single quote escaped.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g")"; }

# query STATEMENT: runs it; prints the error InfluxDB reported (empty when none). Exit 1 if unreachable.
query() {
    out=$(curl -sS -K "$CURLCFG" -X POST "$URL/query" --data-urlencode "q=$1" 2>"$TMP/err") ||
        die "cannot reach $URL: $(cat "$TMP/err")"
    printf '%s' "$out" | sed -n 's/.*"error":"\([^"]*\)".*/\1/p'
}

use_admin() {
    pw=$(secret "$ETC/influx-admin.pass" root)
    printf 'user = "%s:%s"\n' "$ADMIN" "$pw" >"$CURLCFG"
}

# Authentication: off (all open), on without users (create the admin), or on (log in as the admin).
login() {
    err=$(query "SHOW USERS")
    case "$err" in
    "") say "authentication is off: users and grants are made but not enforced (auth-enabled = true, see influxdb/influxdb.conf)" ;;
    *"create admin user first"*)
        use_admin
        err=$(query "CREATE USER \"$ADMIN\" WITH PASSWORD $(quote "$pw") WITH ALL PRIVILEGES")
        [ -z "$err" ] || die "creating admin $ADMIN: $err"
        say "created admin user $ADMIN" ;;
    *)
        [ -s "$ETC/influx-admin.pass" ] || die "authentication is on and $ETC/influx-admin.pass is missing ($err)"
        use_admin
        err=$(query "SHOW USERS")
        [ -z "$err" ] || die "logging in as $ADMIN: $err" ;;
    esac
}

# A CREATE whose object exists is fine: the ALTER on the next line (retention policies) or a re-create
# (continuous queries, which cannot be altered) makes it match the schema.
apply_schema() {
    [ -r "$SCHEMA" ] || die "cannot read $SCHEMA"
    n=0
    while IFS= read -r stmt || [ -n "$stmt" ]; do
        [ -n "$stmt" ] || continue
        err=$(query "$stmt")
        case "$err" in
        "") ;;
        *"already exists"*|*"conflicts with an existing policy"*)
            case "$stmt" in
            "CREATE RETENTION POLICY"*) ;;
            "CREATE CONTINUOUS QUERY"*)
                name=$(printf '%s' "$stmt" | sed -n 's/^CREATE CONTINUOUS QUERY \("[^"]*"\) ON \("[^"]*"\).*/\1 ON \2/p')
                err=$(query "DROP CONTINUOUS QUERY $name")
                [ -z "$err" ] || die "$stmt: $err"
                err=$(query "$stmt")
                [ -z "$err" ] || die "$stmt: $err" ;;
            *) die "$stmt: $err" ;;
            esac ;;
        *) die "$stmt: $err" ;;
        esac
        n=$((n + 1))
    done <"$SCHEMA"
    say "applied $n statements of $SCHEMA"
}

# user NAME PRIVILEGE OWNER: creates NAME (or sets its password) and grants exactly PRIVILEGE on fabgrid.
user() {
    pw=$(secret "$ETC/influx-$1.pass" "$3")
    err=$(query "CREATE USER \"$1\" WITH PASSWORD $(quote "$pw")")
    case "$err" in
    "") ;;
    *"already exists"*) err=$(query "SET PASSWORD FOR \"$1\" = $(quote "$pw")"); [ -z "$err" ] || die "$1: $err" ;;
    *) die "creating user $1: $err" ;;
    esac
    err=$(query "GRANT $2 ON \"$DB\" TO \"$1\"")   # replaces whatever the user had on fabgrid
    [ -z "$err" ] || die "granting $2 to $1: $err"
    say "user $1: $2 on $DB, password in $ETC/influx-$1.pass"
}

login
apply_schema
user collector WRITE fabgrid
user grafana READ root
cat <<MSG
Files to edit:
  $ETC/site.json        "influx": {"url": "$URL", "database": "$DB", "username": "collector",
                                   "password_file": "/etc/fabgrid/influx-collector.pass"}
  Grafana's datasource  user grafana, password from $ETC/influx-grafana.pass
MSG
