"""Closed loop (issue 5): one simulated day of NREL SERF East with the bench workshop's machines on
fabgrid-sim relays, the collector and the live balancer on a clock 600 times faster than real time,
from 04:30 to 21:00 local (PV is zero outside). The day is Saturday 2016-07-16: on weekdays the
workshop uses all of its PV whatever the balancer does (self-consumption 100 %), on this Saturday a
third of it is exported unless the compressor and the printer farm are placed under the sun, so the
comparison can fail. Every required job must be done by its deadline, the day's self-consumption must
be within 3 percentage points of what --replay reports for the same day and config, and every relay
switch must show in machine/+/state with its reason."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import BIN, Env, check, check_eq, done, free_port  # noqa: E402
from fgbal import Clock, LOAD, PREFIX, PV, PV_SCALE, LOAD_SCALE, coil_changes, machine_switches, payloads, \
    self_consumption, start_site, wait_sim_time, workshop  # noqa: E402

SPEED = 600
DAY = "2016-07-16"
START = DAY + "T04:30:00-06:00"
T0 = 1468665000000          # START in unix ms
T1 = T0 + int(16.5 * 3600000)  # 21:00 local
REASONS = {"plan", "surplus", "deadline", "stale-data", "done", "import", "window", "manual", "none"}


def replay(env, conf):
    rep = env.path("replay.json")
    subprocess.run([os.path.join(BIN, "fabgrid-balancer"), "-c", conf, "--replay", "--pv", PV, "--load", LOAD,
                    "--pv-scale", str(PV_SCALE), "--load-scale", str(LOAD_SCALE), "--from", DAY,
                    "--days", "1", "--report", rep], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return json.load(open(rep))


def main():
    env = Env("bal-live")
    try:
        cfg = workshop(env, env.mosquitto(), free_port())
        conf, sub, bal = start_site(env, cfg, Clock(START, SPEED))
        check("the simulated day reaches 21:00", wait_sim_time(sub, T1, timeout=float(os.environ.get("LIVE_TIMEOUT", 16.5 * 3600 / SPEED + 60))))
        env.stop(bal)
        check_eq("the balancer exits 0 on SIGTERM", bal.returncode, 0)
        jobs = {j: payloads(sub, PREFIX + f"jobs/{j}@{DAY}") for j in ("air-tank", "print-run")}
        for j, msgs in jobs.items():
            last = msgs[-1] if msgs else {}
            check_eq(f"{j}: done by its deadline", last.get("state"), "done")
            check(f"{j}: its whole energy delivered", abs(last.get("done_wh", 0) - last.get("energy_wh", -1)) < 1,
                  f"{last.get('done_wh')} of {last.get('energy_wh')} Wh")
        live_pct, pv_kwh = self_consumption(sub, T0, T1)
        rep = replay(env, conf)
        print(f"self-consumption live {live_pct:.1f} % (PV {pv_kwh:.1f} kWh), replay "
              f"{rep['self_consumption_pct']:.1f} % (PV {rep['pv_kwh']:.1f} kWh, import {rep['import_kwh']:.1f} kWh)",
              flush=True)
        check("self-consumption within 3 points of the replay", abs(live_pct - rep["self_consumption_pct"]) <= 3,
              f"live {live_pct:.1f} %, replay {rep['self_consumption_pct']:.1f} %")
        for i, m in enumerate(cfg["machines"]):
            sw = machine_switches(sub, m["id"])
            coils = coil_changes(sub, i)
            ons = sum(1 for _, on, _ in sw if on)
            coil_ons = sum(1 for _, v in coils if v)
            check_eq(f"{m['id']}: relay starts seen as machine/{m['id']}/state switches", coil_ons, ons)
            bad = [r for _, _, r in sw if r not in REASONS]
            check_eq(f"{m['id']}: every switch has a known reason", bad, [])
        print("log tail:\n" + "\n".join(env.log("balancer").splitlines()[-15:]))
    finally:
        if os.environ.get("KEEP"):
            print("kept", env.dir)
        else:
            env.close()
    done()


if __name__ == "__main__":
    main()
