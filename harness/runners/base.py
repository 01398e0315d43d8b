"""What a runner returns and how it fails.

A runner module knows one benchmark binary: how to build its command, and how to
parse what it prints (a pure function from text to a :class:`Measurement`).
"""

from __future__ import annotations

import math
import re
import signal
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.devices.base import CommandResult
from harness.extras import install_command


@dataclass(frozen=True)
class Measurement:
    """Every timing a runner got from one cell, in milliseconds; nothing aggregated away."""

    samples_ms: list[float]
    warmup_ms: list[float] = field(default_factory=list)
    load_ms: float | None = None
    first_inference_ms: float | None = None
    peak_rss_mb: float | None = None
    extra: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    transcripts: list[dict] = field(default_factory=list)  # transcription cells: one record per utterance
    # Telemetry the benchmark itself reported (the iPhone app's thermalState), t_s in epoch seconds.
    thermals_epoch: list = field(default_factory=list)
    # A runner that prints percentiles instead of iterations (onnxruntime_perf_test): its own figures,
    # e.g. {"p50_ms": .., "p95_ms": ..}; samples_ms is then empty, and no mean ever stands in for a P95.
    summary_ms: dict[str, float] = field(default_factory=dict)


def with_kernel_peak(measured: Measurement, *results: CommandResult) -> Measurement:
    """``measured`` with the highest peak RSS the device's kernel accounted for the runner processes of ``results``
    (Android: toybox time -v, harness/devices/peak_memory.py); unchanged when the device reported none."""
    peaks = [r.peak_rss_mb for r in results if r.peak_rss_mb is not None]
    return replace(measured, peak_rss_mb=max(peaks)) if peaks else measured


MAX_MEASURED_MS = 24 * 3600 * 1000.0  # a day: no single inference or load takes longer; beyond is a broken number
MAX_MEASURED_MB = 1 << 24  # 16 TB of memory: no phone or host has it
PERCENTILE_ORDER = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms")


def _check_number(name: str, value, ceiling: float | None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not math.isfinite(value):
        raise ValueError(f"{name} is {value}, not a finite number")
    if ceiling is not None and not 0 <= value <= ceiling:
        raise ValueError(f"{name} is {value:g}, outside 0 to {ceiling:g}")


def _ceiling_of(name: str) -> float | None:
    return MAX_MEASURED_MS if name.endswith("_ms") else MAX_MEASURED_MB if name.endswith("_mb") else None


def check_measured(m: Measurement) -> Measurement:
    """The one check of the numbers a runner measured, before any is stored or printed: every one finite,
    times and memory from 0 to a sane ceiling, percentiles in order, and something measured at all.
    Raises ValueError naming the field (a parser's NaN, a negative P50 or a 1e308 ms sample are broken output,
    not a result)."""
    if not m.samples_ms and not m.summary_ms:
        raise ValueError("no measured samples (and no summary figures): nothing was measured")
    for name in ("samples_ms", "warmup_ms"):
        for i, value in enumerate(getattr(m, name)):
            _check_number(f"{name}[{i}]", value, MAX_MEASURED_MS)
    for name in ("load_ms", "first_inference_ms", "peak_rss_mb"):
        _check_number(name, getattr(m, name), _ceiling_of(name))
    for group, values in (("summary_ms", m.summary_ms), ("extra", m.extra)):
        for key, value in values.items():
            _check_number(f"{group}.{key}" if group == "extra" else key, value,
                          MAX_MEASURED_MS if group == "summary_ms" else _ceiling_of(key))
    figures = {**m.extra, **m.summary_ms}  # onnxruntime_perf_test's P90/P99 travel in extra
    ordered = [(k, figures[k]) for k in PERCENTILE_ORDER if isinstance(figures.get(k), (int, float))]
    for (low, low_ms), (high, high_ms) in zip(ordered, ordered[1:]):
        if high_ms < low_ms:
            raise ValueError(f"{high} ({high_ms:g}) is below {low} ({low_ms:g}): percentiles out of order")
    return m


@dataclass(frozen=True)
class RunSettings:
    """How much to run: the plan's numbers for one cell, the same record from plan to runner to store.

    ``warmup_iterations`` and ``iterations`` are per run; a cell is ``runs`` separate runs (processes on
    the host, runner invocations on a phone), each with its own load and warm-up.
    """

    warmup_iterations: int
    iterations: int
    timeout_s: float
    threads: int | None = None
    seed: int = 0
    llm_prompt: str = "The weather today is"  # LLM cells: what the generation runner is asked to continue
    llm_seq_len: int = 16  # LLM cells: prompt + generated tokens, as llama_main's --seq_len
    runs: int = 1
    htp_performance_mode: str | None = None  # QNN cells (qnn, ort-qnn): the plan's HTP power mode; None elsewhere
    # Operator-profiling runs after the cell's measured ones (runners with a ``profile`` function); 0: none.
    profile_runs: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    # What must match for two nights' cells to be compared (timeouts and seeds do not change a latency).
    COMPARABLE = ("warmup_iterations", "iterations", "threads", "runs", "llm_prompt", "llm_seq_len",
                  "htp_performance_mode")

    @staticmethod
    def shown(key: str, value) -> str:
        """A setting as the user reads it: a plan without ``threads`` leaves the count to the runtime (its own
        default, every core for ONNX Runtime and ExecuTorch's threadpool), not None or 0."""
        if key == "threads" and not value:
            return "runtime default"
        return str(value)


class RunnerFailure(Exception):
    """The benchmark did not produce a measurement; ``status`` is failed, timeout or crashed."""

    def __init__(self, status: str, reason: str, log: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.log = log


# The highest signal number on Linux and Android (SIGRTMAX): a shell reports death by signal N as 128+N, so
# 129..192 are signals and 193..255 are exit codes (ORT's `return -1` is 255, not "signal 127").
SIGNAL_MAX = 64


def killed_by(exit_code: int) -> int | None:
    """The signal that ended a process, from its exit code as Python (negative) or a shell (128+N) reports it;
    None for an exit code the process chose."""
    if exit_code < 0:
        return -exit_code
    if 128 < exit_code <= 128 + SIGNAL_MAX:
        return exit_code - 128
    return None


def signal_name(signum: int) -> str:
    """SIGSEGV for 11; "signal N" for a number with no name here."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def check_command(result: CommandResult, what: str) -> None:
    """Raise a RunnerFailure that names timeouts and signals (exit 139 is a SIGSEGV on a shell)."""
    if result.timed_out:
        raise RunnerFailure("timeout", f"{what} did not finish within {result.duration_s:.0f} s and was killed",
                            result.log())
    code = result.exit_code
    if code is None or code == 0:
        return
    signum = killed_by(code)
    cause = last_error_line(result.stderr, result.stdout)
    said = f": {cause}" if cause else ""
    if signum:
        raise RunnerFailure("crashed", f"{what} was killed by {signal_name(signum)} (exit {code}){said}",
                            result.log())
    raise RunnerFailure("failed", f"{what} exited with code {code}{said}", result.log())


# A line that says what went wrong: a Python exception's last line, an ET_LOG error line ("E 00:00:00.1 ..."),
# ORT's "[E:onnxruntime...]", or words that name a failure.  Traceback frames ("  File ...") never count.
_ERROR_WORDS = re.compile(r"^E \d|\[E:|error|exception|invalid|fail|fatal|abort|cannot|can't|could not|not found|"
                          r"no such|less than|greater than|out of|denied|unsupported|mismatch", re.IGNORECASE)
CAUSE_MAX_CHARS = 240  # a reason is one line in a table cell; the whole output stays in the log


def last_error_line(stderr: str, stdout: str = "") -> str:
    """The last line of a failed command's output that names the cause (stderr first, then stdout), else the
    last non-frame line of stderr; '' when it printed nothing.  Every runner's failure reason carries it, so
    "exited with code 1" says why without opening the log."""
    for text in (stderr, stdout):
        cause = _last_error(_said_lines(text))
        if cause and _PYTHON_EXCEPTION.match(cause):
            # A native library logs the cause and its Python binding raises a generic one ("RuntimeError:
            # Generation failed" after "Max new tokens 0 is less than or equal to 0"): give both.
            native = _last_error(_said_lines(text.split("Traceback (most recent call last)")[0]))
            if native and native != cause:
                return _clip_line(f"{native} ({cause})")
        if cause:
            return _clip_line(cause)
    lines = _said_lines(stderr)
    return _clip_line(lines[-1]) if lines else ""


_PYTHON_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Failure): ")


def _last_error(lines: list[str]) -> str:
    return next((line for line in reversed(lines) if _ERROR_WORDS.search(line)), "")


CONTINUATION_MAX_LINES = 3  # an error's indented detail lines kept with it ("index: 1 Got: 3 Expected: 16")


def _said_lines(text: str) -> list[str]:
    """Non-blank lines that are not traceback frames or their source lines (those start with spaces), each with
    the indented lines that continue it (ORT puts the key part of INVALID_ARGUMENT on the next line), joined
    with " "."""
    said: list[list[str]] = []
    continues = False
    for line in text.splitlines():
        if not line.strip():
            continues = False
        elif not line[:1].isspace():
            continues = not line.startswith("Traceback (most recent")
            if continues:
                said.append([line.strip()])
        elif continues and not line.strip().startswith('File "') and len(said[-1]) <= CONTINUATION_MAX_LINES:
            said[-1].append(line.strip())
        else:
            continues = False
    return [" ".join(parts) for parts in said]


def _clip_line(line: str) -> str:
    return line if len(line) <= CAUSE_MAX_CHARS else line[:CAUSE_MAX_CHARS - 1] + "…"


@dataclass
class Said:
    """Everything one runner invocation printed: where ET_LOG lines go depends on how the binary was built
    (logcat with the Android logging backend, stderr otherwise, nowhere in a Release build with logging
    compiled out), and printf lines (llm/runner/stats.h's PyTorchObserver, transcripts) are on stdout."""

    result: CommandResult
    logcat: str

    @property
    def text(self) -> str:
        """stdout, stderr and the invocation's logcat lines, for parsers that search for their lines anywhere."""
        return "\n".join((self.result.stdout, self.result.stderr, self.logcat))

    def log(self) -> str:
        return self.result.log() + ("\n[logcat]\n" + self.logcat.strip() if self.logcat.strip() else "")


ET_LOGCAT_TAG = "ExecuTorch"  # the tag ET_LOG lines carry in logcat with ExecuTorch's Android logging backend
# The runner's PID and the phone's clock, printed by the phone's shell just before it execs the runner (exec keeps
# the PID).  logcat keeps each line's PID and time: `logcat --pid=PID` (Android 7 on) reads that process's lines,
# and `-t TIME` only those logged from TIME on.  A PID alone is not enough: PIDs wrap (pid_max is often 32768)
# while logd's ring buffer keeps lines of an earlier process that had the same PID.  TIME is epoch seconds
# ('sssss.mmm', one of the three forms logcat's parseTime reads: system/logging logcat/logcat.cpp, AOSP at
# 496c367c1f7fb7293edcbb67a4e43167b4d3c71f, and as far back as Android 7's system/core): no year or time zone to
# get wrong.  mksh (Android's shell) gives the clock as EPOCHREALTIME; `date +%s` where a shell has it not.
RUNNER_STARTED = "harness-runner-started="
_RUNNER_STARTED_LINE = re.compile(rf"^{RUNNER_STARTED}(\d+) (\d+)(?:\.(\d+))?\n", re.M)


@dataclass(frozen=True)
class RunnerProcess:
    """A runner process on a phone: its PID, and the phone's clock just before it started (logcat's 'sssss.mmm',
    rounded down to the millisecond, so the runner's first line is not left out)."""

    pid: int
    started: str


def run_reporting_pid(device, argv: list[str], timeout_s: float,
                      env: dict[str, str] | None = None) -> tuple[CommandResult, RunnerProcess | None]:
    """Run a binary on a phone through a shell that prints its own PID and the phone's clock before it execs the
    binary (exec keeps the PID): the result as the binary's own (that line taken out of stderr) and the process,
    None when the shell never started it."""
    script = f'echo {RUNNER_STARTED}$$ ${{EPOCHREALTIME:-$(date +%s)}} >&2; exec "$@"'
    result = device.run(["sh", "-c", script, "sh", *argv], timeout_s, env=env)
    said = _RUNNER_STARTED_LINE.search(result.stderr)
    result = replace(result, argv=argv, stderr=_RUNNER_STARTED_LINE.sub("", result.stderr, count=1))
    if said is None:
        return result, None
    pid, seconds, fraction = said.groups()
    return result, RunnerProcess(int(pid), f"{seconds}.{(fraction or '')[:3].ljust(3, '0')}")


def logcat_of(device, runner: RunnerProcess | None, tag_filter: str) -> str:
    """The logcat lines of the ``runner`` process only (``-s TAG:PRIORITY``), from its start on: another app or
    controller logging under the same tag meanwhile adds nothing, and neither does an earlier process that had
    the same PID.  No ``logcat -c`` is needed first (it would wipe the whole phone's log, which someone debugging
    on the phone is reading); "" when the runner never started (no line can be the binary's)."""
    if runner is None:
        return ""
    return device.run(["logcat", "-d", f"--pid={runner.pid}", "-t", runner.started, "-s", tag_filter], 60).stdout


def run_et_binary(device, argv: list[str], timeout_s: float, what: str, env: dict[str, str] | None = None) -> Said:
    """Run an ExecuTorch binary on a phone; fail the run on a non-zero exit.  Its logcat lines are its own
    process's: another app or controller logging under the ExecuTorch tag meanwhile would otherwise add its
    lines (its "Iteration" lines to the cell's samples)."""
    result, runner = run_reporting_pid(device, argv, timeout_s, env)
    check_command(result, what)
    return Said(result, logcat_of(device, runner, f"{ET_LOGCAT_TAG}:I"))


_FLAG = re.compile(r"(?<![\w-])--?([a-z][a-z0-9_]*)")


@dataclass(frozen=True)
class HelpAnswer:
    """What a pushed binary's ``--help`` told: the flags it accepts, or None and why it told none ("did not
    answer within 60 s", "was killed by SIGSEGV (exit 139)"), for the cells that then assume a release's flags."""

    flags: set[str] | None
    unanswered: str = ""


_ACCEPTED: dict[str, HelpAnswer] = {}  # by the binary's path on the phone, which holds its sha256


def help_answer(device, runner: str, timeout_s: float = 60) -> HelpAnswer:
    """The flags a pushed binary accepts, from its ``--help`` (asked once per binary); None when its help names
    no ``model_path`` (it hung, crashed, or is no gflags binary), with why.  gflags lists flags as
    ``-name (description) type: ...`` and exits 1 after help, so an exit code of 1 is no failure."""
    if runner not in _ACCEPTED:
        limit_s = min(timeout_s, 60)
        said = device.run([runner, "--help"], limit_s)
        flags = set(_FLAG.findall(said.stdout + "\n" + said.stderr))
        # Remembered either way: a binary that hangs on --help made every cell of its bytes wait out the timeout
        # again before its own measured run did the same.
        _ACCEPTED[runner] = (HelpAnswer(flags) if "model_path" in flags
                             else HelpAnswer(None, _unanswered(said, limit_s)))
    return _ACCEPTED[runner]


def _unanswered(said: CommandResult, limit_s: float) -> str:
    """Why a --help listed no flags, in words that follow "its --help"."""
    if said.timed_out:
        return f"did not answer within {limit_s:g} s"
    signum = killed_by(said.exit_code) if said.exit_code is not None else None
    if signum:
        return f"was killed by {signal_name(signum)} (exit {said.exit_code})"
    return f"listed no --model_path flag (exit {said.exit_code})"


def accepted_flags(device, runner: str, timeout_s: float = 60) -> set[str] | None:
    """:func:`help_answer`'s flags."""
    return help_answer(device, runner, timeout_s).flags


def assumed_flags_note(tool: str, answer: HelpAnswer, assumed: str) -> str:
    """The line each cell of a binary whose --help told no flags carries: what the harness assumed instead."""
    return f"{tool}: its --help {answer.unanswered}; assumed the flags of {assumed}"


# The Python packages a host measurement of each format runs on (the `host` extra).
HOST_RUNTIMES = {"onnx": ("onnxruntime",), "pte": ("torch", "executorch")}


def require_host_runtime(fmt: str) -> None:
    """Fail the run with the fix when this environment has not got the runtime for ``fmt`` builds (a light
    install, made for a controller that only drives phones)."""
    import importlib.util

    missing = [name for name in HOST_RUNTIMES.get(fmt, ()) if importlib.util.find_spec(name) is None]
    if missing:
        raise RunnerFailure("failed", f"this environment cannot measure .{fmt} builds on the host: "
                                      f"{', '.join(missing)} not installed. Fix: {install_command('host')} "
                                      "(a controller that only drives phones does not need it).")


def run_worker(device, argv: list[str], timeout_s: float, what: str, parse) -> "Measurement":
    """Run one of the harness's own measuring child processes and read its output with ``parse``; a crash, a
    timeout or output it cannot read fails the run with the log."""
    result = device.run(argv, timeout_s=timeout_s)
    check_command(result, what)
    try:
        return parse(result.stdout)
    except (ValueError, KeyError) as exc:
        raise RunnerFailure("failed", f"could not read {what}'s result ({exc})", result.log()) from None


NO_LOG_HINT = ("if this binary was built in Release with logging compiled out (EXECUTORCH_ENABLE_LOGGING=OFF), "
               "rebuild it with -DEXECUTORCH_ENABLE_LOGGING=ON: its timings are printed through ET_LOG")


def missing_or_empty(local: Path) -> str | None:
    """Why a library the harness would push cannot be one ("missing", "empty"), None when it can: a zero-byte
    .so (an interrupted copy) pushed to the phone fails the cell with a linker error far from its cause."""
    if not local.is_file():
        return "missing"
    return "empty" if local.stat().st_size == 0 else None


def push_file(device, local: Path) -> str:
    """Push a file that is not a build (a tool, a tokenizer, audio), content-addressed like builds."""
    from harness.artifacts.manifest import sha256_of

    return device.push(local, sha256_of(local))


def companion(artifact, role: str) -> Path:
    """A file the runner needs beside the model (tokenizer, processor), named by the build's manifest."""
    if role not in artifact.companions:
        where = artifact.manifest_path or artifact.path.with_name(artifact.path.name + ".manifest.yaml")
        raise RunnerFailure("failed", f"{artifact.path.name} needs a '{role}' file and its manifest names none: "
                                      f"add 'companions: {{{role}: FILE}}' (relative to the manifest) to {where}")
    return artifact.companions[role]


def push_companion(device, artifact, role: str) -> str:
    """Push the build's ``role`` companion; return its path on the device."""
    return push_file(device, companion(artifact, role))


def push_corpus_audio(device, corpus, utterances, scratch: Path, wav: bool = False) -> dict[str, tuple[str, float]]:
    """Each utterance as 16 kHz mono, pushed content-addressed: id -> (path on device, seconds).  Raw float32
    by default; ``wav``: 16-bit PCM WAV, the one format every revision of ExecuTorch's wav_loader.h reads
    (extension/llm/runner/wav_loader.h: "WAV header not detected" for anything else)."""
    out = {}
    for utt in utterances:
        audio = corpus.load_audio(utt)
        if wav:
            import soundfile

            local = scratch / f"{Path(utt.audio).stem}.wav"
            soundfile.write(local, audio, 16000, subtype="PCM_16")
        else:
            local = scratch / f"{Path(utt.audio).stem}.bin"
            audio.astype("<f4").tofile(local)
        out[utt.id] = (push_file(device, local), len(audio) / 16000)
    return out
