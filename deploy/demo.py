"""make demo: a simulated workshop on loopback, end to end.
Starts Mosquitto (with authentication and the deploy ACL, as on a real box), InfluxDB (the deploy
schema: retention policies raw and year, continuous queries), fabgrid-sim (a 12 kWp inverter following
a measured day of NREL's SERF East roof, a grid meter with a tool manufacturer's measured load, a relay
module switching kiln, laser, compressor, printer farm and EV charger), the collector and the balancer,
all on one simulated clock (x480 by default: a whole day in three minutes). Prints one progress line per
simulated quarter hour, then a summary from InfluxDB and a picture of the day. Everything is stopped
by PID at the end or on Ctrl-C; the InfluxDB data stays in DEMO_DIR (default ./demo-data).
Knobs: DEMO_SECONDS (real seconds, default 180), DEMO_SPEED (default 480), DEMO_DIR."""
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import zoneinfo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from fgtest import BIN, DATA, PROFILES, free_port, influx_ping, influxd_conf, wait_for, wait_port  # noqa: E402

SPEED = float(os.environ.get("DEMO_SPEED", "480"))
SECONDS = float(os.environ.get("DEMO_SECONDS", "180"))
DEMO_DIR = os.path.abspath(os.environ.get("DEMO_DIR", os.path.join(ROOT, "demo-data")))
SITE = "demo"
TZ = zoneinfo.ZoneInfo("America/Denver")
PV_CSV = os.path.join(DATA, "pv-nrel-serf-east", "serf_east_15min_ac_power.csv")
LOAD_CSV = os.path.join(DATA, "load-tool-manufacturer", "LP_G_MV.csv")
PV_DAY, LOAD_DAY = "2016-07-15", "2018-07-13"  # a clear summer day of the roof; a Friday of the factory
PV_SCALE, LOAD_SCALE = 12 / 5.4, 40
ACL = os.path.join(ROOT, "deploy", "mosquitto", "fabgrid.acl")
SCHEMA = os.path.join(ROOT, "deploy", "influxdb", "schema.iql")
MARKER = ".fabgrid-demo"
# relay coil of each machine of bench/workshop.json (the EV charger behind a relay is on/off: 7.4 kW)
COILS = {"kiln": 0, "laser": 1, "compressor": 2, "printers": 3, "ev": 4, "heater": 5}
# Beyond the bench workshop: a heater that warms the shop before it opens (a job done early in the
# day) and a band saw that a person starts (the balancer only advises when to use it).
EXTRA_MACHINES = [{"id": "heater", "power_w": 2000, "interruptible": True, "min_on_s": 300, "min_off_s": 300},
                  {"id": "bandsaw", "power_w": 2200, "start": "manual"}]
EXTRA_JOBS = [{"id": "preheat", "machine": "heater", "days": "daily", "duration_min": 45, "earliest": "05:00",
               "deadline": "07:00"}]

# Used only while deploy/mosquitto/fabgrid.acl is missing: the same roles, fewer details.
FALLBACK_ACL = """# fabgrid demo ACL (deploy/mosquitto/fabgrid.acl was not found)
user collector
topic readwrite fabgrid/#
user balancer
topic read fabgrid/#
topic write fabgrid/+/balancer/#
topic write fabgrid/+/machine/#
topic write fabgrid/+/jobs/#
topic write fabgrid/+/advice
topic write fabgrid/+/device/+/set/#
user dashboard
topic read fabgrid/#
user operator
topic readwrite fabgrid/#
"""

# Used only while deploy/influxdb/schema.iql is missing: what the deploy schema sets up.
FALLBACK_SCHEMA = """CREATE DATABASE fabgrid
CREATE RETENTION POLICY raw ON fabgrid DURATION 30d REPLICATION 1 DEFAULT
CREATE RETENTION POLICY year ON fabgrid DURATION 365d REPLICATION 1
""" + "".join(
    f"CREATE CONTINUOUS QUERY cq_{m}_1m ON fabgrid BEGIN SELECT mean(*) INTO fabgrid.year.{m} "
    f"FROM fabgrid.raw.{m} GROUP BY time(1m), * END\n" for m in ("device", "balance", "machine", "collector"))


class Demo:
    """The demo's folder and processes; stop() ends them by PID, in reverse start order."""

    def __init__(self, root):
        self.root = root
        self.procs = []
        self.lock = threading.Lock()
        self.msgs = {}      # topic -> last payload
        self.jobs = {}      # job id -> last job message (dict)
        self.switches = 0   # machine state messages seen

    def path(self, *names):
        return os.path.join(self.root, *names)

    def write(self, name, text, mode=0o644):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def start(self, args, name, **kw):
        log = open(self.path("logs", name + ".log"), "w")
        p = subprocess.Popen(args, stdout=kw.pop("stdout", log), stderr=log, cwd=self.root,
                             start_new_session=True, **kw)
        p.fg_name = name
        self.procs.append(p)
        return p

    def log(self, name):
        with open(self.path("logs", name + ".log")) as f:
            return f.read()

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self, keep=()):
        for p in reversed(list(self.procs)):
            if p not in keep:
                self.stop(p)


# ---- the folder, the day and the series ----

def prepare_dir():
    """DEMO_DIR is emptied only when it is a previous demo's (it holds the marker) or empty."""
    if os.path.isdir(DEMO_DIR) and os.listdir(DEMO_DIR):
        if not os.path.exists(os.path.join(DEMO_DIR, MARKER)):
            sys.exit(f"demo: {DEMO_DIR} is not empty and not a previous demo's folder; set DEMO_DIR")
        shutil.rmtree(DEMO_DIR)
    for sub in ("", "logs", "run"):
        os.makedirs(os.path.join(DEMO_DIR, sub), exist_ok=True)
    open(os.path.join(DEMO_DIR, MARKER), "w").close()


def demo_day():
    """Today in the workshop's time zone: InfluxDB keeps raw points 30 days, and Grafana's "Today"
    then shows the run. The PV and load series are re-dated onto it."""
    return dt.datetime.now(TZ).date()


def redate(src, day_src, day, fmt, out, tz_of_row):
    """Copies the rows of day_src (local dates as written in src) onto day-1, day and day+1, keeping
    each row's wall-clock time; tz_of_row(date) gives the UTC offset text to write."""
    rows = [ln.rstrip("\n") for ln in open(src) if ln.startswith(day_src)]
    with open(out, "w") as f:
        f.write("time,value\n")
        for k in (-1, 0, 1):
            d = day + dt.timedelta(days=k)
            for ln in rows:
                stamp, value = ln.split(",")[:2]
                f.write(f"{d.isoformat()} {stamp[11:19]}{tz_of_row(d)},{value}\n")
    return out


def offset_text(d):
    off = dt.datetime.combine(d, dt.time(12), TZ).utcoffset()
    mins = int(off.total_seconds() // 60)
    return f"{'-' if mins < 0 else '+'}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"


# ---- configuration ----

def site_config(demo, day, mport, iport, sport, user):
    cfg = json.load(open(os.path.join(ROOT, "bench", "workshop.json")))
    cfg["site"]["id"] = SITE
    scale = max(1.0, SPEED / 480)  # keep the real-time poll rate the same at other speeds
    cfg["mqtt"] = {"host": "127.0.0.1", "port": mport, "prefix": "fabgrid", "username": user,
                   "password_file": demo.path("run", f"{user}.pass"), "keepalive_s": 10}
    cfg["influx"] = {"url": f"http://127.0.0.1:{iport}", "database": "fabgrid",
                     "spool_dir": demo.path("run", "spool"), "flush_s": 1}
    cfg["buses"] = [{"id": "lan", "type": "tcp", "host": "127.0.0.1", "port": sport}]
    poll = int(30000 * scale)
    cfg["devices"] = [
        {"id": "inverter", "bus": "lan", "unit": 1, "profile": "sunspec", "role": "pv", "poll_ms": poll},
        {"id": "grid", "bus": "lan", "unit": 2, "profile": "sdm630", "role": "grid", "poll_ms": poll},
        {"id": "relays", "bus": "lan", "unit": 3, "profile": "relay8", "role": "machine", "poll_ms": poll}]
    cfg["machines"] += EXTRA_MACHINES
    cfg["jobs"] += EXTRA_JOBS
    for m in cfg["machines"]:
        if m["id"] in COILS:
            m["actuator"] = {"type": "modbus", "device": "relays", "point": f"coil_{COILS[m['id']]}"}
        if m["id"] == "ev":
            for k in ("min_power_w", "max_power_w", "step_w"):
                m.pop(k, None)
            m["power_w"] = 7400
    for j in cfg["jobs"]:
        j["days"] = "daily"  # the demo's day may be a weekend
        if j["id"] == "ev-charge":
            j.pop("energy_wh", None)
            j["duration_min"] = 165  # 20 kWh at 7.4 kW
    cfg["balancer"]["interval_s"] = int(60 * scale)
    cfg["balancer"]["stale_after_s"] = int(300 * scale)
    pv = redate(PV_CSV, PV_DAY, day, "", demo.path("run", "pv.csv"), lambda d: "-07:00")
    load = redate(LOAD_CSV, LOAD_DAY, day, "", demo.path("run", "load.csv"), offset_text)
    cfg["sim"] = {"load_csv": load, "load_scale": LOAD_SCALE,
                  "devices": {"inverter": {"pv_csv": pv, "pv_scale": PV_SCALE}}}
    name = f"site-{user}.json"
    demo.write(name, json.dumps(cfg, indent=2))
    return demo.path(name)


# ---- Mosquitto with authentication ----

def acl_users(text):
    return re.findall(r"^\s*user\s+(\S+)", text, re.M)


def mosquitto(demo):
    """Returns (port, {user: password}). Users are created with mosquitto_passwd at run time."""
    acl = ACL if os.path.exists(ACL) else demo.write("run/fabgrid.acl", FALLBACK_ACL)
    users = {u: os.urandom(9).hex() for u in ("collector", "balancer", "dashboard")}
    pwfile = demo.path("run", "mosquitto.passwd")
    for i, (u, pw) in enumerate(users.items()):
        subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", pwfile, u, pw], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        demo.write(f"run/{u}.pass", pw, 0o600)
    os.chmod(pwfile, 0o600)
    # Started by root, mosquitto would drop to user "mosquitto", who cannot read these files in a private
    # temp dir: on loopback for a few minutes it stays root instead.
    user = "user root\n" if os.geteuid() == 0 else ""
    port = free_port()
    conf = demo.write("run/mosquitto.conf", f"listener {port} 127.0.0.1\nallow_anonymous false\n"
                      f"password_file {pwfile}\nacl_file {acl}\npersistence false\n{user}")
    p = demo.start(["/usr/sbin/mosquitto", "-c", conf], "mosquitto")
    wait_port(port, p)
    return port, users, acl


# ---- InfluxDB ----

def influxd(demo, port=None):
    port = port or free_port()
    conf = demo.write("influxd.conf", influxd_conf(demo.path("influxd"), port, cq_run_s=5))
    p = demo.start(["/usr/bin/influxd", "run", "-config", conf], "influxd")
    wait_port(port, p, timeout=60)
    wait_for(lambda: influx_ping(port), timeout=30)
    return port


def query(port, q, db="fabgrid"):
    args = {"q": q, "epoch": "ms", "db": db}
    url = f"http://127.0.0.1:{port}/query?" + urllib.parse.urlencode(args)
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=60) as r:
        res = json.loads(r.read())
    for part in res.get("results", []):
        if "error" in part:
            raise RuntimeError(f"InfluxDB: {part['error']} in: {q}")
    return res


def values(port, q):
    s = query(port, q)["results"][0].get("series") or []
    return s[0]["values"] if s else []


def statements(text):
    """InfluxQL statements of a schema file: '#' and '--' comments dropped, split at ';' or at lines that
    start a new statement (a continuous query spans lines)."""
    out, cur = [], []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("--"):
            continue
        if re.match(r"(CREATE|GRANT|REVOKE|ALTER|DROP|SET)\b", s, re.I) and cur:
            out.append(" ".join(cur))
            cur = []
        cur.append(s)
    out.append(" ".join(cur))
    return [p.strip() for st in out for p in st.split(";") if p.strip()]


def apply_schema(port):
    text = open(SCHEMA).read() if os.path.exists(SCHEMA) else FALLBACK_SCHEMA
    for st in statements(text):
        query(port, st, db="")
    return SCHEMA if os.path.exists(SCHEMA) else "the demo's built-in copy (deploy/influxdb/schema.iql missing)"


def backfill(port, t0, t1):
    """Continuous queries only cover the last intervals of the real clock; the demo's points lie on a
    simulated one. So each CQ's query runs once over the demo's range, as InfluxDB's docs advise for
    history. Returns the number of CQs run."""
    n = 0
    for s in query(port, "SHOW CONTINUOUS QUERIES", db="")["results"][0].get("series") or []:
        for name, text in s.get("values", []):
            m = re.search(r"BEGIN\s+(SELECT .*?)\s+(GROUP BY .*?)\s*END\s*$", text, re.S | re.I)
            if not m or " WHERE " in m.group(1).upper():
                continue
            query(port, f"{m.group(1)} WHERE time >= {t0}ms AND time < {t1}ms {m.group(2)}", db=s["name"])
            n += 1
    return n


# ---- MQTT: what the demo watches ----

def subscribe(demo, port, user, pw):
    p = demo.start(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-u", user, "-P", pw, "-v", "-q", "1",
                    "-t", f"fabgrid/{SITE}/#"], "sub", stdout=subprocess.PIPE, text=True, bufsize=1)

    def read():
        for line in p.stdout:
            topic, _, payload = line.rstrip("\n").partition(" ")
            with demo.lock:
                demo.msgs[topic] = payload
                sub = topic[len(f"fabgrid/{SITE}/"):]
                if sub.startswith("jobs/") and sub != "jobs/request":
                    try:
                        demo.jobs[sub[5:]] = json.loads(payload)
                    except ValueError:
                        pass
                elif sub.startswith("machine/"):
                    demo.switches += 1
    threading.Thread(target=read, daemon=True).start()
    return p


def last(demo, sub):
    with demo.lock:
        p = demo.msgs.get(f"fabgrid/{SITE}/{sub}")
    try:
        return json.loads(p) if p else None
    except ValueError:
        return None


def machines_on(demo):
    """Machines whose relay coil is on, from the relay module's own state (what really runs)."""
    st = last(demo, "device/relays/state") or {}
    return [m for m, c in COILS.items() if st.get(f"coil_{c}") == 1]


def todays_jobs(demo):
    """The jobs due by the end of the simulated day (the balancer also announces tomorrow's)."""
    with demo.lock:
        return [j for j in demo.jobs.values() if j.get("deadline", 0) <= getattr(demo, "day_end_ms", 1 << 62)]


def jobs_done(demo):
    jobs = todays_jobs(demo)
    return sum(1 for j in jobs if j.get("state") == "done"), len(jobs)


def progress(demo, t_end, procs):
    """One line per simulated quarter hour, from the balance message's timestamp."""
    next_q = None
    while time.monotonic() < t_end:
        time.sleep(0.1)
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.fg_name} exited with {p.returncode}; see {demo.path('logs', p.fg_name + '.log')}")
        b = last(demo, "balance")
        if not b or "ts" not in b:
            continue
        q = b["ts"] // 900000
        if next_q is not None and q < next_q:
            continue
        next_q = q + 1
        t = dt.datetime.fromtimestamp(b["ts"] / 1000, TZ).strftime("%H:%M")
        done, total = jobs_done(demo)
        on = machines_on(demo)
        print(f"  {t}  PV {b.get('pv_w', 0) / 1000:5.1f} kW  grid {b.get('grid_w', 0) / 1000:+6.1f} kW  "
              f"on: {', '.join(on) if on else '-':34s} jobs done {done}/{total}", flush=True)


# ---- the balancer ----

class Clock:
    """One simulated timeline for every daemon: each --clock starts where the shared timeline is at the
    moment the daemon is launched (a daemon's clock starts at START when it starts)."""

    def __init__(self, start):
        self.start, self.real0 = start, time.time()

    def args(self):
        now = self.start + dt.timedelta(seconds=round((time.time() - self.real0) * SPEED))
        return ["--clock", f"{now.isoformat()}@{SPEED:g}"]


def balancer(demo, conf, clock):
    """Starts the live balancer. Returns its process, or None (with the reason printed) when this build
    has no live daemon yet; the rest of the demo runs without it."""
    p = demo.start([os.path.join(BIN, "fabgrid-balancer"), "-c", conf, *clock.args()], "balancer")
    online = wait_for(lambda: p.poll() is not None or (demo.msgs.get(f"fabgrid/{SITE}/balancer/status") == "online"),
                      timeout=15)
    if p.poll() is None and online:
        print("balancer: online", flush=True)
        return p
    if p.poll() is None:
        print("balancer: running, but it did not publish balancer/status online within 15 s", flush=True)
        return p
    demo.procs.remove(p)
    why = demo.log("balancer").strip().splitlines()
    print(f"balancer: NOT RUNNING (exit {p.returncode}: {why[-1] if why else 'no output'}); "
          "machines stay off, the rest of the demo runs", flush=True)
    return None


# ---- summary and picture ----

def energy(port, t0, t1):
    w = f"WHERE site = '{SITE}' AND time >= {t0}ms AND time < {t1}ms"
    v = values(port, f"SELECT INTEGRAL(pv_w, 1h), INTEGRAL(load_w, 1h) FROM balance {w}")
    imp = values(port, f"SELECT INTEGRAL(x, 1h) FROM (SELECT grid_w AS x FROM balance {w} AND grid_w > 0)")
    exp = values(port, f"SELECT INTEGRAL(x, 1h) FROM (SELECT -grid_w AS x FROM balance {w} AND grid_w < 0)")
    pv, load = (v[0][1] / 1000, v[0][2] / 1000) if v else (0.0, 0.0)
    return {"pv": pv, "load": load, "import": imp[0][1] / 1000 if imp else 0.0,
            "export": exp[0][1] / 1000 if exp else 0.0}


def jobs_on_time(demo):
    """Jobs done by their deadline, of today's."""
    jobs = todays_jobs(demo)
    # the balancer reports a job finished after its deadline as "missed", so "done" is on time
    ok = sum(1 for j in jobs if j.get("state") == "done")
    return ok, len(jobs)


def series(port, field, meas, t0, t1, where="", step="5m"):
    q = (f"SELECT mean({field}) FROM {meas} WHERE site = '{SITE}' {where} AND time >= {t0}ms AND time < {t1}ms "
         f"GROUP BY time({step}) fill(none)")
    return values(port, q)


def runs(port, t0, t1):
    """Per machine, the (start, end) ms of its relay coil being on, from the relay module's readings."""
    out = {}
    for m, c in COILS.items():
        pts = values(port, f"SELECT coil_{c} FROM device WHERE device = 'relays' AND time >= {t0}ms AND time < {t1}ms")
        spans, start = [], None
        for ts, v in pts:
            if v == 1 and start is None:
                start = ts
            elif v != 1 and start is not None:
                spans.append((start, ts))
                start = None
        if start is not None:
            spans.append((start, pts[-1][0]))
        out[m] = spans
    return out


def planned(port, t0, t1):
    out = {}
    for m in COILS:
        pts = values(port, f"SELECT planned_w FROM plan WHERE machine = '{m}' AND time >= {t0}ms AND time < {t1}ms")
        out[m] = [(ts, ts + 900000) for ts, w in pts if w and w > 0]
    return out


def svg_day(port, t0, t1, path):
    W, L, R, TOP, PH, LANE = 960, 90, 20, 56, 260, 34
    H = TOP + PH + 20 + len(COILS) * LANE + 44  # the lanes, then the legend and the hours
    x = lambda t: L + (min(max(t, t0), t1) - t0) / (t1 - t0) * (W - L - R)  # noqa: E731
    curves = {k: series(port, k, "balance", t0, t1) for k in ("pv_w", "load_w", "grid_w")}
    hi = max([v for c in curves.values() for _, v in c] + [1000])
    lo = max([-v for c in curves.values() for _, v in c] + [hi / 10])  # export below the line, if any
    top = hi + lo
    y = lambda w: TOP + 5 + (hi - w) / top * (PH - 10)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="20" font-size="15">fabgrid demo: site {SITE}, '
           f'{dt.datetime.fromtimestamp(t0 / 1000, TZ):%Y-%m-%d %H:%M} to '
           f'{dt.datetime.fromtimestamp(t1 / 1000, TZ):%H:%M} (America/Denver)</text>',
           f'<line x1="{L}" x2="{W - R}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#999"/>']
    for kw in (hi / 1000, hi / 2000, -lo / 1000):
        out.append(f'<text x="{L - 6}" y="{y(kw * 1000) + 4:.1f}" text-anchor="end">{kw:+.0f} kW</text>')
    colors = {"pv_w": "#e6a700", "load_w": "#3366cc", "grid_w": "#cc3333"}
    for k, pts in curves.items():
        if pts:
            d = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
            out.append(f'<polyline points="{d}" fill="none" stroke="{colors[k]}" stroke-width="2"/>')
    for i, k in enumerate(("pv_w", "load_w", "grid_w")):
        out.append(f'<text x="{L + i * 110}" y="{TOP - 12}" fill="{colors[k]}">&#9644; {k[:-2]}'
                   f'{" (import +)" if k == "grid_w" else ""}</text>')
    act, plan = runs(port, t0, t1), planned(port, t0, t1)
    for i, m in enumerate(COILS):
        ly = TOP + PH + 20 + i * LANE
        out.append(f'<text x="{L - 6}" y="{ly + 16}" text-anchor="end">{m}</text>')
        out.append(f'<rect x="{L}" y="{ly}" width="{W - L - R}" height="{LANE - 8}" fill="#f3f3f3"/>')
        for a, b in plan.get(m, []):
            out.append(f'<rect x="{x(a):.1f}" y="{ly}" width="{max(1, x(b) - x(a)):.1f}" height="8" fill="#9ecae1"/>')
        for a, b in act.get(m, []):
            out.append(f'<rect x="{x(a):.1f}" y="{ly + 9}" width="{max(1, x(b) - x(a)):.1f}" height="{LANE - 17}" '
                       f'fill="#31a354"/>')
    step_h = 3 if t1 - t0 > 6 * 3600000 else 1
    for h in range(0, 24, step_h):
        t = int(dt.datetime.combine(dt.datetime.fromtimestamp(t0 / 1000, TZ).date(), dt.time(0), TZ).timestamp()
                * 1000) + h * 3600000
        for tt in (t, t + 86400000):
            if t0 <= tt <= t1:
                out.append(f'<text x="{x(tt):.1f}" y="{H - 8}" text-anchor="middle">'
                           f'{dt.datetime.fromtimestamp(tt / 1000, TZ):%H:%M}</text>')
    out.append(f'<text x="{L}" y="{H - 26}" fill="#555">lanes: green = relay on (measured), blue = planned '
               f'by the balancer</text></svg>')
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    conv = shutil.which("rsvg-convert")
    if conv and subprocess.run([conv, "-o", path[:-4] + ".png", path]).returncode == 0:
        return [path, path[:-4] + ".png"]
    return [path]


def summary(demo, port, t0, t1):
    e = energy(port, t0, t1)
    used = max(0.0, e["pv"] - e["export"])
    sc = 100 * used / e["pv"] if e["pv"] > 0 else 0.0
    ok, total = jobs_on_time(demo)
    print(f"summary {dt.datetime.fromtimestamp(t0 / 1000, TZ):%Y-%m-%d %H:%M} to "
          f"{dt.datetime.fromtimestamp(t1 / 1000, TZ):%Y-%m-%d %H:%M} (simulated, from InfluxDB):")
    print(f"  PV {e['pv']:.1f} kWh, load {e['load']:.1f} kWh, grid import {e['import']:.1f} kWh, "
          f"export {e['export']:.1f} kWh, self-consumption {sc:.0f} %")
    print(f"  jobs on time: {ok}/{total}" + ("" if total else " (no jobs/+ messages: the balancer did not run)")
          + f", machine state messages {demo.switches}")
    return e


# ---- main ----

def run(demo):
    day = demo_day()
    start = dt.datetime.combine(day, dt.time(5), TZ)
    demo.day_end_ms = int(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), TZ).timestamp() * 1000)
    print(f"fabgrid demo in {DEMO_DIR}: site {SITE}, simulated {start:%Y-%m-%d %H:%M} America/Denver, "
          f"x{SPEED:g} for {SECONDS:g} s", flush=True)
    mport, users, acl = mosquitto(demo)
    print(f"mosquitto: 127.0.0.1:{mport}, no anonymous access, users {', '.join(users)}, ACL {acl}", flush=True)
    iport = influxd(demo)
    print(f"influxdb: 127.0.0.1:{iport}, schema from {apply_schema(iport)}", flush=True)
    sport = free_port()
    conf_c = site_config(demo, day, mport, iport, sport, "collector")
    conf_b = site_config(demo, day, mport, iport, sport, "balancer")
    reader = next((u for u in ("dashboard", "operator", "collector") if u in acl_users(open(acl).read())), "collector")
    subscribe(demo, mport, reader, users[reader])
    clock = Clock(start)
    sim = demo.start([os.path.join(BIN, "fabgrid-sim"), "-c", conf_c, *clock.args()], "sim")
    wait_port(sport, sim)
    col = demo.start([os.path.join(BIN, "fabgrid-collector"), "-c", conf_c, "--profiles", PROFILES, *clock.args()],
                     "collector")
    if not wait_for(lambda: last(demo, "balance"), timeout=30):
        raise RuntimeError(f"no balance message within 30 s; see {demo.path('logs', 'collector.log')}")
    t0 = last(demo, "balance")["ts"]
    bal = balancer(demo, conf_b, clock)
    progress(demo, time.monotonic() + SECONDS, [sim, col] + ([bal] if bal else []))
    t1 = last(demo, "balance")["ts"] + 1
    influx = next(p for p in demo.procs if p.fg_name == "influxd")
    demo.stop_all(keep=[influx])  # the collector sends what it holds before it exits
    n = backfill(iport, t0 - t0 % 60000, t1)
    summary(demo, iport, t0, t1)
    print(f"year retention policy: {n} continuous queries run over the demo's range (1-minute means)")
    pics = svg_day(iport, t0, t1, demo.path("day.svg"))
    print("picture of the day: " + " and ".join(pics))
    print(f"Grafana time range: from={t0}&to={t1} (ms); README \"Grafana\" says how to open it")


def main():
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    prepare_dir()
    demo = Demo(DEMO_DIR)
    rc = 0
    try:
        run(demo)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping", flush=True)
        rc = 130
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        print(f"demo failed: {e}", flush=True)
        rc = 1
    finally:
        demo.stop_all()
        print(f"InfluxDB data kept in {demo.path('influxd')} (serve it again: "
              f"influxd run -config {demo.path('influxd.conf')}); logs in {demo.path('logs')}", flush=True)
    sys.exit(rc)


if __name__ == "__main__":
    main()
