#!/usr/bin/python3
"""mbread.py: read Modbus TCP registers or bits once, for tests and by hand (like mbpoll).

usage: mbread.py HOST PORT UNIT TABLE ADDR COUNT [TIMEOUT_S]
  TABLE: holding (3), input (4), coils (1) or discrete (2); ADDR is the 0-based protocol address.
Prints the values as decimal numbers separated by spaces (bits as 0/1) and exits 0.
Exit 1 with "exception N" on stderr when the device answers with Modbus exception N;
exit 3 with a message when there is no valid answer (timeout, refused, garbage); exit 2 on usage errors.
"""
import logging
import sys

from pymodbus.client import ModbusTcpClient
from pymodbus.pdu import ExceptionResponse

TABLES = {
    "holding": "read_holding_registers", "3": "read_holding_registers",
    "input": "read_input_registers", "4": "read_input_registers",
    "coils": "read_coils", "1": "read_coils",
    "discrete": "read_discrete_inputs", "2": "read_discrete_inputs",
}


def usage(msg):
    sys.stderr.write("mbread.py: %s\n%s" % (msg, __doc__.split("\n\n", 1)[1]))
    sys.exit(2)


def parse_int(text, name, lo, hi):
    try:
        value = int(text, 0)
    except ValueError:
        usage("%s must be an integer, got %r" % (name, text))
    if not lo <= value <= hi:
        usage("%s must be %d..%d, got %d" % (name, lo, hi, value))
    return value


def main(argv):
    if len(argv) not in (7, 8):
        usage("expected 6 or 7 arguments, got %d" % (len(argv) - 1))
    host = argv[1]
    port = parse_int(argv[2], "PORT", 1, 65535)
    unit = parse_int(argv[3], "UNIT", 0, 255)
    if argv[4] not in TABLES:
        usage("TABLE must be holding, input, coils or discrete, got %r" % argv[4])
    addr = parse_int(argv[5], "ADDR", 0, 65535)
    count = parse_int(argv[6], "COUNT", 1, 2000)
    try:
        timeout_s = float(argv[7]) if len(argv) == 8 else 2.0
    except ValueError:
        usage("TIMEOUT_S must be a number, got %r" % argv[7])
    logging.disable(logging.CRITICAL)  # pymodbus logs retries and timeouts itself
    client = ModbusTcpClient(host, port=port, timeout=max(1, int(timeout_s)), retries=0, retry_on_empty=False)
    client.params.timeout = timeout_s  # pymodbus 3.0 truncates the constructor's timeout to an int
    try:
        if not client.connect():
            sys.stderr.write("no connection to %s:%d\n" % (host, port))
            return 3
        rr = getattr(client, TABLES[argv[4]])(addr, count, slave=unit)
    except Exception as e:  # pymodbus raises on timeouts and broken frames
        sys.stderr.write("no valid answer: %s\n" % e)
        return 3
    finally:
        client.close()
    if isinstance(rr, ExceptionResponse):
        sys.stderr.write("exception %d\n" % rr.exception_code)
        return 1
    if rr is None or rr.isError():
        sys.stderr.write("no valid answer: %s\n" % rr)
        return 3
    values = rr.registers if hasattr(rr, "registers") else [int(b) for b in rr.bits[:count]]
    print(" ".join(str(v) for v in values))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
