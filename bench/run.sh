#!/bin/sh
# make bench: prints the benchmark figures (never pass/fail on time).
#   BENCH_SECONDS   measured window of the 100-inverter collector run (default 600 = 10 minutes)
#   BASE_SECONDS    measured window of the baseline loop (default 120)
#   BENCH_DEVICES   simulated inverters (default 100)
#   DRAIN_SECONDS   database outage of the spool drain benchmark (default 600 = 10 minutes)
#   ONLY            run only the benchmarks whose name contains this word
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
want() { case "$1" in *${ONLY:-}*) return 0 ;; esac; return 1; }
if want requests; then
    echo "== requests per poll (pure planner, bench/bench_requests.c)"
    "$BUILD/bench/bench_requests" config/profiles/sdm630.json
fi
if want encoder; then
    echo "== line protocol encoder (bench/bench_lp.c)"
    "$BUILD/bench/bench_lp"
fi
if want gzip; then
    echo "== bytes on the wire (bench/bench_gzip.c)"
    "$BUILD/bench/bench_gzip"
fi
if want spool; then
    echo "== spool (bench/bench_spool.c)"
    "$BUILD/bench/bench_spool"
fi
if want influx; then
    echo "== InfluxDB write path and spool drain (bench/bench_influx.py)"
    FG_BUILD="$PWD/$BUILD" /usr/bin/python3 bench/bench_influx.py
fi
if want poll; then
    echo "== 100 SunSpec inverters on loopback at 1 s polls (bench/bench_poll.py)"
    FG_BUILD="$PWD/$BUILD" /usr/bin/python3 bench/bench_poll.py
fi
