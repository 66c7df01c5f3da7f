"""make demo: a simulated workshop on loopback, end to end as far as fabgrid goes today.
Starts Mosquitto, InfluxDB, fabgrid-sim (a 12 kWp inverter following measured PV of NREL's SERF East
roof, an SDM630 grid meter with the workshop's base load, a relay module) and the collector, all on a
simulated clock (--clock, 240x: half a day in three minutes), shows the site balance as it goes,
then prints the day's energy from InfluxDB and replays the same day through the balancer (plan vs
immediate start) with a picture of the day. The live balancer daemon is issue 5: machines are
planned in the replay, not switched live yet. Ctrl-C stops everything by PID; the InfluxDB data stays
in the folder printed at the end."""
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from fgtest import BIN, DATA, PROFILES, Env, Sub, free_port, influx_query, influx_series, wait_for, wait_port  # noqa

SPEED = float(os.environ.get("DEMO_SPEED", "240"))
SECONDS = float(os.environ.get("DEMO_SECONDS", "180"))
START = "2016-07-15T06:00:00-07:00"
PV = os.path.join(DATA, "pv-nrel-serf-east", "serf_east_15min_ac_power.csv")
LOAD = os.path.join(DATA, "load-tool-manufacturer", "LP_G_MV.csv")


def site(env, mport, iport, sport):
    cfg = json.load(open(os.path.join(ROOT, "bench", "workshop.json")))
    cfg["mqtt"] = {"host": "127.0.0.1", "port": mport, "prefix": "fabgrid"}
    cfg["influx"] = {"url": f"http://127.0.0.1:{iport}", "database": "fabgrid", "spool_dir": env.path("spool"),
                     "flush_s": 1}
    cfg["buses"] = [{"id": "lan", "type": "tcp", "host": "127.0.0.1", "port": sport}]
    cfg["devices"] = [
        {"id": "inverter", "bus": "lan", "unit": 1, "profile": "sunspec", "role": "pv", "poll_ms": 5000},
        {"id": "grid", "bus": "lan", "unit": 2, "profile": "sdm630", "role": "grid", "poll_ms": 5000},
        {"id": "relays", "bus": "lan", "unit": 3, "profile": "relay8", "role": "machine", "poll_ms": 5000}]
    cfg["sim"] = {"load_csv": LOAD, "load_scale": 40,
                  "devices": {"inverter": {"pv_csv": PV, "pv_scale": 12 / 5.4}}}
    return env.write_json("site.json", cfg)


def progress(sub, t_end):
    while time.monotonic() < t_end:
        time.sleep(5)
        p = sub.last("fabgrid/demo/balance")
        if not p:
            continue
        b = json.loads(p)
        t = time.strftime("%H:%M", time.gmtime(b["ts"] / 1000 - 6 * 3600))
        print(f"  {t} MDT   PV {b.get('pv_w', 0) / 1000:6.2f} kW   load {b.get('load_w', 0) / 1000:6.2f} kW   "
              f"grid {b.get('grid_w', 0) / 1000:+7.2f} kW", flush=True)


def summary(iport):
    v = influx_series(iport, "SELECT INTEGRAL(pv_w, 1h), INTEGRAL(load_w, 1h) FROM balance", "fabgrid")
    imp = influx_series(iport, "SELECT INTEGRAL(imp, 1h) FROM (SELECT grid_w AS imp FROM balance WHERE grid_w > 0)",
                        "fabgrid")
    n = influx_series(iport, "SELECT COUNT(power_w) FROM device", "fabgrid")
    if v:
        pv, load = v[0][1] / 1000, v[0][2] / 1000
        im = imp[0][1] / 1000 if imp else 0.0
        used = load - im
        print(f"collected: PV {pv:.1f} kWh, load {load:.1f} kWh, grid import {im:.1f} kWh, "
              f"self-consumption {100 * min(used, pv) / pv if pv else 0:.0f} %, "
              f"{n[0][1] if n else 0} device points in InfluxDB")


def replay(env):
    out = {}
    for strat in ("plan", "immediate"):
        rep = env.path(f"replay-{strat}.json")
        args = [os.path.join(BIN, "fabgrid-balancer"), "-c", os.path.join(ROOT, "bench", "workshop.json"),
                "--replay", "--pv", PV, "--load", LOAD, "--pv-scale", str(12 / 5.4), "--load-scale", "40",
                "--from", "2016-07-15", "--days", "1", "--strategy", strat, "--report", rep]
        if strat == "plan":
            args += ["--svg", env.path("day.svg")]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        out[strat] = json.load(open(rep))
    for strat, r in out.items():
        print(f"balancer replay of the day, {strat:9s}: import {r['import_kwh']:.1f} kWh, self-consumption "
              f"{r['self_consumption_pct']:.0f} %, jobs on time {r['jobs_on_time']}/{r['jobs_total']}, "
              f"starts {r['starts']}")
    svg = env.path("day.svg")
    conv = shutil.which("rsvg-convert")
    if conv:
        subprocess.run([conv, "-o", env.path("day.png"), svg], check=False)
    print(f"picture of the day: {svg}" + (f" and {env.path('day.png')}" if conv else ""))


def main():
    env = Env("demo")
    env.close = lambda: [env.stop(p) for p in reversed(env.procs)]  # keep the folder and its data
    try:
        print(f"fabgrid demo in {env.dir} (simulated clock x{SPEED:.0f} from {START})", flush=True)
        mport, iport, sport = env.mosquitto(), env.influxd(), free_port()
        influx_query(iport, "CREATE DATABASE fabgrid")
        conf = site(env, mport, iport, sport)
        json_cfg = json.load(open(conf))
        json_cfg["site"]["id"] = "demo"
        conf = env.write_json("site.json", json_cfg)
        clock = ["--clock", f"{START}@{SPEED}"]
        sim = env.sim(conf, extra=clock)
        wait_port(sport, sim)
        sub = Sub(env, mport, "fabgrid/demo/#")
        env.collector(conf, extra=clock)
        wait_for(lambda: sub.last("fabgrid/demo/balance"), timeout=30)
        progress(sub, time.monotonic() + SECONDS)
        env.close()
        env.procs = []
        iport2 = env.influxd(port=iport)
        summary(iport2)
        replay(env)
        print(f"InfluxDB data kept in {env.path('influxd')} (see README: Grafana)")
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
    finally:
        env.close()


if __name__ == "__main__":
    main()
