"""The simulated phone's userland: Android's own shell and tools in a sandbox laid out like a phone.

A command from adb runs as on a phone: ``/system/bin/sh -c COMMAND`` where ``sh`` is real mksh (Android's
shell, Debian's ``mksh``) and ``/system/bin`` holds real toybox applets (Android's userland, Debian's
``toybox``: ``timeout``, ``ls``, ``cat``, ``grep``, ``sha256sum``, ``kill``...), inside a bubblewrap sandbox:
``/`` read-only, ``/data`` the phone's storage (writable), ``/sys`` the files the harness reads (thermal zones,
CPU clocks) with values written by the heat model before each command, ``/proc`` and ``/dev`` of their own.
Commands start in ``/``, which is not writable, as under adbd.

As on a phone, the shell runs as uid/gid 2000 (``shell``) and sees only the phone's processes: each phone has
an init of its own (:func:`boot`), a bubblewrap sandbox with a user namespace (the phone's uid 2000 is the
simulator's own uid outside, so what adb pushes and what the shell writes under ``/data/local/tmp`` belong to
``shell`` inside) and a PID namespace; every command of that phone joins both (``--userns``/``--pidns``).
Stopping the phone kills its init, and the kernel ends every process of the namespace with it.

What stays in Python is what a phone's vendor binaries do: ``getprop``, ``dumpsys``, ``logcat`` and the
benchmark binaries are ``/system/bin/simulated-binary`` (:mod:`harness.sim.binary_client`), which hands its
argv to the phone's daemon (:mod:`harness.sim.vendor`) over ``/dev/socket/harness-sim`` and exits as the
binary did.  A pushed benchmark binary stands in as a one-line script, :data:`STAND_IN`, whose ``#!`` line
names that program (the kernel runs it with the script's path, whose name says which binary it is).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from harness.sim.phone import CPU_CLUSTERS, CPU_COUNT, ZONES, Phone

SIMULATED_BINARY = "/system/bin/simulated-binary"
# The content of a benchmark binary's stand-in (tools: in a simulated phone's inventory): pushed like an arm64
# build, run by the kernel through its #! line.  Text after the first line changes its sha256, and its
# "# NEEDED lib.so" lines are its dynamic section: the shared libraries the phone's linker must find.
STAND_IN = f"#!{SIMULATED_BINARY}\n"
NEEDED = "# NEEDED "
EVENT_TRACER = "# built with EXECUTORCH_ENABLE_EVENT_TRACER"
ANDROID_TOOLS = ("getprop", "dumpsys", "logcat", "log")  # Android's own (toybox's log is built for Android only)
SOCKET_IN_SANDBOX = "/dev/socket/harness-sim"
MARKER = ".harness-sim-layout"
# AID_SHELL (libcutils android_filesystem_config.h): adbd drops to it before running a command
# (adb/daemon/main.cpp, drop_privileges) on every user build.
SHELL_UID = 2000
# In the phone's PID namespace, 1 is bubblewrap's reaper and 2 the init (a shell waiting on its stdin): the
# first two processes of a new namespace, present for the phone's whole life, and not the shell's doing.
INIT_NS_PIDS = (1, 2)
# adbd's environment for a shell (adb/daemon/shell_service.cpp, ForkAndExec) with the PATH of init.rc.
ENV = {"PATH": "/product/bin:/apex/com.android.runtime/bin:/system_ext/bin:/system/bin:/system/xbin:/vendor/bin",
       "HOME": "/", "TMPDIR": "/data/local/tmp", "USER": "shell", "LOGNAME": "shell", "SHELL": "/system/bin/sh",
       "HOSTNAME": "harness_sim", "ANDROID_DATA": "/data", "ANDROID_ROOT": "/system"}


def stand_in(note: str = "", needed: tuple[str, ...] = (), event_tracer: bool = False) -> str:
    """A benchmark binary's stand-in; ``note`` (say "an arm64 v1.2 build") gives it bytes of its own, ``needed``
    the shared libraries it is linked against (an ELF's DT_NEEDED), which the phone's linker looks for on
    LD_LIBRARY_PATH before the binary starts; ``event_tracer``: an ExecuTorch runner built with
    -DEXECUTORCH_ENABLE_EVENT_TRACER=ON, which writes an ETDump (off in a release build, as upstream)."""
    return (STAND_IN + (f"# {note}\n" if note else "") + "".join(f"{NEEDED}{lib}\n" for lib in needed)
            + (f"{EVENT_TRACER}\n" if event_tracer else ""))


def write_stand_ins(folder: Path) -> dict[str, Path]:
    """A stand-in for each benchmark binary in ``folder`` (the inventory's ``tools`` for a simulated phone)."""
    from harness.sim.vendor import BENCHMARKS

    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in BENCHMARKS}
    for path in paths.values():
        path.write_text(stand_in())
    return paths


def missing_tools() -> list[str]:
    """The Debian programs the simulated phone needs and this machine lacks."""
    return [t for t in ("bwrap", "mksh", "toybox") if shutil.which(t) is None]


def prepare(phone: Phone, socket_path: Path) -> None:
    """Lay out /system/bin (sh, toybox applets, the Android tools) under the phone's root."""
    bin_dir = phone.root / "system" / "bin"
    if (bin_dir / MARKER).is_file():
        shutil.rmtree(bin_dir)  # laid out by an earlier start (the marker says so): laid out again
    elif bin_dir.exists() or bin_dir.is_symlink():
        from harness.errors import UserError

        raise UserError(f"{bin_dir} exists and the simulator did not make it.",
                        fix="give the simulated phone a folder of its own (--root), new or made by the simulator.")
    bin_dir.mkdir(parents=True)
    (bin_dir / MARKER).write_text("laid out by harness/sim/sandbox.py; removed and laid out again at each start\n")
    (bin_dir / "sh").symlink_to(shutil.which("mksh"))
    toybox = shutil.which("toybox")
    applets = subprocess.run([toybox], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet not in ("sh", "toybox", *ANDROID_TOOLS):
            (bin_dir / applet).symlink_to(toybox)
    (bin_dir / "toybox").symlink_to(toybox)  # a phone has the multiplexer too (/system/bin/toybox)
    client = bin_dir / "simulated-binary"
    source = Path(__file__).with_name("binary_client.py").read_text()
    client.write_text(f"#!{_interpreter()} -IS\n{source}")  # one #! argument: flags joined
    client.chmod(0o755)
    for tool in ANDROID_TOOLS:
        (bin_dir / tool).symlink_to("simulated-binary")
    # Bionic names Android's ids without files (libc/bionic/grp_pwd.cpp); toybox on glibc reads /etc/passwd.
    names = phone.root / ".etc"
    names.mkdir(exist_ok=True)
    (names / "passwd").write_text(f"root:x:0:0::/:/system/bin/sh\nshell:x:{SHELL_UID}:{SHELL_UID}::/:/system/bin/sh\n")
    (names / "group").write_text(f"root:x:0:\nshell:x:{SHELL_UID}:\n")
    # A phone has no /etc/profile (its /etc is /system/etc): the login shell of an interactive `adb shell` must
    # not read the machine's, which sets a PATH of its own.
    (names / "profile").write_text("")
    phone.sandbox_socket = socket_path


def _interpreter() -> str:
    """This Python's own interpreter (not a venv's launcher): the client needs only its standard library."""
    return os.path.realpath(sys.executable)


# Each command writes the /sys files as it starts: two at once (the thermal sampler's and the runner's next
# command, as the runner ends) interleaved their writes, and the battery read an idle current with a loaded
# voltage, a draw no state of the phone has.  One writer at a time (3 ms each).
_SYSFS_WRITER = threading.Lock()


def write_sysfs(phone: Phone) -> None:
    """The /sys files the harness reads, with the heat model's values now (a phone's kernel computes them on
    read; one command reads them within milliseconds)."""
    with _SYSFS_WRITER:
        _write_sysfs(phone)


def _write_sysfs(phone: Phone) -> None:
    thermal = phone.root / ".sys" / "class" / "thermal"
    for index, name in enumerate(ZONES):
        zone = thermal / f"thermal_zone{index}"
        zone.mkdir(parents=True, exist_ok=True)
        _put(zone / "type", name + "\n")
        temp = zone / "temp"
        if name.startswith("disabled"):
            # A zone whose sensor is off fails every read; a folder in its place fails them too (EISDIR).
            temp.mkdir(exist_ok=True)
        else:
            _put(temp, phone.sysfs(f"/sys/class/thermal/thermal_zone{index}/temp"))
    status, current_ua, voltage_uv = phone.battery()
    battery = phone.root / ".sys" / "class" / "power_supply" / "battery"
    battery.mkdir(parents=True, exist_ok=True)
    for name, value in (("status", status), ("current_now", current_ua), ("voltage_now", voltage_uv)):
        _put(battery / name, f"{value}\n")
    # As the kernel lays out cpufreq: a folder per policy, named for its first CPU, and each CPU's cpufreq a link
    # to its policy (drivers/cpufreq/cpufreq.c, cpufreq_add_dev_symlink).
    cpu_root = phone.root / ".sys" / "devices" / "system" / "cpu"
    firsts = sorted(int(c[3:]) for c in CPU_CLUSTERS)
    for first in firsts:
        policy = cpu_root / "cpufreq" / f"policy{first}"
        policy.mkdir(parents=True, exist_ok=True)
        _put(policy / "scaling_cur_freq", f"{phone.freq_khz(f'cpu{first}')}\n")
    for cpu in range(CPU_COUNT):
        link = cpu_root / f"cpu{cpu}" / "cpufreq"
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(f"../cpufreq/policy{max(f for f in firsts if f <= cpu)}")


def _put(path: Path, text: str) -> None:
    """Replace a /sys file whole: another command of the phone may be reading it right now (a sysfs read never
    sees half a value; a file truncated and rewritten in place can be read empty)."""
    draft = path.with_name(f".{path.name}.{threading.get_ident()}")
    draft.write_text(text)
    os.replace(draft, path)


def _default_signals() -> None:
    """A phone's shell starts with every signal at its default (adbd is a daemon of init's); a simulator started
    under nohup, or as a background job of a script, would otherwise hand its ignored SIGHUP and SIGINT to every
    shell, and a trap on SIGHUP could never fire (an ignored signal stays ignored across exec)."""
    import signal

    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)


def _layout(phone: Phone) -> list[str]:
    """bubblewrap's arguments that lay out a phone: read-only /, /system, /sys, the daemon's socket, /data."""
    return ["--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin", "--ro-bind", "/etc", "/etc",
            *(x for name in ("passwd", "group", "profile") for x in ("--ro-bind", str(phone.root / ".etc" / name), f"/etc/{name}")),
            "--ro-bind", sys.base_prefix, sys.base_prefix,
            "--ro-bind", str(phone.root / "system"), "/system",
            "--ro-bind", str(phone.root / ".sys"), "/sys",
            "--dev", "/dev", "--proc", "/proc",
            "--ro-bind", str(phone.sandbox_socket), SOCKET_IN_SANDBOX,
            "--bind", str(phone.root / "data"), "/data",
            "--remount-ro", "/", "--chdir", "/"]


def _started(proc: subprocess.Popen, status_r: int, what: str) -> int:
    """The host pid bubblewrap reports on its --info-fd once the sandbox's first process exists."""
    with os.fdopen(status_r) as status:
        info = status.read()  # {"child-pid": N, ...}, written and closed once the process exists
    if not info:
        proc.wait()
        raise OSError(f"bubblewrap did not start {what}: {proc.stderr.read().decode(errors='replace')}")
    return int(json.loads(info)["child-pid"])


def boot(phone: Phone) -> None:
    """Start the phone's init: the user and PID namespaces every command of the phone joins.  It waits on a pipe
    from the simulator, so it ends (and the kernel ends the namespace's every process) when the simulator stops,
    killed or not."""
    write_sysfs(phone)
    status_r, status_w = os.pipe()
    argv = ["bwrap", "--unshare-user", "--uid", str(SHELL_UID), "--gid", str(SHELL_UID), "--unshare-pid",
            # Only what its shell needs: the commands lay out the phone in mount namespaces of their own (and
            # with bubblewrap 0.8, an init with its own /dev (--dev) made every later --pidns join fail, EPERM).
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--proc", "/proc", "--chdir", "/", "--info-fd", str(status_w), "--clearenv",
            # Run through a link named init, so `ps -A` names the phone's init so (the kernel takes a process's
            # name from the file it execs).  Its pid is 2: bubblewrap 0.8 can neither rename its own reaper, pid 1
            # (no --argv0), nor leave pid 1 to a shell that would not reap what the phone's commands orphan.
            "--symlink", shutil.which("mksh"), "/init", "/init", "-c", "echo up; read -r line"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            pass_fds=(status_w,), start_new_session=True)
    os.close(status_w)
    phone.init = proc
    phone.init_pid = _started(proc, status_r, "the phone's init")
    # bubblewrap reports its pid 1 before that process has moved into the user namespace where the sandbox's
    # uid is 2000 (a second one, made after setting up); its shell's first line says the move is done, and the
    # commands join that namespace.
    if proc.stdout.readline() != b"up\n":
        stop_everything(phone)
        raise OSError("the phone's init did not start")


def _toybox_as_the_faults_say(phone: Phone) -> None:
    """/system/bin/toybox: the real multiplexer, or (fault ``toybox_without_time``) one built without ``time``,
    as toybox answers for an applet it lacks."""
    entry = phone.root / "system" / "bin" / "toybox"
    if phone.faults.toybox_without_time == entry.is_symlink():
        draft = entry.with_name(".toybox.draft")
        draft.unlink(missing_ok=True)
        if phone.faults.toybox_without_time:
            draft.write_text(f'#!/system/bin/sh\nif [ "$1" = time ]; then echo "toybox: Unknown command time" >&2; '
                             f'exit 1; fi\nexec {shutil.which("toybox")} "$@"\n')
            draft.chmod(0o755)
        else:
            draft.symlink_to(shutil.which("toybox"))
        os.replace(draft, entry)


# bubblewrap 0.8 cannot set argv[0] (no --argv0): mksh's own `exec -a` does, in the same process.
LOGIN_SHELL = "exec -a -/system/bin/sh /system/bin/sh"


def spawn(phone: Phone, command: str) -> tuple[subprocess.Popen, int]:
    """Start ``sh -c COMMAND`` on the phone, as adbd does (a session of its own, stdin/stdout/stderr pipes), in the
    phone's namespaces as uid 2000; without a command, a login shell reading its stdin (adbd execs ``sh`` with
    argv[0] ``-/system/bin/sh``: shell_service.cpp, ForkAndExec).  Returns the bubblewrap process and the pid of
    the shell inside it (the one adbd would signal)."""
    write_sysfs(phone)
    _toybox_as_the_faults_say(phone)
    status_r, status_w = os.pipe()
    namespaces = [os.open(f"/proc/{phone.init_pid}/ns/{kind}", os.O_RDONLY) for kind in ("user", "pid")]
    argv = ["bwrap", "--userns", str(namespaces[0]), "--pidns", str(namespaces[1]), *_layout(phone),
            "--new-session", "--info-fd", str(status_w),
            "--clearenv", *(x for k, v in ENV.items() for x in ("--setenv", k, v)),
            "/system/bin/sh", "-c", command or LOGIN_SHELL]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=(status_w, *namespaces), start_new_session=True,
                                preexec_fn=_default_signals)
    finally:
        for fd in (status_w, *namespaces):
            os.close(fd)
    return proc, _started(proc, status_r, "the phone's shell")


def _pid_namespace(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None  # gone, or not ours to read


def _pid_inside(entry: Path) -> int:
    """A process's pid in its innermost PID namespace (the last number of NSpid in /proc/PID/status)."""
    for line in (entry / "status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    return 0


def phone_processes(phone: Phone) -> list[int]:
    """Every process still running that the phone's shells started: the processes of the phone's PID namespace
    but its init (host pids)."""
    namespace = _pid_namespace(phone.init_pid) if phone.init_pid else None
    pids = []
    for entry in Path("/proc").iterdir():
        if namespace and entry.name.isdigit() and _pid_namespace(entry.name) == namespace:
            try:
                if _pid_inside(entry) not in INIT_NS_PIDS:
                    pids.append(int(entry.name))
            except (OSError, ValueError):
                pass  # gone meanwhile
    return pids


def stop_everything(phone: Phone) -> None:
    """Stop the phone (like switching it off): its init dies, and the kernel kills every process of its PID
    namespace with it."""
    import signal

    if phone.init is None:
        return
    try:
        os.kill(phone.init_pid, signal.SIGKILL)  # the namespace's pid 1
    except ProcessLookupError:
        pass
    phone.init.stdin.close()
    phone.init.wait()
    phone.init.stdout.close()
    phone.init.stderr.close()
