"""The Grafana dashboards (dashboards/*.json) against a real InfluxDB filled by a short `make demo` run:
every dashboard parses, every panel, target and template variable uses the provisioned datasource uid,
the template variables resolve to values, and every panel's query, with $site, $device, $timeFilter,
$__interval and $__interval_ms substituted as Grafana does, returns data. Queries of what only the live
balancer publishes (machine, plan, job, advice, forecast) are listed as empty while the demo's
balancer does not run, and must return data once it does."""
import glob
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import PY, ROOT, Env, check, check_eq, done, influx_query  # noqa: E402

DASH = os.path.join(ROOT, "dashboards")
UID = "fabgrid-influx"
BALANCER_FED = ("machine", "plan", "job", "advice", "forecast")
# Grafana's interval rounding (public/app/core/utils/rangeutil: roundInterval), the steps that occur here.
STEPS_MS = [10000, 15000, 20000, 30000, 60000, 120000, 300000, 600000, 900000, 1200000, 1800000, 3600000]


def provisioned_uid():
    text = open(os.path.join(DASH, "provisioning", "datasources", "fabgrid.yaml")).read()
    uids = re.findall(r"^\s*uid:\s*(\S+)", text, re.M)
    return uids


def panels(d):
    for p in d.get("panels", []):
        yield p
        yield from p.get("panels", [])  # collapsed rows hold their panels


def uses_uid(obj):
    ds = obj.get("datasource")
    return isinstance(ds, dict) and ds.get("uid") == UID and ds.get("type") == "influxdb"


def interval(t0, t1, max_points=1000):
    raw = (t1 - t0) / max_points
    ms = next((s for s in STEPS_MS if s >= raw), STEPS_MS[-1])
    return ms, (f"{ms // 60000}m" if ms % 60000 == 0 else f"{ms // 1000}s")


def substitute(q, v, t0, t1):
    ms, text = interval(t0, t1)
    q = q.replace("$timeFilter", f"time >= {t0}ms and time <= {t1}ms")
    q = q.replace("$__interval_ms", str(ms)).replace("$__interval", text)
    for name, vals in sorted(v.items(), key=lambda kv: -len(kv[0])):
        # single value: as is; several (multi or All) in a regex: an escaped alternation
        rep = vals[0] if len(vals) == 1 else "(" + "|".join(re.escape(x) for x in vals) + ")"
        q = q.replace("${" + name + "}", rep).replace("$" + name, rep)
    return q


def has_data(res):
    for r in res.get("results", []):
        for s in r.get("series") or []:
            for row in s.get("values") or []:
                if any(x is not None for x in row[1:]):
                    return True
    return False


def measurement(q):
    m = re.findall(r'FROM\s+(?:"year"\.)?"?([a-z_]+)"?', q)
    return [x for x in m if x != "SELECT"]


def static_checks(boards):
    check_eq("datasource provisioning has exactly the fixed uid", provisioned_uid(), [UID])
    check_eq("dashboards", sorted(boards), ["collector.json", "devices.json", "machines.json", "site.json"])
    check_eq("dashboard uids unique", len({d["uid"] for d in boards.values()}), len(boards))
    for name, d in boards.items():
        bad = [p["title"] for p in panels(d) if not uses_uid(p)]
        bad += [f'{p["title"]}/{t.get("refId")}' for p in panels(d) for t in p.get("targets", []) if not uses_uid(t)]
        bad += [f'${v["name"]}' for v in d["templating"]["list"] if v.get("type") == "query" and not uses_uid(v)]
        check_eq(f"{name}: every panel, target and variable uses datasource uid {UID}", bad, [])
        check(f"{name}: has panels with targets", all(p.get("targets") for p in panels(d)) and any(True for _ in panels(d)))


def resolve_vars(port, name, d, t0, t1):
    v = {}
    for var in d["templating"]["list"]:
        q = substitute(var["query"], v, t0, t1)
        res = influx_query(port, q, "fabgrid")["results"][0].get("series") or []
        vals = sorted({row[1] for s in res for row in s["values"]})
        check(f"{name}: ${var['name']} resolves to values ({', '.join(vals)})", vals, f"query {q} returned nothing")
        v[var["name"]] = vals[:1] if not var.get("multi") else vals  # single: Grafana's first; multi: All
    return v


def main():
    env = Env("dashboards")
    try:
        run(env)
    finally:
        env.close()
    done()


def run(env):
    boards = {os.path.basename(f): json.load(open(f)) for f in sorted(glob.glob(os.path.join(DASH, "*.json")))}
    static_checks(boards)
    demo_dir = env.path("demo")
    r = subprocess.run([PY, os.path.join(ROOT, "deploy", "demo.py")], capture_output=True, text=True, timeout=150,
                       env={**os.environ, "DEMO_DIR": demo_dir, "DEMO_SECONDS": "40", "DEMO_SPEED": "480"})
    print(r.stdout)
    check_eq("demo run exits 0", r.returncode, 0)
    check("demo prints its summary", "self-consumption" in r.stdout and "picture of the day" in r.stdout,
          r.stdout[-500:] + r.stderr[-500:])
    balancer = "balancer: online" in r.stdout
    check("the demo's live balancer runs (so the machine, plan, job and advice panels must have data)", balancer)
    if r.returncode != 0:
        return
    port = env.influxd(name="demo/influxd")
    first = influx_query(port, "SELECT first(pv_w) FROM balance", "fabgrid")["results"][0].get("series") or []
    last = influx_query(port, "SELECT last(pv_w) FROM balance", "fabgrid")["results"][0].get("series") or []
    t0 = first[0]["values"][0][0] if first else 0
    t1 = last[0]["values"][0][0] if last else 0
    if not check("demo stored over an hour of simulated balance", t1 - t0 > 3600000, f"{t0}..{t1}"):
        return
    empty, expected_empty = [], []
    for name, d in boards.items():
        v = resolve_vars(port, name, d, t0, t1)
        for p in panels(d):
            for t in p["targets"]:
                q = substitute(t["query"], v, t0, t1)
                label = f'{name}: {p["title"]} / {t["refId"]}'
                fed = any(m in BALANCER_FED for m in measurement(q))
                try:
                    ok = has_data(influx_query(port, q, "fabgrid"))
                    err = ""
                except OSError as e:
                    ok, err = False, str(e)
                if fed and not balancer:
                    expected_empty.append(label)
                    if not ok:
                        empty.append(label)
                    continue
                check(f"{label} returns data", ok, err or f"no data: {q}")
    if not balancer:
        print("empty until the live balancer runs in the demo:\n  " + "\n  ".join(empty))
        check_eq("without the live balancer exactly its queries are empty", empty, expected_empty)


if __name__ == "__main__":
    main()
