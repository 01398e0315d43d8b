"""State of a simulated Snapdragon 8 Gen 3 phone: sandboxed storage, properties, heat, logcat, faults."""

from __future__ import annotations

import errno
import math
import os
import posixpath
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PROPS = {
    "ro.product.name": "sim_sm8650", "ro.product.model": "Harness Sim SM8650", "ro.product.device": "harness_sim",
    "ro.product.manufacturer": "harness", "ro.soc.manufacturer": "QTI", "ro.soc.model": "SM8650",
    "ro.build.version.release": "15", "ro.build.version.sdk": "35", "ro.product.cpu.abi": "arm64-v8a",
    "ro.boot.harness.simulated": "1",
}
# SM8650's four cpufreq policies, each named for its first CPU (kHz at the top): cpu0-1 Cortex-A520, cpu2-4 and
# cpu5-6 Cortex-A720 at two clocks, cpu7 Cortex-X4.
CPU_CLUSTERS = {"cpu0": 2_265_600, "cpu2": 3_014_400, "cpu5": 2_956_800, "cpu7": 3_302_400}
CPU_COUNT = 8
# The releases the simulated binaries play unless a test picks another (ExecuTorch's, onnxruntime's).
DEFAULT_VERSIONS = {"executor_runner": "1.4", "qnn_executor_runner": "1.4", "llama_main": "1.4",
                    "whisper_runner": "1.4", "onnxruntime_perf_test": "1.22"}
# As on Qualcomm phones: besides the chip's sensors, "soc" is the battery's state of charge (a percentage,
# not a temperature), and a zone whose sensor is switched off fails every read (EINVAL).
ZONES = ["cpu-0-0", "cpu-1-0", "soc", "cpu-1-2", "gpuss-0", "disabled-0", "battery", "skin"]
BATTERY_LEVEL_PERCENT = 87
# The battery's draw (a phone's fuel gauge, /sys/class/power_supply/battery): at rest, and what each running
# benchmark binary adds (its CPU cores at full clock); the cell's voltage sags a little under load.
IDLE_CURRENT_UA = 180_000
RUNNER_CURRENT_UA = 950_000
CHARGE_CURRENT_UA = 1_500_000
BATTERY_VOLTAGE_UV = 3_987_000
LOAD_SAG_UV = 40_000

# Where the shell user may write on a phone (owned by shell, 0771); what the harness pushes goes under it.
WRITABLE = "/data/local/tmp"
# The phone's own file system, as its shell sees it (harness/sim/sandbox.py, _layout): each top folder of the
# phone and the folder under the root that holds it.  The rest of the root (.logcat, .etc, .sys as such) is the
# simulator's own, and what the sandbox binds from the machine (/usr, /etc) is no phone's.
PHONE_FOLDERS = {"data": "data", "system": "system", "sys": ".sys"}
# Linux's limit on the symbolic links one path walk follows (include/linux/namei.h, MAXSYMLINKS): past it, ELOOP.
MAX_SYMLINKS = 40


def normal_path(device_path: str) -> str:
    """A device path made absolute and normal as the kernel walks it: relative to adbd's working folder ``/``,
    with ``.`` and ``..`` resolved (``/..`` is ``/``)."""
    return posixpath.normpath("/" + device_path.lstrip("/"))


@dataclass
class Faults:
    """Switchable per test: each makes the phone misbehave the way real ones do."""

    drop_push_after_bytes: int | None = None  # connection dies mid-push
    crash_runner: bool = False  # runner dies with SIGSEGV (exit 139)
    hang_runner: bool = False  # runner never returns (and keeps running when the connection closes)
    chatty_runner: bool = False  # runner prints the same line forever
    storage_full: bool = False  # writes fail with ENOSPC
    hot: bool = False  # starts at 82 C and throttles
    vanish_after_commands: int | None = None  # the device disappears mid-run
    # Until this time.monotonic(), adbd refuses the host's connections (rebooting, or its USB link re-enumerating):
    # adb lists the phone "offline" and reconnects on its own once it answers (SimServer.go_offline).
    offline_until: float | None = None
    toybox_without_time: bool = False  # an older Android's toybox: no `toybox time` (so no peak memory)
    # Another process of the phone (an app, another controller's runner) logs ExecuTorch lines while a benchmark
    # binary runs: through the phone's own `log` tool, as a process of its own (its own pid).
    neighbour_logs: bool = False


@dataclass
class Phone:
    root: Path  # the sandbox standing in for the phone's storage
    faults: Faults = field(default_factory=Faults)
    ambient_c: float = 30.0
    tau_s: float = 20.0  # thermal time constant
    temp_c: float = 30.0
    busy: int = 0  # running benchmark processes
    commands: int = 0
    # Where the binaries' ET_LOG lines go: "logcat" (built with the Android logging backend), "stderr"
    # (the default backend, as `I 00:00:00.088912 executorch:file.cpp:309] message`), or "none" (a Release
    # build with logging compiled out).
    et_log: str = "logcat"
    # The upstream release each simulated binary plays (flags differ by release), e.g. {"executor_runner": "1.2"}.
    versions: dict = field(default_factory=dict)
    # When set, the binaries do not compute on the controller: every inference waits this long, as on a real
    # phone whose own SoC does the work (the controller's CPU is not what a lab of phones spends).
    silicon_ms: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    shells: set = field(default_factory=set)  # pids of the shells adbd is running now
    invocations: list = field(default_factory=list)  # every benchmark binary run: [name, *args], in order
    # This phone's system properties (getprop): a test may play a phone without some (Android 11 has no
    # ro.soc.model).  The chip itself stays an SM8650 whatever they say.
    props: dict = field(default_factory=lambda: dict(PROPS))
    sandbox_socket: Path | None = None  # the vendor daemon's socket (harness/sim/sandbox.py)
    # The sign this phone's fuel gauge gives a discharging battery's current_now: -1 as the kernel documents it
    # (Documentation/ABI/testing/sysfs-class-power), +1 as some gauges report it anyway.
    discharge_sign: int = -1
    charging: bool = False  # on a charger: status "Charging", and current flows into the battery
    # The phone's init (harness/sim/sandbox.py, boot): its bubblewrap process and the host pid of its
    # namespaces' pid 1, which every command of the phone joins.
    init: object | None = None
    init_pid: int = 0
    _t: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "data" / "local" / "tmp").mkdir(parents=True, exist_ok=True)
        if self.faults.hot:
            self.temp_c = 82.0

    # -- heat model: first-order towards ambient at rest, towards 88 C under load ------------
    def heat(self) -> float:
        with self.lock:
            now = time.monotonic()
            target = 88.0 if self.busy else self.ambient_c
            if self.faults.hot:
                target = max(target, 82.0)
            self.temp_c += (target - self.temp_c) * (1 - math.exp(-(now - self._t) / self.tau_s))
            self._t = now
            return self.temp_c

    def thermal_status(self) -> int:
        t = self.heat()
        return 0 if t < 60 else 1 if t < 70 else 2 if t < 78 else 3

    def freq_khz(self, cpu: str) -> int:
        top = CPU_CLUSTERS[cpu]
        return top if self.heat() < 70 else int(top * 0.55)  # throttled when hot

    # -- storage --------------------------------------------------------------------------------
    def path(self, device_path: str) -> Path:
        """Map a device path into the sandbox, as the phone's kernel resolves it (``/..`` is ``/``); nothing may
        escape it."""
        local = (self.root / normal_path(device_path).lstrip("/")).resolve()
        if not local.is_relative_to(self.root.resolve()):
            raise PermissionError(device_path)
        return local

    def phone_file(self, device_path: str, follow: bool = True) -> Path:
        """The file a process of the phone (adbd's sync service: STAT, RECV) reaches at ``device_path``, walked as
        the phone's kernel walks it: ``..`` stops at the phone's ``/``, and a symbolic link is read in the phone's
        file system (a link to /etc/passwd names the phone's /etc/passwd, not the machine's; a link the simulator
        made to a tool of the machine names nothing on the phone).  ``follow=False`` leaves a final link unfollowed
        (lstat).  Raises OSError with the errno the phone's kernel gives (ENOENT, ENOTDIR, ELOOP)."""
        return self._local(self._walk(device_path, follow))

    def _walk(self, device_path: str, follow: bool, missing_ok: bool = False) -> list[str]:
        """The phone's own path (its folders from ``/``) that ``device_path`` reaches, links followed inside the
        phone; with ``missing_ok`` the parts from the first missing one on are taken as named (a folder adbd
        would make), else a missing part raises ENOENT."""
        pending = [part for part in device_path.split("/") if part not in ("", ".")]
        walked: list[str] = []  # the phone's folders reached so far, links followed
        links = 0
        while pending:
            name = pending.pop(0)
            if name == "..":
                walked = walked[:-1]  # /.. is /
                continue
            local = self._local([*walked, name])
            if local is None or not (local.exists() or local.is_symlink()):
                if not missing_ok:
                    raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), device_path)
                return posixpath.normpath("/" + "/".join([*walked, name, *pending])).strip("/").split("/")
            if local.is_symlink() and (follow or pending):
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), device_path)
                target = os.readlink(local)
                if target.startswith("/"):
                    walked = []
                pending = [part for part in target.split("/") if part not in ("", ".")] + pending
                continue
            if pending and not local.is_dir():
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), device_path)
            walked.append(name)
        return walked

    def _local(self, parts: list[str]) -> Path | None:
        """Where the phone's ``/parts...`` lies under the root; None for what is not on the phone."""
        if not parts:
            return self.root
        folder = PHONE_FOLDERS.get(parts[0])
        return None if folder is None else self.root.joinpath(folder, *parts[1:])

    def push_target(self, device_path: str) -> tuple[str, Path | None]:
        """Where adbd's SEND writes ``device_path``: the phone's own path, its folders walked as the phone's kernel
        walks them (links followed inside the phone, ``..`` stopping at its ``/``; a link the phone's shell made
        to ``../../../anything`` names the phone's folders, never the simulator's), the final name not followed
        (adbd unlinks a link there and writes a file in its place); and the file under the root, None for what
        is not on the phone.  Raises OSError as the walk does (ENOTDIR, ELOOP)."""
        folder = self._walk(posixpath.dirname("/" + device_path.lstrip("/")), follow=True, missing_ok=True)
        name = posixpath.basename(device_path.rstrip("/"))
        parts = [part for part in folder if part]
        if name not in ("", ".", ".."):
            parts.append(name)
        elif name == "..":
            parts = parts[:-1]
        return "/" + "/".join(parts), self._local(parts)

    def push_refusal(self, device_path: str) -> str | None:
        """Why adbd (uid 2000, ``shell``) cannot create ``device_path``, in adbd's words (file_sync_service.cpp,
        handle_send_file: "couldn't create file: " + strerror, or "secure_mkdirs failed: " + strerror when a
        folder on the way is missing and cannot be made); None where it can.  The path is the one the phone's
        kernel reaches (Phone.push_target): a link out of /data/local/tmp leads where the link points."""
        try:
            path, local = self.push_target(device_path)
        except OSError as error:
            return f"secure_mkdirs failed: {os.strerror(error.errno)}"
        if (path == WRITABLE or path.startswith(WRITABLE + "/")) and local is not None:
            return None
        # /data is system's (0771): shell may pass through it but create nothing; the rest is read-only.
        reason = "Permission denied" if path.startswith("/data/") else "Read-only file system"
        try:
            folder_exists = self.phone_file(posixpath.dirname(path)).is_dir()
        except OSError:
            folder_exists = False
        what = "couldn't create file" if folder_exists else "secure_mkdirs failed"
        return f"{what}: {reason}"

    def sysfs(self, device_path: str) -> str | None:
        """Virtual files under /sys: thermal zones and CPU clocks, computed when read."""
        parts = device_path.strip("/").split("/")
        if parts[:3] == ["sys", "class", "thermal"] and len(parts) == 5 and parts[3].startswith("thermal_zone"):
            index = int(parts[3][len("thermal_zone"):])
            if index >= len(ZONES):
                return None
            name = ZONES[index]
            if parts[4] == "type":
                return name + "\n"
            if parts[4] == "temp" and name == "soc":
                return f"{BATTERY_LEVEL_PERCENT}\n"
            if parts[4] == "temp" and name.startswith("disabled"):
                raise OSError(22, "Invalid argument")
            if parts[4] == "temp":
                offset = {"battery": -8.0, "skin": -6.0, "gpuss-0": -3.0}.get(name, 0.0)
                return f"{int((self.heat() + offset) * 1000)}\n"
        return None

    def battery(self) -> tuple[str, int, int]:
        """The fuel gauge now: (status, current_now in uA, voltage_now in uV); the draw grows with the runners."""
        with self.lock:
            busy = self.busy
        voltage = BATTERY_VOLTAGE_UV - LOAD_SAG_UV * min(busy, 1)
        if self.charging:
            return "Charging", -self.discharge_sign * CHARGE_CURRENT_UA, voltage
        return "Discharging", self.discharge_sign * (IDLE_CURRENT_UA + RUNNER_CURRENT_UA * busy), voltage

    @property
    def logcat_file(self) -> Path:
        return self.root / ".logcat"
