"""Integration: fabgrid-balancer --replay, the real binary on real data. One week of NREL SERF East PV
with the tool manufacturer's load and a small workshop: every strategy runs, the report has every key
of the contract, no deadline is missed, no min on/off time is violated, and planning uses at least as
much of the PV as starting every job at once. NREL system 50 (empty values, a clock that keeps
daylight saving time while labelling -07:00): no crash, gaps reported, no energy invented. An external
PV forecast (the PV file itself one day late) and a two-tariff price file: the report says which
forecast the planner saw and what the real flows cost. And the command line's usage errors."""
import csv
import datetime
import json
import os
import subprocess
import zoneinfo

from fgtest import BIN, DATA, Env, check, check_eq, done

BAL = os.path.join(BIN, "fabgrid-balancer")
SERF = os.path.join(DATA, "pv-nrel-serf-east", "serf_east_15min_ac_power.csv")
SYS50 = os.path.join(DATA, "pv-nrel-system50", "system_50_ac_power_2_full_DST.csv")
LOAD = os.path.join(DATA, "load-tool-manufacturer", "LP_G_MV.csv")
DENVER = zoneinfo.ZoneInfo("America/Denver")

CONTRACT_KEYS = ["pv_kwh", "load_kwh", "import_kwh", "export_kwh", "self_consumption_pct",
                 "self_sufficiency_pct", "peak_import_w", "jobs_total", "jobs_on_time", "deadline_misses",
                 "starts", "min_on_off_violations", "plan_ms_p50", "plan_ms_max", "days"]
REPLAY_KEYS = ["machine_kwh", "strategy", "oracle", "gaps", "clock_faults", "load_source", "forecast",
               "forecast_fallback_slots", "cost"]
DAY_ENERGY_KEYS = ["pv_kwh", "load_kwh", "import_kwh", "export_kwh", "self_consumption_pct",
                   "self_sufficiency_pct", "peak_import_w", "machine_kwh"]
DAY_JOB_KEYS = ["jobs_total", "jobs_on_time", "deadline_misses", "starts"]

# The SERF East array (5.4 kWp, Golden CO) as it is, the load profile scaled to 10 MWh/a (about 2.4 kW
# on weekdays 08-16), and three machines whose jobs fit their windows easily.
WORKSHOP = {
    "site": {"id": "golden", "timezone": "America/Denver", "latitude": 39.742, "longitude": -105.173,
             "grid_limit_w": 20000, "pv_kwp": 5.4, "tilt_deg": 45, "azimuth_deg": 158},
    "machines": [
        {"id": "kiln", "power_w": 2000, "interruptible": False, "min_on_s": 600, "min_off_s": 300},
        {"id": "compressor", "power_w": 1500, "interruptible": True, "min_on_s": 900, "min_off_s": 300,
         "windows": [{"days": "daily", "from": "08:00", "to": "20:00"}]},
        {"id": "ev", "min_power_w": 2000, "max_power_w": 4000, "step_w": 500, "interruptible": True,
         "min_on_s": 900, "min_off_s": 300},
    ],
    "jobs": [
        {"id": "firing", "machine": "kiln", "days": "mon-fri", "duration_min": 240,
         "earliest": "07:00", "deadline": "18:00"},
        {"id": "tank", "machine": "compressor", "days": "daily", "duration_min": 120,
         "earliest": "08:00", "deadline": "20:00"},
        {"id": "charge", "machine": "ev", "days": "mon-fri", "energy_wh": 8000,
         "earliest": "07:00", "deadline": "17:00"},
    ],
    "balancer": {"slot_min": 15, "horizon_h": 36, "stale_after_s": 120},
}
WEEK = ["--from", "2016-07-04", "--days", "7"]  # Monday .. Sunday
JOBS_IN_WEEK = 5 + 7 + 5
MACHINE_KWH = 5 * 8 + 7 * 3 + 5 * 8


def run(args, timeout=300):
    return subprocess.run([BAL] + args, capture_output=True, text=True, timeout=timeout)


def replay(env, conf, pv, name, extra):
    rep = env.path(name + ".json")
    p = run(["-c", conf, "--replay", "--pv", pv, "--load", LOAD, "--report", rep] + extra)
    ok = check_eq(f"{name}: exit status", p.returncode, 0)
    if not ok:
        print(p.stderr[-2000:])
        return None
    with open(rep) as f:
        return json.load(f)


def check_keys(name, r):
    missing = [k for k in CONTRACT_KEYS + REPLAY_KEYS if k not in r]
    check(f"{name}: report has every contract and replay key", not missing, f"missing {missing}")
    days = r.get("days", [])
    bad = [d.get("date") for d in days
           if any(k not in d for k in ["date"] + DAY_ENERGY_KEYS + DAY_JOB_KEYS)]
    check(f"{name}: every day has its date, energy and job keys", days and not bad, f"bad days {bad}")


def check_books(name, r):
    """The report's own arithmetic: PV used = PV - export = load - import, and days add up."""
    used_a = r["pv_kwh"] - r["export_kwh"]
    used_b = r["load_kwh"] - r["import_kwh"]
    check(f"{name}: PV - export == load - import", abs(used_a - used_b) < 0.01, f"{used_a} vs {used_b}")
    for key in ("pv_kwh", "import_kwh", "machine_kwh"):
        s = sum(d[key] for d in r["days"])
        check(f"{name}: days' {key} add up", abs(s - r[key]) < 0.01 * len(r["days"]), f"{s} vs {r[key]}")


def test_serf_week(env):
    conf = env.write_json("workshop.json", WORKSHOP)
    p = run(["-c", conf, "--check"])
    check_eq("--check of the workshop", (p.returncode, p.stdout.strip()),
             (0, f"{conf}: ok (3 machines, 3 jobs; slot 15 min, horizon 36 h)"))
    reports = {}
    for name, extra in [("plan", ["--strategy", "plan", "--svg", env.path("plan.svg")]),
                        ("oracle", ["--strategy", "plan", "--oracle"]),
                        ("surplus", ["--strategy", "surplus"]),
                        ("immediate", ["--strategy", "immediate"])]:
        r = replay(env, conf, SERF, name, WEEK + extra)
        if r is None:
            continue
        reports[name] = r
        check_keys(name, r)
        check_books(name, r)
        check_eq(f"{name}: 7 days from 2016-07-04", (len(r["days"]), r["days"][0]["date"], r["days"][-1]["date"]),
                 (7, "2016-07-04", "2016-07-10"))
        check_eq(f"{name}: jobs of the week", r["jobs_total"], JOBS_IN_WEEK)
        check_eq(f"{name}: deadline misses", r["deadline_misses"], 0)
        check_eq(f"{name}: jobs on time", r["jobs_on_time"], JOBS_IN_WEEK)
        check_eq(f"{name}: min on/off violations", r["min_on_off_violations"], 0)
        check(f"{name}: machine energy = the jobs' energy", abs(r["machine_kwh"] - MACHINE_KWH) < 0.002,
              str(r["machine_kwh"]))
        check_eq(f"{name}: strategy and oracle in the report", (r["strategy"], r["oracle"]),
                 ("plan" if name in ("plan", "oracle") else name, name == "oracle"))
        check_eq(f"{name}: SERF East has no gaps and no clock faults",
                 (r["gaps"]["count"], r["gaps"]["minutes"], r["clock_faults"]), (0, 0, 0))
        check(f"{name}: load source says how days are paired",
              "same weekday" in r["load_source"] and "2016-07-04 <- 2018-07-02" in r["load_source"],
              r["load_source"])
    if {"plan", "immediate", "oracle"} <= set(reports):
        plan, imm, orc = reports["plan"], reports["immediate"], reports["oracle"]
        check("plan self-consumption >= immediate's",
              plan["self_consumption_pct"] >= imm["self_consumption_pct"],
              f"{plan['self_consumption_pct']} < {imm['self_consumption_pct']}")
        check("oracle import <= immediate's", orc["import_kwh"] <= imm["import_kwh"],
              f"{orc['import_kwh']} > {imm['import_kwh']}")
        check_eq("plan: the planner ran at every 15-min slot", plan.get("plan_calls"), 7 * 96)
        check("plan: plan times measured", 0 < plan["plan_ms_p50"] <= plan["plan_ms_max"],
              f"{plan['plan_ms_p50']} {plan['plan_ms_max']}")
        check_eq("immediate: no planner", (imm["plan_ms_p50"], imm["plan_ms_max"]), (0, 0))
        check_eq("the same PV and load in every strategy", {(r["pv_kwh"], r["base_load_kwh"]) for r in reports.values()},
                 {(plan["pv_kwh"], plan["base_load_kwh"])})
    svg = env.path("plan.svg")
    if check("plan: SVG written", os.path.exists(svg)):
        with open(svg) as f:
            text = f.read()
        check("plan: SVG has the 7 days and the machines' lanes",
              text.startswith("<svg ") and text.rstrip().endswith("</svg>") and
              all(f">2016-07-{d:02d}</text>" in text for d in range(4, 11)) and ">compressor</text>" in text,
              text[:200])


def positive_sum_kwh(path, start, end):
    """Sum of the file's non-empty values (negative ones as 0) in [start, end], times 0.25 h."""
    total = 0.0
    with open(path) as f:
        rd = csv.reader(f)
        next(rd)
        for row in rd:
            if len(row) < 2 or row[1].strip() == "":
                continue
            t = datetime.datetime.fromisoformat(row[0])
            if start <= t <= end:
                total += max(0.0, float(row[1]))
    return total * 0.25 / 1000


def local_day_span(first, last):
    a = datetime.datetime.combine(datetime.date.fromisoformat(first), datetime.time(), DENVER)
    b = datetime.datetime.combine(datetime.date.fromisoformat(last) + datetime.timedelta(days=1),
                                  datetime.time(), DENVER)
    return a, b


def test_system50(env):
    cfg = dict(WORKSHOP, site=dict(WORKSHOP["site"], pv_kwp=3.5))
    conf = env.write_json("sys50.json", cfg)
    # a September week full of empty values, in the part of the file whose clock kept daylight saving time
    r = replay(env, conf, SYS50, "system50 week", ["--from", "2011-09-14", "--days", "7"])
    if r is not None:
        check_keys("system50 week", r)
        check_books("system50 week", r)
        g = r["gaps"]
        check("system50 week: gaps reported", g["count"] > 0 and g["minutes"] > 0 and g["pv_empty_rows"] == 2279,
              json.dumps(g))
        a, b = local_day_span(r["from"], r["to"])
        limit = positive_sum_kwh(SYS50, a, b)
        check("system50 week: pv_kwh not above the file's non-empty values x 0.25 h",
              0 < r["pv_kwh"] <= limit, f"{r['pv_kwh']} > {limit}")
        check_eq("system50 week: no deadline missed despite the gaps", r["deadline_misses"], 0)
        check_eq("system50 week: min on/off violations", r["min_on_off_violations"], 0)
    # the whole file, every strategy's worst case for robustness: 658 days, two DST changes a year
    r = replay(env, conf, SYS50, "system50 whole file", ["--strategy", "immediate"])
    if r is not None:
        check_books("system50 whole file", r)
        a, b = local_day_span(r["from"], r["to"])
        limit = positive_sum_kwh(SYS50, a, b)
        check("system50 whole file: pv_kwh not above the non-empty values x 0.25 h", 0 < r["pv_kwh"] <= limit,
              f"{r['pv_kwh']} > {limit}")
        check("system50 whole file: gaps reported", r["gaps"]["count"] > 0 and r["gaps"]["minutes"] > 0,
              json.dumps(r["gaps"]))
        check_eq("system50 whole file: days", (r["from"], r["to"], r["ndays"]), ("2011-04-15", "2013-01-31", 658))
        # the file's clock kept daylight saving time in summer: its PV comes an hour late against the sun
        july = sorted(d["pv_shift_min"] for d in r["days"] if d["date"].startswith("2011-07") and
                      d["pv_shift_min"] is not None)
        january = sorted(d["pv_shift_min"] for d in r["days"] if d["date"].startswith("2012-01") and
                         d["pv_shift_min"] is not None)
        check("system50: the DST-shifted clock shows against the sun (July late by about an hour, January not)",
              len(july) >= 5 and len(january) >= 5 and july[len(july) // 2] > 40 and
              abs(january[len(january) // 2]) < 20 and r["pv_clock"]["days_off"] > 0,
              f"July {july}, January {january}, {r.get('pv_clock')}")


def shifted_forecast(env):
    """The SERF file one day late: each day's forecast is the day before's measured PV."""
    out = env.path("forecast.csv")
    rows = 0
    with open(SERF) as f, open(out, "w") as g:
        rd = csv.reader(f)
        g.write(",".join(next(rd)) + "\n")
        for row in rd:
            if len(row) < 2:
                continue  # blank lines
            t = datetime.datetime.fromisoformat(row[0]) + datetime.timedelta(days=1)
            g.write(f"{t.isoformat(sep=' ')},{row[1]}\n")
            rows += 1
    return out, rows


# Two tariffs by day of the week, changing at local midnight (Denver is -06:00 in July), so that each
# day of the report has one price and its flows check the cost: weekdays 0.32/0.08, the weekend 0.18/0.05.
TARIFF = [("2016-07-04 00:00:00-06:00", 0.32, 0.08), ("2016-07-09 00:00:00-06:00", 0.18, 0.05),
          ("2016-07-11 00:00:00-06:00", 0.32, 0.08)]


def day_prices(date):
    wd = datetime.date.fromisoformat(date).weekday()
    return (0.18, 0.05) if wd >= 5 else (0.32, 0.08)


def check_cost(name, r):
    want = sum(d["import_kwh"] * day_prices(d["date"])[0] - d["export_kwh"] * day_prices(d["date"])[1]
               for d in r["days"])
    check(f"{name}: cost = sum of the days' import x import price - export x export price (0.01)",
          isinstance(r.get("cost"), (int, float)) and abs(r["cost"] - want) < 0.01, f"{r.get('cost')} vs {want:.4f}")
    bad = [d["date"] for d in r["days"] if abs(d["cost"] - (d["import_kwh"] * day_prices(d["date"])[0] -
                                                           d["export_kwh"] * day_prices(d["date"])[1])) >= 0.01]
    check(f"{name}: each day's cost from its flows", not bad, f"days {bad}")
    check(f"{name}: days' costs add up", abs(sum(d["cost"] for d in r["days"]) - r["cost"]) < 0.01, str(r["cost"]))


def test_forecast_prices(env):
    conf = env.write_json("workshop.json", WORKSHOP)
    fc, rows = shifted_forecast(env)
    r = replay(env, conf, SERF, "forecast file", WEEK + ["--forecast", fc])
    if r is not None:
        check_keys("forecast file", r)
        check_books("forecast file", r)
        check_eq("forecast file: forecast, fallback slots, cost",
                 (r.get("forecast"), r.get("forecast_fallback_slots"), r.get("cost", "absent")), ("file", 0, None))
        check_eq("forecast file: the input is reported", (r["inputs"]["forecast"]["file"], r["inputs"]["forecast"]["rows"]),
                 (fc, rows))
        check_eq("forecast file: deadlines, min on/off, planner calls",
                 (r["deadline_misses"], r["jobs_on_time"], r["min_on_off_violations"], r["plan_calls"]),
                 (0, JOBS_IN_WEEK, 0, 7 * 96))
    prices = env.path("tariff.csv")
    with open(prices, "w") as f:
        f.write("time,import_per_kwh,export_per_kwh\n")
        f.writelines(f"{t},{i},{e}\n" for t, i, e in TARIFF)
    for strategy in ("plan", "immediate"):
        name = f"prices {strategy}"
        r = replay(env, conf, SERF, name, WEEK + ["--strategy", strategy, "--prices", prices])
        if r is None:
            continue
        check_keys(name, r)
        check_books(name, r)
        check_cost(name, r)
        check_eq(f"{name}: forecast key", r.get("forecast", "absent"), "clear-sky" if strategy == "plan" else None)
        check_eq(f"{name}: deadline misses", r["deadline_misses"], 0)
        check_eq(f"{name}: the input is reported", r["inputs"]["prices"], {"file": prices, "rows": 3})
    r = replay(env, conf, SERF, "oracle", WEEK + ["--oracle"])
    if r is not None:
        check_eq("oracle: forecast key, no fallback count, no cost",
                 (r.get("forecast"), r.get("forecast_fallback_slots", "absent"), r.get("cost", "absent")),
                 ("oracle", None, None))


def test_cli(env):
    conf = env.write_json("workshop.json", WORKSHOP)
    p = run(["-c", conf, "--bogus"])
    check_eq("an unknown option: usage error", p.returncode, 2)
    p = run(["--replay", "--pv", SERF, "--load", LOAD])
    check_eq("no -c: usage error", p.returncode, 2)
    p = run(["-c", conf, "--replay", "--pv", SERF])
    check_eq("--replay without --load: usage error", (p.returncode, p.stderr.splitlines()[0]),
             (2, "fabgrid-balancer: --replay needs --pv CSV and --load CSV"))
    p = run(["-c", conf, "--replay", "--pv", SERF, "--load", LOAD, "--strategy", "greedy"])
    check_eq("unknown strategy: usage error", (p.returncode, p.stderr.splitlines()[0]),
             (2, "fabgrid-balancer: --strategy greedy: must be plan, surplus or immediate"))
    p = run(["-c", conf, "--replay", "--pv", SERF, "--load", LOAD, "--days", "0"])
    check_eq("--days 0: usage error", p.returncode, 2)
    p = run(["-c", conf, "--replay", "--pv", SERF, "--load", LOAD, "--from", "2016-02-30"])
    check_eq("--from of no date: usage error", (p.returncode, p.stderr.splitlines()[0]),
             (2, "fabgrid-balancer: --from 2016-02-30: no such date"))
    p = run(["-c", conf, "--replay", "--pv", SERF, "--load", LOAD, "--from", "2017-01-01"])
    check_eq("--from outside the PV file: exit 1 with the file's span", (p.returncode, p.stderr.strip().splitlines()[-1]),
             (1, "fabgrid-balancer: replay: no PV data on 2017-01-01 (the PV file covers 2016-07-01 .. 2016-10-13)"))
    p = run(["-c", conf, "--replay", "--pv", env.path("nope.csv"), "--load", LOAD])
    check_eq("unreadable CSV: exit 1", (p.returncode, p.stderr.strip().splitlines()[-1]),
             (1, f"fabgrid-balancer: {env.path('nope.csv')}: cannot read: No such file or directory"))
    p = run(["-c", conf, "--replay", "--pv", SERF, "--load", LOAD, "--strategy", "immediate", "--days", "1",
             "--report", "-"])
    ok = p.returncode == 0
    try:
        r = json.loads(p.stdout) if ok else None
    except ValueError:
        r = None
    check("--report - writes the JSON to stdout", r is not None and r.get("ndays") == 1, p.stdout[:200])
    for extra, why in [(["--forecast", SERF, "--oracle"],
                        "--forecast and --oracle exclude each other (the oracle sees the recorded future)"),
                       (["--forecast", SERF, "--strategy", "surplus"],
                        "--forecast is for --strategy plan (the other strategies have no planner)")]:
        p = run(["-c", conf, "--replay", "--pv", SERF, "--load", LOAD] + extra)
        check_eq(f"{' '.join(extra)}: usage error", (p.returncode, p.stderr.splitlines()[0]), (2, f"fabgrid-balancer: {why}"))
    p = run(["-c", conf, "--prices", SERF])
    check_eq("--prices without --replay: usage error", (p.returncode, p.stderr.splitlines()[0]),
             (2, "fabgrid-balancer: --pv, --load, --from, --days, --strategy, --oracle, --forecast, --prices, --report, "
                 "--svg and the scales need --replay"))
    p = run(["-c", conf, "--replay", "--pv", SERF, "--load", LOAD, "--prices", SERF])
    check_eq("a PV file as prices: exit 1 with the file and line", (p.returncode, p.stderr.strip().splitlines()[-1]),
             (1, f"fabgrid-balancer: {SERF}:1: expected TIME,IMPORT_PER_KWH,EXPORT_PER_KWH"))
    bad = env.write_json("bad.json", dict(WORKSHOP, balancer={"slot_min": 7}))
    p = run(["-c", bad, "--check"])
    check("invalid config: exit 1 and the file named", p.returncode == 1 and bad in p.stderr, p.stderr)


def main():
    env = Env("replay")
    try:
        test_cli(env)
        test_serf_week(env)
        test_system50(env)
        test_forecast_prices(env)
    finally:
        env.close()
    done()


if __name__ == "__main__":
    main()
