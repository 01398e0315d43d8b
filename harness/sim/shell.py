"""The simulated phone's shell: the few commands the harness (and adb) send, over the sandbox."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

from harness.sim import zygote
from harness.sim.fake_runners import LOGCAT
from harness.sim.phone import BATTERY_LEVEL_PERCENT, DEFAULT_VERSIONS, PROPS, Phone

_LOGGED = re.compile(re.escape(LOGCAT) + r"(.*)\n")
BENCHMARKS = ("executor_runner", "qnn_executor_runner", "onnxruntime_perf_test", "llama_main", "whisper_runner")


class Result:
    def __init__(self, code: int = 0, out: str = "", err: str = "") -> None:
        self.code, self.out, self.err = code, out, err


def _battery(phone: Phone) -> str:
    return ("Current Battery Service state:\n  AC powered: false\n  USB powered: true\n  status: 2\n"
            f"  level: {BATTERY_LEVEL_PERCENT}\n  scale: 100\n  voltage: 4123\n  temperature: {int((phone.heat() - 8) * 10)}\n")


def _thermalservice(phone: Phone) -> str:
    status = phone.thermal_status()
    t = phone.heat()
    return (f"IsStatusOverride: false\nThermal Status: {status}\nHAL Ready: true\nCurrent temperatures from HAL:\n"
            f"\tTemperature{{mValue={t - 8:.1f}, mType=2, mName=battery, mStatus=0}}\n"
            f"\tTemperature{{mValue={t:.1f}, mType=0, mName=cpu-1-0, mStatus={status}}}\n"
            f"\tTemperature{{mValue={t - 6:.1f}, mType=3, mName=skin, mStatus=0}}\n"
            "Current cooling devices from HAL:\n")


def _logcat(phone: Phone, args: list[str]) -> Result:
    if "-c" in args:
        phone.logcat_file.write_text("")
        return Result()
    text = phone.logcat_file.read_text() if phone.logcat_file.exists() else ""
    if "-s" in args:
        tags = [a.split(":")[0] for a in args[args.index("-s") + 1:]]
        text = "".join(l for l in text.splitlines(keepends=True) if any(f" {t}:" in l for t in tags))
    return Result(out="--------- beginning of main\n" + text)


class Session:
    """What one shell command runs under.  ``kill`` is set by toybox ``timeout`` when its time is up;
    ``hangup`` when the adb connection closed.  A hangup does not stop a runner on a real phone (adbd
    closes its pipes: a silent runner keeps going, a printing one dies of SIGPIPE at its next write);
    ``emit(kind, bytes)`` streams output as it is printed (shell protocol v2), when the caller can."""

    def __init__(self, hangup: threading.Event, emit=None) -> None:
        self.kill = threading.Event()
        self.hangup = hangup
        self.emit = emit
        self.env: dict[str, str] = {}  # VAR=value assignments before the command, as sh exports them to it

    def under_timeout(self, kill: threading.Event) -> "Session":
        inner = Session(self.hangup, self.emit)
        inner.kill = kill
        inner.env = dict(self.env)
        return inner


def _chatty(phone: Phone, session: Session) -> Result:
    """A runner stuck printing the same log line, as a runner caught in a retry loop does."""
    line = b"E 00:00:00.000001 executorch:method.cpp:1170] Retrying: backend returned Error::Internal\n" * 64
    while not session.kill.wait(0.002):
        if session.hangup.is_set():
            return Result(141)  # SIGPIPE: nobody reads its output any more
        if session.emit is not None:
            session.emit(1, line)
    return Result(137)


class _Plain:
    """A binary as a plain child process (the interface of :class:`zygote.Invocation`)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "harness.sim.fake_runners", name, *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.returncode = None

    def poll(self, wait_s: float) -> int | None:
        try:
            self.returncode = self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            pass
        return self.returncode

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)

    def output(self) -> tuple[str, str]:
        return self.proc.communicate()


def _benchmark(phone: Phone, name: str, args: list[str], session: Session) -> Result:
    faults = phone.faults
    if faults.crash_runner:
        return Result(139, err="Segmentation fault\n")
    mapped = [str(phone.path(a)) if a.startswith("/data/") else a for a in args]
    with phone.lock:
        phone.busy += 1
    try:
        if faults.hang_runner:
            session.kill.wait()  # only a signal ends it; a closed connection does not
            return Result(137)
        if faults.chatty_runner:
            return _chatty(phone, session)
        env = {**os.environ, "HARNESS_SIM_VERSION": phone.versions.get(name, DEFAULT_VERSIONS[name]),
               "HARNESS_SIM_ROOT": str(phone.root), "HARNESS_SIM_SOC": PROPS.get("ro.soc.model", ""),
               # The phone's own environment for the binary, kept apart from the host process's.
               **{f"HARNESS_SIM_ENV_{k}": v for k, v in session.env.items()}}
        if phone.silicon_ms is not None:
            env["HARNESS_SIM_SILICON_MS"] = str(phone.silicon_ms)
        try:
            proc = zygote.Invocation(name, mapped, env)
        except zygote.ForkServerError:  # the simulator's shortcut failed: a plain process, as before it
            proc = _Plain(name, mapped, env)
        while proc.poll(0.05) is None:
            if session.kill.is_set():
                proc.kill()
                proc.poll(30.0)
                proc.output()
                return Result(137)
        out, err = proc.output()
    finally:
        with phone.lock:
            phone.busy -= 1
    sandbox = str(phone.root.resolve())
    out, err = out.replace(sandbox, ""), err.replace(sandbox, "")  # paths as the phone would print them
    # ET_LOG lines go where the binary's logging backend sends them; the rest stays on stdout.
    # A log line may fall inside a line of stdout (the Whisper runner streams its transcript without newlines).
    logged = _LOGGED.findall(out)
    out = _LOGGED.sub("", out)
    if logged and phone.et_log == "logcat":
        stamp = datetime.now().strftime("%m-%d %H:%M:%S.%f")[:-3]
        with phone.logcat_file.open("a") as log:
            log.writelines(f"{stamp}  {os.getpid():5d} {os.getpid():5d} I ExecuTorch: {line}\n" for line in logged)
    elif logged and phone.et_log == "stderr":  # runtime/platform/default/posix.cpp's format
        err += "".join(f"I 00:00:{i * 0.001:09.6f} executorch:{name}.cpp:{300 + i}] {line}\n"
                       for i, line in enumerate(logged))
    return Result(proc.returncode, out, err)


def _read_file(phone: Phone, device_path: str) -> tuple[str, str | None]:
    """(text, None) or ("", the error toybox would name)."""
    try:
        virtual = phone.sysfs(device_path)
    except OSError as exc:  # a zone whose sensor is off: the kernel answers the read with an error
        return "", exc.strerror or str(exc)
    if virtual is not None:
        return virtual, None
    if phone.path(device_path).is_file():
        return phone.path(device_path).read_text(errors="replace"), None
    return "", "No such file or directory"


def _grep(phone: Phone, args: list[str]) -> Result:
    """toybox ``grep [-sH] PATTERN FILE...``: matching lines, each prefixed ``FILE:`` with -H (or more than one
    file); -s hushes unreadable files; exit 0 when a line matched, 1 when none did, 2 on an error without -s."""
    import re

    flags = set()
    while args and args[0].startswith("-") and len(args[0]) > 1:
        flags.update(args.pop(0)[1:])
    if not args:
        return Result(2, err="grep: Need 1 argument\n")
    pattern, files = re.compile(args[0]), args[1:]
    prefix = "H" in flags or len(files) > 1
    out, err, matched = [], [], False
    for name in files:
        text, problem = _read_file(phone, name)
        if problem:
            if "s" not in flags:
                err.append(f"grep: {name}: {problem}\n")
            continue
        for line in text.splitlines():
            if pattern.search(line):
                matched = True
                out.append(f"{name}:{line}\n" if prefix else line + "\n")
    code = 2 if err else 0 if matched else 1
    return Result(code, "".join(out), "".join(err))


def _seconds(text: str) -> float:
    """A toybox duration: a decimal number with an optional s/m/h/d suffix."""
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in scale:
        return float(text[:-1]) * scale[text[-1]]
    return float(text)


def _timeout(phone: Phone, args: list[str], session: Session) -> Result:
    """toybox ``timeout [-k DURATION] [-s SIGNAL] DURATION COMMAND...`` (toys/other/timeout.c): the command is
    signalled when DURATION passes; exit 124 when that ended it (137 when the signal was KILL), 125 on bad usage."""
    options, i = {}, 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] in ("-k", "-s") and i + 1 < len(args):
            options[args[i]] = args[i + 1]
            i += 2
        elif args[i] in ("-v", "--foreground", "--preserve-status"):
            i += 1
        else:
            return Result(125, err=f"timeout: Unknown option '{args[i]}'\n")
    if len(args) - i < 2:
        return Result(125, err="timeout: Need 2 arguments\n")
    try:
        duration_s = _seconds(args[i])
    except ValueError:
        return Result(125, err=f"timeout: bad duration '{args[i]}'\n")
    kill, done, fired = threading.Event(), threading.Event(), threading.Event()

    def watch() -> None:
        if not done.wait(duration_s):
            fired.set()
            kill.set()  # every simulated runner dies of TERM, so -k never has to follow up

    threading.Thread(target=watch, daemon=True).start()
    try:
        result = run_one(phone, args[i + 1:], session.under_timeout(kill))
    finally:
        done.set()
    if fired.is_set():
        return Result(137 if options.get("-s", "TERM").upper() in ("KILL", "9") else 124, result.out, result.err)
    return result


def run_one(phone: Phone, argv: list[str], session: Session) -> Result:
    env_free = [a for a in argv]
    while env_free and "=" in env_free[0] and not env_free[0].startswith("/"):
        key, value = env_free.pop(0).split("=", 1)  # VAR=value prefixes (LD_LIBRARY_PATH=...): the command's env
        session.env[key] = value
    if not env_free:
        return Result()
    cmd, args = env_free[0], env_free[1:]
    base = cmd.rsplit("/", 1)[-1]
    try:
        if base == "getprop":
            if args:
                return Result(out=PROPS.get(args[0], "") + "\n")
            return Result(out="".join(f"[{k}]: [{v}]\n" for k, v in PROPS.items()))
        if base == "echo":
            return Result(out=" ".join(args) + "\n")
        if base == "timeout":
            return _timeout(phone, args, session)
        if base == "true":
            return Result()
        if base == "mkdir":
            if phone.faults.storage_full:
                return Result(1, err="mkdir: No space left on device\n")
            for a in args:
                if not a.startswith("-"):
                    phone.path(a).mkdir(parents=True, exist_ok=True)
            return Result()
        if base == "rm":
            for a in args:
                if not a.startswith("-") and phone.path(a).is_file():
                    phone.path(a).unlink()
            return Result()
        if base == "cat":  # toybox: a file it cannot read is reported on stderr and skipped; exit 1 at the end
            out, err = [], []
            for a in args:
                text, problem = _read_file(phone, a)
                if problem:
                    err.append(f"cat: {a}: {problem}\n")
                else:
                    out.append(text)
            return Result(1 if err else 0, "".join(out), "".join(err))
        if base == "grep":
            return _grep(phone, args)
        if base == "ls":
            target = args[-1] if args else "/"
            listing = phone.list_sysfs(target)
            if listing is None:
                p = phone.path(target)
                if not p.exists():
                    return Result(1, err=f"ls: {target}: No such file or directory\n")
                listing = sorted(x.name for x in p.iterdir()) if p.is_dir() else [target]
            return Result(out="".join(f"{x}\n" for x in listing))
        if base == "sha256sum":
            lines = []
            for a in args:
                p = phone.path(a)
                if not p.is_file():
                    return Result(1, "".join(lines), f"sha256sum: {a}: No such file or directory\n")
                lines.append(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {a}\n")
            return Result(out="".join(lines))
        if base == "chmod":
            return Result()
        if base == "cp":
            src, dst = phone.path(args[-2]), phone.path(args[-1])
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
            return Result()
        if base == "logcat":
            return _logcat(phone, args)
        if base == "dumpsys" and args[:1] == ["battery"]:
            return Result(out=_battery(phone))
        if base == "dumpsys" and args[:1] == ["thermalservice"]:
            return Result(out=_thermalservice(phone))
        if base in BENCHMARKS:
            if not phone.path(cmd).is_file():
                return Result(127, err=f"/system/bin/sh: {cmd}: not found\n")
            return _benchmark(phone, base, args, session)
    except PermissionError as exc:
        return Result(1, err=f"{cmd}: {exc}: Permission denied\n")
    return Result(127, err=f"/system/bin/sh: {cmd}: inaccessible or not found\n")


def run(phone: Phone, command: str, hangup: threading.Event, emit=None) -> Result:
    """A command line: simple commands joined by ';' or '&&' (what adb and the harness send).  ``hangup`` is
    set when the connection closes; ``emit(kind, data)`` streams a runner's output as it is printed."""
    session = Session(hangup, emit)
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    tokens = list(lexer)
    result, out, err, current, op = Result(), [], [], [], ";"
    for token in tokens + [";"]:
        if token in (";", "&&"):
            if current and (op == ";" or result.code == 0):
                result = run_one(phone, current, session)
                out.append(result.out)
                err.append(result.err)
            current, op = [], token
        else:
            current.append(token)
    return Result(result.code, "".join(out), "".join(err))
