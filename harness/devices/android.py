"""Android phones over adb, through the adb server (harness.devices.adb_server speaks its protocol).

Commands are built from quoted arguments (``shlex.join``), each under toybox ``timeout`` on the
phone and a wall-clock deadline on the controller (:mod:`harness.devices.adb_streams`); pushes
are content-addressed under /data/local/tmp/harness/<sha256>/ and skipped when the
phone already holds the same bytes (checked on the phone with ``sha256sum``).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field, Strict, ValidationInfo, field_validator

from harness.devices.adb_server import AdbError, AdbServer, NoAdbServer
from harness.devices.adb_streams import SyncRefused, shell_v2, sync_send
from harness.devices.base import TAKEN_OVER, BaseDevice, CommandResult, DeviceConfig, DeviceFacts, ThermalSample
from harness.devices.peak_memory import TIME_V, reports_peak, split_time_report
from harness.errors import DeviceError
from harness.validation import Port
from harness.yamlconf import LocalPath, StrictModel
from harness.vocab import Backend
from harness.thermal import energy, sysfs
from harness.words import counted

REMOTE_ROOT = "/data/local/tmp/harness"
WORK_ROOT = f"{REMOTE_ROOT}/work"  # one working folder per controller (Device.workdir)
# In each working folder the harness makes: the phone's time (epoch seconds) until which its controller may
# still use it.  Every command stamps it: its own time limit plus IDLE_WORK_S, longer than a live controller
# goes between two commands (pushes, cool-downs and thermal sampling included).  Past it, the folder belongs to
# a run that was killed, and the next controller to open the phone removes it; a folder without the marker is
# never touched.
WORK_MARKER = ".harness-work"
# In each folder the harness pushes into under REMOTE_ROOT (a file's <sha256>, ort-libs-*, qnn-*): make_room
# removes a folder only when it holds this file, so nothing the harness did not put there is ever deleted.
PUSHED_MARKER = ".harness-pushed"
IDLE_WORK_S = 6 * 3600
# One controller measures a phone at a time: two at once read each other's runner lines from the phone's one
# logcat, and contend for its CPU and NPU.  Opening a phone for a run makes this folder (mkdir: atomic, so only one
# of two controllers gets it) with the holder's token, a line naming it, and the phone's time until which it holds
# the lock; every command moves that time on (its own limit plus LOCK_IDLE_S, longer than a live controller goes
# between two commands: a cool-down polls, a push begins with a sha256sum), so the lock of a killed controller
# expires within LOCK_IDLE_S of its last command and the next one takes it over.
LOCK = f"{REMOTE_ROOT}/lock"
LOCK_IDLE_S = 30 * 60
LOCK_LOST = f"harness: {TAKEN_OVER}"
RELEASED_SINCE = "'and has released it since'"  # said for the holder when the taker has released the lock already
LOCK_LOST_EXIT = 75  # a command refused on the phone because its controller no longer holds the lock
# `getprop` with no name lists every property, sorted, one "[name]: [value]" line each (landley/toybox
# toys/android/getprop.c at commit 10284119, `printf("[%s]: [%s]\n", ...)`; Android's older toolbox getprop.c
# printed the same): one adb round trip for all the facts instead of one per property.
# A value holding a newline continues on lines of no such shape, which are skipped (no fact property has one).
_PROP_LINE = re.compile(r"^\[([^\]]+)\]: \[(.*)\]$")


def parse_getprop_listing(text: str) -> dict[str, str]:
    """``getprop``'s listing as {name: value}."""
    return {m.group(1): m.group(2) for m in map(_PROP_LINE.match, text.splitlines()) if m}


FACT_PROPS = {"model": "ro.product.model", "manufacturer": "ro.product.manufacturer",
              "soc_manufacturer": "ro.soc.manufacturer", "soc": "ro.soc.model",
              "android": "ro.build.version.release", "sdk": "ro.build.version.sdk", "abi": "ro.product.cpu.abi",
              "simulated": "ro.boot.harness.simulated"}


FOLDER_TOOLS = frozenset({"qnn_sdk", "onnxruntime_libs"})  # the tools: keys that name a folder; the rest name files


class Tools(StrictModel):
    """What the harness pushes to a phone, as local paths (docs/android.md: "What to build and bring for a real phone");
    a misspelt name is an unknown key, not a tool the cell later misses."""

    executor_runner: LocalPath | None = Field(None, description="ExecuTorch's executor_runner binary for "
                                                                "Android (a local file), for .pte builds.")
    qnn_executor_runner: LocalPath | None = Field(None, description="ExecuTorch's qnn_executor_runner binary (a "
                                                                    "local file), for QNN .pte builds.")
    onnxruntime_perf_test: LocalPath | None = Field(None, description="ONNX Runtime's onnxruntime_perf_test "
                                                                      "binary (a local file), for .onnx builds.")
    llama_main: LocalPath | None = Field(None, description="ExecuTorch's llama_main binary (a local file), for "
                                                           "LLM builds.")
    whisper_runner: LocalPath | None = Field(None, description="ExecuTorch's Whisper runner binary (a local file), "
                                                               "for bundled ASR builds.")
    qnn_sdk: LocalPath | None = Field(None, description="The QNN SDK root, a local folder (lib/aarch64-android, "
                                                        "lib/hexagon-vNN).")
    qnn_executorch_backend: LocalPath | None = Field(None, description="libqnn_executorch_backend.so (a local "
                                                                       "file).")
    onnxruntime_libs: LocalPath | None = Field(None, description="A local folder of ONNX Runtime's .so files (a "
                                                                 "--build_shared_lib build).")

    @field_validator("*")
    @classmethod
    def _existing(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        """Checked when the inventory is read: a path that is not there would otherwise fail a cell every night."""
        if path is None:
            return None
        path = path.expanduser()
        if info.field_name in FOLDER_TOOLS:
            if not path.is_dir():
                raise ValueError(f"{path} is {'not a folder' if path.exists() else 'not there'}; "
                                 "give the path of a folder on this machine")
        elif not path.is_file():
            raise ValueError(f"{path} is {'not a regular file' if path.exists() else 'not there'}; "
                             "give the path of the binary or library on this machine")
        elif path.stat().st_size == 0:  # a failed copy or build: pushed, it would fail every cell far from here
            raise ValueError(f"{path} is empty (0 bytes); give the path of the built binary or library "
                             "(a copy or build that failed leaves an empty file)")
        return path

    def get(self, name: str) -> Path | None:
        """The local path of tool ``name``, None when the inventory names none."""
        return getattr(self, name)


class Config(DeviceConfig):
    """An Android entry: ``serial`` from `adb devices`, and the benchmark binaries to push."""

    serial: str = Field(min_length=1, description="The phone's serial from `adb devices`; \"*\": every "
                                                  "phone attached now.")
    adb_port: Port = Field(5037, description="The adb server's TCP port (a private one for the simulated phone).")
    backends: list[Backend] = Field(["xnnpack", "ort-cpu"], description="The runtimes this phone can run builds "
                                                                        "with.")
    tools: Tools = Field(Tools(), description="The benchmark binaries and libraries to push, as local paths.")
    # Past the limit, opening the phone removes the least recently used, never one the plan being run needs.
    pushed_max_mb: Annotated[int, Strict(), Field(ge=1)] = Field(
        8192, description="The most the builds, tools and audio the harness pushed may take on the phone (MB).")

    def expand(self) -> list["Config"]:
        """``serial: '*'`` stands for every phone attached now, one device each (id: entry id + serial)."""
        if self.serial != "*":
            return [self]
        from harness.errors import UserError

        try:
            serials, offline = _serials_once_online(self.adb_port)
        except NoAdbServer as exc:
            raise UserError(f"device {self.id}: device unreachable: {exc}.",
                            fix=f"start the phones' adb server on port {self.adb_port}, or correct adb_port in the "
                                "inventory.") from None
        except (AdbError, OSError) as exc:  # a server that accepted and then did not answer (or answered nonsense)
            raise UserError(f"device {self.id}: the adb server on 127.0.0.1:{self.adb_port} did not answer "
                            f"'adb devices' ({exc or type(exc).__name__}).",
                            fix=f"restart it: adb -P {self.adb_port} kill-server; adb -P {self.adb_port} start-server"
                            ) from None
        if not serials and offline:  # reconnecting for longer than the grace: not bad input, but nothing to measure
            raise UserError(f"device {self.id} has serial '*' but adb lists {counted(offline, 'phone')} offline and "
                            f"none online (waited {OFFLINE_GRACE_S:g} s).",
                            fix="check the phone ('adb devices' lists it as 'device' once it is back), then run "
                                "again; or name its serial, whose cells are then stored as lost for --resume.")
        if not serials:
            raise UserError(f"device {self.id} has serial '*' but adb sees no phone online.",
                            fix="connect a phone (check 'adb devices'), or name its serial.")
        safe = lambda s: "".join(c if c.isalnum() or c in "._-" else "-" for c in s)  # noqa: E731
        return [self.model_copy(update={"id": f"{self.id}-{safe(s)}", "serial": s}) for s in serials]


# The longest an adb server may stay silent in the middle of a request before the harness gives up on it.
ADB_IDLE_TIMEOUT_S = 15.0
# A push writes into the server's buffers; the same idle limit, with room for a slow USB link.
PUSH_IDLE_TIMEOUT_S = 60.0
# How long a phone adb lists as "offline" is waited for before its cells are stored as lost.  adb keeps a phone
# whose connection dropped as "offline" while it reconnects (Debian's adb 29.0.6 on a TCP phone: "already connected"
# and "device offline" for about 0.3 s on a quiet machine, longer on a busy one); a phone re-enumerating on USB or
# finishing its boot is "offline" for a few seconds.  The server's answer is FAIL "device offline"
# (acquire_one_transport in AOSP packages/modules/adb/transport.cpp).
OFFLINE_GRACE_S = 10.0


def attached_states(adb_port: int = 5037) -> dict[str, str]:
    """Every phone the adb server on ``adb_port`` lists, serial -> state ('device' when online)."""
    return adb_client(adb_port).states()


def _serials_once_online(adb_port: int) -> tuple[list[str], int]:
    """The serials adb lists online, and how many it listed offline; once it lists some offline and none online
    (reconnecting, as at the start of a run on a named serial), asked again for OFFLINE_GRACE_S at most (a phone
    adb drops from its list for a moment between two attempts to reconnect is still waited for)."""
    deadline, offline = None, 0
    while True:
        states = attached_states(adb_port)  # one listing for both: online serials and how many offline
        serials = [serial for serial, state in states.items() if state == "device"]
        if serials:
            return serials, 0
        offline = sum(state == "offline" for state in states.values()) or offline
        if not offline:
            return [], 0
        deadline = deadline or time.monotonic() + OFFLINE_GRACE_S
        if time.monotonic() >= deadline:
            return [], offline
        time.sleep(0.25)


def adb_client(adb_port: int) -> AdbServer:
    """The adb server on ``adb_port``, never started by the harness (a second server would compete for the USB
    phones, and outlive the harness): the user starts it, and NoAdbServer says how.  A server that accepts and
    never answers (a wedged adb) hung `harness devices` and every run, so a request waits ADB_IDLE_TIMEOUT_S at
    most unless the caller chose its own limit (a run's deadline, a push's)."""
    return AdbServer(adb_port, ADB_IDLE_TIMEOUT_S)


def phone_command(argv: list[str], timeout_s: float, kill_after_s: float, env: dict[str, str] | None = None,
                  workdir: str | None = None, peak_memory: bool = False, lock_token: str | None = None) -> str:
    """The command line sent to the phone's shell for ``argv``: it runs in ``workdir``, and everything it
    starts dies with the run.

    - adbd starts every command in ``/`` (shell_service.cpp never changes folder), which is read-only on a
      phone; binaries write files relative to where they run (qnn_executor_runner's etdump, ``etdump.etdp`` by
      default, with an unchecked fopen: it died of SIGSEGV after printing its timings), so each command runs in
      the controller's own working folder on the phone.

    - toybox ``timeout`` sends SIGTERM at ``timeout_s`` and SIGKILL ``kill_after_s`` later, so a runner that
      hangs or prints forever is killed on the phone; ``--foreground`` keeps the runner in the shell's process
      group (toys/other/timeout.c, landley/toybox 0.8.9 and later, otherwise moves it to a group of its own).
    - adbd sends SIGHUP to the shell, and only to the shell, when the adb stream dies (the controller was
      killed, the cable pulled: adb/daemon/shell_service.cpp, PassDataStreams); without a trap the runner would
      keep measuring until its timeout.  The trap kills the shell's whole process group (adbd made the shell a
      session leader: ForkAndExec's setsid), and the runner runs in the background so the shell takes the
      signal at once (a trap waits for a foreground command; ``wait`` is interrupted).  ``wait`` gives the
      runner's exit status, and the shell exits with it.
    - ``timeout`` kills only its own child (``--foreground``; toybox before 0.8.9 kills only the child in either
      mode), and a child of that child, say a ``sleep`` a tool's ``--help`` started, would be left running on
      the phone.  So toybox ``setsid`` (built for Android: external/toybox android/device/generated/config.h,
      CFG_SETSID 1; a background job is no group leader, so it calls setsid() and execs, keeping its PID) puts the
      command and all it starts in a process group of its own, ``$!``; when it ends (done or timed out) the shell
      kills what is left of that group, and the HUP trap kills that group and its own.
    - ``peak_memory``: toybox ``time -v`` in front of ``timeout`` reports the runner's peak RSS from the kernel
      (harness/devices/peak_memory.py); it exits with ``timeout``'s own status (124, 137, the runner's).
    - ``lock_token``: the command runs only while its controller holds the phone's LOCK, and moves the lock's
      expiry on; a lock taken over (this controller was silent past its expiry) refuses it with LOCK_LOST_EXIT,
      and so does a lock taken over while the command ran (what it measured was shared with another controller).
    """
    limit = [*(TIME_V if peak_memory else []),
             "timeout", "--foreground", "-k", f"{kill_after_s:g}", f"{max(timeout_s, 0.001):.3f}"]
    # An assignment's name must stay unquoted (mksh runs a quoted 'VAR=a;b' as a command); its value is quoted.
    assignments = [f"{_shell_name(k)}={shlex.quote(v)}" for k, v in (env or {}).items()]
    runner = " ".join([*assignments, shlex.join(["setsid", *limit, *argv])])
    alive_s = int(timeout_s + kill_after_s + IDLE_WORK_S)
    enter = (f"mkdir -p {shlex.quote(workdir)} && cd {shlex.quote(workdir)} || exit 1; "
             f"echo $(($(date +%s) + {alive_s})) 2>/dev/null >{WORK_MARKER}; ") if workdir else ""
    # The group the command runs in is killed when it ends (what its children left) and on the hang-up.
    run = f"trap 'kill -9 -$! 0' HUP; {runner} & wait $!; code=$?; kill -9 -$! 2>/dev/null; "
    if not lock_token:
        return f"{enter}{run}exit $code"
    lock_alive_s = int(timeout_s + kill_after_s + LOCK_IDLE_S)
    holds = (f"[ \"$(cat {LOCK}/token 2>/dev/null)\" = {shlex.quote(lock_token)} ] || "
             f"{{ echo {shlex.quote(LOCK_LOST)} \"($(cat {LOCK}/owner 2>/dev/null || echo {RELEASED_SINCE}))\" "
             f">&2; exit {LOCK_LOST_EXIT}; }}; ")
    enter += f"{holds}echo $(($(date +%s) + {lock_alive_s})) >{LOCK}/expires; "
    # Asked again when the runner ends: one that ran while another controller took the lock over measured beside it.
    return f"{enter}{run}{holds}exit $code"


def _described(props: dict[str, str]) -> str:
    """A phone as `harness devices` shows it: "Samsung SM-S921B, Android 15, SoC SM8650"; a property the phone
    does not report is said to be missing, never guessed."""
    get = lambda name: props.get(FACT_PROPS[name], "").strip()  # noqa: E731
    model = " ".join(part for part in (get("manufacturer"), get("model")) if part) or "no model reported"
    android = f"Android {get('android')}" if get("android") else "no Android version reported"
    soc = f"SoC {get('soc')}" if get("soc") else "no SoC reported (ro.soc.model)"
    return f"{model}, {android}, {soc}"


def take_lock_script(token: str, owner: str, dead_token: str = "") -> str:
    """The phone-side script that takes LOCK for ``token``: prints ``taken``; or ``took-over`` and the line of the
    controller whose lock it took over; or ``held``, then the lock's expiry, the phone's time and the holder's
    token, then the holder's line.  A lock is taken over when it has expired, or when its token is ``dead_token``
    (a holder known to be dead): it is renamed aside (one of two controllers wins the rename) and removed only if
    it still is that lock; a lock folder without the harness's token file is never removed."""
    lock, token, owner = shlex.quote(LOCK), shlex.quote(token), shlex.quote(owner)
    aside = shlex.quote(f"{LOCK}.expired-") + token
    return (f"now=$(date +%s); mkdir -p {REMOTE_ROOT} || exit 1; "
            f"take() {{ mkdir {lock} 2>/dev/null && echo {token} >{lock}/token && echo {owner} >{lock}/owner && "
            f"echo $((now + {LOCK_IDLE_S})) >{lock}/expires; }}; "
            "take && { echo taken; exit 0; }; "
            f"exp=$(cat {lock}/expires 2>/dev/null); old=$(cat {lock}/token 2>/dev/null); "
            # An expiry that is no number never passes: mksh's [ -lt ] reads '' or a word as 0 (expired at once).
            f"if [ -n \"$old\" ] && {{ [ \"$old\" = {shlex.quote(dead_token)} ] || "
            f"case \"$exp\" in ''|*[!0-9]*) false;; *) [ \"$exp\" -lt \"$now\" ];; esac; }}; then "
            f"was=$(cat {lock}/owner 2>/dev/null); "
            f"if mv {lock} {aside} 2>/dev/null; then "
            f"if [ \"$(cat {aside}/token 2>/dev/null)\" = \"$old\" ]; then rm -rf {aside}; "
            "take && { echo took-over; echo \"$was\"; exit 0; }; "
            f"else [ -e {lock} ] || mv {aside} {lock}; fi; fi; fi; "  # renamed a lock just taken: put it back
            # an expiry that is no number (none, or a controller killed before writing it) is told as "-"
            "case \"$exp\" in ''|*[!0-9]*) exp=-;; esac; "
            f"echo held; echo \"$exp $now ${{old:--}}\"; cat {lock}/owner 2>/dev/null; exit 0")


def _shell_name(name: str) -> str:
    if not (name.isascii() and name.replace("_", "a").isalnum() and not name[0].isdigit()):
        raise ValueError(f"not a shell variable name: {name!r}")
    return name


@dataclass(frozen=True)
class HeldLock:
    """The phone's LOCK as another controller holds it: its token, its holder's line, the time left to its expiry."""

    token: str
    holder: str
    expires_in_s: int | None  # None: the lock has no readable expiry, so it never expires


def _held_lock(answer: list[str]) -> HeldLock | None:
    """What take_lock_script answered: None when this controller took the lock, else who holds it."""
    if answer[:1] in (["taken"], ["took-over"]):
        return None
    expiry, now, token = ((answer[1:2] or [""])[0].split() + ["0", "0", "-"])[:3]
    number = lambda text: int(text) if text.lstrip("-").isdigit() else 0  # noqa: E731
    expires_in_s = max(0, number(expiry) - number(now)) if expiry.isdigit() else None
    return HeldLock("" if token == "-" else token, answer[2].strip() if len(answer) > 2 else "", expires_in_s)


_HOLDER = re.compile(r"host (\S+), pid (\d+),")
# What makes a holder's pid mean a process of this machine: a pid is a number within one PID namespace (a
# controller in a container, or under `unshare --pid`, may share the hostname and a pid with another process, or
# with none), and within one boot; the process's start time (clock ticks since boot) tells a reused pid apart.
_IDENTITY = re.compile(r"; boot (\S+), pidns (\d+), start (\d+)$")
# The lock tokens this process's open Devices hold: a lock of this process with a token not here was left by a
# Device closed while the phone did not answer (a lost cell), and the same run reopening the phone takes it back.
_HELD_HERE: set[str] = set()


def _start_ticks(pid: int | str) -> str | None:
    """A process's start time in clock ticks since boot (field 22 of /proc/PID/stat), None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the name in parentheses may hold spaces; field 3 follows it
    return fields[19] if len(fields) > 19 else None


def _own_identity() -> tuple[str, str, str] | None:
    """This process's (boot id, PID namespace inode, start ticks); None where /proc does not tell (not Linux)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = re.fullmatch(r"pid:\[(\d+)\]", os.readlink("/proc/self/ns/pid"))
    except OSError:
        return None
    start = _start_ticks("self")
    return (boot, namespace[1], start) if namespace and boot and start else None


def owner_line(device_id: str, since: str) -> str:
    """The lock's line naming its holder: host and pid for people, then what tells whether that pid is still it."""
    line = f"host {socket.gethostname()}, pid {os.getpid()}, device {device_id}, since {since}"
    identity = _own_identity()
    return line + (f"; boot {identity[0]}, pidns {identity[1]}, start {identity[2]}" if identity else "")


def shown_holder(text: str) -> str:
    """An owner line (or a message holding one) as people read it: host, pid, device and since, without the process
    identity only _holder_gone reads."""
    return re.sub(r"; boot \S+, pidns \d+, start \d+", "", text)


def _holder_gone(held: HeldLock) -> str:
    """Why the lock's holder is known to be a controller of this machine that no longer runs ("" when it may still
    run: another machine's, a line the harness did not write, another boot's or PID namespace's pid)."""
    named = _HOLDER.match(held.holder)
    if named is None or named[1] != socket.gethostname():
        return ""
    pid, theirs, ours = int(named[2]), _IDENTITY.search(held.holder), _own_identity()
    if theirs is None:
        # A machine without /proc (no PID namespaces there), or a harness from before the line named them: its pid
        # is asked as it was then (such a lock is held for LOCK_IDLE_S at most).
        return _pid_gone(pid, held)
    if ours is None or theirs.groups()[:2] != ours[:2]:
        return ""  # another boot's or PID namespace's pid: no telling from here whether it still runs
    if (pid, theirs[3]) == (os.getpid(), ours[2]):
        return "" if held.token in _HELD_HERE else _SAME_RUN
    return "" if _start_ticks(pid) == theirs[3] else f"its controller (pid {pid} on this host) is gone"


# Why this process takes back a lock it left itself (a Device closed while the phone did not answer).
_SAME_RUN = "this run's own earlier connection to it, closed while the phone was away, could not release it"


def _pid_gone(pid: int, held: HeldLock) -> str:
    if pid == os.getpid():
        return "" if held.token in _HELD_HERE else _SAME_RUN
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"its controller (pid {pid} on this host) is gone"
    except OSError:
        return ""  # alive, as another user's process
    return ""


class Device(BaseDevice):
    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._client = adb_client(config.adb_port)
        self._device = None
        self.token = uuid.uuid4().hex[:16]  # this controller's: its working folder's name, its lock's token
        # This controller's working folder on the phone (its commands run there; see phone_command).
        self.workdir = f"{WORK_ROOT}/{self.token}"
        self._locked = False  # whether it holds the phone's LOCK (prepare takes it, close releases it)
        self.busy = False  # whether another controller held the LOCK when prepare asked for it
        self._streams: set = set()  # the adb streams of commands running now (close() ends them)
        self._streams_lock = threading.Lock()
        self._closed = False
        # Why this controller lost the phone's LOCK to another ("" while it holds it or never took it): every later
        # command is refused here, never sent without the lock's check.
        self._lock_lost = ""
        self._props: dict[str, str] | None = None  # the phone's getprop listing, read once (_properties)
        # The run's stop (Ctrl-C, SIGTERM: set by the run's worker) ends every wait of this device's at once.
        self.run_stop = threading.Event()
        # Set by the run when the phone answered earlier in it: adb then no longer listing it ("not found", after
        # `adb disconnect` or a USB drop) is a phone reconnecting, waited for like one listed "offline".
        self.answered_before = False
        self.stayed_away = False  # close() waited OFFLINE_GRACE_S for the phone, and it did not come back
        self._away_until: float | None = None  # while the phone is away: the end of the wait for it (_grace_end)

    @property
    def adb(self):
        if self._device is None:
            self._device = self._client.phone(self.config.serial)
        return self._device

    def reachable(self) -> tuple[bool, str]:
        try:
            state = self._state_once_online()
        except NoAdbServer as exc:
            return False, str(exc)
        except TimeoutError:
            port = self.config.adb_port
            return False, (f"the adb server on 127.0.0.1:{port} did not answer (restart it: adb -P {port} kill-server; "
                           f"adb -P {port} start-server)")
        except (AdbError, OSError, EOFError) as exc:  # a FAIL answer, or a dropped connection: "not reachable"
            self.absent = True  # not attached now (off, rebooting, re-enumerating): --resume tries again
            return False, (f"adb cannot reach {self.config.serial} ({exc}); once it is back ('adb devices' lists it), "
                           "--resume measures its cells")
        # "offline" is a phone still coming up (or a USB link re-enumerating); "unauthorized" needs a person.
        self.absent = state == "offline"
        if state != "device":
            return False, f"state {state}"
        self.answered_before = True  # from now on, adb not listing it is a phone reconnecting
        return self._soc_agrees()

    def _state_once_online(self) -> str:
        """The phone's adb state, asked again every quarter second while adb says it is offline (or, once it answered
        in this run, does not list it), for OFFLINE_GRACE_S at most: a phone coming back is measured, not stored as
        lost a second too early.  A stopped run ends the wait at once."""
        while True:
            try:
                state = self.adb.get_state()
            except AdbError as exc:
                if not self._coming_back(exc) or time.monotonic() >= self._grace_end() or self._stopping():
                    raise
            else:
                if state != "offline":
                    self._away_until = None  # back: a later drop gets a grace of its own
                    return state
                if time.monotonic() >= self._grace_end() or self._stopping():
                    return state

    def _grace_end(self) -> float:
        """When the wait for this phone ends: OFFLINE_GRACE_S after a command (or close) first met it away, for every
        command that meets it away meanwhile, so that a phone gone for good costs one grace, not one per command."""
        if self._away_until is None:
            self._away_until = time.monotonic() + OFFLINE_GRACE_S
        return self._away_until

    def _coming_back(self, exc: AdbError) -> bool:
        """Whether adb's refusal is a phone that may be back in a moment (FAIL "device offline"; "device '...' not
        found" for one that answered earlier in this run), rather than a wrong serial or an unauthorized phone."""
        return "offline" in str(exc) or (self.answered_before and "not found" in str(exc))

    @property
    def offline_grace_s(self) -> float:
        """How long a phone that went away is waited for (the run's worker reopens it within this too)."""
        return OFFLINE_GRACE_S

    def _stopping(self, pause_s: float = 0.25) -> bool:
        """Wait ``pause_s`` unless the run stops or this device is closed; whether it did."""
        return self.run_stop.wait(pause_s) or self._closed

    def prepare(self) -> tuple[bool, str]:
        """Take the phone's LOCK, then take back the working folders of runs that were killed (their controllers
        could not): each one the harness made (WORK_MARKER) whose stamp has passed; a live controller's folder,
        this one's or another's on the same phone, is stamped ahead by its every command.

        A phone another controller holds is not waited for: its cells are stored as lost at once, with a line
        naming the holder (``--resume`` measures them once it is free).  A wait would have to guess how long the
        other run lasts (a night's plan takes hours), and would hide that two plans were scheduled on one phone."""
        taken, why = self._take_lock()
        if not taken:
            return False, why
        script = (f"now=$(date +%s); n=0; for d in {WORK_ROOT}/*/; do m=\"$d{WORK_MARKER}\"; "
                  f"if [ -f \"$m\" ] && [ \"$(cat \"$m\")\" -lt \"$now\" ] 2>/dev/null && rm -rf \"$d\"; "
                  "then n=$((n+1)); fi; done; echo $n")
        removed = self._check(["sh", "-c", script], 120).strip()
        if removed.isdigit() and int(removed):
            self.notes.append(f"removed {counted(int(removed), 'working folder')} of killed runs from {WORK_ROOT}")
        return True, "ready"

    def _take_lock(self) -> tuple[bool, str]:
        """Take the phone's LOCK; when it is held by a controller of this machine that is no longer running (a
        run killed a minute ago, then resumed), take it over at once rather than after its expiry."""
        owner = owner_line(self.id, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        answer = self._check(["sh", "-c", take_lock_script(self.token, owner)]).splitlines()
        held = _held_lock(answer)
        why_taken = (f"its lock's expiry had passed (no command from its controller for {LOCK_IDLE_S // 60} min, "
                     "or the phone's clock jumped)")
        gone = _holder_gone(held) if held is not None else ""
        if gone:
            answer = self._check(["sh", "-c", take_lock_script(self.token, owner, held.token)]).splitlines()
            held, why_taken = _held_lock(answer), gone
        if held is None:
            self._locked = True
            _HELD_HERE.add(self.token)
            if answer[0] == "took-over":
                was = shown_holder(answer[1]) if len(answer) > 1 else "an unnamed controller"
                self.notes.append(f"took over {LOCK} from {was}: {why_taken}")
            return True, "locked"
        self.absent = True  # busy now, not misconfigured: its cells are lost, for --resume
        self.busy = True  # reachable, and held: its cells say so, not "unreachable"
        holder = shown_holder(held.holder) or (f"unnamed: {LOCK} has no owner line; if no controller is running, "
                                               "remove that folder by hand")
        if held.expires_in_s is None:  # never taken over: only a person can tell that no controller uses it
            return False, (f"held by another controller ({holder}); its lock {LOCK} has no readable expiry (an empty "
                           "folder, or a controller killed while taking it), so it never expires and is not taken "
                           f"over. Fix: once no controller runs on {self.config.serial}, remove it by hand: "
                           f"adb -s {shlex.quote(self.config.serial)} shell rm -r {LOCK}; --resume measures these "
                           "cells then")
        return False, (f"held by another controller ({holder}), which is measuring {self.config.serial}; its lock "
                       f"{LOCK} expires in {held.expires_in_s // 60} min unless it keeps working. Wait for that run "
                       "to end, or run the plans one after another; --resume measures these cells then")

    KILL_AFTER_S = 5  # toybox timeout's -k: SIGKILL this long after its SIGTERM
    # The controller's own deadline, past the phone's: a phone that stops answering altogether.
    CONTROLLER_GRACE_S = 15
    OUTPUT_CAP_BYTES = 16 * 2**20  # per stream; a runner that floods its output keeps its head and tail

    def run(self, argv: list[str], timeout_s: float, env: dict[str, str] | None = None) -> CommandResult:
        if self._closed:  # a sampler's last reading after close() must not make the working folder again
            raise DeviceError(self.id, argv, "the controller closed its connection to the device", lost=True)
        if self._lock_lost:
            raise DeviceError(self.id, argv, self._lock_lost, lost=True)
        peak_memory = self._reports_peak() if argv[:3] != TIME_V else False
        command = phone_command(argv, timeout_s, self.KILL_AFTER_S, env, self.workdir, peak_memory,
                                self.token if self._locked else None)
        self._worked = True
        started = time.perf_counter()
        try:
            connection = self._transport_once_back(timeout_s + self.CONTROLLER_GRACE_S)
            with self._streams_lock:
                self._streams.add(connection)
            try:
                outcome = shell_v2(connection, command, timeout_s + self.KILL_AFTER_S + self.CONTROLLER_GRACE_S,
                                   self.OUTPUT_CAP_BYTES)
            finally:
                with self._streams_lock:
                    self._streams.discard(connection)
        except NoAdbServer as exc:
            raise DeviceError(self.id, argv, f"device unreachable: {exc}", lost=True) from None
        except (AdbError, OSError, ConnectionError, EOFError) as exc:
            # Ended by lose_lock (another command of this run found the lock taken over), or the phone went away.
            raise DeviceError(self.id, argv, self._lock_lost or f"adb lost the device ({exc})", lost=True) from None
        duration_s = time.perf_counter() - started
        self.outputs_cut += outcome.output_cut
        if self._locked and outcome.exit_code == LOCK_LOST_EXIT and LOCK_LOST in outcome.stderr:
            self._lose_lock(shown_holder(outcome.stderr.strip().splitlines()[-1].removeprefix("harness: ")))
        if self._lock_lost:  # found by another command while this one ran: what it measured was shared
            raise DeviceError(self.id, argv, self._lock_lost, lost=True)
        # toybox timeout exits 124 when its SIGTERM ended the command, 137 when SIGKILL had to (toys/other/timeout.c).
        timed_out = outcome.deadline_passed or (outcome.exit_code in (124, 137) and duration_s >= timeout_s)
        stderr, peak_rss_mb = split_time_report(outcome.stderr) if peak_memory else (outcome.stderr, None)
        return CommandResult(argv, None if timed_out else outcome.exit_code, outcome.stdout, stderr,
                             duration_s, timed_out=timed_out, peak_rss_mb=peak_rss_mb)

    def _transport_once_back(self, timeout_s: float):
        """A connection to the phone's adbd for one command or push; a phone adb lists offline, or no longer lists
        after it answered (dropped for a moment between two commands), is waited for first (OFFLINE_GRACE_S): the
        command has not started, so nothing is run twice."""
        try:
            connection = self.adb.open_transport(timeout=timeout_s)
        except AdbError as exc:
            if not self._coming_back(exc):
                raise
        else:
            self._away_until = None  # it answers: a later drop gets a grace of its own
            return connection
        self._state_once_online()  # raises adb's refusal when the phone stays away
        return self.adb.open_transport(timeout=timeout_s)

    def _lose_lock(self, why: str) -> None:
        """Another controller took the phone's LOCK over: refuse every later command of this one, and end those
        running now (the cell being measured shares the phone with the other controller: it is lost, for --resume)."""
        self._lock_lost = self._lock_lost or why
        self._locked = False
        _HELD_HERE.discard(self.token)
        self._end_running_commands()

    def _end_running_commands(self) -> None:
        """Close the adb stream of every command running now: adbd sends its shell SIGHUP, whose trap kills it."""
        with self._streams_lock:
            running = list(self._streams)
        for connection in running:
            try:
                connection.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its own command

    PROBE_TIMEOUT_S = 5.0

    def answers(self) -> bool:
        """Whether the phone still runs one cheap command within PROBE_TIMEOUT_S: a runner killed as the phone went
        away (its adbd stopping, the phone shutting down) is the phone's loss, not a crash of the build."""
        try:
            outcome = shell_v2(self.adb.open_transport(timeout=self.PROBE_TIMEOUT_S), "echo up", self.PROBE_TIMEOUT_S,
                               4096)
        except Exception:  # noqa: BLE001 - whatever adb says, the phone did not answer
            return False
        return outcome.exit_code == 0 and outcome.stdout.strip() == "up"

    def _reports_peak(self) -> bool:
        """Whether this phone's toybox reports a command's peak memory (asked once): a phone without ``time -v``
        runs its commands as before, and its cells have no peak memory."""
        if not hasattr(self, "_peak_reported"):
            self._peak_reported = False  # the question itself runs without the wrapper
            self._peak_reported = reports_peak(self.run([*TIME_V, "true"], 10).stderr)
        return self._peak_reported

    def _check(self, argv: list[str], timeout_s: float = 30) -> str:
        result = self.run(argv, timeout_s)
        if not result.ok:
            raise DeviceError(self.id, argv, "command failed", result.exit_code, result.log())
        return result.stdout

    def _soc_agrees(self) -> tuple[bool, str]:
        """The inventory's ``soc`` against the one the phone reports (``ro.soc.model``): QNN libraries are chosen
        by it, and a wrong one failed every QNN cell with a loader error far from its cause.  Left out, the
        phone's own is taken."""
        props = self._properties()
        reported = props.get(FACT_PROPS["soc"], "").strip()
        if reported and self.config.soc is None:
            self.config = self.config.model_copy(update={"soc": reported})
        elif reported and self.config.soc.upper() != reported.upper():
            return False, (f"the inventory says soc {self.config.soc}, and the phone reports {reported} "
                           f"(ro.soc.model): set soc: {reported} in its entry, or leave soc out")
        return True, _described(props)

    def _properties(self) -> dict[str, str]:
        """The phone's system properties from one `getprop` listing, read once per opening: reachable() and
        facts() read the same listing (they do not change while the phone is measured)."""
        if self._props is None:
            self._props = parse_getprop_listing(self._check(["getprop"]))
        return self._props

    def facts(self) -> DeviceFacts:
        props = self._properties()
        facts = {name: props.get(prop, "").strip() for name, prop in FACT_PROPS.items()}
        battery = self._check(["dumpsys", "battery"])
        for line in battery.splitlines():
            key, _, value = line.strip().partition(": ")
            if key in ("level", "status", "USB powered", "AC powered"):
                facts[f"battery_{key.lower().replace(' ', '_')}"] = value
        simulated = facts.pop("simulated") == "1"
        return DeviceFacts(device_id=self.id, platform="android", simulated=simulated,
                           facts={k: v for k, v in facts.items() if v})

    def make_room(self, needed: set[str]) -> None:
        """Keep what the harness pushed within ``pushed_max_mb``: each folder under REMOTE_ROOT that holds
        PUSHED_MARKER (a file's <sha256>, and the library folders ort-libs-* and qnn-* copied from such files).
        Remove the least recently used first (a folder's mtime: every use touches it), never one named in
        ``needed`` (the sha256 of every build the plan measures, and the library folders its device uses)."""
        listing = self._check(["sh", "-c", f"cd {REMOTE_ROOT} 2>/dev/null || exit 0; for d in */; do "
                                           f'n=${{d%/}}; [ -f "$n/{PUSHED_MARKER}" ] || continue; '
                                           'echo "$(stat -c %Y "$n") $(du -sk "$n")"; done'], 120)
        folders = sorted((int(f[0]), int(f[1]), f[2]) for f in (line.split() for line in listing.splitlines())
                         if len(f) == 3 and f[0].isdigit() and f[1].isdigit())
        over_kb = sum(kb for _, kb, _ in folders) - self.config.pushed_max_mb * 1024
        removed = []
        for _, kb, name in folders:  # oldest use first
            if over_kb <= 0:
                break
            if name not in needed:
                self._check(["rm", "-rf", f"{REMOTE_ROOT}/{name}"], 120)
                removed.append(name)
                over_kb -= kb
        if removed:
            self.notes.append(f"removed {counted(len(removed), 'pushed folder')} used least recently, to keep "
                              f"{REMOTE_ROOT} within pushed_max_mb ({self.config.pushed_max_mb} MB)")

    def pushed_folder(self, folder: str) -> None:
        """Make ``folder`` (under REMOTE_ROOT) as one the harness pushes into: marked as the harness's (make_room
        may remove it) and touched as just used."""
        self._check(["sh", "-c", f"mkdir -p {shlex.quote(folder)} && "
                                 f"touch {shlex.quote(f'{folder}/{PUSHED_MARKER}')} {shlex.quote(folder)}"])

    def push(self, local: Path, sha256: str) -> str:
        remote = f"{REMOTE_ROOT}/{sha256}/{local.name}"
        # The folder's mtime says when it was last used (make_room removes the least recently used first).
        # The marker first, so that a push cut short leaves a folder make_room may remove.
        folder = shlex.quote(f"{REMOTE_ROOT}/{sha256}")
        have = self.run(["sh", "-c", f"mkdir -p {folder} && touch {folder}/{PUSHED_MARKER} {folder} && "
                                     f"sha256sum {shlex.quote(remote)}"], 60)
        if have.ok and have.stdout.split()[:1] == [sha256]:
            self.pushes.append({"path": remote, "bytes": 0, "seconds": 0.0, "skipped": True})
            return remote
        started = time.perf_counter()
        try:
            self._sync_send(local, remote)
        except SyncRefused as exc:
            raise DeviceError(self.id, ["push", str(local), remote], f"push refused ({exc})") from None
        except Exception as exc:  # noqa: BLE001 - a dropped connection surfaces as several error types
            raise DeviceError(self.id, ["push", str(local), remote], f"push failed ({exc})", lost=True) from None
        # No second checksum: the sync protocol answers FAIL itself (full storage, bad path), and the
        # next run's sha256sum check re-pushes anything that did not arrive whole.
        seconds = time.perf_counter() - started
        self.pushes.append({"path": remote, "bytes": local.stat().st_size, "seconds": seconds, "skipped": False})
        return remote

    def _sync_send(self, local: Path, remote: str) -> None:
        """adb's sync SEND with 64 KiB DATA chunks: adbutils' push (which the harness used) wrote 4 KiB chunks, which
        measured at about a third of `adb push`'s throughput (benchmarks/push_throughput.py)."""
        sync_send(self._transport_once_back(PUSH_IDLE_TIMEOUT_S), local, remote)

    # dumpsys is far heavier than a sysfs read: ask for the thermal status and battery every Nth sample.
    DUMPSYS_EVERY = 5

    def start_thermal_series(self) -> None:
        self._samples_taken = 0  # the next reading is a full one

    def sample_thermals(self) -> list[ThermalSample]:
        self._samples_taken = getattr(self, "_samples_taken", 0) + 1
        readings = self._sysfs_readings()
        if self._samples_taken % self.DUMPSYS_EVERY == 1:
            status = self.thermal_status()
            if status is not None:
                readings.append(ThermalSample(0.0, "thermalservice", "status", float(status), "level"))
            battery = self.run(["dumpsys", "battery"], 10).stdout
            for line in battery.splitlines():
                key, _, value = line.strip().partition(": ")
                if key == "temperature" and value.strip().lstrip("-").isdigit():
                    # dumpsys battery reports tenths of a degree Celsius.
                    readings.append(ThermalSample(0.0, "battery", "temp", int(value) / 10, "C"))
        return readings

    def _sysfs_readings(self) -> list[ThermalSample]:
        zones = self._zones()
        paths = [f"/sys/class/thermal/{z}/{f}" for z in zones for f in ("type", "temp")]
        paths += [f"/sys/devices/system/cpu/cpufreq/{p}/scaling_cur_freq" for p in self._cpufreq_policies()]
        # Not `cat`: toybox cat skips a file it cannot read (a disabled zone, an offline CPU) and every later
        # value would land on the wrong sensor.  grep -H prints each line with its file; -s hushes the unreadable.
        # The battery's current and voltage come in the same command (energy per inference: thermal/energy.py).
        text = self.run(["grep", "-s", "-H", ".", *paths, *energy.BATTERY_FILES], 10).stdout
        return sysfs.tagged_samples(text) + energy.battery_samples(text)

    def sample_battery(self) -> list[ThermalSample]:
        """One reading of the battery's draw (the idle baseline before a run)."""
        return energy.battery_samples(self.run(["grep", "-s", "-H", ".", *energy.BATTERY_FILES], 10).stdout)

    def thermal_status(self) -> int | None:
        from harness.thermal.thermalservice import parse

        try:
            return parse(self._check(["dumpsys", "thermalservice"])).status
        except (ValueError, DeviceError):
            return None

    # Where the kernel lists no policy folders: the clusters of recent Snapdragons, by their first CPU.
    FALLBACK_POLICIES = ["policy0", "policy2", "policy5", "policy7"]

    def _cpufreq_policies(self) -> list[str]:
        """The phone's own CPU clusters (one cpufreq policy each, named for its first CPU): SM8650 has four, and a
        fixed list of three left its cpu5-6 cluster unwatched."""
        if not hasattr(self, "_policy_names"):
            listing = self.run(["ls", "/sys/devices/system/cpu/cpufreq"], 10).stdout.split()
            self._policy_names = sorted((p for p in listing if p.startswith("policy") and p[6:].isdigit()),
                                        key=lambda p: int(p[6:])) or self.FALLBACK_POLICIES
        return self._policy_names

    def _zones(self) -> list[str]:
        if not hasattr(self, "_zone_names"):
            listing = self.run(["ls", "/sys/class/thermal"], 10).stdout.split()
            self._zone_names = [z for z in listing if z.startswith("thermal_zone")]
        return self._zone_names

    def close(self) -> None:
        """End every command still running (its adb stream closes, adbd sends its shell SIGHUP, and the command
        line's trap kills the runner: a stopped run no longer waits for the runner, nor leaves it measuring),
        then take back the working folder and release the phone's lock (if this controller still holds it)."""
        self._closed = True
        self._end_running_commands()
        if self._device is not None and getattr(self, "_worked", False):
            # The folder this controller made (a name of its own), and what its binaries wrote there.
            cleanup = shlex.join(["rm", "-rf", self.workdir])
            if self._locked:
                cleanup += f"; [ \"$(cat {LOCK}/token 2>/dev/null)\" = {self.token} ] && rm -rf {LOCK}"
            self._clean_up(cleanup)
        self._locked = False
        _HELD_HERE.discard(self.token)
        self._device = None

    def _clean_up(self, cleanup: str) -> None:
        """Run close()'s clean-up; a phone adb lists offline or (having answered) not at all is asked again for
        OFFLINE_GRACE_S, so that a phone away for a second keeps no lock nor folder of this run.  A stopped run
        does not wait."""
        while True:
            try:
                shell_v2(self.adb.open_transport(timeout=ADB_IDLE_TIMEOUT_S), cleanup, ADB_IDLE_TIMEOUT_S, 4096)
                return
            except AdbError as exc:
                if not self._coming_back(exc):
                    return  # gone another way: it keeps an empty folder (and the lock until it expires)
            except Exception:  # noqa: BLE001 - a phone already gone keeps an empty folder; nothing to report
                return
            if time.monotonic() >= self._grace_end() or self.run_stop.wait(0.25):
                self.stayed_away = not self.run_stop.is_set()
                return
