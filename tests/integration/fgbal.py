"""fgbal: what the balancer's integration tests share: the bench workshop (bench/workshop.json) as a
live site of fabgrid-sim devices (a 12 kWp inverter following NREL SERF East, an SDM630 grid meter with
the workshop's base load, a relay module switching the machines), the collector and the balancer on a
fast simulated clock, and readers of what they publish."""
import datetime
import json
import os
import time

from fgtest import BIN, DATA, ROOT, Sub, free_port, wait_for, wait_port

PV = os.path.join(DATA, "pv-nrel-serf-east", "serf_east_15min_ac_power.csv")
LOAD = os.path.join(DATA, "load-tool-manufacturer", "LP_G_MV.csv")
PV_SCALE = 12 / 5.4
LOAD_SCALE = 40
PREFIX = "fabgrid/workshop/"


def workshop(env, mport, sport, poll_ms=10000, extra_machines=(), extra_jobs=(), balancer=None):
    """The bench workshop as a live site. The EV charger is a relay here, so it charges at a fixed
    11 kW (a relay can't modulate); the replay it is compared with gets the same config."""
    cfg = json.load(open(os.path.join(ROOT, "bench", "workshop.json")))
    for m in cfg["machines"]:
        if m["id"] == "ev":
            for k in ("min_power_w", "max_power_w", "step_w"):
                m.pop(k, None)
            m["power_w"] = 11000
    cfg["machines"] += list(extra_machines)
    cfg["jobs"] += list(extra_jobs)
    for i, m in enumerate(cfg["machines"]):
        m["actuator"] = {"type": "modbus", "device": "relays", "point": f"coil_{i}"}
    cfg["mqtt"] = {"host": "127.0.0.1", "port": mport, "prefix": "fabgrid", "keepalive_s": 5}
    cfg["buses"] = [{"id": "lan", "type": "tcp", "host": "127.0.0.1", "port": sport}]
    cfg["devices"] = [
        {"id": "inverter", "bus": "lan", "unit": 1, "profile": "sunspec", "role": "pv", "poll_ms": poll_ms},
        {"id": "grid", "bus": "lan", "unit": 2, "profile": "sdm630", "role": "grid", "poll_ms": poll_ms},
        {"id": "relays", "bus": "lan", "unit": 3, "profile": "relay8", "role": "machine", "poll_ms": poll_ms}]
    cfg["sim"] = {"load_csv": LOAD, "load_scale": LOAD_SCALE,
                  "devices": {"inverter": {"pv_csv": PV, "pv_scale": PV_SCALE}}}
    cfg["balancer"]["state_file"] = env.path("balancer-state.json")
    # at 600x a millisecond of latency is 0.6 s of simulated time: a command is confirmed by the
    # collector's next relay poll, so the timeout covers a poll and the way there
    cfg["balancer"]["confirm_timeout_s"] = 3 * poll_ms // 1000
    cfg["balancer"].update(balancer or {})
    return cfg


class Clock:
    """One simulated timeline for every process of a site: a daemon started (or restarted) later gets
    a --clock that begins where the others already are."""

    def __init__(self, start_iso, speed):
        self.start = datetime.datetime.fromisoformat(start_iso)
        self.speed = speed
        self.t0 = time.monotonic()

    def arg(self):
        now = self.start + datetime.timedelta(seconds=(time.monotonic() - self.t0) * self.speed)
        return f"{now.isoformat(timespec='milliseconds')}@{self.speed}"


def start_site(env, cfg, clock, with_balancer=True):
    """Starts sim, a subscriber to everything, the collector and (optionally) the balancer on one
    timeline (a Clock); returns (config path, subscriber, balancer process or None)."""
    conf = env.write_json("site.json", cfg)
    sim = env.sim(conf, extra=["--clock", clock.arg()])
    wait_port(cfg["buses"][0]["port"], sim)
    sub = Sub(env, cfg["mqtt"]["port"], "#")
    collector(env, conf, clock)
    bal = balancer(env, conf, clock) if with_balancer else None
    return conf, sub, bal


def collector(env, conf, clock):
    return env.collector(conf, extra=["--clock", clock.arg()])


def balancer(env, conf, clock, name="balancer"):
    return env.start([os.path.join(BIN, "fabgrid-balancer"), "-c", conf, "--clock", clock.arg(), "-v"], name)


def payloads(sub, topic):
    """Decoded JSON payloads of a topic, in arrival order."""
    out = []
    for _, _, p in sub.all(topic):
        try:
            out.append(json.loads(p))
        except ValueError:
            pass
    return out


def wait_sim_time(sub, t_ms, timeout):
    """Waits until a balance reading at or after t_ms (simulated) has arrived."""
    def reached():
        b = payloads(sub, PREFIX + "balance")
        return b and b[-1]["ts"] >= t_ms
    return wait_for(reached, timeout=timeout, step=0.2)


def machine_switches(sub, machine):
    """(ts, on, reason) of every change of a machine's published state."""
    out, last = [], None
    for m in payloads(sub, PREFIX + f"machine/{machine}/state"):
        if m.get("on") != last:
            out.append((m["ts"], m["on"], m.get("reason")))
            last = m.get("on")
    return out


def coil_changes(sub, coil):
    """(ts, value) of every change of a relay coil as the collector read it from the device."""
    out, last = [], None
    for m in payloads(sub, PREFIX + "device/relays/state"):
        v = m.get(f"coil_{coil}")
        if v is not None and v != last:
            out.append((m["ts"], v))
            last = v
    return out


def self_consumption(sub, t0_ms, t1_ms):
    """PV used on site / PV produced, %, from the balance readings between t0 and t1 (each reading
    held until the next), and the PV energy in kWh."""
    pv_wh = used_wh = 0.0
    rows = sorted({b["ts"]: b for b in payloads(sub, PREFIX + "balance")}.values(), key=lambda b: b["ts"])
    for a, b in zip(rows, rows[1:]):
        if a["ts"] < t0_ms or b["ts"] > t1_ms:
            continue
        h = (b["ts"] - a["ts"]) / 3600000
        pv = max(a.get("pv_w", 0), 0)
        export = max(-a["grid_w"], 0)
        pv_wh += pv * h
        used_wh += max(pv - export, 0) * h
    return (100 * used_wh / pv_wh if pv_wh else 0.0), pv_wh / 1000
