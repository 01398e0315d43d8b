"""Execute one run of a cell: cooldown, push, measure with thermal sampling beside it.

``execute_run`` has explicit inputs (a CellSpec, an open device, the run index) and an
explicit output (a CellResult); it never touches the results store, so cells can be
scheduled on other hosts and their results shipped back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from harness.clock import utc_now
from harness.devices.base import ThermalSample
from harness.errors import DeviceError
from harness.plan import CellSpec
from harness.profile import Profile
from harness.runners import Measurement, RunnerFailure, runner_module
from harness.runners.base import check_measured
from harness.thermal.energy import RunEnergy, RunWork, run_energy
from harness.thermal.sampler import ThermalSampler, throttled, wait_for_cooldown
from harness.words import counted

# The run index of a cell's profiling step in a schedule: its profiling runs, after its last measured run, as an
# item of their own, so the measured run is stored (and shown) before profiling starts and a Ctrl-C during
# profiling costs the profile alone.
PROFILING = -1


@dataclass
class CellResult:
    key: str
    status: str  # ok | failed | timeout | crashed | lost (the device went away: measured again by --resume)
    reason: str = ""
    log: str = ""
    measurement: Measurement | None = None
    thermals: list[ThermalSample] = field(default_factory=list)
    cooldown_wait_s: float | None = None
    cooldown_note: str = ""
    push_s: float | None = None
    throttled: bool = False
    started_at: str = ""
    finished_at: str = ""
    energy: RunEnergy | None = None  # phones with a battery reading (harness/thermal/energy.py)
    profiles: list[Profile] = field(default_factory=list)  # a PROFILING step's profiling runs, in order
    profiling_failure: str = ""  # a PROFILING step: why its profiling runs stopped ("" when none failed)


def execute_run(spec: CellSpec, device, run_index: int = 0) -> CellResult:
    """Measure run ``run_index`` of a cell on an open device (one runner invocation, with its own load
    and warm-up), or with ``run_index`` PROFILING its profiling runs; failures become a CellResult, never an
    exception."""
    if run_index == PROFILING:
        return profile_step(spec, device)
    result = CellResult(key=spec.key, status="failed", started_at=utc_now())
    notes: list[str] = []
    try:
        if spec.cooldown is not None:
            cool = wait_for_cooldown(device, spec.cooldown.max_temp_c, spec.cooldown.timeout_s, spec.cooldown.poll_s)
            result.cooldown_wait_s, result.cooldown_note = cool.waited_s, cool.note
            notes.append(cool.note)
        runner = runner_module(spec.runner)
        pushes_before, outputs_cut_before = len(device.pushes), getattr(device, "outputs_cut", 0)
        t0 = time.perf_counter()
        remote = device.push(spec.artifact.path, spec.artifact.sha256) if spec.chain is None else None
        result.push_s = time.perf_counter() - t0
        idle = _idle_battery(device)
        sampler = ThermalSampler(device, spec.thermal_period_s)
        try:
            with sampler:
                if spec.chain is None:
                    measurement = runner.measure(device, remote, spec.artifact, spec.settings)
                else:
                    measurement = runner.measure_chain(device, spec.chain, spec.settings)
                ended_s = time.time() - sampler.t0_epoch_s  # the runner returned: the measured loop ends here
        finally:
            # Keep telemetry of failed cells too: a crash under heat is worth seeing.
            result.thermals = sampler.samples
            if sampler.error:
                notes.append(sampler.error)
        _check_numbers(measurement)
        result.measurement = measurement
        _check_counts(spec, measurement, getattr(device, "outputs_cut", 0) > outputs_cut_before,
                      getattr(device, "OUTPUT_CAP_BYTES", 0))
        result.energy = run_energy(idle, result.thermals, _energy_work(spec, measurement), ended_s,
                                   spec.thermal_period_s)
        # Telemetry the benchmark reported itself (the iPhone app's thermalState) joins the sampler's timeline.
        result.thermals = result.thermals + [replace(s, t_s=round(s.t_s - sampler.t0_epoch_s, 3))
                                             for s in measurement.thermals_epoch]
        pushes = device.pushes[pushes_before:]
        if pushes:  # bytes and seconds of each push this cell made (skipped ones count 0 bytes)
            measurement.extra["pushes"] = pushes
            # Runners push too (tools, tokenizers, a chain's builds, corpus audio): count every push.
            result.push_s = max(result.push_s, sum(p["seconds"] for p in pushes))
        # The zero of the cell's timeline (thermal t_s, measured_window_s), kept so the window can be checked.
        measurement.extra["thermal_t0_epoch_s"] = sampler.t0_epoch_s
        start, end = measurement.extra.get("measured_start_epoch_s"), measurement.extra.get("measured_end_epoch_s")
        if start is not None and end is not None:
            # Where the measured iterations fall on the thermal timeline (seconds into the cell).
            measurement.extra["measured_window_s"] = [round(start - sampler.t0_epoch_s, 3),
                                                      round(end - sampler.t0_epoch_s, 3)]
        result.throttled, why = throttled(result.thermals)
        if result.throttled:
            notes.append(f"throttled: {why}")
        result.status = "ok"
        result.log = "\n".join(notes + measurement.notes + device.drain_notes())
    except RunnerFailure as exc:
        result.status, result.reason, result.log = exc.status, exc.reason, "\n".join(notes + [exc.log])
        if not _still_answers(device):  # killed as the phone went away: not a verdict on the build either
            result.status, result.reason = "lost", f"adb lost the device as the runner ended ({exc.reason})"
    except DeviceError as exc:
        # A device that stopped answering is not a verdict on the build: "lost" runs are measured again by --resume.
        result.status, result.reason, result.log = ("lost" if exc.lost else "failed"), exc.reason, str(exc)
    result.finished_at = utc_now()
    return result


def _still_answers(device) -> bool:
    """Whether a device whose runner failed still answers (a phone is asked one cheap command; a device that cannot
    be asked counts as answering, so its failure stands)."""
    answers = getattr(device, "answers", None)
    return answers() if answers else True


IDLE_READINGS = 2  # the battery's draw just before the runner starts, averaged


def _idle_battery(device) -> list[ThermalSample]:
    """The idle baseline of a run's energy; none from a device without a battery reading (or a test stand-in)."""
    read = getattr(device, "sample_battery", None)
    return [s for _ in range(IDLE_READINGS) for s in read()] if read else []


def _energy_work(spec: CellSpec, m: Measurement) -> RunWork:
    """What a run's energy is divided by: over the measured loop, its measured iterations; over the whole run (load
    and warm-ups included), every inference its processes ran, every token for an LLM, every utterance for a
    transcription.  The measured loop is one stretch at the end of the run only where one process runs the warm-ups
    and then every measured iteration (harness/thermal/energy.py)."""
    if spec.task == "transcribe":
        return RunWork("utterance", len(m.samples_ms) + len(m.warmup_ms),
                       not_one_stretch="each utterance is a runner invocation of its own")
    if spec.artifact.stage == "llm" and m.extra.get("generated_tokens"):
        return RunWork("token", int(m.extra["generated_tokens"] * m.extra.get("generations_run", len(m.samples_ms))),
                       not_one_stretch="each generation is a runner process of its own")
    if m.samples_ms:
        return RunWork("inference", len(m.samples_ms) + len(m.warmup_ms), measured_units=len(m.samples_ms),
                       measured_s=sum(m.samples_ms) / 1000)
    return RunWork("inference", spec.settings.iterations + spec.settings.warmup_iterations,
                   not_one_stretch="the runner printed a summary, not each iteration's time")


def wants_profile(spec: CellSpec) -> bool:
    """Whether a cell has profiling runs: asked for, and a runner that can profile (a chain has none)."""
    return spec.chain is None and spec.settings.profile_runs > 0 and hasattr(runner_module(spec.runner), "profile")


def profile_step(spec: CellSpec, device) -> CellResult:
    """A cell's profiling runs as a result of their own (status "ok" even when a profiling run failed: that costs
    the operator table, whose reason is in ``profiling_failure`` and the log; "lost"/"failed" only when the device
    could not be used).  Scheduled only for cells that :func:`wants_profile`."""
    result = CellResult(key=spec.key, status="ok", started_at=utc_now())
    try:
        runner = runner_module(spec.runner)
        remote = device.push(spec.artifact.path, spec.artifact.sha256)  # already there: the measured runs pushed it
        profiling = profile_cell(spec, device, runner, remote)
        result.profiles, result.profiling_failure = profiling.profiles, profiling.failure
        result.log = "\n".join(profiling.notes + device.drain_notes())
    except DeviceError as exc:
        result.status, result.reason, result.log = ("lost" if exc.lost else "failed"), exc.reason, str(exc)
    result.finished_at = utc_now()
    return result


@dataclass
class Profiling:
    """A cell's profiling runs: the profiles taken, the notes for its log, and why the runs stopped early."""
    profiles: list[Profile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failure: str = ""  # "the runner was killed by SIGSEGV (exit -11); the other profiling run was skipped"


def profile_cell(spec: CellSpec, device, runner, remote: str) -> Profiling:
    """The cell's profiling runs (``profile_runs``, each a process of its own, after its measured runs, so the
    profiler's overhead never touches a sample).  A profiling run that fails costs the cell its operator table,
    never its measurement: the reason is kept as the failure and noted in the log."""
    profiling = Profiling()
    wanted = spec.settings.profile_runs
    for index in range(wanted):
        try:
            profile = runner.profile(device, remote, spec.artifact, spec.settings)
        except RunnerFailure as exc:
            # The rest would most likely fail alike (a build that crashes under the profiler): skipped, and said.
            profiling.failure = exc.reason + _skipped_note(wanted - index - 1)
            profiling.notes.append(f"profiling run {index + 1} of {wanted} {exc.status}: {profiling.failure}")
            break
        profiling.notes.extend(note for note in profile.notes if note not in profiling.notes)  # alike every run
        profiling.profiles.append(profile)
    return profiling


def _skipped_note(left: int) -> str:
    if not left:
        return ""
    return ("; the other profiling run was skipped" if left == 1
            else f"; the other {counted(left, 'profiling run')} were skipped")


def _check_numbers(m: Measurement) -> None:
    """Impossible numbers (NaN, negative, beyond a day, percentiles out of order) fail the run; none is stored."""
    try:
        check_measured(m)
    except ValueError as exc:
        raise RunnerFailure("failed", f"the runner's output holds an impossible number: {exc}",
                            "\n".join(m.notes)) from None


def _check_counts(spec: CellSpec, m: Measurement, output_cut: bool = False, cap_bytes: int = 0) -> None:
    """A runner that returns other than what was asked is a failed run, not a smaller sample.  When the device
    cut the runner's output (it keeps a stream's head and tail only), that is the cause, and the reason says so."""
    if spec.task != "latency" or m.summary_ms:
        return
    want = spec.settings.iterations
    if len(m.samples_ms) != want:
        cause = (f": the runner's output passed {_size(cap_bytes)} and was cut; lower iterations per run "
                 "(more runs instead)") if output_cut else ""
        raise RunnerFailure("failed", f"the runner returned {len(m.samples_ms)} measured iterations; "
                                      f"the plan asked for {want}{cause}", "\n".join(m.notes))


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:g} MiB" if n_bytes >= 2**20 else f"{n_bytes / 2**10:g} KiB"
