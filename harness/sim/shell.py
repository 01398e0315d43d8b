"""The simulated phone's shell: the few commands the harness (and adb) send, over the sandbox."""

from __future__ import annotations

import hashlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

from harness.sim.fake_runners import LOGCAT
from harness.sim.phone import PROPS, Phone

BENCHMARKS = ("executor_runner", "qnn_executor_runner", "onnxruntime_perf_test", "llama_main", "whisper_runner")


class Result:
    def __init__(self, code: int = 0, out: str = "", err: str = "") -> None:
        self.code, self.out, self.err = code, out, err


def _battery(phone: Phone) -> str:
    return ("Current Battery Service state:\n  AC powered: false\n  USB powered: true\n  status: 2\n"
            f"  level: 87\n  scale: 100\n  voltage: 4123\n  temperature: {int((phone.heat() - 8) * 10)}\n")


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


def _benchmark(phone: Phone, name: str, args: list[str], cancel: threading.Event) -> Result:
    faults = phone.faults
    if faults.crash_runner:
        return Result(139, err="Segmentation fault\n")
    mapped = [str(phone.path(a)) if a.startswith("/data/") else a for a in args]
    with phone.lock:
        phone.busy += 1
    try:
        if faults.hang_runner:
            cancel.wait()
            return Result(137)
        proc = subprocess.Popen([sys.executable, "-m", "harness.sim.fake_runners", name, *mapped],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        while proc.poll() is None:
            if cancel.wait(0.05):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return Result(137)
        out, err = proc.communicate()
    finally:
        with phone.lock:
            phone.busy -= 1
    sandbox = str(phone.root.resolve())
    out, err = out.replace(sandbox, ""), err.replace(sandbox, "")  # paths as the phone would print them
    # ET_LOG lines go to logcat under the tag ExecuTorch, as on a real phone; the rest stays on stdout.
    logged = [line[len(LOGCAT):] for line in out.splitlines() if line.startswith(LOGCAT)]
    if logged:
        stamp = datetime.now().strftime("%m-%d %H:%M:%S.%f")[:-3]
        with phone.logcat_file.open("a") as log:
            log.writelines(f"{stamp}  {os.getpid():5d} {os.getpid():5d} I ExecuTorch: {line}\n" for line in logged)
        out = "".join(line + "\n" for line in out.splitlines() if not line.startswith(LOGCAT))
    return Result(proc.returncode, out, err)


def run_one(phone: Phone, argv: list[str], cancel: threading.Event) -> Result:
    env_free = [a for a in argv]
    while env_free and "=" in env_free[0] and not env_free[0].startswith("/"):
        env_free.pop(0)  # VAR=value prefixes (LD_LIBRARY_PATH=...) are accepted and ignored
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
        if base == "cat":
            out = []
            for a in args:
                virtual = phone.sysfs(a)
                if virtual is not None:
                    out.append(virtual)
                elif phone.path(a).is_file():
                    out.append(phone.path(a).read_text(errors="replace"))
                else:
                    return Result(1, "".join(out), f"cat: {a}: No such file or directory\n")
            return Result(out="".join(out))
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
            return _benchmark(phone, base, args, cancel)
    except PermissionError as exc:
        return Result(1, err=f"{cmd}: {exc}: Permission denied\n")
    return Result(127, err=f"/system/bin/sh: {cmd}: inaccessible or not found\n")


def run(phone: Phone, command: str, cancel: threading.Event) -> Result:
    """A command line: simple commands joined by ';' or '&&' (what adb and the harness send)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    tokens = list(lexer)
    result, out, err, current, op = Result(), [], [], [], ";"
    for token in tokens + [";"]:
        if token in (";", "&&"):
            if current and (op == ";" or result.code == 0):
                result = run_one(phone, current, cancel)
                out.append(result.out)
                err.append(result.err)
            current, op = [], token
        else:
            current.append(token)
    return Result(result.code, "".join(out), "".join(err))
