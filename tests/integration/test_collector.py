"""Integration: real Mosquitto, fabgrid-sim and the collector. The values on MQTT equal what the sim
serves; writes reach the relays; --once prints the same values; a reading from a misbehaving device
never turns into a published 0."""
import json
import os
import subprocess

from fgtest import BIN, PROFILES, Env, Sub, check, check_eq, done, free_port, site_config, wait_port

POWER_W = 3210.5  # W is int16: 32105 with W_SF -1
BASE_W = 1000.0


def workshop(env, mport, sport, poll_ms=300, sim_devices=None, timeout_ms=1000):
    cfg = site_config(
        mport,
        buses=[{"id": "lan", "type": "tcp", "host": "127.0.0.1", "port": sport}],
        devices=[
            {"id": "inv1", "bus": "lan", "unit": 1, "profile": "sunspec", "role": "pv", "poll_ms": poll_ms},
            {"id": "grid", "bus": "lan", "unit": 2, "profile": "sdm630", "role": "grid", "poll_ms": poll_ms},
            {"id": "ssm", "bus": "lan", "unit": 3, "profile": "sunspec", "role": "load", "poll_ms": poll_ms,
             "timeout_ms": timeout_ms},
            {"id": "relays", "bus": "lan", "unit": 4, "profile": "relay8", "role": "machine", "poll_ms": poll_ms},
        ],
        machines=[{"id": "kiln", "power_w": 6000, "interruptible": False, "start": "auto",
                   "actuator": {"type": "modbus", "device": "relays", "point": "coil_0"}}],
        sim={"base_load_w": BASE_W, "devices": sim_devices or {"inv1": {"power_w": POWER_W}}})
    return env.write_json("site.json", cfg)


def state(sub, dev):
    p = sub.last(f"fabgrid/test/device/{dev}/state")
    return json.loads(p) if p else None


def test_values_and_write():
    env = Env("values")
    try:
        mport, sport = env.mosquitto(), free_port()
        conf = workshop(env, mport, sport)
        sim = env.sim(conf)
        wait_port(sport, sim)
        sub = Sub(env, mport, "fabgrid/#")
        env.collector(conf)
        ok = sub.wait("fabgrid/test/balance", lambda p: "pv_w" in p)
        check("balance published", ok is not None, env.log("collector")[-2000:])
        inv, grid, ssm = state(sub, "inv1"), state(sub, "grid"), state(sub, "ssm")
        check("inverter state", inv is not None, "no state")
        if inv:
            check_eq("sunspec power_w (W=32105, W_SF=-1)", inv.get("power_w"), POWER_W)
            check_eq("sunspec voltage_l1_v", inv.get("voltage_l1_v"), 230.0)
            check_eq("sunspec frequency_hz", inv.get("frequency_hz"), 50.0)
            check_eq("sunspec model 1 strings", (inv.get("manufacturer"), inv.get("model"), inv.get("serial")),
                     ("fabgrid", "sim-inverter", "inv1"))
            check("unimplemented points (0x8000 TmpSnk, Tmp of model 160) omitted, not 0",
                  "temperature_heatsink_c" not in inv and "mppt1_temperature_c" not in inv and
                  inv.get("temperature_c") == 35.0, sorted(inv))
            check("model 160 modules", "mppt1_dc_power_w" in inv and "mppt2_dc_power_w" in inv, sorted(inv))
        if grid:
            check_eq("sdm630 power_w (float32)", grid.get("power_w"), BASE_W - POWER_W)
            check_eq("sdm630 voltage_l1_v", grid.get("voltage_l1_v"), 230.0)
        if ssm:
            check_eq("sunspec meter 203 power_w", ssm.get("power_w"), BASE_W)
        bal = json.loads(sub.last("fabgrid/test/balance"))
        check_eq("balance", {k: bal.get(k) for k in ("pv_w", "grid_w", "load_w", "surplus_w")},
                 {"pv_w": POWER_W, "grid_w": BASE_W - POWER_W, "load_w": BASE_W, "surplus_w": POWER_W - BASE_W})
        check_eq("collector/status online", sub.last("fabgrid/test/collector/status"), "online")
        check_eq("device status online", sub.last("fabgrid/test/device/grid/status"), "online")
        # a write over MQTT switches the kiln's relay; the sim's grid meter then sees the kiln
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mport), "-q", "1",
                        "-t", "fabgrid/test/device/relays/set/coil_0", "-m", "1"], check=True)
        m = sub.wait("fabgrid/test/device/grid/state",
                     lambda p: json.loads(p).get("power_w") == BASE_W + 6000 - POWER_W)
        check("write coil_0 = 1 reaches the relay and the grid meter", m is not None,
              sub.last("fabgrid/test/device/grid/state"))
        r = sub.wait("fabgrid/test/device/relays/state", lambda p: json.loads(p).get("coil_0") == 1)
        check("relay state shows coil_0 on", r is not None, sub.last("fabgrid/test/device/relays/state"))
        b = sub.wait("fabgrid/test/balance", lambda p: json.loads(p).get("load_w") == BASE_W + 6000)
        check("balance load_w includes the kiln", b is not None, sub.last("fabgrid/test/balance"))
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mport), "-q", "1",
                        "-t", "fabgrid/test/device/grid/set/power_w", "-m", "5"], check=True)
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mport), "-q", "1",
                        "-t", "fabgrid/test/device/relays/set/coil_1", "-m", "abc"], check=True)
        log = env.log("collector")
        import time
        end = time.monotonic() + 10
        while time.monotonic() < end and "refused write to coil_1" not in log:
            time.sleep(0.05)
            log = env.log("collector")
        check("write to a read-only point refused", "refused write to power_w: point not writable" in log, log[-1500:])
        check("non-numeric write refused", "refused write to coil_1: payload is not a number" in log, log[-1500:])
        # --once: one JSON object per device, same values
        out = subprocess.run([f"{BIN}/fabgrid-collector", "-c", conf, "--profiles", PROFILES, "--once"],
                             capture_output=True, text=True, timeout=30)
        objs = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        check_eq("--once exit code", out.returncode, 0)
        check_eq("--once devices", [o["device"] for o in objs], ["inv1", "grid", "ssm", "relays"])
        if len(objs) == 4:
            check_eq("--once inverter power_w", objs[0].get("power_w"), POWER_W)
            check_eq("--once grid power_w (kiln on)", objs[1].get("power_w"), BASE_W + 6000 - POWER_W)
    finally:
        env.close()


def test_fallback_and_faults():
    """A device that refuses long reads (exception 2 above 10 registers) and one that answers every
    7th request with garbage and every 5th with a wrong transaction id: the collector falls back to
    smaller reads, and never publishes a wrong value or a 0."""
    env = Env("fallback")
    try:
        mport, sport = env.mosquitto(), free_port()
        conf = workshop(env, mport, sport, poll_ms=200, sim_devices={
            "inv1": {"power_w": POWER_W},
            "grid": {"max_read": 10},
            "ssm": {"faults": {"garbage_every": 7, "bad_tid_every": 5}}}, timeout_ms=300)
        sim = env.sim(conf)
        wait_port(sport, sim)
        sub = Sub(env, mport, "fabgrid/test/device/#")
        env.collector(conf)
        m = sub.wait("fabgrid/test/device/grid/state",
                     lambda p: json.loads(p).get("power_w") == BASE_W - POWER_W and "energy_total_wh" in p)
        check("exception 2 on coalesced reads: fallback still reads every point", m is not None,
              sub.last("fabgrid/test/device/grid/state"))
        sub.wait_count("fabgrid/test/device/ssm/state", 8)
        vals = [json.loads(p).get("power_w") for _, _, p in sub.all("fabgrid/test/device/ssm/state")]
        check("garbage and wrong transaction ids never published as values",
              len(vals) >= 8 and all(v == BASE_W for v in vals), vals)
        log = env.log("collector")
        check("fallback logged", "reading without bridging gaps" in log or "one point at a time" in log, log[-1500:])
    finally:
        env.close()


if __name__ == "__main__":
    test_values_and_write()
    test_fallback_and_faults()
    done()
