#!/bin/sh
# Installs the Debian packages that fabgrid's build, tests, demo and benchmarks need.
# Idempotent: when every package is already installed it does nothing (no apt-get at all).
# Uses sudo when not run as root. Debian 12 (bookworm) is the reference system.
set -eu

PKGS="build-essential pkg-config
libmodbus-dev libmosquitto-dev libcjson-dev libcurl4-openssl-dev zlib1g-dev libsqlite3-dev
libsystemd-dev libcmocka-dev
mosquitto mosquitto-clients influxdb curl openssl systemd python3 python3-pymodbus python3-serial python3-serial-asyncio glpk-utils"

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install:$missing" >&2; exit 1; }
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Package services must not start here: tests and the demo run their own instances.
policy_created=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    policy_created=1
fi
trap '[ -n "$policy_created" ] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
# An old package list may not know the packages: update once, then retry.
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y -q --no-install-recommends $missing; then
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends $missing
fi
