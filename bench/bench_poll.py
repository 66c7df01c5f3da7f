"""bench_poll: the collector against 100 simulated SunSpec inverters (one port each, as 100 inverters
on a LAN), 1 s polls, real Mosquitto, all on loopback; then the baseline loop (bench/baseline.c: one
blocking libmodbus request after another, one JSON message per reading) against the same simulator
in the same run. Prints CPU seconds per 1,000 readings for both and their ratio, p99 poll-start
lateness, drift over the window, resident memory, and requests per poll measured on the wire.
Memory is read from /proc/PID/smaps at the end of the window: anonymous (heap, thread stacks) vs
file-backed (the binary and its shared libraries), and the largest mappings. Then a second collector
with an "influx" section (a real influxd started here, as tests/integration/fgtest.py's Env does)
runs for --influx-seconds, so that the figure with libcurl, SQLite and zlib loaded is shown too."""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from fgtest import BUILD, Env, Sub, free_port_range, influx_query, site_config, wait_port  # noqa: E402

WARMUP = 5.0
HZ = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def mem_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def smaps(pid):
    """The mappings of pid: (path or "", size_kb, rss_kb, anonymous_kb) each."""
    maps, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 5)
            if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                cur = [head[5].strip() if len(head) > 5 else "", (hi - lo) // 1024, 0, 0]
                maps.append(cur)
            elif head[0] == "Rss:":
                cur[2] = int(head[1])
            elif head[0] == "Anonymous:":
                cur[3] = int(head[1])
    return maps


def mem_breakdown(pid):
    """Resident memory by kind: totals, and groups (a file by its name; anonymous mappings by size, so
    that the bus threads' stacks, all of one size, form one group), largest first."""
    maps = smaps(pid)
    groups = {}
    for path, size_kb, rss, anon in maps:
        key = os.path.basename(path) if path.startswith("/") else path or f"anon {size_kb} kB"
        g = groups.setdefault(key, [0, 0, 0])
        g[0], g[1], g[2] = g[0] + rss, g[1] + anon, g[2] + 1
    rss = sum(m[2] for m in maps)
    anon = sum(m[3] for m in maps)
    top = sorted(groups.items(), key=lambda kv: -kv[1][0])
    return {"rss_kb": rss, "anon_kb": anon, "file_kb": rss - anon, "groups": top}


def print_breakdown(b, top=12):
    print(f"  smaps: RSS {b['rss_kb']} kB = anonymous {b['anon_kb']} kB + file-backed {b['file_kb']} kB")
    for key, (rss, anon, n) in b["groups"][:top]:
        what = f"{n} x {key}" if n > 1 and key.startswith("anon ") else key
        print(f"    {rss:6d} kB ({anon:5d} anonymous)  {what}")


def percentile_us(hist, step_us, q):
    total = sum(hist)
    need = q * total
    acc = 0
    for i, c in enumerate(hist):
        acc += c
        if acc >= need:
            if i < len(hist) - 2:
                return (i + 1) * step_us
            return 100000 if i == len(hist) - 2 else float("inf")
    return 0


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=int(os.environ.get("BENCH_DEVICES", "100")),
                    help="simulated inverters, one bus each (BENCH_DEVICES, default 100)")
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "600")),
                    help="measured window of the collector (BENCH_SECONDS, default 600)")
    ap.add_argument("--base-seconds", type=int, default=int(os.environ.get("BASE_SECONDS", "120")),
                    help="measured window of the baseline loop (BASE_SECONDS, default 120)")
    ap.add_argument("--influx-seconds", type=float, default=float(os.environ.get("BENCH_INFLUX_SECONDS", "120")),
                    help="window of the run with an influx section, for its memory (BENCH_INFLUX_SECONDS, "
                         "default 120; 0 skips it)")
    return ap.parse_args()


def sim_site(env, n):
    """Mosquitto and a simulator of n inverters on n consecutive ports; returns (mqtt port, site config)."""
    mport = env.mosquitto("max_queued_messages 100000\n")
    base = free_port_range(n)
    buses = [{"id": f"b{i}", "type": "tcp", "host": "127.0.0.1", "port": base + i} for i in range(n)]
    devices = [{"id": f"inv{i}", "bus": f"b{i}", "unit": 1, "profile": "sunspec", "role": "pv",
                "poll_ms": 1000} for i in range(n)]
    cfg = site_config(mport, buses, devices, sim={
        "base_load_w": 500, "devices": {f"inv{i}": {"power_w": 1000 + i} for i in range(n)}})
    sim = env.sim(env.write_json("site.json", cfg))
    for i in range(n):
        wait_port(base + i, sim)
    return mport, base, cfg


def run_poll(env, conf, sub, seconds):
    """The collector on conf for WARMUP + seconds; its CPU, readings, memory and poller stats."""
    stats = env.path("stats.json")
    col = env.collector(conf, extra=["--stats", stats])
    time.sleep(WARMUP)  # discovery and connection set-up are not what is measured
    c0, t0, n0 = cpu_s(col.pid), time.monotonic(), len(sub.all())
    time.sleep(seconds)
    c1, t1, n1 = cpu_s(col.pid), time.monotonic(), len(sub.all())
    r = {"cpu_s": c1 - c0, "t0": t0, "t1": t1, "readings": n1 - n0, "rss_kb": mem_kb(col.pid, "VmRSS"),
         "hwm_kb": mem_kb(col.pid, "VmHWM"), "mem": mem_breakdown(col.pid)}
    env.stop(col)
    with open(stats) as f:
        r["stats"] = json.load(f)
    return r


def drifts_ms(sub, t0, t1):
    per_dev = {}
    for _, topic, payload in [m for m in sub.all() if t0 <= m[0] <= t1]:
        per_dev.setdefault(topic, []).append(json.loads(payload)["ts"])
    return [(ts[-1] - ts[0]) - (len(ts) - 1) * 1000 for ts in per_dev.values() if len(ts) > 1]


def run_baseline(mport, base, n, seconds):
    bl = subprocess.run([os.path.join(BUILD, "bench", "baseline"), "127.0.0.1", str(base), str(n), "1000",
                         str(seconds), str(mport)], capture_output=True, text=True, timeout=seconds + 120)
    b = json.loads(bl.stdout.strip().splitlines()[-1])
    return b, b["cpu_s"] / b["readings"] * 1000 if b["readings"] else float("nan")


def influx_count(iport):
    res = influx_query(iport, "SELECT COUNT(power_w) FROM device", "fabgrid")["results"][0]
    series = res.get("series") or []
    return series[0]["values"][0][1] if series else 0


def run_influx(env, cfg, sub, seconds):
    """The same site with an "influx" section (a real influxd): memory with libcurl, SQLite and zlib loaded."""
    iport = env.influxd()
    influx_query(iport, "CREATE DATABASE fabgrid")
    cfg = dict(cfg, influx={"url": f"http://127.0.0.1:{iport}", "database": "fabgrid",
                            "spool_dir": env.path("spool"), "flush_s": 1})
    r = run_poll(env, env.write_json("site-influx.json", cfg), sub, seconds)
    r["stored"] = influx_count(iport)
    return r


def report(n, seconds, base_seconds, r, b, base_cpu):
    st, readings = r["stats"], r["readings"]
    col_cpu = r["cpu_s"] / readings * 1000 if readings else float("nan")
    p99 = percentile_us(st["late_hist"], st["late_step_us"], 0.99)
    p50 = percentile_us(st["late_hist"], st["late_step_us"], 0.50)
    print(f"devices {n}, poll 1000 ms, measured window {seconds:.0f} s (collector), {base_seconds} s (baseline)")
    print(f"collector: {readings} readings in window ({readings / (r['t1'] - r['t0']):.1f}/s, expected {n}/s), "
          f"requests/poll {st['requests'] / max(st['polls'], 1):.3f} (incl. discovery), "
          f"failures {st['failures']}, skipped {st['skipped']}")
    print(f"collector CPU: {col_cpu:.4f} s per 1000 readings")
    print(f"baseline  CPU: {base_cpu:.4f} s per 1000 readings ({b['readings']} readings)")
    print(f"ratio collector/baseline CPU: {col_cpu / base_cpu:.2f}")
    print(f"poll start lateness: p50 <= {p50 / 1000:.2f} ms, p99 <= {p99 / 1000:.2f} ms, "
          f"max {st['late_max_us'] / 1000:.2f} ms")


def main():
    a = parse_args()
    env = Env("bench")
    try:
        mport, base, cfg = sim_site(env, a.devices)
        sub = Sub(env, mport, "fabgrid/test/device/+/state")
        r = run_poll(env, env.write_json("site-mqtt.json", cfg), sub, a.seconds)
        drifts = drifts_ms(sub, r["t0"], r["t1"])
        b, base_cpu = run_baseline(mport, base, a.devices, a.base_seconds)
        report(a.devices, a.seconds, a.base_seconds, r, b, base_cpu)
        if drifts:
            print(f"drift over {a.seconds:.0f} s (last ts - first ts - (n-1)*1000 ms, per device): "
                  f"min {min(drifts)} ms, max {max(drifts)} ms")
        print(f"collector resident memory (MQTT only, as the baseline): {r['rss_kb'] / 1024:.1f} MB "
              f"(peak {r['hwm_kb'] / 1024:.1f} MB)")
        print_breakdown(r["mem"])
        if a.influx_seconds > 0:
            ri = run_influx(env, cfg, sub, a.influx_seconds)
            print(f"collector resident memory with an influx section (real influxd, {a.influx_seconds:.0f} s, "
                  f"{ri['stored']} readings stored): {ri['rss_kb'] / 1024:.1f} MB "
                  f"(peak {ri['hwm_kb'] / 1024:.1f} MB)")
            print_breakdown(ri["mem"])
    finally:
        env.close()


if __name__ == "__main__":
    main()
