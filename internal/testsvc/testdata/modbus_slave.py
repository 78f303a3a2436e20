#!/usr/bin/python3
"""Modbus slave for envgate's integration tests, driven by internal/testsvc/modbus.go.

Usage: modbus_slave.py CONFIG.json

It serves the slaves described in CONFIG.json with pymodbus 3.0 (Debian's
python3-pymodbus), either Modbus RTU on a serial port (a socat pty), Modbus TCP, or
RTU framing over TCP, on 127.0.0.1 and a port the kernel picks.

Protocol with the Go harness, one line each:
  stdout "ready SERIAL_PATH" or "ready 127.0.0.1:PORT" once it serves;
  stdout "missing WHY" (exit 3) when pymodbus 3.0 or pyserial-asyncio is not installed;
  stdin  "set SLAVE TABLE ADDR VALUE" (TABLE: h, i, c or d) -> stdout "ok" or "error WHY";
  stdin  EOF, SIGTERM or SIGINT -> shut down and exit 0.
pymodbus's own log goes to stderr at DEBUG level.

Only the slave ids in the config answer, and each table serves only the addresses
listed for it: a read that touches any other address gets exception 02.
"""

import asyncio
import json
import logging
import os
import signal
import stat
import sys

try:
    import pymodbus
    import serial_asyncio  # noqa: F401 (the serial server needs it; fail early and clearly)
    from pymodbus.datastore import (
        ModbusServerContext,
        ModbusSlaveContext,
        ModbusSparseDataBlock,
    )
    from pymodbus.server.async_io import (
        ModbusSerialServer,
        ModbusSingleRequestHandler,
        ModbusTcpServer,
    )
    from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer
except ImportError as exc:
    print(f"missing {exc} (python {sys.version.split()[0]} at {sys.executable})", flush=True)
    sys.exit(3)

if not pymodbus.__version__.startswith("3.0."):
    # 3.1 moved the server classes and 3.7 replaced the framer classes; this script is
    # written against Debian bookworm's python3-pymodbus (3.0.0, which reports 3.0.0.rc1).
    print(f"missing pymodbus 3.0.x (found {pymodbus.__version__})", flush=True)
    sys.exit(3)

log = logging.getLogger("modbus_slave")

TABLES = {"h": "hr", "i": "ir", "c": "co", "d": "di"}


def sparse(table, coerce):
    """Return a ModbusSparseDataBlock serving exactly the addresses in table.

    An empty block answers no address at all (validate() of any range is False).
    """
    return ModbusSparseDataBlock({int(a): coerce(v) for a, v in (table or {}).items()})


def build_context(slaves):
    """Return a multi-slave server context holding only the configured slave ids.

    single=False makes the framers drop requests for other ids before decoding them
    (ModbusFramer._validate_unit_id), unless id 0 or 255 is configured: then the framer
    lets every id through and ignore_missing_slaves=True keeps the others silent.
    zero_mode=True: protocol address N is datastore address N (the default adds 1).
    """
    contexts = {}
    for sid, data in slaves.items():
        contexts[int(sid)] = ModbusSlaveContext(
            hr=sparse(data.get("holding"), int),
            ir=sparse(data.get("input"), int),
            co=sparse(data.get("coils"), bool),
            di=sparse(data.get("discrete"), bool),
            zero_mode=True,
        )
    return ModbusServerContext(slaves=contexts, single=False)


def is_pty(path):
    """Report whether path is a Unix98 pty slave (character majors 136-143, Linux devices.txt)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and 136 <= os.major(st.st_rdev) <= 143


class StreamSocketFramer(ModbusSocketFramer):
    """Modbus TCP framer that reassembles requests split across TCP reads.

    pymodbus 3.0's ModbusSocketFramer treats every read as whole frames: a request
    that arrives in two segments is dropped, or the connection is closed ("Unknown
    exception ... forcing disconnect"). Real devices read a byte stream, so this hands
    the framer one complete ADU at a time: the MBAP length field (Modbus Messaging on
    TCP/IP V1.0b §3.1.3) counts the bytes after itself.
    """

    def __init__(self, decoder, client=None):
        super().__init__(decoder, client)
        self._stream = b""

    def processIncomingPacket(self, data, callback, unit, **kwargs):
        self._stream += data
        while len(self._stream) >= 6:
            length = int.from_bytes(self._stream[4:6], "big")
            if 2 <= length <= 254 and len(self._stream) < 6 + length:
                return  # wait for the rest; a bad length goes to pymodbus at once
            end = 6 + length if 2 <= length <= 254 else len(self._stream)
            frame, self._stream = self._stream[:end], self._stream[end:]
            super().processIncomingPacket(frame, callback, unit, **kwargs)


class LoggingSerialHandler(ModbusSingleRequestHandler):
    """Logs when the serial port is (re)opened, so a test log shows reconnects."""

    def connection_made(self, transport):
        super().connection_made(transport)
        log.info("serial port open: %s", transport.serial.port)


def handle_command(context, line):
    """Apply one "set SLAVE TABLE ADDR VALUE" line; return the reply line."""
    parts = line.split()
    if len(parts) != 5 or parts[0] != "set" or parts[2] not in TABLES:
        return f"error bad command {line!r}: want 'set SLAVE h|i|c|d ADDR VALUE'"
    try:
        sid, addr, value = int(parts[1]), int(parts[3]), int(parts[4])
    except ValueError:
        return f"error bad number in {line!r}"
    if sid not in context.slaves():
        return f"error no slave {sid}"
    if parts[2] in ("c", "d"):
        value = bool(value)
    # The block is mutable, so a new address becomes readable from now on.
    context[sid].store[parts[2]].setValues(addr, [value])
    return "ok"


async def read_commands(context, stop):
    """Read commands from stdin until EOF, then set stop."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        line = line.decode().strip()
        if line:
            reply = handle_command(context, line)
            log.info("command %r: %s", line, reply)
            print(reply, flush=True)
    stop.set()


async def main(config):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    context = build_context(config.get("slaves") or {})
    if config.get("serial"):
        parity = config.get("parity") or "N"
        if parity != "N" and is_pty(config["serial"]):
            # A pty has no parity: Linux silently drops PARENB on the first tcsetattr, and
            # pyserial's second one (serial_asyncio sets timeout=0) fails with EINVAL
            # (https://github.com/pyserial/pyserial/issues/196). Framing is unaffected.
            log.warning("parity %s ignored: %s is a pty", parity, config["serial"])
            parity = "N"
        # StartAsyncSerialServer would default to the ASCII framer and gives no hook
        # between opening the port and serving, so build the server directly.
        server = ModbusSerialServer(
            context,
            framer=ModbusRtuFramer,
            port=config["serial"],
            baudrate=config.get("baud") or 9600,
            parity=parity,
            bytesize=8,
            stopbits=1,
            ignore_missing_slaves=True,
            handler=LoggingSerialHandler,
            # When the pty disappears (socat stopped) the server reopens the same
            # path every reconnect_delay seconds until socat is back.
            auto_reconnect=True,
            reconnect_delay=0.1,
        )
        # start() swallows open errors when auto_reconnect is set; check the transport.
        await server.start()
        if server.transport is None:
            print(f"error cannot open serial port {config['serial']}", flush=True)
            return 1
        where = config["serial"]
    else:
        framer = ModbusRtuFramer if config.get("framer") == "rtu" else StreamSocketFramer
        server = ModbusTcpServer(
            context,
            framer=framer,
            address=("127.0.0.1", 0),
            ignore_missing_slaves=True,
        )
        serving = asyncio.create_task(server.serve_forever())
        done, _ = await asyncio.wait({serving, server.serving}, return_when=asyncio.FIRST_COMPLETED)
        if serving in done:
            serving.result()  # raises the bind error
            print("error tcp server stopped during start", flush=True)
            return 1
        host, port = server.server.sockets[0].getsockname()[:2]
        where = f"{host}:{port}"

    commands = asyncio.create_task(read_commands(context, stop))
    log.info("serving %s slaves %s", where, sorted(context.slaves()))
    print(f"ready {where}", flush=True)
    await stop.wait()
    log.info("stopping")
    commands.cancel()
    if config.get("serial"):
        server.auto_reconnect = False  # closing the port must not schedule a reopen
        await server.shutdown()
        if server.reconnecting_task is not None:
            server.reconnecting_task.cancel()
    else:
        await server.shutdown()
        serving.cancel()
    return 0


# pymodbus's DEBUG lines that repeat what "Handling data" and "send" already say; without
# them each request takes two lines, so a short log tail covers many requests.
NOISE = (
    "Frame - [",
    "Getting Frame",
    "Frame advanced",
    "Processing:",
    "Factory Request",
    "validate:",
    "getValues:",
    "Using selector",
    "checking autoreconnect",
)


def quiet(record):
    """Logging filter: drop the NOISE lines."""
    return not record.getMessage().startswith(NOISE)


if __name__ == "__main__":
    # force: importing pymodbus 3.0 already called basicConfig (pymodbus/constants.py).
    logging.basicConfig(
        force=True,
        stream=sys.stderr,
        level=logging.DEBUG,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for h in logging.getLogger().handlers:
        h.addFilter(quiet)
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    sys.exit(asyncio.run(main(cfg)))
