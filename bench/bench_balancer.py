"""bench_balancer: the balancer benchmark of issue 4. Replays the workshop scenario (bench/workshop.json,
documented in bench/WORKSHOP.md) over all 104 days of the SERF East PV record with every strategy, then
computes the perfect-foresight optimum of each day as a MILP solved by GLPK's glpsol, and prints the
regret of each strategy: (import - optimum import) / machine energy, in percent.

Usage: /usr/bin/python3 bench/bench_balancer.py [--days N] [--tmlim S] [--jobs N] [--keep DIR]
                                                [--milp-only] [--selftest]
Environment: FG_BUILD (build folder, default build/), FG_DATA (default ../shared/data beside the repo).
Standard library only. Never pass/fail on time; it exits 1 only when a run fails outright."""
import argparse
import concurrent.futures
import csv
import datetime as dt
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zoneinfo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("FG_BUILD", os.path.join(ROOT, "build"))
DATA = os.environ.get("FG_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data"))
CONFIG = os.path.join(ROOT, "bench", "workshop.json")
PV_CSV = os.path.join(DATA, "pv-nrel-serf-east", "serf_east_15min_ac_power.csv")
LOAD_CSV = os.path.join(DATA, "load-tool-manufacturer", "LP_G_MV.csv")
PV_SCALE = float(f"{12.0 / 5.4:.12g}")  # the 5.4 kWp SERF East array scaled to 12 kWp (as passed)
LOAD_SCALE = 40.0              # the profile is normalised to 1000 kWh/a; the workshop uses 40 MWh/a
FIRST_DAY = dt.date(2016, 7, 1)
NDAYS = 104
STEP_S = 60                    # the replay's simulated clock step; the MILP accounts energy per step
STRATEGIES = [("plan", False), ("plan", True), ("surplus", False), ("immediate", False)]
DAYNAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

# The MILP of one day (GNU MathProg). Decisions are per slot (slot_min), energy is accounted per
# replay step: import is max(0, base + machines) in every minute, because within a slot PV and load
# change from minute to minute, and a slot average would hide import that the replay counts.
MODEL = r"""
set S;                                  # slots of the day that some job may use
set K;                                  # accounted minutes inside those slots
param slot_of{K} in S;
param base_w{K};                        # base load - PV in that minute, W
param step_h > 0;                       # hours per accounted minute
param slot_h > 0;
param const_kwh;                        # import of the minutes where no machine may run
param limit_w >= 0;                     # site grid limit, 0: none
set J;                                  # the day's jobs
set JB within J;                        # non-interruptible: one block of dur[j] slots
set JF within J;                        # interruptible, fixed power: dur[j] slots in all
set JM within J;                        # modulating (EV): power in [pmin, pw] when on
param pw{J} > 0;
param pmin{J} >= 0, default 0;
param dur{J} integer >= 0, default 0;
param energy_wh{J} >= 0, default 0;
set A{J} within S;                      # slots the job may be on in
set T{JB} within S;                     # block starts that keep the block inside A
set MM;                                 # machines with more than one job today
set JOF{MM} within J;
var y{j in JB, t in T[j]} binary;
var x{j in JF, s in A[j]} binary;
var z{j in JM, s in A[j]} binary;
var p{j in JM, s in A[j]} >= 0;
var P{S} >= 0;
var imp{K} >= 0;
minimize import_kwh: const_kwh + sum{k in K} imp[k] * step_h / 1000;
s.t. one_start{j in JB}: sum{t in T[j]} y[j,t] = 1;
s.t. run_slots{j in JF}: sum{s in A[j]} x[j,s] = dur[j];
s.t. energy{j in JM}: sum{s in A[j]} p[j,s] * slot_h = energy_wh[j];
s.t. p_lo{j in JM, s in A[j]}: p[j,s] >= pmin[j] * z[j,s];
s.t. p_hi{j in JM, s in A[j]}: p[j,s] <= pw[j] * z[j,s];
s.t. power{s in S}: P[s] =
    sum{j in JB} pw[j] * sum{t in T[j]: t <= s and s <= t + dur[j] - 1} y[j,t]
  + sum{j in JF: s in A[j]} pw[j] * x[j,s]
  + sum{j in JM: s in A[j]} p[j,s];
s.t. one_job{m in MM, s in S}:
    sum{j in JOF[m] inter JB} sum{t in T[j]: t <= s and s <= t + dur[j] - 1} y[j,t]
  + sum{j in JOF[m] inter JF: s in A[j]} x[j,s] + sum{j in JOF[m] inter JM: s in A[j]} z[j,s] <= 1;
s.t. balance{k in K}: imp[k] >= base_w[k] + P[slot_of[k]];
s.t. grid_limit{k in K: limit_w > 0}: P[slot_of[k]] <= max(0, limit_w - base_w[k]);
solve;
end;
"""


# ---------------------------------------------------------------- scenario (the config's keys we model)

def hhmm(text):
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def days_mask(spec):
    """"daily", "mon", "mon-fri" (may wrap), or a list of those -> set of weekdays (0 = Monday)."""
    if spec is None or spec == "daily":
        return set(range(7))
    if isinstance(spec, list):
        return set().union(*(days_mask(s) for s in spec))
    if "-" in spec:
        a, b = (DAYNAMES.index(x) for x in spec.split("-"))
        return {(a + i) % 7 for i in range((b - a) % 7 + 1)}
    return {DAYNAMES.index(spec)}


def load_scenario(path):
    """The subset of the balancer's config that the MILP models; refuses what it does not model
    rather than compute a wrong optimum."""
    with open(path) as f:
        cfg = json.load(f)
    bal = cfg.get("balancer", {})
    scn = {"tz": cfg["site"].get("timezone", "UTC"), "limit_w": float(cfg["site"].get("grid_limit_w", 0)),
           "slot_min": int(bal.get("slot_min", 15)), "machines": {}, "jobs": []}
    for m in cfg["machines"]:
        mod = "min_power_w" in m
        mach = {"id": m["id"], "pw": float(m["max_power_w"] if mod else m["power_w"]),
                "pmin": float(m["min_power_w"]) if mod else 0.0, "pstep": float(m.get("step_w", 0)),
                "interruptible": bool(m.get("interruptible", False)), "modulating": mod,
                "windows": [(days_mask(w.get("days", "daily")), hhmm(w["from"]), hhmm(w["to"]))
                            for w in m.get("windows", [])]}
        slot_s = scn["slot_min"] * 60
        if mach["interruptible"] and (m.get("min_on_s", 0) > slot_s or m.get("min_off_s", 0) > slot_s):
            sys.exit(f"bench_balancer: {m['id']}: min_on_s/min_off_s longer than a slot is not modelled")
        if m.get("max_starts_per_day", 0) and (mach["interruptible"] or mod):
            sys.exit(f"bench_balancer: {m['id']}: max_starts_per_day is not modelled")
        if mod and (not mach["interruptible"] or mach["pstep"] > 0):
            # Power levels would make the last slot over-deliver: the replay stops at the energy.
            sys.exit(f"bench_balancer: {m['id']}: only interruptible, continuous modulating loads are modelled")
        scn["machines"][m["id"]] = mach
    for j in cfg["jobs"]:
        if "days" not in j or j.get("surplus_only") or not j.get("required", True):
            sys.exit(f"bench_balancer: job {j['id']}: only required recurring jobs are modelled")
        mach = scn["machines"][j["machine"]]
        if "duration_min" in j and j["duration_min"] % scn["slot_min"]:
            sys.exit(f"bench_balancer: job {j['id']}: duration_min must be whole slots")
        energy = float(j["energy_wh"]) if "energy_wh" in j else j["duration_min"] * mach["pw"] / 60.0
        scn["jobs"].append({"id": j["id"], "machine": j["machine"], "days": days_mask(j["days"]),
                            "earliest": hhmm(j["earliest"]), "deadline": hhmm(j["deadline"]),
                            "energy_wh": energy, "duration_min": j.get("duration_min")})
    return scn


# ---------------------------------------------------------------- local calendar (the site's zone)

def local_at(tz, day, minute):
    """Unix seconds of local minute (0..1440) of day; a time skipped by DST reads in the offset before
    the change, as mktime(tm_isdst = -1) does."""
    base = dt.datetime(day.year, day.month, day.day, tzinfo=tz) + dt.timedelta(minutes=minute)
    wall = dt.datetime(base.year, base.month, base.day, base.hour, base.minute, tzinfo=tz)
    return int(wall.timestamp())


def day_bounds(tz, day):
    return local_at(tz, day, 0), local_at(tz, day + dt.timedelta(days=1), 0)


def local_minute(tz, t_s):
    lt = dt.datetime.fromtimestamp(t_s, tz)
    return lt.hour * 60 + lt.minute, lt.weekday()


def machine_allowed(tz, mach, start_s, slot_min):
    """Every local minute of the slot lies in one of the machine's windows (none: always)."""
    if not mach["windows"]:
        return True
    for i in range(slot_min):
        minute, wd = local_minute(tz, start_s + 60 * i)
        if not any(wd in days and lo <= minute < hi for days, lo, hi in mach["windows"]):
            return False
    return True


# ---------------------------------------------------------------- measured series, paired as the replay does

def read_pv(path):
    """[(unix s, W)] as measured, in file order (scaled and clipped at 0 after interpolation, as the
    replay does: the inverter's night tare is no production)."""
    out = []
    with open(path, newline="") as f:
        for row in itertools.islice(csv.reader(f), 1, None):
            if len(row) < 2 or row[1].strip() == "":
                continue
            out.append((dt.datetime.fromisoformat(row[0]).timestamp(), float(row[1])))
    return out


def read_load(path, scale):
    """{(local date, local minute): W} of the load file, keyed by its own (Europe/Berlin) wall clock."""
    out = {}
    with open(path, newline="") as f:
        for row in itertools.islice(csv.reader(f), 1, None):
            if len(row) < 2 or row[1].strip() == "":
                continue
            wall = dt.datetime.fromisoformat(row[0])
            out.setdefault((wall.date(), wall.hour * 60 + wall.minute), float(row[1]) * scale)
    return out


def load_day_for(day, load_dates):
    """The load file's day with the same weekday and the nearest day of the year (bal_series_pair_day;
    every day of LP_G_MV is complete, and within July..October no circular distance is needed)."""
    doy = day.timetuple().tm_yday
    same = [d for d in load_dates if d.weekday() == day.weekday()]
    return min(same, key=lambda d: (abs(d.timetuple().tm_yday - doy), d))


def interp(samples, t):
    """Linear interpolation in a sorted [(t, v)]; None outside the samples."""
    lo, hi = 0, len(samples) - 1
    if not samples or t < samples[0][0] or t > samples[-1][0]:
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if samples[mid][0] <= t:
            lo = mid
        else:
            hi = mid
    (t0, v0), (t1, v1) = samples[lo], samples[hi]
    return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def load_at(load, lday, minute):
    """Load in the middle of wall-clock minute `minute` of load day lday, linear between its 15-min
    samples (the next day's 00:00 closes the day); None where unknown."""
    m0 = minute - minute % 15
    nxt = (lday, m0 + 15) if m0 + 15 < 1440 else (lday + dt.timedelta(days=1), 0)
    v0, v1 = load.get((lday, m0)), load.get(nxt)
    if v0 is None or v1 is None:
        return None
    return v0 + (v1 - v0) * (minute + 0.5 - m0) / 15.0


def day_series(tz, day, pv, load, load_dates, pv_scale=PV_SCALE):
    """Per replay step of the local day: (unix s, pv W, load W), each the value in the middle of the
    step, as the replay has them; an unknown value counts 0 (the replay invents no energy)."""
    t0, t1 = day_bounds(tz, day)
    lday = load_day_for(day, load_dates)
    out = []
    for t in range(t0, t1, STEP_S):
        p = interp(pv, t + STEP_S / 2)
        minute, _ = local_minute(tz, t)
        b = load_at(load, lday, minute)
        out.append((t, max(0.0, p or 0.0) * pv_scale, b or 0.0))
    return out, lday


# ---------------------------------------------------------------- one day's MILP instance

def day_jobs(scn, tz, day, t0, nslots):
    """The jobs of a day with their allowed slots (inside [earliest, deadline] and the windows)."""
    slot_s = scn["slot_min"] * 60
    jobs = []
    for j in scn["jobs"]:
        if day.weekday() not in j["days"]:
            continue
        mach = scn["machines"][j["machine"]]
        e_s, d_s = local_at(tz, day, j["earliest"]), local_at(tz, day, j["deadline"])
        allowed = [s for s in range(nslots) if t0 + s * slot_s >= e_s and t0 + (s + 1) * slot_s <= d_s
                   and machine_allowed(tz, mach, t0 + s * slot_s, scn["slot_min"])]
        job = {"id": j["id"], "machine": j["machine"], "pw": mach["pw"], "allowed": allowed,
               "energy_wh": j["energy_wh"]}
        if mach["modulating"]:
            job.update(kind="M", pmin=mach["pmin"])
        else:
            nreq = -(-round(j["energy_wh"] * 60 / mach["pw"]) // scn["slot_min"])
            job.update(kind="F" if mach["interruptible"] else "B", dur=nreq)
            if job["kind"] == "B":
                aset = set(allowed)
                job["starts"] = [s for s in allowed if all(s + i in aset for i in range(nreq))]
        jobs.append(job)
    return jobs


def build_day(scn, tz, day, series, steps_s=STEP_S):
    """The MILP instance of a day: jobs, the accounted minutes of the usable slots, constant import."""
    t0, t1 = day_bounds(tz, day)
    slot_s = scn["slot_min"] * 60
    nslots = (t1 - t0) // slot_s
    jobs = day_jobs(scn, tz, day, t0, nslots)
    usable = sorted({s for j in jobs for s in j["allowed"]})
    useset = set(usable)
    rows, const_wh = [], 0.0
    for t, pv_w, load_w in series:
        s = (t - t0) // slot_s
        if s in useset:
            rows.append((s, load_w - pv_w))
        else:
            const_wh += max(0.0, load_w - pv_w) * steps_s / 3600.0
    return {"date": day.isoformat(), "slots": usable, "rows": rows, "const_kwh": const_wh / 1000.0,
            "step_h": steps_s / 3600.0, "slot_h": scn["slot_min"] / 60.0, "limit_w": scn["limit_w"],
            "jobs": jobs, "machine_kwh": sum(j["energy_wh"] for j in jobs) / 1000.0}


def fmt_set(name, items):
    return f"set {name} := {' '.join(str(i) for i in items)};\n"


def write_dat(inst, path):
    """GNU MathProg data section for MODEL."""
    jobs = inst["jobs"]
    jid = {j["id"]: f"j{i}" for i, j in enumerate(jobs)}
    out = [fmt_set("S", inst["slots"]), fmt_set("K", range(len(inst["rows"])))]
    out.append("param slot_of := " + " ".join(f"{k} {s}" for k, (s, _) in enumerate(inst["rows"])) + ";\n")
    out.append("param base_w := " + " ".join(f"{k} {b:.6f}" for k, (_, b) in enumerate(inst["rows"])) + ";\n")
    out.append(f"param step_h := {inst['step_h']!r};\nparam slot_h := {inst['slot_h']!r};\n")
    out.append(f"param const_kwh := {inst['const_kwh']!r};\nparam limit_w := {inst['limit_w']!r};\n")
    out.append(fmt_set("J", jid.values()))
    for kind, name in (("B", "JB"), ("F", "JF"), ("M", "JM")):
        out.append(fmt_set(name, [jid[j["id"]] for j in jobs if j["kind"] == kind]))
    for key in ("pw", "pmin", "dur", "energy_wh"):
        vals = [f"{jid[j['id']]} {j[key]!r}" for j in jobs if key in j]
        if vals:
            out.append(f"param {key} := {' '.join(vals)};\n")
    for j in jobs:
        out.append(fmt_set(f"A[{jid[j['id']]}]", j["allowed"]))
        if j["kind"] == "B":
            out.append(fmt_set(f"T[{jid[j['id']]}]", j["starts"]))
    multi = {}
    for j in jobs:
        multi.setdefault(j["machine"], []).append(jid[j["id"]])
    multi = {m: js for m, js in multi.items() if len(js) > 1}
    out.append(fmt_set("MM", multi.keys()))
    for m, js in multi.items():
        out.append(fmt_set(f"JOF[{m}]", js))
    with open(path, "w") as f:
        f.write("data;\n" + "".join(out) + "end;\n")


MIP_LINE = re.compile(r"^\+\s*\d+: mip =\s*(\S+)\s*>=\s*(\S+)")
OBJ_LINE = re.compile(r"^Objective:\s*\S+ = (\S+)")


def solve_day(inst, workdir, tmlim_s):
    """Runs glpsol on one day. Returns dict(date, status optimal|time-limit|infeasible|error, obj,
    bound, seconds): obj is the best integer solution (kWh), bound the best proven lower bound."""
    base = os.path.join(workdir, inst["date"])
    write_dat(inst, base + ".dat")
    cmd = ["glpsol", "--math", os.path.join(workdir, "day.mod"), "--data", base + ".dat",
           "--tmlim", str(tmlim_s), "-o", base + ".sol"]
    t = time.monotonic()
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=tmlim_s + 120)
    res = {"date": inst["date"], "seconds": time.monotonic() - t, "obj": None, "bound": None,
           "machine_kwh": inst["machine_kwh"]}
    with open(base + ".log", "w") as f:
        f.write(run.stdout + run.stderr)
    bound = None
    for line in run.stdout.splitlines():
        m = MIP_LINE.match(line)
        if m:
            try:
                bound = float(m.group(2))
            except ValueError:   # "tree is empty", "-inf": no finite bound on that line
                pass
    if "INTEGER OPTIMAL SOLUTION FOUND" in run.stdout:
        res["status"] = "optimal"
    elif "TIME LIMIT EXCEEDED" in run.stdout:
        res["status"] = "time-limit"
    elif "NO PRIMAL FEASIBLE" in run.stdout or "NO INTEGER FEASIBLE" in run.stdout:
        res["status"] = "infeasible"
        return res
    else:
        res["status"] = "error"
        return res
    if os.path.exists(base + ".sol"):
        with open(base + ".sol") as f:
            for line in f:
                m = OBJ_LINE.match(line)
                if m:
                    res["obj"] = float(m.group(1))
    res["bound"] = res["obj"] if res["status"] == "optimal" else bound
    return res


# ---------------------------------------------------------------- self-test of the MILP on hand-made days

def hand_inst(surplus_per_slot, jobs, const_kwh=0.0, minutes=15, base=None):
    """A hand-made day: slot s has `minutes` accounted minutes of base -surplus (or base[k])."""
    n = len(surplus_per_slot)
    rows = [(s, -float(surplus_per_slot[s])) for s in range(n) for _ in range(minutes)]
    if base is not None:
        rows = [(k // minutes, float(b)) for k, b in enumerate(base)]
    for j in jobs:
        if j["kind"] == "B":
            aset = set(j["allowed"])
            j["starts"] = [s for s in j["allowed"] if all(s + i in aset for i in range(j["dur"]))]
    return {"date": "hand", "slots": list(range(n)), "rows": rows, "const_kwh": const_kwh,
            "step_h": 0.25 / minutes, "slot_h": 0.25, "limit_w": 0.0, "jobs": jobs,
            "machine_kwh": 0.0}


def brute_force(inst):
    """Least import of a day with fixed-power jobs only, by trying every schedule."""
    choices = []
    for j in inst["jobs"]:
        if j["kind"] == "B":
            choices.append([set(range(t, t + j["dur"])) for t in j["starts"]])
        else:
            choices.append([set(c) for c in itertools.combinations(j["allowed"], j["dur"])])
    best = None
    for pick in itertools.product(*choices):
        ok = all(not (a & b) for (ja, a), (jb, b) in itertools.combinations(zip(inst["jobs"], pick), 2)
                 if ja["machine"] == jb["machine"])
        if not ok:
            continue
        power = {}
        for j, on in zip(inst["jobs"], pick):
            for s in on:
                power[s] = power.get(s, 0.0) + j["pw"]
        imp = sum(max(0.0, b + power.get(s, 0.0)) for s, b in inst["rows"]) * inst["step_h"] / 1000
        best = imp if best is None else min(best, imp)
    return best + inst["const_kwh"]


class Checker:
    """Counts failed checks and prints one line per check."""

    def __init__(self):
        self.fails = 0

    def __call__(self, name, got, want, tol=1e-6):
        ok = got is not None and abs(got - want) <= tol
        self.fails += not ok
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: got {got}, want {want}")


def hand_job(jid, kind, pw, allowed, dur=0, pmin=0.0, energy_wh=0.0, machine=None):
    return {"id": jid, "kind": kind, "pw": pw, "allowed": list(allowed), "dur": dur, "pmin": pmin,
            "energy_wh": energy_wh or pw * dur / 4.0, "machine": machine or jid}


def selftest_hand(check, workdir):
    """Days small enough to solve by hand (15-min slots, 15 accounted minutes each)."""
    job = hand_job
    # Surplus 2.5 kWh meets 2.5 kWh of jobs, but the interruptible job may only use slots 5..7 and
    # slots 6, 7 have no sun: 1 kW x 15 min is imported (0.25 kWh), plus the constant 0.1 kWh.
    inst = hand_inst([0, 1000, 3000, 3000, 2000, 1000, 0, 0],
                     [job("blk", "B", 2000, range(8), dur=2), job("frx", "F", 1000, range(5, 8), dur=2),
                      job("ev", "M", 3000, range(8), pmin=1000, energy_wh=1000)], const_kwh=0.1)
    check("three kinds of job", solve_day(inst, workdir, 20)["obj"], 0.35)
    # PV ramps 0..2800 W within one slot (200 W per minute); a 1 kW machine imports 1000+800+600+400+200
    # W-min = 50 Wh, which a slot average (1400 W of PV) would hide.
    inst = hand_inst([0], [job("m", "F", 1000, [0], dur=1)], base=[-200.0 * k for k in range(15)])
    check("import per minute, not per slot", solve_day(inst, workdir, 20)["obj"], 0.05)
    # A 3-slot 3 kW block must end by slot 4: starting at 0 uses the sun of slots 0, 1 and imports in 2.
    inst = hand_inst([3000, 3000, 0, 0, 0, 0, 3000, 3000],
                     [job("kiln", "B", 3000, range(5), dur=3), job("c", "F", 1000, range(5, 8), dur=2)])
    check("block before its deadline", solve_day(inst, workdir, 20)["obj"], 0.75)
    # Modulating 1..3 kW, 1 kWh in two slots of 1.5 kW surplus: 2 kW x 0.5 h, import 2 x 0.5 kW x 0.25 h.
    inst = hand_inst([1500, 1500, 0, 0], [job("ev", "M", 3000, range(2), pmin=1000, energy_wh=1000)])
    check("modulating load at its energy", solve_day(inst, workdir, 20)["obj"], 0.25)
    # Two jobs of one machine never overlap: 2 x 2 kW x 1 slot into one 2 kW slot imports one slot.
    inst = hand_inst([2000, 0], [job("a", "F", 2000, range(2), dur=1, machine="m"),
                                 job("b", "F", 2000, range(2), dur=1, machine="m")])
    check("one job at a time per machine", solve_day(inst, workdir, 20)["obj"], 0.5)


def selftest_random(check, workdir):
    """Random 8-slot days (3 accounted minutes per slot) against brute force over every schedule."""
    rnd = random.Random(4)
    for i in range(12):
        n = 8
        base = [rnd.choice([-3000, -2000, -1000, 0, 500]) + rnd.uniform(-300, 300) for _ in range(3 * n)]
        jobs = [hand_job("b", "B", rnd.choice([1000, 2500]), range(rnd.randint(0, 2), n), dur=rnd.randint(1, 3)),
                hand_job("f", "F", rnd.choice([800, 2000]), range(rnd.randint(0, 3), n), dur=rnd.randint(1, 3)),
                hand_job("g", "F", 1500, range(n), dur=2, machine=rnd.choice(["f", "g"]))]
        inst = hand_inst([0] * n, jobs, minutes=3, base=base)
        check(f"random day {i} against brute force", solve_day(inst, workdir, 20)["obj"], brute_force(inst))


def selftest_calendar(check):
    """Local days of 23 and 25 hours, and 07:00 on them."""
    for tz_name, day, hours in (("Europe/Berlin", dt.date(2016, 3, 27), 23),
                                ("Europe/Berlin", dt.date(2016, 10, 30), 25),
                                ("America/Denver", dt.date(2016, 3, 13), 23),
                                ("America/Denver", dt.date(2016, 11, 6), 25)):
        tz = zoneinfo.ZoneInfo(tz_name)
        t0, t1 = day_bounds(tz, day)
        check(f"{tz_name} {day} has {hours} h", (t1 - t0) / 3600, hours)
        check(f"{tz_name} {day} 07:00 is {hours - 17} h after midnight",
              (local_at(tz, day, 7 * 60) - t0) / 3600, hours - 17)


def selftest(workdir):
    """The MILP on hand-solved days and against brute force, and the calendar on DST days. Returns the
    number of failures."""
    with open(os.path.join(workdir, "day.mod"), "w") as f:
        f.write(MODEL)
    check = Checker()
    selftest_hand(check, workdir)
    selftest_random(check, workdir)
    selftest_calendar(check)
    return check.fails


# ---------------------------------------------------------------- the replays

def replay(binary, config, strategy, oracle, report, ndays, log):
    cmd = [binary, "-c", config, "--replay", "--pv", PV_CSV, "--load", LOAD_CSV,
           "--pv-scale", f"{PV_SCALE:.12g}", "--load-scale", f"{LOAD_SCALE:g}",
           "--from", FIRST_DAY.isoformat(), "--days", str(ndays), "--strategy", strategy, "--report", report]
    if oracle:
        cmd.append("--oracle")
    t = time.monotonic()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0 or not os.path.exists(report):
        return {"error": f"exit {rc}, see {log}", "cmd": " ".join(cmd)}
    with open(report) as f:
        rep = json.load(f)
    rep["wall_s"] = time.monotonic() - t
    return rep


def calibration_config(workdir):
    """The scenario without jobs: its replay's import is the base load's alone, which checks that the
    MILP's PV and load (paired here in Python) are the ones the replay uses."""
    with open(CONFIG) as f:
        cfg = json.load(f)
    cfg["jobs"] = []
    path = os.path.join(workdir, "calibration.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def series_energy(series):
    h = STEP_S / 3600.0 / 1000.0
    return {"pv_kwh": sum(p for _, p, _ in series) * h, "load_kwh": sum(b for _, _, b in series) * h,
            "import_kwh": sum(max(0.0, b - p) for _, p, b in series) * h,
            "export_kwh": sum(max(0.0, p - b) for _, p, b in series) * h}


def check_calibration(cal, mine):
    """Compares the replay's base-only days with the series here: the largest per-day difference of
    each energy (kWh, with its day), and the days whose paired load date or presence differ."""
    worst = {k: (0.0, "") for k in ("pv_kwh", "load_kwh", "import_kwh", "export_kwh")}
    byday = {d.get("date"): d for d in cal.get("days", [])}
    other = []
    for date, (energy, lday) in mine.items():
        theirs = byday.get(date)
        if theirs is None or theirs.get("load_date") != lday:
            other.append(date)
            continue
        for k in worst:
            if abs(theirs[k] - energy[k]) > worst[k][0]:
                worst[k] = (abs(theirs[k] - energy[k]), date)
    return worst, other


# ---------------------------------------------------------------- report

def pct(x):
    return "-" if x is None else f"{x:.2f}"


def print_table(rows, opt):
    print(f"{'strategy':<15}{'import_kwh':>11}{'self_cons_%':>12}{'misses':>7}{'starts':>7}"
          f"{'machine_kwh':>12}{'plan_ms_p50':>12}{'plan_ms_max':>12}{'regret_%':>10}")
    for name, rep in rows:
        if "error" in rep:
            print(f"{name:<15} failed: {rep['error']}")
            continue
        regret = regret_of(rep, opt)
        print(f"{name:<15}{rep['import_kwh']:>11.1f}{rep['self_consumption_pct']:>12.2f}"
              f"{rep['deadline_misses']:>7}{rep['starts']:>7}{rep['machine_kwh']:>12.1f}"
              f"{rep['plan_ms_p50']:>12.3f}{rep['plan_ms_max']:>12.3f}{pct(regret):>10}")
    if opt:
        print(f"{'optimum (MILP)':<15}{opt['obj']:>11.1f}{pct(opt.get('self_consumption_pct')):>12}"
              f"{'0':>7}{'-':>7}{opt['machine_kwh']:>12.1f}{'-':>12}{'-':>12}{'0.00':>10}")


def regret_of(rep, opt):
    """(import - optimum) / machine energy, %, with the optimum's proven bound (an upper bound of the
    regret when a day stopped at the time limit)."""
    if not opt or "error" in rep:
        return None
    return (rep["import_kwh"] - opt["bound"]) / rep["machine_kwh"] * 100


def print_targets(reps, opt):
    if not reps:
        return
    r_or, r_plan, r_sur = (regret_of(reps.get(k, {"error": 1}), opt) for k in ("plan --oracle", "plan", "surplus"))
    misses = {k: r.get("deadline_misses") for k, r in reps.items() if "error" not in r}

    def verdict(ok):
        return "met" if ok else "NOT met"
    print("targets:")
    if r_or is not None:
        print(f"  plan --oracle regret <= 1 %: {r_or:.2f} % -> {verdict(r_or <= 1.0)}")
    if r_plan is not None and r_sur is not None:
        print(f"  plan regret <= half of surplus's: {r_plan:.2f} % vs {r_sur:.2f} % / 2 = {r_sur / 2:.2f} %"
              f" -> {verdict(r_plan <= r_sur / 2)}")
    if misses:
        print(f"  zero deadline misses: {', '.join(f'{k} {v}' for k, v in misses.items())}"
              f" -> {verdict(all(v == 0 for v in misses.values()))}")


# ---------------------------------------------------------------- main

def run_milp(scn, tz, days, series, workdir, tmlim_s, jobs):
    with open(os.path.join(workdir, "day.mod"), "w") as f:
        f.write(MODEL)
    insts = [build_day(scn, tz, day, series[day][0]) for day in days]
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        res = list(ex.map(lambda inst: solve_day(inst, workdir, tmlim_s), insts))
    bad = [r for r in res if r["status"] not in ("optimal", "time-limit") or r["obj"] is None]
    if bad:
        sys.exit(f"bench_balancer: glpsol failed on {len(bad)} days, first {bad[0]['date']}: "
                 f"{bad[0]['status']} (see {workdir}/{bad[0]['date']}.log)")
    e = [series_energy(series[d][0]) for d in days]
    opt = {"obj": sum(r["obj"] for r in res), "bound": sum(r["bound"] for r in res),
           "machine_kwh": sum(r["machine_kwh"] for r in res), "days": res,
           "optimal": sum(r["status"] == "optimal" for r in res),
           "seconds": sum(r["seconds"] for r in res), "max_s": max(r["seconds"] for r in res)}
    pv, load = sum(x["pv_kwh"] for x in e), sum(x["load_kwh"] for x in e)
    # At the optimum imp = max(0, net) in every minute, so export = import - (load + machines - pv).
    export = opt["obj"] - (load + opt["machine_kwh"] - pv)
    opt["self_consumption_pct"] = (pv - export) / pv * 100 if pv > 0 else None
    return opt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=NDAYS, help="days from 2016-07-01 (default 104)")
    ap.add_argument("--tmlim", type=int, default=20, help="glpsol time limit per day, s (default 20)")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("BENCH_JOBS", "2")),
                    help="processes at a time (default 2)")
    ap.add_argument("--keep", metavar="DIR", help="keep the reports, .mod/.dat files and logs in DIR")
    ap.add_argument("--milp-only", action="store_true", help="only the optimum, no replays")
    ap.add_argument("--selftest", action="store_true", help="check the MILP on hand-made days and exit")
    args = ap.parse_args()
    if not 1 <= args.days <= NDAYS or args.tmlim < 1 or args.jobs < 1:
        ap.error("--days 1..104, --tmlim >= 1, --jobs >= 1")
    if shutil.which("glpsol") is None:
        sys.exit("bench_balancer: glpsol not found (Debian package glpk-utils; deploy/install-deps.sh)")
    workdir = args.keep or tempfile.mkdtemp(prefix="fg-bench-bal-")
    os.makedirs(workdir, exist_ok=True)
    try:
        if args.selftest:
            fails = selftest(workdir)
            print(f"selftest: {fails} failed")
            return 1 if fails else 0
        return bench(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def bench(args, workdir):
    t_start = time.monotonic()
    scn = load_scenario(CONFIG)
    tz = zoneinfo.ZoneInfo(scn["tz"])
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range(args.days)]
    binary = os.path.join(BUILD, "bin", "fabgrid-balancer")
    runs = []
    if not args.milp_only:
        if os.access(binary, os.X_OK):
            runs = [(s + (" --oracle" if o else ""), s, o, CONFIG) for s, o in STRATEGIES]
            runs.append(("calibration", "immediate", False, calibration_config(workdir)))
        else:
            print(f"bench_balancer: {binary} not built: the optimum alone")
    print(f"== balancer: workshop scenario (bench/WORKSHOP.md), {len(days)} days from {days[0]}, "
          f"{len(STRATEGIES)} strategies, optimum by glpsol; {args.jobs} at a time")
    print(f"   PV: SERF East x {PV_SCALE:.4f} (12 kWp); base load: LP_G_MV x {LOAD_SCALE:g} (40 MWh/a), "
          "paired by weekday and time of day (different places and years)")
    pv = read_pv(PV_CSV)
    load = read_load(LOAD_CSV, LOAD_SCALE)
    load_dates = sorted({d for d, _ in load})
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
        futs = {name: ex.submit(replay, binary, conf, s, o, os.path.join(workdir, f"report-{i}.json"),
                                len(days), os.path.join(workdir, f"replay-{i}.log"))
                for i, (name, s, o, conf) in enumerate(runs)}
        series = {d: day_series(tz, d, pv, load, load_dates) for d in days}
        opt = run_milp(scn, tz, days, series, workdir, args.tmlim, args.jobs)
        reps = {name: f.result() for name, f in futs.items()}
    cal = reps.pop("calibration", None)
    print_table(list(reps.items()), opt)
    print(f"glpsol: {opt['optimal']} of {len(days)} days proved optimal, {len(days) - opt['optimal']} hit the "
          f"{args.tmlim} s limit; {opt['seconds']:.1f} s in all, slowest day {opt['max_s']:.1f} s")
    if opt["bound"] < opt["obj"] - 1e-6:
        print(f"   best bound {opt['bound']:.2f} kWh < best found {opt['obj']:.2f} kWh: regrets above use the "
              "bound (they are upper bounds)")
    if cal is not None:
        report_calibration(cal, series)
    excess = {k: r["machine_kwh"] - opt["machine_kwh"] for k, r in reps.items() if "error" not in r}
    if any(abs(v) > 0.5 for v in excess.values()):
        print(f"machine energy beyond the jobs' {opt['machine_kwh']:.1f} kWh (whole-minute steps of the replay): " +
              ", ".join(f"{k} {v:+.1f} kWh" for k, v in excess.items()))
    if reps:
        print("replay wall time: " + ", ".join(f"{k} {r['wall_s']:.0f} s" for k, r in reps.items()
                                               if "error" not in r))
    print_targets(reps, opt)
    write_days_csv(os.path.join(workdir, "days.csv"), days, series, opt, reps)
    if args.keep:
        print(f"per day: {os.path.join(workdir, 'days.csv')}")
    print(f"bench_balancer: {time.monotonic() - t_start:.0f} s")
    return 1 if any("error" in r for r in reps.values()) else 0


def write_days_csv(path, days, series, opt, reps):
    """One row per day: the optimum, its bound and status, and each strategy's import (kWh)."""
    names = [k for k, r in reps.items() if "error" not in r]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["date", "weekday", "load_date", "optimum_kwh", "bound_kwh", "status"] + names)
        for k, (day, res) in enumerate(zip(days, opt["days"])):
            w.writerow([day.isoformat(), DAYNAMES[day.weekday()], series[day][1].isoformat(),
                        f"{res['obj']:.3f}", f"{res['bound']:.3f}", res["status"]] +
                       [f"{reps[n]['days'][k]['import_kwh']:.3f}" for n in names])


def report_calibration(cal, series):
    if "error" in cal:
        print(f"calibration replay failed: {cal['error']}")
        return
    worst, other = check_calibration(cal, {d.isoformat(): (series_energy(s[0]), s[1].isoformat())
                                           for d, s in series.items()})
    print("calibration (replay without jobs vs the MILP's series), largest difference of a day: " +
          ", ".join(f"{k} {v[0]:.3f}" + (f" ({v[1]})" if v[0] > 0.0015 else "") for k, v in worst.items()) +
          (f"; {len(other)} days missing or paired otherwise, first {other[0]}" if other else
           "; every day paired with the same load date"))


if __name__ == "__main__":
    sys.exit(main())
