"""A client of the adb server's host protocol, for only what the harness asks of it: the phones attached, one
phone's state and features, and a transport to a phone (over which adb_streams speaks shell v2 and sync).

The protocol is adb's own (packages/modules/adb/docs/dev/services.md and protocol.txt in AOSP): a request is
its length in four hex digits and its text; the server answers OKAY, or FAIL with a length-prefixed reason;
host-serial:SERIAL:get-state and :features answer a length-prefixed string; host:transport:SERIAL turns the
connection into a stream to that phone's adbd.  adbutils did the same with Pillow and requests behind it (about
25 MB of a light install); this client never starts a server (the user starts it; NoAdbServer says how).
"""

from __future__ import annotations

import socket

ADB_CONNECT_TIMEOUT_S = 3.0  # a server on this machine answers a connect at once


class AdbError(Exception):
    """The adb server answered FAIL (its reason is the message), or did not speak adb's protocol."""


class NoAdbServer(Exception):
    """Nothing listens on the adb server's port; the message says how to start one there."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"no adb server on {host}:{port} (start it with: adb -P {port} start-server)")


class Connection:
    """One connection to the adb server; ``conn`` is its socket (adb_streams reads and writes it directly)."""

    def __init__(self, sock: socket.socket) -> None:
        self.conn = sock

    def send_command(self, request: str) -> None:
        data = request.encode()
        self.conn.sendall(f"{len(data):04x}".encode() + data)

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes; EOFError when the server closes first, TimeoutError when it stays silent."""
        data = bytearray()
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise EOFError(f"the adb server closed the connection ({len(data)} of {n} bytes read)")
            data += chunk
        return bytes(data)

    def read_string(self, n: int) -> str:
        return self.read(n).decode(errors="replace")

    def read_string_block(self) -> str:
        """A string the server sends as four hex digits of length, then the text."""
        return self.read_string(self._length())

    def check_okay(self) -> None:
        status = self.read_string(4)
        if status == "FAIL":
            raise AdbError(self.read_string_block())
        if status != "OKAY":
            raise AdbError(f"the adb server answered {status!r}, not OKAY or FAIL")

    def _length(self) -> int:
        digits = self.read_string(4)
        try:
            return int(digits, 16)
        except ValueError:
            raise AdbError(f"the adb server sent {digits!r} where a hex length belongs") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AdbServer:
    """The adb server on 127.0.0.1:``port``; every request gets ``idle_timeout_s`` of silence at most, unless the
    caller chose its own (a run's deadline, a push's)."""

    def __init__(self, port: int, idle_timeout_s: float, host: str = "127.0.0.1") -> None:
        self.host, self.port, self.idle_timeout_s = host, port, idle_timeout_s

    def connect(self, timeout_s: float | None = None) -> Connection:
        try:
            sock = _server_socket((self.host, self.port))
        except OSError:
            raise NoAdbServer(self.host, self.port) from None
        sock.settimeout(timeout_s or self.idle_timeout_s)
        return Connection(sock)

    def ask(self, request: str) -> str:
        """The string the server answers to a host request."""
        with self.connect() as connection:
            connection.send_command(request)
            connection.check_okay()
            return connection.read_string_block()

    def states(self) -> dict[str, str]:
        """Every phone the server lists, serial -> state ('device', 'offline', 'unauthorized', ...): `adb devices`,
        one "SERIAL\tSTATE" line each."""
        lines = (line.split() for line in self.ask("host:devices").splitlines())
        return {parts[0]: parts[1] for parts in lines if len(parts) >= 2}

    def phone(self, serial: str) -> "Phone":
        return Phone(self, serial)


class Phone:
    """One phone behind the server, by serial."""

    def __init__(self, server: AdbServer, serial: str) -> None:
        self.server, self.serial = server, serial

    def get_state(self) -> str:
        return self.server.ask(f"host-serial:{self.serial}:get-state")

    def get_features(self) -> str:
        return self.server.ask(f"host-serial:{self.serial}:features")

    def open_transport(self, timeout: float | None = None) -> Connection:
        """A connection switched to the phone's adbd: the next request (shell,v2:..., sync:) goes to the phone."""
        connection = self.server.connect(timeout)
        try:
            connection.send_command(f"host:transport:{self.serial}")
            connection.check_okay()
        except BaseException:
            connection.close()
            raise
        return connection


def _server_socket(address: tuple[str, int]) -> socket.socket:
    """A connected socket to the adb server (TCP keepalive, as adb's own clients), closed when the connect fails:
    one left to the garbage collector was counted as a library warning ('unclosed socket')."""
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPCNT", 3), ("TCP_KEEPINTVL", 10)):  # Linux names
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
        sock.settimeout(ADB_CONNECT_TIMEOUT_S)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock
