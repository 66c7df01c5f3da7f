"""bench_influx: the InfluxDB write path on a real local InfluxDB 1.6.
1. Spool drain after a database outage of 10 minutes (simulated: --clock at x10, so 10 minutes of data
   from 100 SunSpec inverters at 1 s polls arrive in 60 s) : points/s drained, i.e. the writer's sustained
   rate with a full spool, while new readings keep arriving.
2. Baseline in the same run: the same number of the collector's own lines POSTed straight to /write in
   batches of 5,000 (no spool, no gzip) by a minimal Python client; ratio collector/baseline.
3. Bytes on the wire per point with and without gzip, from the writer's counters."""
import os
import re
import signal
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from fgtest import Env, free_port_range, influx_query, site_config, wait_for, wait_port  # noqa: E402

N = int(os.environ.get("BENCH_DEVICES", "100"))
SPEED = 10
OUTAGE_SIM_S = float(os.environ.get("DRAIN_SECONDS", "600"))


def stats(env, col):
    col.send_signal(signal.SIGUSR1)
    time.sleep(0.2)
    lines = [ln for ln in env.log("collector").splitlines() if " stats: " in ln]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])} if lines else {}


def main():
    env = Env("bench-influx")
    try:
        mport, iport = env.mosquitto(), env.influxd()
        influx_query(iport, "CREATE DATABASE fabgrid")
        base = free_port_range(N)
        buses = [{"id": f"b{i}", "type": "tcp", "host": "127.0.0.1", "port": base + i} for i in range(N)]
        devices = [{"id": f"inv{i}", "bus": f"b{i}", "unit": 1, "profile": "sunspec", "role": "pv",
                    "poll_ms": 1000} for i in range(N)]
        conf = env.write_json("site.json", site_config(mport, buses, devices, influx={
            "url": f"http://127.0.0.1:{iport}", "database": "fabgrid", "spool_dir": env.path("spool"),
            "flush_s": 1}, sim={"devices": {f"inv{i}": {"power_w": 1000 + i} for i in range(N)}}))
        clock = ["--clock", f"2016-07-15T06:00:00-07:00@{SPEED}"]
        sim = env.sim(conf, extra=clock)
        for i in range(N):
            wait_port(base + i, sim)
        col = env.collector(conf, extra=clock)
        # SIGUSR1 before the handlers are installed would end the process: wait until it runs
        wait_for(lambda: " main: polling " in env.log("collector"), timeout=30)
        wait_for(lambda: stats(env, col).get("written", 0) > 2 * N, timeout=60)
        inf = [p for p in env.procs if p.fg_name == "influxd"][-1]
        env.stop(inf, sig=signal.SIGKILL)
        time.sleep(OUTAGE_SIM_S / SPEED)
        s0 = stats(env, col)
        env.influxd(port=iport)
        # the writer is in its backoff (up to 60 s): the drain is timed from its first successful write
        first = wait_for(lambda: (lambda s: s if s.get("written", 0) > s0["written"] else None)(stats(env, col)),
                         timeout=120, step=0.1)
        t0 = time.monotonic()
        st = wait_for(lambda: (lambda s: s if s.get("spool_points", 1 << 60) < 2 * N else None)(stats(env, col)),
                      timeout=600, step=0.3)
        t1 = time.monotonic()
        drained = st["written"] - first["written"]
        rate = drained / (t1 - t0)
        print(f"spool after {OUTAGE_SIM_S / 60:.0f} min (simulated, x{SPEED}) outage of {N} devices: "
              f"{s0['spool_points']} points")
        print(f"drain: {drained} points written in {t1 - t0:.1f} s = {rate:.0f} points/s, while {N * SPEED} new "
              f"points/s kept arriving (timed from the first write after the database came back)")
        env.stop(col)
        st = [ln for ln in env.log("collector").splitlines() if " stats: " in ln][-1]
        kv = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", st)}
        if kv.get("written"):
            print(f"bytes on the wire per point: {kv['http_bytes_raw'] / kv['written']:.1f} plain, "
                  f"{kv['http_bytes_sent'] / kv['written']:.1f} gzip "
                  f"(ratio {kv['http_bytes_raw'] / max(kv['http_bytes_sent'], 1):.1f}), "
                  f"{kv['http_requests']} requests")
        # the baseline: lines like the collector's (the same fields and values), posted straight from memory
        res = influx_query(iport, "SELECT * FROM device WHERE device = 'inv0' LIMIT 1", "fabgrid")
        ser = res["results"][0]["series"][0]
        row = dict(zip(ser["columns"], ser["values"][0]))
        fields = ",".join(f"{k}={v}" for k, v in row.items()
                          if k not in ("time", "device", "role", "site") and isinstance(v, (int, float)))
        lines = [f"device,device=inv{i % N},role=pv,site=test {fields} {1500000000000 + i * 10}\n"
                 for i in range(drained)]
        influx_query(iport, "CREATE DATABASE base")
        t0 = time.monotonic()
        for k in range(0, len(lines), 5000):
            body = "".join(lines[k:k + 5000]).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{iport}/write?db=base&precision=ms", data=body,
                                         method="POST")
            urllib.request.urlopen(req, timeout=60).read()
        bt = time.monotonic() - t0
        brate = len(lines) / bt
        print(f"baseline (plain POSTs of 5000 lines from memory, no spool): {len(lines)} points in {bt:.1f} s = "
              f"{brate:.0f} points/s; ratio collector drain/baseline {rate / brate:.2f}")
    finally:
        env.close()


if __name__ == "__main__":
    main()
