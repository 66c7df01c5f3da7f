#!/usr/bin/python3
"""rot_server: a Modbus server for integration tests of the collector's bus layer.

Speaks RTU frames (with CRC, no MBAP header) over a plain TCP socket on 127.0.0.1, as
RS-485-to-Ethernet gateways do; with --tcp it speaks ordinary Modbus TCP instead.
Usage: rot_server.py PORT [--tcp] [--sdm630]. Prints "ready" once listening; stop it with SIGTERM.
With --sdm630 the input registers hold an Eastron SDM630's float32 values (SDM630_VALUES below,
big-endian words) instead of address*5 + 2, up to address 400.

Data (units 1 and 2 share it; other units get no answer, like an absent RTU slave):
  holding registers 0..199: value = address*3 + 1      (writable)
  input registers   0..199: value = address*5 + 2
  coils             0..199: on when address % 3 == 0   (writable)
  discrete inputs   0..199: on when address % 2 == 1
Reading past address 199 gives exception 2 (illegal data address).
"""
import asyncio
import logging
import signal
import sys
import types


def _stub_serial_modules():
    """pymodbus 3.0 imports pyserial and pyserial-asyncio at module load even for TCP
    servers; Debian only recommends them. Stand-ins let the TCP server load without them."""
    for name in ("serial", "serial_asyncio"):
        try:
            __import__(name)
        except ImportError:
            stub = types.ModuleType(name)
            stub.create_serial_connection = None
            sys.modules[name] = stub


_stub_serial_modules()

# pylint: disable=wrong-import-position
from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server.async_io import ModbusTcpServer
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer

SIZE = 200
UNITS = (1, 2)
# address -> value of an SDM630 (float32, ABCD); the interop test expects exactly these
SDM630_VALUES = {0: 231.5, 2: 229.25, 4: 0.0, 6: 1.5, 12: 347.25, 52: -1234.75, 62: -0.875,
                 70: 49.98, 72: 12345.678, 74: 2.5, 342: 12348.178}


def sdm630_registers():
    import struct
    regs = [0] * 400
    for addr, val in SDM630_VALUES.items():
        hi, lo = struct.unpack(">HH", struct.pack(">f", val))
        regs[addr], regs[addr + 1] = hi, lo
    return regs


def make_context(sdm630=False):
    """One data set with the documented values, addressed from 0 (zero_mode)."""
    ir = sdm630_registers() if sdm630 else [a * 5 + 2 for a in range(SIZE)]
    store = ModbusSlaveContext(
        hr=ModbusSequentialDataBlock(0, [a * 3 + 1 for a in range(SIZE)]),
        ir=ModbusSequentialDataBlock(0, ir),
        co=ModbusSequentialDataBlock(0, [a % 3 == 0 for a in range(SIZE)]),
        di=ModbusSequentialDataBlock(0, [a % 2 == 1 for a in range(SIZE)]),
        zero_mode=True,
    )
    return ModbusServerContext(slaves={u: store for u in UNITS}, single=False)


async def serve(port, framer, sdm630):
    # ignore_missing_slaves: a request for an absent unit goes unanswered, as on RS-485
    server = ModbusTcpServer(
        make_context(sdm630),
        framer=framer,
        address=("127.0.0.1", port),
        allow_reuse_address=True,
        ignore_missing_slaves=True,
    )
    task = asyncio.create_task(server.serve_forever())
    await server.serving
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.shutdown()
    task.cancel()


def main(argv):
    flags = set(argv[2:])
    if len(argv) < 2 or not flags <= {"--tcp", "--sdm630"}:
        print("usage: rot_server.py PORT [--tcp] [--sdm630]", file=sys.stderr)
        return 2
    try:
        port = int(argv[1])
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        print(f"rot_server.py: PORT must be 1..65535, got {argv[1]}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.CRITICAL)
    framer = ModbusSocketFramer if "--tcp" in flags else ModbusRtuFramer
    asyncio.run(serve(port, framer, "--sdm630" in flags))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
