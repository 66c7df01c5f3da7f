"""bench_poll: the collector against 100 simulated SunSpec inverters (one port each, as 100 inverters
on a LAN), 1 s polls, real Mosquitto, all on loopback; then the baseline loop (bench/baseline.c: one
blocking libmodbus request after another, one JSON message per reading) against the same simulator
in the same run. Prints CPU seconds per 1,000 readings for both and their ratio, p99 poll-start
lateness, drift over the window, resident memory, and requests per poll measured on the wire."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from fgtest import BUILD, Env, Sub, free_port_range, site_config, wait_port  # noqa: E402

N = int(os.environ.get("BENCH_DEVICES", "100"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "600"))
BASE_SECONDS = int(os.environ.get("BASE_SECONDS", "120"))
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


def main():
    env = Env("bench")
    try:
        mport = env.mosquitto("max_queued_messages 100000\n")
        base = free_port_range(N)
        buses = [{"id": f"b{i}", "type": "tcp", "host": "127.0.0.1", "port": base + i} for i in range(N)]
        devices = [{"id": f"inv{i}", "bus": f"b{i}", "unit": 1, "profile": "sunspec", "role": "pv",
                    "poll_ms": 1000} for i in range(N)]
        conf = env.write_json("site.json", site_config(mport, buses, devices, sim={
            "base_load_w": 500, "devices": {f"inv{i}": {"power_w": 1000 + i} for i in range(N)}}))
        sim = env.sim(conf)
        for i in range(N):
            wait_port(base + i, sim)
        sub = Sub(env, mport, "fabgrid/test/device/+/state")
        stats = env.path("stats.json")
        col = env.collector(conf, extra=["--stats", stats])
        time.sleep(WARMUP)  # discovery and connection set-up are not what is measured
        c0, t0, n0 = cpu_s(col.pid), time.monotonic(), len(sub.all())
        time.sleep(SECONDS)
        c1, t1, n1 = cpu_s(col.pid), time.monotonic(), len(sub.all())
        rss, hwm = mem_kb(col.pid, "VmRSS"), mem_kb(col.pid, "VmHWM")
        env.stop(col)
        with open(stats) as f:
            st = json.load(f)
        msgs = [m for m in sub.all() if t0 <= m[0] <= t1]
        per_dev = {}
        for _, topic, payload in msgs:
            per_dev.setdefault(topic, []).append(json.loads(payload)["ts"])
        drifts = []
        for ts in per_dev.values():
            if len(ts) > 1:
                drifts.append((ts[-1] - ts[0]) - (len(ts) - 1) * 1000)
        readings = n1 - n0
        col_cpu = (c1 - c0) / readings * 1000 if readings else float("nan")
        p99 = percentile_us(st["late_hist"], st["late_step_us"], 0.99)
        p50 = percentile_us(st["late_hist"], st["late_step_us"], 0.50)

        bl = subprocess.run([os.path.join(BUILD, "bench", "baseline"), "127.0.0.1", str(base), str(N), "1000",
                             str(BASE_SECONDS), str(mport)], capture_output=True, text=True, timeout=BASE_SECONDS + 120)
        b = json.loads(bl.stdout.strip().splitlines()[-1])
        base_cpu = b["cpu_s"] / b["readings"] * 1000 if b["readings"] else float("nan")

        print(f"devices {N}, poll 1000 ms, measured window {SECONDS:.0f} s (collector), {BASE_SECONDS} s (baseline)")
        print(f"collector: {readings} readings in window ({readings / (t1 - t0):.1f}/s, expected {N}/s), "
              f"requests/poll {st['requests'] / max(st['polls'], 1):.3f} (incl. discovery), "
              f"failures {st['failures']}, skipped {st['skipped']}")
        print(f"collector CPU: {col_cpu:.4f} s per 1000 readings")
        print(f"baseline  CPU: {base_cpu:.4f} s per 1000 readings ({b['readings']} readings)")
        print(f"ratio collector/baseline CPU: {col_cpu / base_cpu:.2f}")
        print(f"poll start lateness: p50 <= {p50 / 1000:.2f} ms, p99 <= {p99 / 1000:.2f} ms, "
              f"max {st['late_max_us'] / 1000:.2f} ms")
        if drifts:
            print(f"drift over {SECONDS:.0f} s (last ts - first ts - (n-1)*1000 ms, per device): "
                  f"min {min(drifts)} ms, max {max(drifts)} ms")
        print(f"collector resident memory: {rss / 1024:.1f} MB (peak {hwm / 1024:.1f} MB)")
    finally:
        env.close()


if __name__ == "__main__":
    main()
