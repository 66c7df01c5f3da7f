"""MQTT ingest on real Mosquitto and InfluxDB: Shelly Gen2, Tasmota and OpenDTU payloads published with
mosquitto_pub arrive as device/DEV/state with the right fields, count in the balance by their role, and
are stored; fabgrid's own machine/plan topics become points; a set of malformed payloads leaves the
collector running with the exact rejected count and nothing written as 0."""
import json
import signal
import subprocess
import time

from fgtest import stats_from_log, Env, Sub, check, check_eq, done, free_port, influx_query, influx_series, site_config, wait_for, wait_port

SHELLY = {"id": 0, "source": "init", "output": True, "apower": 1234.5, "voltage": 231.2, "freq": 50.0,
          "current": 5.431, "aenergy": {"total": 98765.432, "by_minute": [0, 0, 0], "minute_ts": 1700000000},
          "temperature": {"tC": 41.3, "tF": 106.3}}
TASMOTA = {"Time": "2026-11-29T10:00:00", "ENERGY": {"TotalStartTime": "2024-01-01T00:00:00", "Total": 3.705,
           "Yesterday": 0.5, "Today": 0.25, "Power": 815, "ApparentPower": 830, "ReactivePower": 150,
           "Factor": 0.98, "Voltage": 229, "Current": 3.62}}


def pub(port, topic, payload):
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, "-m", payload],
                   check=True)


def test_ingest():
    env = Env("ingest")
    try:
        mport, sport, iport = env.mosquitto(), free_port(), env.influxd()
        influx_query(iport, "CREATE DATABASE fabgrid")
        cfg = site_config(
            mport, [{"id": "lan", "type": "tcp", "host": "127.0.0.1", "port": sport}],
            [{"id": "grid", "bus": "lan", "unit": 1, "profile": "sdm630", "role": "grid", "poll_ms": 300}],
            mqtt_devices=[{"id": "plug", "preset": "shelly-gen2", "topic": "shellyplus-laser", "role": "load"},
                          {"id": "kettle", "preset": "tasmota", "topic": "tasmota_k", "role": "load"},
                          {"id": "balcony", "preset": "opendtu", "topic": "solar", "serial": "114172220001",
                           "role": "pv", "interval_s": 60},
                          {"id": "heat", "preset": "generic", "topic": "heatpump/power", "role": "load",
                           "fields": [{"field": "power_w", "pointer": "", "scale": 1000}]}],
            influx={"url": f"http://127.0.0.1:{iport}", "database": "fabgrid", "spool_dir": env.path("spool"),
                    "flush_s": 1},
            sim={"base_load_w": 500})
        conf = env.write_json("site.json", cfg)
        sim = env.sim(conf)
        wait_port(sport, sim)
        sub = Sub(env, mport, "fabgrid/#")
        col = env.collector(conf)
        check("collector online", sub.wait("fabgrid/test/collector/status", lambda p: p == "online") is not None, "")
        time.sleep(0.5)  # the subscriptions are made right after the connect
        pub(mport, "shellyplus-laser/status/switch:0", json.dumps(SHELLY))
        pub(mport, "tele/tasmota_k/SENSOR", json.dumps(TASMOTA))
        pub(mport, "solar/114172220001/0/power", "412.7")
        pub(mport, "solar/114172220001/0/yieldtotal", "1234.567")
        pub(mport, "heatpump/power", "1.25")
        m = sub.wait("fabgrid/test/device/plug/state")
        s = json.loads(m[2]) if m else {}
        check_eq("shelly gen2 fields", {k: s.get(k) for k in ("power_w", "energy_wh", "voltage_v", "current_a", "on")},
                 {"power_w": 1234.5, "energy_wh": 98765.432, "voltage_v": 231.2, "current_a": 5.431, "on": 1})
        m = sub.wait("fabgrid/test/device/kettle/state")
        s = json.loads(m[2]) if m else {}
        check_eq("tasmota fields (kWh -> Wh)", {k: s.get(k) for k in ("power_w", "energy_wh", "voltage_v", "power_factor")},
                 {"power_w": 815, "energy_wh": 3705, "voltage_v": 229, "power_factor": 0.98})
        m = sub.wait("fabgrid/test/device/balcony/state", lambda p: "energy_wh" in p)
        s = json.loads(m[2]) if m else {}
        check_eq("opendtu yieldtotal kWh -> energy_wh", s.get("energy_wh"), 1234567)
        check_eq("mqtt device status online", sub.last("fabgrid/test/device/plug/status"), "online")
        m = sub.wait("fabgrid/test/device/heat/state")
        check_eq("generic bare-number payload, pointer \"\", scale 1000", json.loads(m[2]).get("power_w") if m else None,
                 1250)
        # the opendtu inverter (role pv) counts in the balance: pv_w 412.7 while it is fresh (its power message
        # came before the yieldtotal one: a message without power keeps the last power)
        b = sub.wait("fabgrid/test/balance", lambda p: json.loads(p).get("pv_w") == 412.7)
        check("balance counts the MQTT pv device", b is not None, sub.last("fabgrid/test/balance"))
        if b:
            bal = json.loads(b[2])
            check_eq("balance load_w = pv_w + grid_w (+ the MQTT load devices are not in the sum)",
                     bal.get("load_w"), round(412.7 + bal["grid_w"], 9))
        # fabgrid's own topics
        pub(mport, "fabgrid/test/machine/kiln/state",
            json.dumps({"ts": 1795000000000, "on": True, "power_w": 6000, "job": "kiln-daily", "reason": "plan"}))
        pub(mport, "fabgrid/test/balancer/plan", json.dumps({"ts": 1795000000000, "slot_min": 15, "slots": [
            {"start": 1795000900000, "pv_w": 3000, "load_w": 800, "machines": {"kiln": 6000}},
            {"start": 1795001800000, "pv_w": 3500, "load_w": 700, "machines": {}}]}))
        # malformed: each is counted once, nothing crashes, nothing becomes 0
        bad = [("shellyplus-laser/status/switch:0", "not json"),
               ("shellyplus-laser/status/switch:0", '{"apower": "12"}'),
               ("shellyplus-laser/status/switch:0", '{"apower": null}'),
               ("shellyplus-laser/status/switch:0", "[" * 100 + "]" * 100),
               ("shellyplus-laser/status/switch:0", "x" * 70000),
               ("tele/tasmota_k/SENSOR", '{"ENERGY": {"Power": true}}'),
               ("solar/114172220001/0/power", "nan"),
               ("fabgrid/test/advice", '{"level": 3}'),
               ("fabgrid/test/balancer/plan", '{"ts": 1, "slots": "x"}')]
        for topic, payload in bad:
            pub(mport, topic, payload)
        # ignored, not rejected: an empty payload clears a retained topic; OpenDTU leaves fabgrid does not map
        pub(mport, "tele/tasmota_k/SENSOR", "")
        pub(mport, "solar/114172220001/0/efficiency", "97.1")
        time.sleep(2)
        col.send_signal(signal.SIGUSR1)
        wait_for(lambda: stats_from_log(env.log("collector")).get("ingest_rejected") is not None, timeout=10)
        st = stats_from_log(env.log("collector"))
        check_eq("malformed payloads rejected, exact count", st.get("ingest_rejected"), len(bad))
        check_eq("empty payload and unmapped OpenDTU leaf ignored", st.get("ingest_ignored"), 2)
        check("collector still running", col.poll() is None, col.returncode)
        states = [json.loads(p) for _, _, p in sub.all("fabgrid/test/device/plug/state")]
        check_eq("no state from a malformed shelly payload", len(states), 1)
        time.sleep(2.5)
        env.stop(col)
        pts = influx_series(iport, "SELECT power_w, energy_wh FROM device WHERE device = 'plug'", "fabgrid")
        check_eq("shelly point stored", [p[1:] for p in pts], [[1234.5, 98765.432]])
        k = influx_series(iport, "SELECT \"on\", power_w FROM machine WHERE machine = 'kiln'", "fabgrid")
        check_eq("machine state stored", k, [[1795000000000, 1, 6000]])
        p = influx_series(iport, "SELECT planned_w FROM plan WHERE machine = 'kiln'", "fabgrid")
        check_eq("plan slots stored as future points", p, [[1795000900000, 6000], [1795001800000, 0]])
        f = influx_series(iport, "SELECT pv_w, load_w FROM forecast", "fabgrid")
        check_eq("forecast slots stored", f, [[1795000900000, 3000, 800], [1795001800000, 3500, 700]])
    finally:
        env.close()


def test_mqtt_device_goes_offline():
    env = Env("ingest-offline")
    try:
        mport = env.mosquitto()
        cfg = site_config(mport, [], [], mqtt_devices=[
            {"id": "plug", "preset": "shelly-gen2", "topic": "sp", "role": "load", "interval_s": 1}])
        conf = env.write_json("site.json", cfg)
        sub = Sub(env, mport, "fabgrid/#")
        env.collector(conf)
        sub.wait("fabgrid/test/collector/status", lambda p: p == "online")
        time.sleep(0.5)
        pub(mport, "sp/status/switch:0", json.dumps({"apower": 10.0}))
        t = time.monotonic()
        m = sub.wait("fabgrid/test/device/plug/status", lambda p: p == "offline", timeout=10)
        check("silent MQTT device offline after 3 x interval", m is not None and 3.0 <= m[0] - t <= 3.6,
              m and m[0] - t)
    finally:
        env.close()


if __name__ == "__main__":
    test_ingest()
    test_mqtt_device_goes_offline()
    done()
