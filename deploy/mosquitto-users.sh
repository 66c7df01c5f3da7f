#!/bin/sh
# Creates fabgrid's MQTT users (collector, balancer, device, dashboard, operator) with random
# passwords in Mosquitto's password file, writes each password to a secret file for whoever uses it,
# installs fabgrid.conf and fabgrid.acl into Mosquitto's config when they are missing, and prints
# what to edit next. Idempotent: an existing secret file is kept (its password is re-applied), so a
# second run changes nothing; --rotate makes new passwords.
#   usage: mosquitto-users.sh [--root DIR] [--rotate]
# --root DIR writes under DIR instead of / (tests, image builds); chown is skipped when the owner
# does not exist there or we are not root.
set -eu

ROOT=""
ROTATE=""
while [ $# -gt 0 ]; do
    case "$1" in
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --rotate) ROTATE=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "mosquitto-users.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
ETC_FG="$ROOT/etc/fabgrid"
ETC_MQ="$ROOT/etc/mosquitto"
PASSWD="$ETC_MQ/fabgrid.passwd"
command -v mosquitto_passwd >/dev/null || { echo "mosquitto-users.sh: mosquitto_passwd missing (apt-get install mosquitto)" >&2; exit 1; }

umask 022
mkdir -p "$ETC_FG" "$ETC_MQ/conf.d"

# chown_if OWNER FILE: as root, hand FILE to OWNER (user[:group]) when that user exists.
chown_if() {
    [ "$(id -u)" = 0 ] || return 0
    if id "${1%%:*}" >/dev/null 2>&1; then
        chown "$1" "$2"
    else
        echo "mosquitto-users.sh: user ${1%%:*} does not exist yet: chown $1 $2 later" >&2
    fi
}

random_password() {
    # 32 characters of [A-Za-z0-9]: about 190 bits, and safe in any config or shell quoting
    LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32
}

# user_secret USER FILE OWNER: the user's password, from FILE or new; FILE is mode 0600.
user_secret() {
    if [ -z "$ROTATE" ] && [ -s "$2" ]; then
        head -n 1 "$2"
        return
    fi
    pw=$(random_password)
    (umask 077 && printf '%s\n' "$pw" >"$2.tmp")
    mv "$2.tmp" "$2"
    printf '%s' "$pw"
}

[ -e "$PASSWD" ] || : >"$PASSWD"
for spec in collector:collector.pass:fabgrid balancer:balancer.pass:fabgrid \
            device:mqtt-device.pass:root dashboard:mqtt-dashboard.pass:root operator:mqtt-operator.pass:root; do
    user=${spec%%:*}
    rest=${spec#*:}
    file="$ETC_FG/${rest%%:*}"
    owner=${rest#*:}
    pw=$(user_secret "$user" "$file")
    mosquitto_passwd -b "$PASSWD" "$user" "$pw"
    [ "$owner" = root ] || chown_if "$owner:$owner" "$file"
done
# Mosquitto reads the hashes as its own user after dropping root
chmod 640 "$PASSWD"
chown_if root:mosquitto "$PASSWD"

for f in conf.d/fabgrid.conf fabgrid.acl; do
    if [ ! -e "$ETC_MQ/$f" ]; then
        cp "$HERE/mosquitto/$(basename "$f")" "$ETC_MQ/$f"
        chmod 644 "$ETC_MQ/$f"
        echo "installed $ETC_MQ/$f"
    fi
done

cat <<MSG
MQTT users collector, balancer, device, dashboard and operator are in $PASSWD.
Passwords (one per file, mode 0600):
  $ETC_FG/collector.pass        the collector: site.json "mqtt": {"username": "collector", "password_file": "/etc/fabgrid/collector.pass"}
  $ETC_FG/balancer.pass         the balancer (user "balancer")
  $ETC_FG/mqtt-device.pass      give to devices that report over MQTT (user "device", TLS port 8883)
  $ETC_FG/mqtt-dashboard.pass   Grafana's MQTT panels, wall displays (user "dashboard", read-only)
  $ETC_FG/mqtt-operator.pass    people requesting jobs (user "operator")
Files to edit:
  $ETC_FG/site.json                    the mqtt section above
  $ETC_MQ/fabgrid.acl                  one "topic write" line under "user balancer" per generic (type mqtt) actuator
  $ETC_MQ/conf.d/fabgrid.conf          the TLS listener's cafile, certfile, keyfile; a self-made CA:
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=fabgrid-ca -keyout ca.key -out fabgrid-ca.crt
      openssl req -newkey rsa:2048 -nodes -subj /CN=\$(hostname -f) -keyout fabgrid-server.key -out server.csr
      printf 'subjectAltName=DNS:%s\\n' "\$(hostname -f)" >san.ext
      openssl x509 -req -in server.csr -CA fabgrid-ca.crt -CAkey ca.key -CAcreateserial -days 825 \\
          -extfile san.ext -out fabgrid-server.crt
      (fabgrid-ca.crt to /etc/mosquitto/ca_certificates/, the server pair to /etc/mosquitto/certs/,
       the key readable by group mosquitto; ca.key stays offline)
Then: systemctl restart mosquitto
MSG
