"""deploy/ against the real programs: Mosquitto runs deploy/mosquitto/fabgrid.conf and fabgrid.acl (paths and
ports rewritten into a temp dir, a generated CA and server certificate) with the users that
deploy/mosquitto-users.sh creates, and enforces the roles; systemd-analyze verify accepts the units as
make install writes them; deploy/influxdb-setup.sh sets up a real influxd with authentication (retention
policies, continuous queries that really produce mean_ fields, users and their grants); make install
DESTDIR=... writes exactly the expected tree."""
import glob
import os
import re
import socket
import stat
import subprocess
import threading
import time

from fgtest import ROOT, Env, Sub, check, check_eq, done, free_port, influx_ping, wait_for, wait_port

DEPLOY = os.path.join(ROOT, "deploy")
N = 3  # messages per topic and user in the ACL checks


# ---- Mosquitto ---------------------------------------------------------------------------------------

def rewrite_conf(text, env, plain, tls):
    """The deploy config with temp paths and free loopback ports; every rewritten line must exist once."""
    subs = [(r"^password_file .*$", f"password_file {env.path('etc/mosquitto/fabgrid.passwd')}"),
            (r"^acl_file .*$", f"acl_file {env.path('etc/mosquitto/fabgrid.acl')}"),
            (r"^listener 1883 127\.0\.0\.1$", f"listener {plain} 127.0.0.1"),
            (r"^listener 8883$", f"listener {tls} 127.0.0.1"),
            (r"^cafile .*$", f"cafile {env.path('ca.crt')}"),
            (r"^certfile .*$", f"certfile {env.path('server.crt')}"),
            (r"^keyfile .*$", f"keyfile {env.path('server.key')}")]
    for pat, rep in subs:
        text, n = re.subn(pat, rep, text, flags=re.M)
        if n != 1:
            raise RuntimeError(f"deploy/mosquitto/fabgrid.conf: {pat} matched {n} times")
    # as root, mosquitto would switch to its own user, which cannot read the test's private temp dir
    return text + "persistence false\n" + ("user root\n" if os.geteuid() == 0 else "")


def make_certs(env):
    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=env.dir)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=fabgrid-test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    env.write("san.ext", "subjectAltName=IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
        "-extfile", "san.ext", "-out", "server.crt")


def users_script(env):
    out = subprocess.run(["sh", os.path.join(DEPLOY, "mosquitto-users.sh"), "--root", env.dir],
                         capture_output=True, text=True)
    check_eq("mosquitto-users.sh exit", out.returncode, 0)
    return out


def secret(env, name):
    with open(env.path(f"etc/fabgrid/{name}")) as f:
        return f.read().strip()


def check_users_script(env, out):
    names = ["balancer.pass", "collector.pass", "mqtt-dashboard.pass", "mqtt-device.pass", "mqtt-operator.pass"]
    check_eq("secret files written", sorted(os.listdir(env.path("etc/fabgrid"))), names)
    modes = {n: stat.S_IMODE(os.stat(env.path(f"etc/fabgrid/{n}")).st_mode) for n in names}
    check_eq("secret files are 0600", modes, {n: 0o600 for n in names})
    pws = [secret(env, n) for n in names]
    check("random passwords of 32 [A-Za-z0-9], all different",
          all(re.fullmatch(r"[A-Za-z0-9]{32}", p) for p in pws) and len(set(pws)) == 5, pws)
    with open(env.path("etc/mosquitto/fabgrid.passwd")) as f:
        users = [ln.split(":")[0] for ln in f if ln.strip()]
    check_eq("mosquitto password file users", users, ["collector", "balancer", "device", "dashboard", "operator"])
    check("prints the files to edit", "Files to edit:" in out.stdout and "collector.pass" in out.stdout, out.stdout)
    again = users_script(env)
    check_eq("second run keeps the passwords", [secret(env, n) for n in names], pws)
    check("second run installs nothing again", "installed" not in again.stdout, again.stdout)


def connack(port, username=None, password=None):
    """Sends an MQTT 3.1.1 CONNECT and returns the CONNACK's 4 bytes."""
    def s16(b):
        return len(b).to_bytes(2, "big") + b
    flags = 0x02 | (0x80 if username else 0) | (0x40 if password else 0)
    var = s16(b"MQTT") + bytes([4, flags]) + (10).to_bytes(2, "big")
    payload = s16(b"fg-raw") + (s16(username.encode()) if username else b"") + (s16(password.encode()) if password else b"")
    body = var + payload
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(bytes([0x10, len(body)]) + body)
        data = b""
        while len(data) < 4:
            chunk = s.recv(4 - len(data))
            if not chunk:
                break
            data += chunk
    return data


class AuthSub(Sub):
    """fgtest's Sub (mosquitto_sub in the background) logged in as one of the deploy users."""

    def __init__(self, env, port, user, password, topic):
        self.msgs = []
        self.lock = threading.Lock()
        self.p = env.start(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-v", "-u", user,
                            "-P", password, "-t", topic], f"sub-{user}", stdout=subprocess.PIPE, text=True,
                           bufsize=1)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()


class Broker:
    def __init__(self, env, port, tls_port):
        self.env, self.port, self.tls_port = env, port, tls_port

    def pub(self, user, topic, n=N, tls=False):
        """Publishes n QoS 1 messages as user; returns mosquitto_pub's exit code."""
        args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.tls_port if tls else self.port), "-q", "1",
                "-u", user, "-P", secret(self.env, PASSFILE[user]), "-t", topic, "-l"]
        if tls:
            args += ["--cafile", self.env.path("ca.crt")]
        return subprocess.run(args, input="".join(f"m{i}\n" for i in range(n)), capture_output=True,
                              text=True, timeout=20).returncode

    def sub(self, user, topic="#"):
        return AuthSub(self.env, self.port, user, secret(self.env, PASSFILE[user]), topic)

    def barrier(self, subs, name):
        """A marker from the collector: once every subscriber has it, earlier publishes are settled."""
        topic = f"fabgrid/t/barrier/{name}"
        self.pub("collector", topic, n=1)
        for s in subs:
            if not s.wait(topic, timeout=10):
                raise RuntimeError(f"barrier {name} did not arrive")


PASSFILE = {"collector": "collector.pass", "balancer": "balancer.pass", "device": "mqtt-device.pass",
            "dashboard": "mqtt-dashboard.pass", "operator": "mqtt-operator.pass"}


def counts(sub, topics):
    return {t: len(sub.all(t)) for t in topics}


def test_acl(b):
    watch = b.sub("operator")          # reads #: sees whatever the broker delivers
    watch_c = b.sub("collector")
    dev = b.sub("device", "cmnd/#")
    dev_rpc = b.sub("device", "+/rpc")
    dev_fg = b.sub("device", "fabgrid/#")
    dash = b.sub("dashboard", "fabgrid/#")
    b.barrier([watch, watch_c, dash], "start")
    for t in ("cmnd/ready/POWER", "ready/rpc"):
        b.pub("balancer", t, n=1)
    for sub, t in ((dev, "cmnd/ready/POWER"), (dev_rpc, "ready/rpc")):
        if not sub.wait(t, timeout=10):
            raise RuntimeError(f"device subscriber did not get {t}")

    machine_cmds = ["cmnd/tasmota_kettle/POWER", "shellyplug-laser/rpc", "fabgrid/t/device/relays/set/coil_0",
                    "fabgrid/t/machine/kiln/state", "fabgrid/t/jobs/request", "fabgrid/status/device/relays/set/coil_0"]
    reports = ["tele/tasmota_kettle/SENSOR", "stat/tasmota_kettle/POWER", "shellyplug-laser/status/switch:0",
               "shellyplug-laser/events/rpc", "shellyplug-laser/online"]
    for t in machine_cmds + reports:
        b.pub("device", t)
    b.barrier([watch, watch_c], "device")
    check_eq("device cannot publish machine commands (collector sees 0 of 3 each)",
             counts(watch_c, machine_cmds), {t: 0 for t in machine_cmds})
    check_eq("device cannot publish machine commands (operator sees 0 of 3 each)",
             counts(watch, machine_cmds), {t: 0 for t in machine_cmds})
    check_eq("device reports arrive (3 each)", counts(watch_c, reports), {t: N for t in reports})

    anything = ["fabgrid/t/jobs/request", "fabgrid/t/device/relays/set/coil_0", "fabgrid/t/advice",
                "cmnd/tasmota_kettle/POWER", "tele/x/SENSOR", "some/other/topic"]
    for t in anything:
        b.pub("dashboard", t)
    b.barrier([watch, watch_c, dash], "dashboard")
    check_eq("dashboard user publishes nothing (0 delivered)", counts(watch, anything), {t: 0 for t in anything})

    col = ["fabgrid/t/device/inv1/state", "fabgrid/t/balance", "fabgrid/t/collector/status"]
    bal = ["fabgrid/t/balancer/plan", "fabgrid/t/machine/kiln/state", "fabgrid/t/jobs/kiln-daily@2026-01-05",
           "fabgrid/t/advice", "fabgrid/t/device/relays/set/coil_0", "shellyplug-laser/rpc",
           "cmnd/tasmota_kettle/POWER"]
    bal_not = ["fabgrid/t/device/inv1/state", "fabgrid/t/balance", "tele/tasmota_kettle/SENSOR"]
    for t in col:
        b.pub("collector", t)
    for t in bal + bal_not:
        b.pub("balancer", t)
    b.barrier([watch, dash], "daemons")
    dev.wait_count("cmnd/tasmota_kettle/POWER", N, timeout=10)
    dev_rpc.wait_count("shellyplug-laser/rpc", N, timeout=10)
    check_eq("collector publishes its topics (3 each)", counts(watch, col), {t: N for t in col})
    got = counts(watch, bal)
    check_eq("balancer publishes its topics and actuators (3 each)", got, {t: N for t in bal})
    before = {"fabgrid/t/device/inv1/state": N, "fabgrid/t/balance": N, "tele/tasmota_kettle/SENSOR": N}
    check_eq("balancer cannot publish the collector's or devices' topics (counts stay at their 3)", counts(watch, bal_not), before)
    check_eq("device reads its commands", (len(dev.all("cmnd/tasmota_kettle/POWER")),
                                           len(dev_rpc.all("shellyplug-laser/rpc"))), (N, N))
    check_eq("device reads nothing under fabgrid/", len(dev_fg.all()), 0)
    check_eq("dashboard reads fabgrid/ (balancer plan)", len(dash.all("fabgrid/t/balancer/plan")), N)

    ops = ["fabgrid/t/jobs/request", "fabgrid/t/device/relays/set/coil_1"]
    ops_not = ["fabgrid/t/machine/kiln/state", "cmnd/tasmota_kettle/POWER", "shellyplug-laser/rpc"]
    for t in ops + ops_not:
        b.pub("operator", t)
    b.barrier([watch_c], "operator")
    check_eq("operator requests jobs and sets points (3 each)", counts(watch_c, ops), {t: N for t in ops})
    check_eq("operator cannot switch machines (counts stay at the balancer's 3)", counts(watch_c, ops_not),
             {"fabgrid/t/machine/kiln/state": N, "cmnd/tasmota_kettle/POWER": N, "shellyplug-laser/rpc": N})


def test_tls(b):
    watch = b.sub("collector", "fabgrid/t/#")
    b.barrier([watch], "tls-start")
    check_eq("TLS publish with the CA: exit 0", b.pub("collector", "fabgrid/t/tls", tls=True), 0)
    b.barrier([watch], "tls-end")
    check_eq("TLS messages delivered", len(watch.all("fabgrid/t/tls")), N)
    plain_on_tls = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.tls_port), "-u", "collector",
                                   "-P", secret(b.env, "collector.pass"), "-t", "fabgrid/t/tls", "-m", "x"],
                                  capture_output=True, text=True, timeout=20)
    check("plain MQTT on the TLS port fails", plain_on_tls.returncode != 0, plain_on_tls)


def test_mosquitto():
    env = Env("deploy-mqtt")
    try:
        out = users_script(env)
        check_users_script(env, out)
        make_certs(env)
        port, tls_port = free_port(), free_port()
        with open(os.path.join(DEPLOY, "mosquitto", "fabgrid.conf")) as f:
            conf = env.write("mosquitto.conf", rewrite_conf(f.read(), env, port, tls_port))
        p = env.start(["/usr/sbin/mosquitto", "-c", conf], "mosquitto")
        wait_port(port, p)
        wait_port(tls_port, p)
        check_eq("anonymous CONNECT refused: CONNACK rc 5 (not authorised)", connack(port), b"\x20\x02\x00\x05")
        check_eq("wrong password refused: CONNACK rc 5", connack(port, "collector", "wrong"), b"\x20\x02\x00\x05")
        check_eq("right password: CONNACK rc 0", connack(port, "collector", secret(env, "collector.pass")),
                 b"\x20\x02\x00\x00")
        b = Broker(env, port, tls_port)
        test_acl(b)
        test_tls(b)
    finally:
        env.close()


# ---- InfluxDB ----------------------------------------------------------------------------------------

def influxd_auth(env):
    """A real influxd with authentication on and continuous queries looked for every second."""
    return env.influxd(name="influx", auth=True, cq_run_s=1)


def http(port, path, user=None, pw=None, data=None, params=None):
    """(status, decoded JSON or text) of a request to influxd."""
    import base64
    import json
    import urllib.error
    import urllib.parse
    import urllib.request
    url = f"http://127.0.0.1:{port}{path}?" + urllib.parse.urlencode(params or {})
    req = urllib.request.Request(url, data=data.encode() if data is not None else None, method="POST")
    if user:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, body = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read().decode()
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, body


class Influx:
    def __init__(self, env, port):
        self.env, self.port = env, port

    def pw(self, who):
        with open(self.env.path(f"etc/fabgrid/influx-{who}.pass")) as f:
            return f.read().strip()

    def q(self, stmt, who="admin", db=None):
        params = {"q": stmt, "epoch": "s"}
        if db:
            params["db"] = db
        return http(self.port, "/query", who, self.pw(who), params=params)

    def rows(self, stmt, db=None):
        status, body = self.q(stmt, db=db)
        series = body["results"][0].get("series") or []
        return [s.get("values") or [] for s in series]

    def write(self, who, lines, rp=None):
        params = {"db": "fabgrid", "precision": "s"}
        if rp:
            params["rp"] = rp
        return http(self.port, "/write", who, self.pw(who) if who else None, data=lines, params=params)[0]


def setup_script(env, port):
    return subprocess.run(["sh", os.path.join(DEPLOY, "influxdb-setup.sh"), "--url", f"http://127.0.0.1:{port}",
                           "--root", env.dir], capture_output=True, text=True, timeout=120)


CQ = ('CREATE CONTINUOUS QUERY cq_1m_means ON fabgrid RESAMPLE EVERY 1m FOR 10m BEGIN SELECT mean(*) INTO '
      'fabgrid.year.:MEASUREMENT FROM fabgrid.raw./.*/ GROUP BY time(1m), * END')


def check_schema(ix):
    check_eq("retention policies", ix.rows('SHOW RETENTION POLICIES ON "fabgrid"'),
             [[["autogen", "0s", "168h0m0s", 1, False], ["raw", "720h0m0s", "24h0m0s", 1, True],
               ["year", "8760h0m0s", "168h0m0s", 1, False]]])
    status, body = ix.q("SHOW CONTINUOUS QUERIES")
    cqs = {s["name"]: s.get("values") for s in body["results"][0]["series"]}
    check_eq("continuous queries", cqs.get("fabgrid"), [["cq_1m_means", CQ]])
    check_eq("users", ix.rows("SHOW USERS"), [[["admin", True], ["collector", False], ["grafana", False]]])
    check_eq("collector's grants", ix.rows('SHOW GRANTS FOR "collector"'), [[["fabgrid", "WRITE"]]])
    check_eq("grafana's grants", ix.rows('SHOW GRANTS FOR "grafana"'), [[["fabgrid", "READ"]]])


def check_rights(ix):
    now = int(time.time())
    check_eq("anonymous write: 401", ix.write(None, f"balance,site=t pv_w=1 {now}"), 401)
    check_eq("collector writes: 204", ix.write("collector", f"balance,site=t pv_w=1 {now}"), 204)
    check_eq("grafana cannot write: 403", ix.write("grafana", f"balance,site=t pv_w=2 {now}"), 403)
    status, body = ix.q('SELECT pv_w FROM "balance"', who="grafana", db="fabgrid")
    check_eq("grafana reads", (status, body["results"][0]["series"][0]["values"]), (200, [[now, 1]]))
    check_eq("collector cannot read", ix.q('SELECT pv_w FROM "balance"', who="collector", db="fabgrid"),
             (403, {"error": "error authorizing query: collector not authorized to execute statement "
                             "'SELECT pv_w FROM balance', requires READ on fabgrid"}))
    check_eq("collector cannot drop the database", ix.q('DROP DATABASE "fabgrid"', who="collector"),
             (403, {"error": "error authorizing query: collector not authorized to execute statement "
                             "'DROP DATABASE fabgrid', requires admin privilege"}))


def check_cq_update(env, ix, port):
    """A changed continuous query in the schema replaces the old one (a CQ cannot be altered in place)."""
    with open(os.path.join(DEPLOY, "influxdb", "schema.iql")) as f:
        old = f.read().replace("FOR 10m", "FOR 5m")
    out = subprocess.run(["sh", os.path.join(DEPLOY, "influxdb-setup.sh"), "--url", f"http://127.0.0.1:{port}",
                          "--root", env.dir, "--schema", env.write("old.iql", old)], capture_output=True, text=True)
    status, body = ix.q("SHOW CONTINUOUS QUERIES")
    cqs = {s["name"]: s.get("values") for s in body["results"][0]["series"]}
    check_eq("an older schema's CQ is applied", (out.returncode, cqs.get("fabgrid")),
             (0, [["cq_1m_means", CQ.replace("FOR 10m", "FOR 5m")]]))
    check_eq("rerun with the shipped schema: exit 0", setup_script(env, port).returncode, 0)


def write_cq_points(ix):
    """Points two minutes old in "raw"; the continuous query's next run (at a minute boundary) means them."""
    t0 = (int(time.time()) - 120) // 60 * 60
    lines = "\n".join([f"device,site=t,device=inv1,role=pv power_w=100,energy_wh=5 {t0 + 1}",
                       f"device,site=t,device=inv1,role=pv power_w=200,energy_wh=7 {t0 + 31}",
                       f"machine,site=t,machine=kiln on=1i,power_w=6000 {t0 + 5}"])
    check_eq("points written to raw", ix.write("collector", lines), 204)
    return t0


def check_cq(ix, t0):
    sel = 'SELECT * FROM "fabgrid"."year"."device"'
    got = wait_for(lambda: ix.rows(sel, db="fabgrid"), timeout=75, step=0.5)
    check_eq("CQ: year.device has the minute's means with the tags",
             got, [[[t0, "inv1", 6, 150, "pv", "t"]]])
    check_eq("CQ: year.device fields are mean_<field>",
             ix.rows('SHOW FIELD KEYS FROM "fabgrid"."year"."device"', db="fabgrid"),
             [[["mean_energy_wh", "float"], ["mean_power_w", "float"]]])
    check_eq("CQ: year.machine (integer field on -> mean_on)",
             ix.rows('SELECT mean_on, mean_power_w FROM "fabgrid"."year"."machine"', db="fabgrid"),
             [[[t0, 1, 6000]]])


def test_influx(env, then):
    """Sets InfluxDB up and writes the CQ's input, runs then() while the CQ's minute comes, checks its output."""
    port = influxd_auth(env)
    out = setup_script(env, port)
    check_eq("influxdb-setup.sh exit 0", (out.returncode, out.stderr.count("new password")), (0, 3))
    check("created the admin", "created admin user admin" in out.stdout, out.stdout + out.stderr)
    modes = {n: stat.S_IMODE(os.stat(env.path(f"etc/fabgrid/influx-{n}.pass")).st_mode)
             for n in ("admin", "collector", "grafana")}
    check_eq("influx password files are 0600", modes, {"admin": 0o600, "collector": 0o600, "grafana": 0o600})
    ix = Influx(env, port)
    again = setup_script(env, port)
    check_eq("second run: exit 0, no new password", (again.returncode, again.stderr), (0, ""))
    check_cq_update(env, ix, port)
    check_schema(ix)
    check_rights(ix)
    t0 = write_cq_points(ix)
    then()
    check_cq(ix, t0)


# ---- make install and the systemd units -------------------------------------------------------------

def expected_tree():
    """Every file make install DESTDIR=... PREFIX=/usr writes, with its mode."""
    rel = lambda pattern: sorted(os.path.relpath(f, ROOT) for f in glob.glob(os.path.join(ROOT, pattern)))
    tree = {"etc/fabgrid/site.json.example": 0o644,
            "usr/bin/fabgrid-balancer": 0o755, "usr/bin/fabgrid-collector": 0o755, "usr/bin/fabgrid-sim": 0o755,
            "usr/lib/systemd/system/fabgrid-balancer.service": 0o644,
            "usr/lib/systemd/system/fabgrid-collector.service": 0o644,
            "usr/lib/sysusers.d/fabgrid.conf": 0o644,
            "usr/share/fabgrid/deploy/influxdb-setup.sh": 0o755,
            "usr/share/fabgrid/deploy/mosquitto-users.sh": 0o755,
            "usr/share/fabgrid/deploy/influxdb/README.md": 0o644,
            "usr/share/fabgrid/deploy/influxdb/influxdb.conf": 0o644,
            "usr/share/fabgrid/deploy/influxdb/schema.iql": 0o644,
            "usr/share/fabgrid/deploy/mosquitto/fabgrid.acl": 0o644,
            "usr/share/fabgrid/deploy/mosquitto/fabgrid.conf": 0o644}
    for f in rel("config/profiles/*.json"):
        tree["usr/share/fabgrid/profiles/" + os.path.basename(f)] = 0o644
    for f in rel("config/*.json"):
        tree["usr/share/fabgrid/examples/" + os.path.basename(f)] = 0o644
    for d, _, files in os.walk(os.path.join(ROOT, "dashboards")):
        for f in files:
            tree["usr/share/fabgrid/" + os.path.relpath(os.path.join(d, f), ROOT)] = 0o644
    return tree


def installed_tree(root):
    tree = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            tree[os.path.relpath(p, root)] = stat.S_IMODE(os.lstat(p).st_mode)
    return tree


def make_install(env, build, **var):
    args = ["make", "-C", ROOT, "--no-print-directory", "-j2", "install", f"BUILD={build}", "SANITIZE="]
    args += [f"{k}={v}" for k, v in var.items()]
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def unit_lines(path, key):
    with open(path) as f:
        return [ln.split("=", 1)[1].strip() for ln in f if ln.startswith(key + "=")]


def run_exec_start_pre(unit):
    """Runs the unit's ExecStartPre (the --check) with the unit's Environment=, as systemd would."""
    env = {k: v for k, v in os.environ.items() if k != "FABGRID_PROFILE_DIR"}
    for e in unit_lines(unit, "Environment"):
        k, _, v = e.partition("=")
        env[k] = v
    return subprocess.run(unit_lines(unit, "ExecStartPre")[0].split(), capture_output=True, text=True, env=env)


def test_install():
    env = Env("deploy-install")
    try:
        build, dest = env.path("build"), env.path("dest")
        out = make_install(env, build, DESTDIR=dest, PREFIX="/usr")
        check_eq("make install DESTDIR PREFIX=/usr: exit 0", (out.returncode, out.stderr), (0, ""))
        check_eq("installed tree: files and modes", installed_tree(dest), expected_tree())
        units = os.path.join(dest, "usr/lib/systemd/system")
        col, bal = os.path.join(units, "fabgrid-collector.service"), os.path.join(units, "fabgrid-balancer.service")
        check_eq("collector unit runs the installed binary",
                 (unit_lines(col, "ExecStartPre"), unit_lines(col, "ExecStart"), unit_lines(col, "Environment")),
                 (["/usr/bin/fabgrid-collector -c /etc/fabgrid/site.json --check"],
                  ["/usr/bin/fabgrid-collector -c /etc/fabgrid/site.json"],
                  ["FABGRID_PROFILE_DIR=/usr/share/fabgrid/profiles"]))
        check_eq("balancer unit runs the installed binary",
                 (unit_lines(bal, "ExecStartPre"), unit_lines(bal, "ExecStart"), unit_lines(bal, "ExecReload")),
                 (["/usr/bin/fabgrid-balancer -c /etc/fabgrid/site.json --check"],
                  ["/usr/bin/fabgrid-balancer -c /etc/fabgrid/site.json"], ["/bin/kill -HUP $MAINPID"]))
        for u in (col, bal):
            with open(u) as f:
                check("no @placeholders@ left in " + os.path.basename(u), not re.search(r"@[A-Z]+@", f.read()))
        with open(os.path.join(dest, "usr/bin/fabgrid-collector"), "rb") as f:
            check("collector built for PREFIX=/usr (profile dir)", b"/usr/share/fabgrid/profiles" in f.read())

        # systemd-analyze verify needs the ExecStart binaries to exist: install to a real prefix in the temp dir
        pfx = env.path("prefix")
        out = make_install(env, build, PREFIX=pfx)
        check_eq("make install PREFIX=tmp: exit 0", out.returncode, 0)
        units = [os.path.join(pfx, "lib/systemd/system", u) for u in ("fabgrid-collector.service",
                                                                      "fabgrid-balancer.service")]
        ver = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
        check_eq("systemd-analyze verify accepts both units (no warnings)",
                 (ver.returncode, ver.stdout, ver.stderr), (0, "", ""))
        os.link(os.path.join(pfx, "etc/fabgrid/site.json.example"), os.path.join(pfx, "etc/fabgrid/site.json"))
        for u in units:
            r = run_exec_start_pre(u)
            check_eq(f"{os.path.basename(u)}: ExecStartPre --check passes on the example config",
                     r.returncode, 0)
    finally:
        env.close()


def main():
    env = Env("deploy-influx")
    try:
        test_influx(env, lambda: (test_install(), test_mosquitto()))
    finally:
        env.close()
    done()


main()
