#!/bin/sh
# make bench: prints the benchmark figures (never pass/fail on time).
#   BENCH_SECONDS   measured window of the 100-inverter collector run (default 600 = 10 minutes)
#   BASE_SECONDS    measured window of the baseline loop (default 120)
#   BENCH_DEVICES   simulated inverters (default 100)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
echo "== requests per poll (pure planner, bench/bench_requests.c)"
"$BUILD/bench/bench_requests" config/profiles/sdm630.json
echo "== 100 SunSpec inverters on loopback at 1 s polls (bench/bench_poll.py)"
FG_BUILD="$PWD/$BUILD" /usr/bin/python3 bench/bench_poll.py
