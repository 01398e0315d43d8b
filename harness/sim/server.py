"""ADB device side over TCP: what `adb connect 127.0.0.1:PORT` talks to.

One thread reads messages per connection; each OPENed service runs in its own thread.
Device-to-host writes wait for the host's OKAY before the next one (ADB flow control).
"""

from __future__ import annotations

import os
import socket
import socketserver
import struct
import threading
import time
from pathlib import Path
from queue import Queue

from harness.sim import sandbox, shell, vendor
from harness.sim.adb_protocol import (A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_WRTE, MAX_PAYLOAD, SHELL_CLOSE_STDIN,
                                      SHELL_EXIT, SHELL_STDERR, SHELL_STDIN, SHELL_STDOUT, VERSION, Message,
                                      read_message, shell_packet)
from harness.sim.phone import PROPS, Phone

FEATURES = "shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir"


class Stream:
    def __init__(self, conn: "Connection", local_id: int, remote_id: int) -> None:
        self.conn, self.local_id, self.remote_id = conn, local_id, remote_id
        self.inbox: Queue[bytes | None] = Queue()
        self.acked = threading.Event()
        self.closed = threading.Event()
        self._buffer = b""

    def write(self, data: bytes) -> None:
        for start in range(0, len(data), self.conn.max_payload):
            if self.closed.is_set():
                raise ConnectionError("stream closed by host")
            self.acked.clear()
            self.conn.send(Message(A_WRTE, self.local_id, self.remote_id, data[start:start + self.conn.max_payload]))
            while not self.acked.wait(0.5):
                if self.closed.is_set():
                    raise ConnectionError("stream closed by host")

    def read_exact(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.inbox.get()
            if chunk is None:
                raise EOFError
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self.conn.send(Message(A_CLSE, self.local_id, self.remote_id))


class Connection(socketserver.BaseRequestHandler):
    phone: Phone  # set on the server subclass

    def setup(self) -> None:
        self.lock = threading.Lock()
        self.streams: dict[int, Stream] = {}
        self.next_id = 1
        self.max_payload = MAX_PAYLOAD
        self.pushed = 0
        self.server.connections.add(self)

    def finish(self) -> None:
        self.server.connections.discard(self)

    def send(self, msg: Message) -> None:
        with self.lock:
            self.request.sendall(msg.pack())

    def recv_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.request.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def handle(self) -> None:
        back_at = self.server.phone.faults.offline_until
        if back_at is not None and time.monotonic() < back_at:
            return  # closed unanswered: adb keeps the phone "offline" and tries again
        try:
            while True:
                msg = read_message(self.recv_exact)
                self.dispatch(msg)
        except (EOFError, ConnectionError, OSError):
            pass
        finally:
            for stream in self.streams.values():
                stream.closed.set()
                stream.inbox.put(None)

    def dispatch(self, msg: Message) -> None:
        phone = self.server.phone
        if msg.command == A_CNXN:
            self.max_payload = min(MAX_PAYLOAD, msg.arg1 or MAX_PAYLOAD)
            props = ";".join(f"{k}={PROPS[k]}" for k in ("ro.product.name", "ro.product.model", "ro.product.device"))
            self.send(Message(A_CNXN, VERSION, MAX_PAYLOAD, f"device::{props};features={FEATURES}".encode()))
        elif msg.command == A_OPEN:
            local_id, self.next_id = self.next_id, self.next_id + 1
            stream = Stream(self, local_id, msg.arg0)
            self.streams[local_id] = stream
            service = msg.data.rstrip(b"\0").decode()
            phone.commands += 1
            if phone.faults.vanish_after_commands is not None and phone.commands > phone.faults.vanish_after_commands:
                self.request.shutdown(socket.SHUT_RDWR)  # the phone is gone
                return
            self.send(Message(A_OKAY, local_id, msg.arg0))
            threading.Thread(target=self.serve, args=(stream, service), daemon=True).start()
        elif msg.command == A_OKAY:
            stream = self.streams.get(msg.arg1)
            if stream:
                stream.acked.set()
        elif msg.command == A_WRTE:
            stream = self.streams.get(msg.arg1)
            if stream:
                stream.inbox.put(msg.data)
                self.send(Message(A_OKAY, stream.local_id, stream.remote_id))
        elif msg.command == A_CLSE:
            stream = self.streams.pop(msg.arg1, None)
            if stream:
                stream.closed.set()
                stream.inbox.put(None)

    def serve(self, stream: Stream, service: str) -> None:
        phone = self.server.phone
        try:
            if service.startswith("shell,v2"):
                cmd = service.split(":", 1)[1]
                result = shell.run(phone, cmd, stream.closed,
                                   emit=lambda kind, data: stream.write(shell_packet(kind, data)),
                                   stdin=_stdin_packets(stream))
                if result.out:
                    stream.write(shell_packet(SHELL_STDOUT, result.out.encode()))
                if result.err:
                    stream.write(shell_packet(SHELL_STDERR, result.err.encode()))
                stream.write(shell_packet(SHELL_EXIT, bytes([result.code & 0xFF])))
            elif service.startswith("shell:"):
                result = shell.run(phone, service.split(":", 1)[1], stream.closed, stdin=_raw_input(stream))
                stream.write((result.out + result.err).encode())
            elif service.startswith("exec:"):
                # A raw subprocess on a socketpair (shell_service.cpp, kRaw without the protocol): the host's end
                # of the stream (`adb exec-in` closes it once its stdin is sent) is the command's end of input,
                # not a hangup, and the command runs to its end; its output goes while the stream lives.
                result = shell.run(phone, service.split(":", 1)[1], threading.Event(), stdin=_raw_input(stream))
                stream.write((result.out + result.err).encode())
            elif service.startswith("sync:"):
                self.sync(stream)
            else:
                stream.write(b"FAIL")
        except (EOFError, ConnectionError, OSError):
            pass
        finally:
            try:
                stream.close()
            except OSError:
                pass  # the host (or a fault) already closed the connection
            stream.inbox.put(None)  # what still waits for the host's input ends with the stream

    def sync(self, stream: Stream) -> None:
        phone = self.server.phone
        while True:
            request = stream.read_exact(8)
            cmd, length = request[:4], struct.unpack("<I", request[4:])[0]
            if cmd == b"QUIT":
                return
            arg = stream.read_exact(length).decode()
            if cmd in (b"STAT", b"STA2", b"LST2"):
                stream.write(_stat_reply(phone, cmd, arg))
            elif cmd == b"SEND":
                if not self.receive_file(stream, arg.rsplit(",", 1)[0]):
                    return  # adbd ends the sync service after a failed SEND (handle_sync_command)
            elif cmd == b"RECV":
                if not _send_file(stream, phone, arg):
                    return  # and after a failed RECV
            else:
                stream.write(_sync_fail(f"unsupported sync command {cmd!r}"))
                return

    def receive_file(self, stream: Stream, device_path: str) -> bool:
        """adbd's SEND (system/core adb/daemon/file_sync_service.cpp, handle_send_file): the bytes go straight to
        the path, and on any failure, a dropped connection included, the partly written file is unlinked.  A path
        the shell user cannot create fails with adbd's reason, after the file's data is read and dropped.
        Returns whether the file was written."""
        phone = self.server.phone
        refusal = phone.push_refusal(device_path)
        if refusal is not None:
            _drop_file_data(stream)
            stream.write(_sync_fail(refusal))
            return False
        _, target = phone.push_target(device_path)  # inside the phone: push_refusal let it through
        target.parent.mkdir(parents=True, exist_ok=True)  # fixed_push_mkdir
        if target.is_symlink():  # adbd unlinks a link it is asked to write (do_send) and writes a file in its place
            target.unlink()
        failed = None
        try:
            with target.open("wb") as out:
                while True:
                    head = stream.read_exact(8)
                    kind, value = head[:4], struct.unpack("<I", head[4:])[0]
                    if kind == b"DATA":
                        chunk = stream.read_exact(value)
                        self.pushed += len(chunk)
                        limit = phone.faults.drop_push_after_bytes
                        if limit is not None and self.pushed > limit:
                            self.request.shutdown(socket.SHUT_RDWR)  # the cable is pulled mid-push
                            raise ConnectionError("dropped")
                        if phone.faults.storage_full:
                            failed = "No space left on device"
                        elif failed is None:
                            out.write(chunk)
                    elif kind == b"DONE":
                        break
                    else:
                        failed = f"unexpected {kind!r}"
                        break
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        if failed:
            target.unlink(missing_ok=True)
            stream.write(_sync_fail(failed))
            return True  # the session goes on, as the simulated full storage always let it
        stream.write(b"OKAY" + struct.pack("<I", 0))
        return True


def _stat_reply(phone: Phone, cmd: bytes, device_path: str) -> bytes:
    """adbd's answer to a sync STAT (lstat, v1: all zeros when it fails), STA2 (stat) or LST2 (lstat), the latter
    two with the errno of a failure and the request's own id (file_sync_service.cpp, do_lstat_v1 and do_stat_v2),
    about the phone's own file at the path (Phone.phone_file), never the simulator's."""
    follow = cmd == b"STA2"
    try:
        st = os.stat(phone.phone_file(device_path, follow=follow), follow_symlinks=follow)
    except OSError as error:
        if cmd == b"STAT":
            return b"STAT" + struct.pack("<III", 0, 0, 0)
        return cmd + struct.pack("<IQQIIIIQqqq", error.errno, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    if cmd == b"STAT":
        return b"STAT" + struct.pack("<III", st.st_mode, st.st_size, int(st.st_mtime))
    return cmd + struct.pack("<IQQIIIIQqqq", 0, st.st_dev, st.st_ino, st.st_mode, st.st_nlink, 0, 0, st.st_size,
                             int(st.st_atime), int(st.st_mtime), int(st.st_ctime))


def _send_file(stream: Stream, phone: Phone, device_path: str) -> bool:
    """adbd's RECV (file_sync_service.cpp, recv_impl): the phone's file at the path in 64 KiB DATA messages and a
    DONE, or a FAIL with adbd's reason ("open failed: " / "read failed: " + strerror).  Returns whether it was sent
    (adbd ends the sync service after a failure)."""
    try:
        source = open(os.open(phone.phone_file(device_path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb")
    except OSError as error:
        stream.write(_sync_fail(f"open failed: {os.strerror(error.errno)}"))
        return False
    with source:
        while True:
            try:
                chunk = source.read(64 * 1024)
            except OSError as error:  # a folder: opened, but not read
                stream.write(_sync_fail(f"read failed: {os.strerror(error.errno)}"))
                return False
            if not chunk:
                break
            stream.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
    stream.write(b"DONE" + struct.pack("<I", 0))
    return True


def _sync_fail(reason: str) -> bytes:
    """A sync FAIL message (file_sync_service.cpp, SendSyncFail): the adb client prints the reason."""
    msg = reason.encode()
    return b"FAIL" + struct.pack("<I", len(msg)) + msg


def _drop_file_data(stream: Stream) -> None:
    """Read and drop a refused file's DATA until its DONE, as adbd's handle_send_file does after a failure so the
    host reads the FAIL."""
    while True:
        head = stream.read_exact(8)
        kind, length = head[:4], struct.unpack("<I", head[4:])[0]
        if kind != b"DATA":
            return
        stream.read_exact(length)


def _stdin_packets(stream: Stream):
    """The command's stdin under the shell protocol (adb/daemon/shell_service.cpp, Subprocess::PassInput): the data
    of each kIdStdin packet, until kIdCloseStdin (or the stream's end); window sizes are for a PTY, which a
    command with the shell protocol does not get."""
    while True:
        try:
            kind, length = struct.unpack("<BI", stream.read_exact(5))
            data = stream.read_exact(length)
        except EOFError:
            return
        if kind == SHELL_CLOSE_STDIN:
            return
        if kind == SHELL_STDIN:
            yield data


def _raw_input(stream: Stream):
    """A command without the shell protocol: the host's bytes go to its stdin as they are, and nothing but the
    stream's end closes it (adbd gives it a PTY, whose input cannot be closed alone)."""
    while (chunk := stream.inbox.get()) is not None:
        yield chunk


class SimServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, phone: Phone) -> None:
        self.phone = phone
        self.vendor = vendor.Daemon(phone)
        sandbox.prepare(phone, self.vendor.path)
        sandbox.boot(phone)
        self.connections: set[Connection] = set()
        super().__init__(("127.0.0.1", port), Connection)
        self._stopped = False

    def go_offline(self, for_s: float) -> None:
        """Drop the host's connection and refuse new ones for ``for_s`` seconds, as a phone whose adbd restarts."""
        self.phone.faults.offline_until = time.monotonic() + for_s
        for connection in list(self.connections):
            try:
                connection.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

    def server_close(self) -> None:
        """Stop the phone too: what its shell started, and its vendor daemon."""
        super().server_close()
        if not self._stopped:
            self._stopped = True
            sandbox.stop_everything(self.phone)
            self.vendor.close()


# How often the serving loop looks for shutdown() (socketserver's default, 0.5 s, made every stop of a simulated
# phone wait about 0.2 s, once per phone of every test); a connection is answered as it comes either way.
SHUTDOWN_POLL_S = 0.02


def start(port: int, root: Path, faults=None, discharge_sign: int = -1, charging: bool = False) -> SimServer:
    """Serve a simulated phone on 127.0.0.1:PORT in a background thread (port 0 picks a free one); its battery
    gauge gives a discharging current ``discharge_sign`` (-1 as the kernel documents it, +1 as some gauges do),
    and ``charging`` puts it on a charger."""
    from harness.sim.phone import Faults

    missing = sandbox.missing_tools()
    if missing:
        from harness.errors import UserError

        raise UserError(f"the simulated phone runs Android's shell and userland, and this machine lacks: "
                        f"{', '.join(missing)}.", fix="apt-get install mksh toybox bubblewrap (or run "
                        "scripts/install-system-deps.sh).")
    if discharge_sign not in (-1, 1):
        raise ValueError(f"discharge_sign is -1 or +1, not {discharge_sign}")
    server = SimServer(port, Phone(root=root, faults=faults or Faults(), discharge_sign=discharge_sign,
                                   charging=charging))
    threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL_S,), name="sim-phone", daemon=True).start()
    return server
