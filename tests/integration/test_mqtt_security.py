"""The collector's MQTT connection against a real Mosquitto that requires a password and speaks TLS:
right credentials connect (status online), a wrong password never does and is logged, a TLS listener
is reached with the CA file, a secret file readable by others is refused at start, and while the broker
is away the bounded outgoing queue counts what it drops."""
import os
import re
import signal
import subprocess
import time

from fgtest import Env, Sub, check, check_eq, done, free_port, site_config, wait_for, wait_port


def collector_cfg(env, mport, **mqtt):
    cfg = site_config(mport, [], [])
    cfg["mqtt"].update(mqtt)
    return env.write_json("site.json", cfg)


def secured_broker(env, tls=False):
    pw = env.path("passwd")
    subprocess.run(["mosquitto_passwd", "-b", "-c", pw, "collector", "s3cret"], check=True, capture_output=True)
    os.chmod(pw, 0o600)
    port = free_port()
    # as root, mosquitto would switch to its own user, which cannot read the test's private temp dir
    extra = f"password_file {pw}\n" + ("user root\n" if os.geteuid() == 0 else "")
    if tls:
        ca, key, crt = env.path("ca.pem"), env.path("key.pem"), env.path("crt.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt],
                       check=True, capture_output=True)
        subprocess.run(["cp", crt, ca], check=True)
        extra += f"certfile {crt}\nkeyfile {key}\n"
    conf = env.write("secure.conf", f"listener {port} 127.0.0.1\nallow_anonymous false\npersistence false\n{extra}")
    p = env.start(["/usr/sbin/mosquitto", "-c", conf], "secure-mosquitto")
    wait_port(port, p)
    return port


def watch(env, port, tls=False):
    args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-u", "collector", "-P", "s3cret", "-v",
            "-t", "fabgrid/#"]
    if tls:
        args += ["--cafile", env.path("ca.pem")]
    out = open(env.path("watch.log"), "w")
    p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    env.procs.append(p)
    p.fg_name = "watch"
    return lambda: open(env.path("watch.log")).read()


def test_password():
    env = Env("mqtt-auth")
    try:
        port = secured_broker(env)
        seen = watch(env, port)
        sec = env.write("collector.pass", "s3cret\n", 0o600)
        env.collector(collector_cfg(env, port, username="collector", password_file=sec))
        check("right password: collector/status online",
              wait_for(lambda: "fabgrid/test/collector/status online" in seen(), timeout=15), seen())
        bad = env.write("wrong.pass", "nope\n", 0o600)
        cfg = site_config(port, [], [])
        cfg["site"]["id"] = "other"
        cfg["mqtt"].update(username="collector", password_file=bad)
        env.collector(env.write_json("other.json", cfg), name="wrong")
        time.sleep(3)
        check("wrong password: never online", "fabgrid/other/collector/status" not in seen(), seen())
        check("wrong password: logged", "the broker refused the connection: Connection Refused: not authorised"
              in env.log("wrong"), env.log("wrong")[-800:])
        open_pass = env.write("open.pass", "s3cret\n", 0o644)
        cfg["mqtt"]["password_file"] = open_pass
        out = subprocess.run([os.path.join(os.environ.get("FG_BUILD", "build"), "bin", "fabgrid-collector"), "-c",
                              env.write_json("open.json", cfg), "--check"], capture_output=True, text=True)
        check_eq("secret readable by others refused", (out.returncode, out.stderr.strip()),
                 (1, f"{env.path('open.json')}: mqtt.password_file: {open_pass} is readable by group or others "
                     f"(chmod 600 it)"))
    finally:
        env.close()


def test_tls():
    env = Env("mqtt-tls")
    try:
        port = secured_broker(env, tls=True)
        seen = watch(env, port, tls=True)
        sec = env.write("collector.pass", "s3cret\n", 0o600)
        env.collector(collector_cfg(env, port, username="collector", password_file=sec, ca_file=env.path("ca.pem")))
        check("TLS with CA file: collector/status online",
              wait_for(lambda: "fabgrid/test/collector/status online" in seen(), timeout=15), seen())
    finally:
        env.close()


def test_queue_bound():
    env = Env("mqtt-queue")
    try:
        mport, sport = env.mosquitto(), free_port()
        cfg = site_config(mport, [{"id": "lan", "type": "tcp", "host": "127.0.0.1", "port": sport}],
                          [{"id": "m", "bus": "lan", "unit": 1, "profile": "sdm630", "role": "load", "poll_ms": 100}])
        cfg["mqtt"]["queue_max"] = 10
        conf = env.write_json("site.json", cfg)
        sim = env.sim(conf)
        wait_port(sport, sim)
        sub = Sub(env, mport, "fabgrid/test/collector/status")
        col = env.collector(conf)
        sub.wait("fabgrid/test/collector/status", lambda p: p == "online")
        env.stop([p for p in env.procs if p.fg_name == "mosquitto"][0])
        time.sleep(3)   # ~30 readings while the broker is away: at most 10 are queued
        col.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        stats = [ln for ln in env.log("collector").splitlines() if " stats: " in ln]
        kv = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", stats[-1])} if stats else {}
        print(f"# published {kv.get('mqtt_published')}, dropped {kv.get('mqtt_dropped')}")
        check("broker away: the outgoing queue drops beyond queue_max and counts it", kv.get("mqtt_dropped", 0) >= 15, kv)
        check("collector keeps running", col.poll() is None, col.returncode)
    finally:
        env.close()


if __name__ == "__main__":
    test_password()
    test_tls()
    test_queue_bound()
    done()
