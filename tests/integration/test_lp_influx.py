"""test_lp_influx: the line protocol encoder (fg_lp_encode, through build/bench/lp_encode) against a
real InfluxDB 1.x. A table of tricky measurement names, tag keys and values, field keys and values
is encoded, written in one batch, and read back through /query: every name and value must come back
identical, except what the protocol cannot carry, which must come back exactly as fg_lp.c documents
(a backslash before a separator or at the end of a name is dropped, newlines become spaces, NaN and
Inf are dropped). Also checks that an integral float keeps the field a float."""
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fgtest import BUILD, Env, check, check_eq, done, influx_query  # noqa: E402

LP_ENCODE = os.path.join(BUILD, "bench", "lp_encode")
DB = "lp"
BS = "\\"
TS0 = 1600000000000


def flt(v):
    """A float field given as text, so that NaN, Inf and -0.0 survive JSON."""
    return {"float": repr(v)}


def integer(v):
    return {"int": str(v)}


def case(name, m, tags, fields, want_m=None, want_tags=None, want_fields=None, written=True):
    """One point and what InfluxDB must hold afterwards (by default: exactly what was given)."""
    if want_tags is None:
        want_tags = {k: v for k, v in tags.items() if v}
    if want_fields is None:
        want_fields = {k: (float(v["float"]) if isinstance(v, dict) and "float" in v else
                           int(v["int"]) if isinstance(v, dict) else v) for k, v in fields.items()}
    return {"name": name, "point": {"measurement": m, "tags": tags, "fields": fields},
            "want": (want_m if want_m is not None else m, want_tags, want_fields) if written else None}


CASES = [
    case("spaces", "cpu load 1", {"host name": "server A"}, {"value x": 1.5}),
    case("commas", "a,b", {"k,1": "v,1"}, {"f,1": 2.25}),
    case("equals signs", "eq=sign", {"k=1": "v=1"}, {"f=1": -3.5}),
    case("double quotes", 'q"m', {'k"': 'v"x', "q": 'q' + BS + '"r'}, {'f"': 1.0, "s": 'say "hi"'}),
    case("backslashes inside names", "back" + BS + "slash", {"k" + BS + "x": "C:" + BS + "temp" + BS + "x"},
         {"f" + BS + BS + "g": 1.25, "s": "C:" + BS + "dir" + BS}),
    case("trailing backslashes", "trail" + BS, {"k" + BS: "a" + BS + BS}, {"f" + BS: 2.0},
         want_m="trail", want_tags={"k": "a"}, want_fields={"f": 2.0}),
    case("backslash before a separator", "bs" + BS + " sp", {"t" + BS + ",u": "a" + BS + ",b" + BS + "=c"},
         {"x" + BS + "=y": 3.0, "q" + BS + '"z': 4.0},
         want_m="bs sp", want_tags={"t,u": "a,b=c"}, want_fields={"x=y": 3.0, 'q"z': 4.0}),
    case("newlines and CRs", "nl\nm", {"t": "x\r\ny"}, {"s": "line1\nline2", "k\n": 4.0},
         want_m="nl m", want_tags={"t": "x  y"}, want_fields={"s": "line1 line2", "k ": 4.0}),
    case("unicode", "Zähler ⚡", {"ort": "Küche €"}, {"leistung_w": 1234.5, "s": "😀 grüße"}),
    case("leading specials", ",lead", {" sp": "=v", "=k": ",v"}, {"=eq": 1.5, " sp": 2.5, '"q': 3.5}),
    case("empty and null tags omitted", "tags_empty", {"site": "", "dev": None, "x": "1"}, {"f": 1.0}),
    case("NaN and Inf dropped", "nonfinite", {}, {"a": flt(float("nan")), "b": flt(float("inf")),
                                                  "c": flt(float("-inf")), "d": 2.5},
         want_fields={"d": 2.5}),
    case("no field left", "nothing", {"t": "v"}, {"a": flt(float("nan"))}, written=False),
    case("measurement read as a comment", "#hash", {}, {"f": 1.0}, written=False),
    case("floats", "floats", {}, {"a": 0.1, "b": 1e-7, "c": 1e20, "d": flt(-0.0), "e": 123456789012345678.0,
                                  "f": 0.1 + 0.2, "g": 5e-324, "h": 1.7976931348623157e308, "i": 100 / 3,
                                  "j": 13.04 + 0.03, "k": 1.0}),
    case("integers, booleans, strings", "types", {},
         {"imin": integer(-2**63), "imax": integer(2**63 - 1), "zero": integer(0), "t": True, "u": False,
          "empty": "", "esc": "a" + BS + '"b' + BS + BS + "c,d e=f"}),
    case("tag order", "sorted", {"zeta": "1", "alpha": "2", "Mid": "3", "a b": "4", "a!b": "5"}, {"f": 1.0}),
]


def encode(points):
    """Lines of lp_encode, one per point ("" when the encoder wrote nothing)."""
    out = subprocess.run([LP_ENCODE], input=json.dumps(points), capture_output=True, text=True, check=True)
    lines = out.stdout.split("\n")
    assert lines[-1] == "", out.stdout
    return lines[:-1]


def write(port, body):
    url = f"http://127.0.0.1:{port}/write?" + urllib.parse.urlencode({"db": DB, "precision": "ms"})
    req = urllib.request.Request(url, data=body.encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def ident(name):
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace(BS, BS + BS).replace('"', BS + '"') + '"'


def read_back(port, measurement):
    """[(name, tags, fields, time)] of every series of the measurement, nulls left out."""
    res = influx_query(port, f"SELECT * FROM {ident(measurement)} GROUP BY *", DB)["results"][0]
    got = []
    for s in res.get("series") or []:
        for row in s["values"]:
            fields = {c: v for c, v in zip(s["columns"][1:], row[1:]) if v is not None}
            got.append((s["name"], {k: v for k, v in s.get("tags", {}).items() if v}, fields, row[0]))
    return got


def field_types(port, measurement):
    res = influx_query(port, f"SHOW FIELD KEYS FROM {ident(measurement)}", DB)["results"][0]
    return {k: t for k, t in res["series"][0]["values"]} if res.get("series") else {}


def check_table(port):
    points = []
    for i, c in enumerate(CASES):
        points.append(dict(c["point"], ts=TS0 + i))
    lines = encode(points)
    check_eq("one output line per point", len(lines), len(CASES))
    for c, line in zip(CASES, lines):
        check(f"{c['name']}: encoded or not as expected", bool(line) == (c["want"] is not None), repr(line))
    by_name = {c["name"]: line for c, line in zip(CASES, lines)}
    check_eq("tags sorted by written key", by_name["tag order"].rsplit(" ", 2)[0],
             "sorted,Mid=3,a!b=5,a" + BS + " b=4,alpha=2,zeta=1")
    status, text = write(port, "".join(line + "\n" for line in lines if line))
    check_eq("the whole batch is accepted", (status, text), (204, ""))
    for i, c in enumerate(CASES):
        if c["want"] is None:
            check_eq(f"{c['name']}: nothing stored", read_back(port, c["point"]["measurement"]), [])
            continue
        m, tags, fields = c["want"]
        check_eq(f"{c['name']}: read back", read_back(port, m), [(m, tags, fields, TS0 + i)])
    check_eq("field types", field_types(port, "types"),
             {"imin": "integer", "imax": "integer", "zero": "integer", "t": "boolean", "u": "boolean",
              "empty": "string", "esc": "string"})
    check_eq("float field types", set(field_types(port, "floats").values()), {"float"})


def check_float_stays_float(port):
    """1.0 is written without a decimal point but without "i": the field stays a float."""
    lines = encode([{"measurement": "typed", "fields": {"f": 1.0}, "ts": 1000},
                    {"measurement": "typed", "fields": {"f": 1.5}, "ts": 2000}])
    check_eq("integral float line", lines[0], "typed f=1 1000")
    check_eq("integral float write", write(port, lines[0] + "\n"), (204, ""))
    check_eq("fractional float write, no type conflict", write(port, lines[1] + "\n"), (204, ""))
    check_eq("field type is float", field_types(port, "typed"), {"f": "float"})
    check_eq("both values stored", [(r[2], r[3]) for r in read_back(port, "typed")],
             [({"f": 1}, 1000), ({"f": 1.5}, 2000)])


def main():
    env = Env("lp-influx")
    try:
        if not check("lp_encode is built", os.access(LP_ENCODE, os.X_OK), LP_ENCODE):
            return
        port = env.influxd()
        influx_query(port, f"CREATE DATABASE {DB}")
        check_table(port)
        check_float_stays_float(port)
    finally:
        env.close()


if __name__ == "__main__":
    main()
    done()
