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

from fgtest import ROOT, Env, Sub, check, check_eq, done, free_port, wait_for, wait_port

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


def main():
    test_mosquitto()
    done()


main()
