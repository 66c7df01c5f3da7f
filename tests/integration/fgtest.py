"""fgtest: the integration tests' harness. Starts real servers (Mosquitto, fabgrid-sim, the collector,
pymodbus) as the test's own processes on free loopback ports in a temp dir, waits until a port
accepts instead of sleeping, collects MQTT messages with mosquitto_sub, and cleans up by PID.
Each check prints "PASS: name" or "FAIL: name: why"; tests/run.sh counts those lines."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("FG_BUILD", os.path.join(ROOT, "build"))
BIN = os.path.join(BUILD, "bin")
PROFILES = os.path.join(ROOT, "config", "profiles")
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
PY = "/usr/bin/python3"

_results = {"pass": 0, "fail": 0}


def check(name, cond, why=""):
    if cond:
        print(f"PASS: {name}", flush=True)
        _results["pass"] += 1
    else:
        print(f"FAIL: {name}: {why}", flush=True)
        _results["fail"] += 1
    return cond


def check_eq(name, got, want):
    return check(name, got == want, f"got {got!r}, want {want!r}")


def done():
    sys.exit(1 if _results["fail"] else 0)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(n):
    """n consecutive free ports below the ephemeral range (where outgoing connections take theirs)."""
    import random
    rnd = random.Random(os.getpid())
    for _ in range(200):
        base = rnd.randrange(20000, 32000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports")


def wait_port(port, proc=None, timeout=20.0):
    """Waits until 127.0.0.1:port accepts a connection (or the process died)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} did not open within {timeout}s")


def wait_for(pred, timeout=20.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def influxd_conf(data_dir, port, auth=False, cq_run_s=None):
    """influxd's config for a private instance: data in data_dir, HTTP on 127.0.0.1:port (the RPC port
    free too), quiet logs, continuous queries off unless cq_run_s says how often they run."""
    cq = (f"  enabled = true\n  log-enabled = false\n  run-interval = \"{cq_run_s}s\"\n" if cq_run_s
          else "  enabled = false\n")
    return f"""reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{data_dir}/meta"
[data]
  dir = "{data_dir}/data"
  wal-dir = "{data_dir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  auth-enabled = {"true" if auth else "false"}
  log-enabled = false
  max-body-size = 0
[logging]
  level = "warn"
[continuous_queries]
{cq}"""


class Env:
    """A temp dir and the processes started in it; everything is stopped by PID at exit."""

    def __init__(self, name):
        self.dir = tempfile.mkdtemp(prefix=f"fabgrid-{name}-")
        self.procs = []

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text, mode=0o644):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def write_json(self, name, obj):
        return self.write(name, json.dumps(obj, indent=2))

    def start(self, args, name, **kw):
        log = open(self.path(name + ".log"), "w")
        p = subprocess.Popen(args, stdout=kw.pop("stdout", log), stderr=log, cwd=kw.pop("cwd", self.dir), **kw)
        p.fg_name = name
        self.procs.append(p)
        return p

    def log(self, name):
        with open(self.path(name + ".log")) as f:
            return f.read()

    def stop(self, p, sig=signal.SIGTERM, timeout=10):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def mosquitto(self, extra=""):
        port = free_port()
        conf = self.write("mosquitto.conf", f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                          f"persistence false\n{extra}")
        p = self.start(["/usr/sbin/mosquitto", "-c", conf], "mosquitto")
        wait_port(port, p)
        return port

    def influxd(self, name="influxd", port=None, auth=False, cq_run_s=None):
        """A real InfluxDB 1.x (Debian's influxd) with its data in the temp dir, on free loopback ports.
        Returns the HTTP port; the process is self.procs[-1]. Restarting with the same name and port
        keeps the data. auth: authentication on; cq_run_s: continuous queries run that often."""
        port = port or free_port()
        conf = self.write(f"{name}.conf", influxd_conf(self.path(name), port, auth, cq_run_s))
        p = self.start(["/usr/bin/influxd", "run", "-config", conf], name)
        p.fg_port = port
        wait_port(port, p, timeout=60)
        wait_for(lambda: influx_ping(port), timeout=30)
        return port

    def sim(self, config, name="sim", extra=()):
        p = self.start([os.path.join(BIN, "fabgrid-sim"), "-c", config, *extra], name)
        return p

    def collector(self, config, name="collector", extra=()):
        return self.start([os.path.join(BIN, "fabgrid-collector"), "-c", config,
                           "--profiles", PROFILES, *extra], name)

    def close(self):
        for p in reversed(self.procs):
            self.stop(p)
        shutil.rmtree(self.dir, ignore_errors=True)


class Sub:
    """mosquitto_sub in the background; keeps (monotonic time, topic, payload) of every message."""

    def __init__(self, env, port, topic="#"):
        self.msgs = []
        self.lock = threading.Lock()
        self.p = env.start(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-v", "-q", "1",
                            "-t", topic], "sub", stdout=subprocess.PIPE, text=True, bufsize=1)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            topic, _, payload = line.rstrip("\n").partition(" ")
            with self.lock:
                self.msgs.append((time.monotonic(), topic, payload))

    def all(self, topic=None):
        with self.lock:
            return [m for m in self.msgs if topic is None or m[1] == topic]

    def last(self, topic):
        m = self.all(topic)
        return m[-1][2] if m else None

    def wait(self, topic, pred=lambda payload: True, timeout=20.0):
        def find():
            for m in self.all(topic):
                if pred(m[2]):
                    return m
            return None
        return wait_for(find, timeout)

    def wait_count(self, topic, n, timeout=30.0):
        return wait_for(lambda: len(self.all(topic)) >= n, timeout)


def influx_ping(port):
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
            return r.status == 204
    except OSError:
        return False


def influx_query(port, q, db=None):
    """Runs an InfluxQL query through /query; returns the decoded JSON."""
    import urllib.parse
    import urllib.request
    args = {"q": q, "epoch": "ms"}
    if db:
        args["db"] = db
    url = f"http://127.0.0.1:{port}/query?" + urllib.parse.urlencode(args)
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as r:
        return json.loads(r.read())


def influx_series(port, q, db):
    """The first series' values of a query, [] when it has none."""
    res = influx_query(port, q, db)["results"][0]
    series = res.get("series") or []
    return series[0]["values"] if series else []


def stats_from_log(text):
    """The last "stats" line the collector logged (at SIGUSR1 and at exit), as a dict of its counters."""
    import re
    lines = [ln for ln in text.splitlines() if " stats: " in ln]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])} if lines else {}


def site_config(mqtt_port, buses, devices, **extra):
    cfg = {"site": {"id": "test", "timezone": "UTC", "latitude": 39.742, "longitude": -105.173},
           "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "prefix": "fabgrid", "keepalive_s": 5},
           "buses": buses, "devices": devices}
    cfg.update(extra)
    return cfg
