#!/bin/sh
# make demo: runs deploy/demo.py with Debian's python3 (see its docstring).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
case "$BUILD" in /*) FG_BUILD="$BUILD" ;; *) FG_BUILD="$PWD/$BUILD" ;; esac
export FG_BUILD
exec /usr/bin/python3 deploy/demo.py
