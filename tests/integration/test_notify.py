"""The collector and the balancer speak the systemd notify protocol: with NOTIFY_SOCKET (a unix datagram socket of the test)
and WATCHDOG_USEC it sends READY=1 once it runs, WATCHDOG=1 at half the interval from its main loop, and
STOPPING=1 on SIGTERM; libsystemd is mapped only under a service manager; a WATCHDOG_PID naming another
process means no watchdog pings."""
import os
import signal
import socket
import time

from fgtest import BIN, PROFILES, Env, check, check_eq, done, site_config, wait_for


class NotifySocket:
    """The service manager's end: a datagram socket whose messages are kept with their arrival time."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(path)
        self.s.settimeout(0.05)
        self.msgs = []

    def pump(self):
        while True:
            try:
                data = self.s.recv(4096)
            except socket.timeout:
                return
            self.msgs.append((time.monotonic(), data.decode()))

    def count(self, line):
        self.pump()
        return sum(1 for _, m in self.msgs if line in m.split("\n"))

    def times(self, line):
        return [t for t, m in self.msgs if line in m.split("\n")]


def maps_systemd(pid):
    with open(f"/proc/{pid}/maps") as f:
        return any("libsystemd.so" in ln for ln in f)


def run(env, cfg, name, extra_env):
    e = dict(os.environ)
    e.pop("NOTIFY_SOCKET", None)
    e.pop("WATCHDOG_USEC", None)
    e.pop("WATCHDOG_PID", None)
    e.update(extra_env)
    return env.start([os.path.join(BIN, "fabgrid-collector"), "-c", cfg, "--profiles", PROFILES], name, env=e)


def test_protocol(env, cfg):
    ns = NotifySocket(env.path("notify.sock"))
    p = run(env, cfg, "notified", {"NOTIFY_SOCKET": env.path("notify.sock"), "WATCHDOG_USEC": "1000000"})
    check("READY=1 sent", wait_for(lambda: ns.count("READY=1") == 1, timeout=15), ns.msgs)
    ready = [m for _, m in ns.msgs if "READY=1" in m.split("\n")]
    check_eq("READY carries the status", ready[:1],
             ["READY=1\nSTATUS=polling 0 devices on 0 buses, 0 MQTT devices"])
    check("READY after the daemon logged that it polls", "polling 0 devices" in env.log("notified"),
          env.log("notified"))
    check("libsystemd mapped under a service manager", maps_systemd(p.pid))
    check("two WATCHDOG=1 pings", wait_for(lambda: ns.count("WATCHDOG=1") >= 2, timeout=5), ns.msgs)
    wd = ns.times("WATCHDOG=1")
    gap = wd[1] - wd[0]
    # half of 1 s, on a loop that wakes every 100 ms: 0.5..0.6 s plus scheduling slack
    check("pings at half the interval", 0.4 <= gap <= 0.8, f"gap {gap:.3f} s")
    check_eq("no STOPPING before SIGTERM", ns.count("STOPPING=1"), 0)
    rc = env.stop(p)
    check_eq("exit 0 on SIGTERM", rc, 0)
    check_eq("STOPPING=1 once on SIGTERM", ns.count("STOPPING=1"), 1)
    check_eq("READY=1 exactly once", ns.count("READY=1"), 1)


def test_other_pid(env, cfg):
    """WATCHDOG_PID of another process (systemd sets it for the main PID only): no pings, still READY."""
    ns = NotifySocket(env.path("other.sock"))
    p = run(env, cfg, "otherpid", {"NOTIFY_SOCKET": env.path("other.sock"), "WATCHDOG_USEC": "200000",
                                   "WATCHDOG_PID": "1"})
    check("READY=1 with a foreign WATCHDOG_PID", wait_for(lambda: ns.count("READY=1") == 1, timeout=15), ns.msgs)
    time.sleep(0.5)  # 5 intervals of 100 ms: a ping would have come by now
    check_eq("no WATCHDOG=1 for another PID", ns.count("WATCHDOG=1"), 0)
    env.stop(p)


def test_unmanaged(env, cfg):
    p = run(env, cfg, "plain", {})
    check("running without NOTIFY_SOCKET", wait_for(lambda: "polling 0 devices" in env.log("plain"), timeout=15),
          env.log("plain"))
    check("libsystemd not mapped without NOTIFY_SOCKET", not maps_systemd(p.pid))
    check_eq("exit 0", env.stop(p), 0)


def test_balancer(env, port):
    """The balancer: READY once it runs, WATCHDOG from its control loop, RELOADING then READY again on
    SIGHUP, STOPPING on SIGTERM."""
    cfg = env.write_json("bal.json", site_config(port, [], [], balancer={"state_file": env.path("bal-state.json")}))
    ns = NotifySocket(env.path("bal.sock"))
    e = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    e.update({"NOTIFY_SOCKET": env.path("bal.sock"), "WATCHDOG_USEC": "1000000"})
    p = env.start([os.path.join(BIN, "fabgrid-balancer"), "-c", cfg], "balancer", env=e)
    check("balancer: READY=1 sent", wait_for(lambda: ns.count("READY=1") == 1, timeout=15), ns.msgs)
    check("balancer: two WATCHDOG=1 pings", wait_for(lambda: ns.count("WATCHDOG=1") >= 2, timeout=5), ns.msgs)
    wd = ns.times("WATCHDOG=1")
    check("balancer: pings at half the interval", 0.4 <= wd[1] - wd[0] <= 0.8, f"gap {wd[1] - wd[0]:.3f} s")
    p.send_signal(signal.SIGHUP)
    check("balancer: SIGHUP sends RELOADING=1, then READY=1 again",
          wait_for(lambda: ns.count("RELOADING=1") == 1 and ns.count("READY=1") == 2, timeout=10), ns.msgs)
    check("balancer: the reload is logged", wait_for(lambda: "reloaded" in env.log("balancer"), timeout=5))
    check_eq("balancer: exit 0 on SIGTERM", env.stop(p), 0)
    check_eq("balancer: STOPPING=1 once", ns.count("STOPPING=1"), 1)


def main():
    env = Env("notify")
    try:
        port = env.mosquitto()
        cfg = env.write_json("site.json", site_config(port, [], []))
        test_protocol(env, cfg)
        test_other_pid(env, cfg)
        test_unmanaged(env, cfg)
        test_balancer(env, port)
    finally:
        env.close()
    done()


main()
