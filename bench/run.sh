#!/bin/sh
# make bench: prints the benchmark figures (never pass/fail on time).
#   BENCH_SECONDS   measured window of the 100-inverter collector run (default 600 = 10 minutes)
#   BASE_SECONDS    measured window of the baseline loop (default 120)
#   BENCH_DEVICES   simulated inverters (default 100)
#   BENCH_INFLUX_SECONDS  window of the second collector run, with an InfluxDB output (default 120; 0 skips)
#   DRAIN_SECONDS   database outage of the spool drain benchmark (default 600 = 10 minutes)
#   ONLY            run only the benchmarks whose name contains this word
#                   (requests encoder gzip spool influx planner balancer poll)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
case "$BUILD" in /*) ABS_BUILD="$BUILD" ;; *) ABS_BUILD="$PWD/$BUILD" ;; esac
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
    FG_BUILD="$ABS_BUILD" /usr/bin/python3 bench/bench_influx.py
fi
if want planner; then
    echo "== planner speed (bench/bench_plan.c)"
    "$BUILD/bench/bench_plan"
fi
if want balancer; then
    echo "== balancer strategies over 104 days vs the MILP optimum (bench/bench_balancer.py)"
    FG_BUILD="$ABS_BUILD" /usr/bin/python3 bench/bench_balancer.py
fi
if want poll; then
    echo "== 100 SunSpec inverters on loopback at 1 s polls (bench/bench_poll.py)"
    FG_BUILD="$ABS_BUILD" /usr/bin/python3 bench/bench_poll.py
fi
