"""Interop: the collector reads Modbus servers written with pymodbus (an independent implementation):
an SDM630 register map over Modbus TCP, and a generic map over RTU-over-TCP (fabgrid's own backend),
with exact values; --check and usage errors give the contract's exit codes and messages."""
import json
import os
import struct
import subprocess

from fgtest import BIN, PROFILES, PY, ROOT, Env, check, check_eq, done, free_port, site_config, wait_port

ROT = os.path.join(ROOT, "tests", "integration", "rot_server.py")


def f32(v):
    return struct.unpack(">f", struct.pack(">f", v))[0]


def j15(v):
    """What the collector's %.15g JSON number reads back as."""
    return float(f"{v:.15g}")


def once(conf):
    out = subprocess.run([f"{BIN}/fabgrid-collector", "-c", conf, "--profiles", PROFILES, "--once"],
                         capture_output=True, text=True, timeout=60)
    return out, [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_sdm630_over_tcp():
    env = Env("interop-tcp")
    try:
        port = free_port()
        srv = env.start([PY, ROT, str(port), "--tcp", "--sdm630"], "pymodbus")
        wait_port(port, srv)
        conf = env.write_json("site.json", site_config(
            1883, buses=[{"id": "lan", "type": "tcp", "host": "127.0.0.1", "port": port}],
            devices=[{"id": "grid", "bus": "lan", "unit": 1, "profile": "sdm630", "role": "grid"}]))
        out, objs = once(conf)
        check_eq("pymodbus sdm630: --once exit", out.returncode, 0)
        o = objs[0] if objs else {}
        want = {"voltage_l1_v": 231.5, "voltage_l2_v": 229.25, "voltage_l3_v": 0.0, "current_l1_a": 1.5,
                "power_l1_w": 347.25, "power_w": -1234.75, "power_factor": -0.875,
                "frequency_hz": j15(f32(49.98)), "energy_import_wh": j15(f32(12345.678) * 1000),
                "energy_export_wh": 2500.0, "energy_total_wh": j15(f32(12348.178) * 1000)}
        check_eq("pymodbus sdm630: decoded float32 values", {k: o.get(k) for k in want}, want)
    finally:
        env.close()


def test_rtu_over_tcp():
    env = Env("interop-rot")
    try:
        port = free_port()
        srv = env.start([PY, ROT, str(port)], "pymodbus")
        wait_port(port, srv)
        profile = env.write_json("generic.json", {
            "name": "generic", "source": "test map of tests/integration/rot_server.py",
            "points": [
                {"name": "a_u16", "table": "holding", "address": 0, "type": "u16"},
                {"name": "b_s32", "table": "holding", "address": 10, "type": "u32"},
                {"name": "c_cdab", "table": "holding", "address": 20, "type": "u32", "order": "CDAB"},
                {"name": "d_scaled", "table": "holding", "address": 30, "type": "u16", "scale": 0.1},
                {"name": "e_input", "table": "input", "address": 7, "type": "u16"},
                {"name": "f_coil", "table": "coil", "address": 3, "type": "bits"},
                {"name": "g_coil", "table": "coil", "address": 4, "type": "bits"},
                {"name": "h_discrete", "table": "discrete", "address": 5, "type": "bits"},
                {"name": "i_bit", "table": "holding", "address": 40, "type": "bits", "bit": 0},
                {"name": "j_impl", "table": "holding", "address": 50, "type": "u16", "max": 100}]})
        conf = env.write_json("site.json", site_config(
            1883, buses=[{"id": "gw", "type": "rtu-over-tcp", "host": "127.0.0.1", "port": port}],
            devices=[{"id": "meter", "bus": "gw", "unit": 2, "profile": profile, "role": "load"}]))
        out, objs = once(conf)
        check_eq("rtu-over-tcp: --once exit", out.returncode, 0)
        o = objs[0] if objs else {}
        o.pop("ts", None)
        want = {"device": "meter", "a_u16": 1, "b_s32": 31 * 65536 + 34, "c_cdab": 64 * 65536 + 61,
                "d_scaled": 9.1, "e_input": 37, "f_coil": 1, "g_coil": 0, "h_discrete": 1, "i_bit": 1}
        check_eq("rtu-over-tcp: decoded values (implausible j_impl=151 left out)", o, want)
        # an absent unit on the gateway times out and is reported, exit 1
        conf2 = env.write_json("site2.json", site_config(
            1883, buses=[{"id": "gw", "type": "rtu-over-tcp", "host": "127.0.0.1", "port": port}],
            devices=[{"id": "ghost", "bus": "gw", "unit": 9, "profile": profile, "role": "load",
                      "timeout_ms": 200}]))
        out, objs = once(conf2)
        check_eq("absent unit: --once exit 1", out.returncode, 1)
        check_eq("absent unit: error names the device", out.stderr.strip().splitlines()[-1:], ["ghost: timeout"])
    finally:
        env.close()


def test_cli_errors():
    env = Env("cli")
    try:
        bad = env.write("bad.json", '{"site": {"id": "x"}, "devices": [}')
        out = subprocess.run([f"{BIN}/fabgrid-collector", "-c", bad, "--check"], capture_output=True, text=True)
        check_eq("syntax error: exit 1", out.returncode, 1)
        check("syntax error: FILE:LINE:COL", out.stderr.startswith(f"{bad}:1:35: syntax error"), out.stderr)
        semantic = env.write_json("sem.json", site_config(
            1883, buses=[{"id": "lan", "type": "tcp", "host": "127.0.0.1", "port": 502}],
            devices=[{"id": "inv1", "bus": "lan", "unit": 300, "profile": "sunspec", "role": "pv", "pol_ms": 5}]))
        out = subprocess.run([f"{BIN}/fabgrid-collector", "-c", semantic, "--check"], capture_output=True, text=True)
        check_eq("semantic errors: exit 1 and exact messages", (out.returncode, out.stderr.strip().splitlines()),
                 (1, [f"{semantic}: devices[0].unit: must be an integer 0..255, got 300",
                      f"{semantic}: devices[0].pol_ms: unknown key (did you mean \"poll_ms\"?)"]))
        out = subprocess.run([f"{BIN}/fabgrid-collector", "--bogus"], capture_output=True, text=True)
        check_eq("usage error: exit 2", out.returncode, 2)
        good = env.write_json("good.json", site_config(
            1883, buses=[{"id": "lan", "type": "tcp", "host": "127.0.0.1", "port": 502}],
            devices=[{"id": "inv1", "bus": "lan", "unit": 1, "profile": "sunspec", "role": "pv"},
                     {"id": "grid", "bus": "lan", "unit": 2, "profile": "sdm630", "role": "grid"}]))
        out = subprocess.run([f"{BIN}/fabgrid-collector", "-c", good, "--check", "--profiles", PROFILES],
                             capture_output=True, text=True)
        check_eq("--check ok", (out.returncode, out.stdout.split(":")[-1].strip()[:30]), (0, "ok (1 buses, 2 devices, 0 mqtt"))
    finally:
        env.close()


if __name__ == "__main__":
    test_sdm630_over_tcp()
    test_rtu_over_tcp()
    test_cli_errors()
    done()
