"""Failure isolation on real processes: a device that times out goes offline while the others keep
their poll rate (measured); a restarted sim port is recovered within one backoff step; a killed
collector is reported offline by its last will."""
import json
import signal
import time

from fgtest import Env, Sub, check, check_eq, done, free_port, site_config, wait_for, wait_port

POLL_MS = 200


def rate(sub, topic, t0, t1):
    return len([m for m in sub.all(topic) if t0 <= m[0] < t1])


def test_timeout_isolation():
    env = Env("isolation")
    try:
        mport, pa, pb = env.mosquitto(), free_port(), free_port()
        cfg = site_config(
            mport,
            buses=[{"id": "a", "type": "tcp", "host": "127.0.0.1", "port": pa},
                   {"id": "b", "type": "tcp", "host": "127.0.0.1", "port": pb}],
            devices=[{"id": "dead", "bus": "a", "unit": 1, "profile": "sdm630", "role": "load",
                      "poll_ms": POLL_MS, "timeout_ms": 150},
                     {"id": "same", "bus": "a", "unit": 2, "profile": "sdm630", "role": "load", "poll_ms": POLL_MS},
                     {"id": "other", "bus": "b", "unit": 1, "profile": "sdm630", "role": "grid", "poll_ms": POLL_MS}],
            sim={"base_load_w": 700, "devices": {"dead": {"faults": {"dead": True}}}})
        conf = env.write_json("site.json", cfg)
        sim = env.sim(conf)
        wait_port(pa, sim)
        wait_port(pb, sim)
        sub = Sub(env, mport, "fabgrid/#")
        env.collector(conf)
        m = sub.wait("fabgrid/test/device/dead/status", lambda p: p == "offline", timeout=15)
        check("timed-out device reported offline", m is not None, sub.all("fabgrid/test/device/dead/status"))
        check("timed-out device never published a state", not sub.all("fabgrid/test/device/dead/state"),
              sub.all("fabgrid/test/device/dead/state")[:2])
        # measure 5 s after the first backoff steps: the dead device is now retried rarely
        t0 = time.monotonic() + 1.0
        time.sleep(6.2)
        t1 = t0 + 5.0
        other = rate(sub, "fabgrid/test/device/other/state", t0, t1)
        same = rate(sub, "fabgrid/test/device/same/state", t0, t1)
        want = int(5000 / POLL_MS)
        print(f"# polls in 5 s: other bus {other}, same bus {same}, schedule {want}")
        check("device on another bus keeps its poll rate exactly (+-1)", abs(other - want) <= 1, other)
        # on its own bus the dead device costs only its backed-off attempts (each one timeout of 150 ms)
        check("device on the same bus loses at most the backed-off attempts", same >= want - 3, same)
        check_eq("healthy devices online", (sub.last("fabgrid/test/device/same/status"),
                                            sub.last("fabgrid/test/device/other/status")), ("online", "online"))
    finally:
        env.close()


def test_recover_after_sim_restart():
    env = Env("recover")
    try:
        mport, port = env.mosquitto(), free_port()
        cfg = site_config(mport, buses=[{"id": "a", "type": "tcp", "host": "127.0.0.1", "port": port}],
                          devices=[{"id": "grid", "bus": "a", "unit": 1, "profile": "sdm630", "role": "grid",
                                    "poll_ms": POLL_MS}], sim={"base_load_w": 321})
        conf = env.write_json("site.json", cfg)
        sim = env.sim(conf)
        wait_port(port, sim)
        sub = Sub(env, mport, "fabgrid/test/device/grid/#")
        env.collector(conf)
        check("state before the outage", sub.wait("fabgrid/test/device/grid/state") is not None, "")
        env.stop(sim)
        t_down = time.monotonic()
        m = sub.wait("fabgrid/test/device/grid/status", lambda p: p == "offline", timeout=10)
        check("offline after 3 failed polls", m is not None, sub.all("fabgrid/test/device/grid/status"))
        time.sleep(max(0.0, 2.0 - (time.monotonic() - t_down)))
        n_before = len(sub.all("fabgrid/test/device/grid/state"))
        sim2 = env.sim(conf, name="sim2")
        wait_port(port, sim2)
        t_up = time.monotonic()
        outage = t_up - t_down
        got = wait_for(lambda: len(sub.all("fabgrid/test/device/grid/state")) > n_before, timeout=15)
        delay = time.monotonic() - t_up
        # backoff doubles from one poll period: after an outage of T the step in force is < 2T + period
        step = 2 * outage + POLL_MS / 1000
        print(f"# outage {outage:.2f} s, recovered {delay:.2f} s after the port reopened (step bound {step:.2f} s)")
        check("recovers within one backoff step", bool(got) and delay <= step, f"{delay:.2f} s")
        m = sub.wait("fabgrid/test/device/grid/status", lambda p: p == "online", timeout=1)
        check_eq("status back online", sub.last("fabgrid/test/device/grid/status"), "online")
        check_eq("value after recovery", json.loads(sub.last("fabgrid/test/device/grid/state"))["power_w"], 321.0)
    finally:
        env.close()


def test_last_will():
    env = Env("will")
    try:
        mport, port = env.mosquitto(), free_port()
        cfg = site_config(mport, buses=[{"id": "a", "type": "tcp", "host": "127.0.0.1", "port": port}],
                          devices=[{"id": "grid", "bus": "a", "unit": 1, "profile": "sdm630", "role": "grid"}])
        cfg["mqtt"]["keepalive_s"] = 5
        conf = env.write_json("site.json", cfg)
        sim = env.sim(conf)
        wait_port(port, sim)
        sub = Sub(env, mport, "fabgrid/test/collector/status")
        col = env.collector(conf)
        check("collector/status online", sub.wait("fabgrid/test/collector/status", lambda p: p == "online")
              is not None, sub.all())
        col.send_signal(signal.SIGKILL)
        col.wait()
        t = time.monotonic()
        m = sub.wait("fabgrid/test/collector/status", lambda p: p == "offline", timeout=15)
        # a killed process leaves a closed socket: the broker publishes the will at once
        check("kill -9: last will publishes offline", m is not None, sub.all())
        if m:
            print(f"# will after {m[0] - t:.2f} s")
        col2 = env.collector(conf, name="collector2")
        sub.wait("fabgrid/test/collector/status", lambda p: p == "online", timeout=10)
        n = len(sub.all())
        env.stop(col2)
        m = wait_for(lambda: [x for x in sub.all()[n - 1:] if x[2] == "offline"], timeout=10)
        check("SIGTERM: clean stop publishes offline", bool(m), sub.all())
    finally:
        env.close()


if __name__ == "__main__":
    test_timeout_isolation()
    test_recover_after_sim_restart()
    test_last_will()
    done()
