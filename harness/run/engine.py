"""Run a whole plan: check everything first, then execute and store run by run.

All validation (plan, inventory, every artifact) happens before the first write, so
bad input never leaves a half-made run behind.

A cell is measured as ``runs`` separate runs, and runs are interleaved in rounds: round
r measures run r of every cell before any cell gets run r + 1, so a slow drift of the
machine (or a neighbour's load) falls on every build alike instead of on whichever was
measured last.  Builds that differ only in quantization sit next to each other in a
round, and odd rounds go in reverse order (A B, B A, ...), so an INT4-vs-INT8 comparison
is paired in time and order effects cancel.  Each finished run is committed at once;
``resume`` measures only the runs a run id does not hold yet.
"""

from __future__ import annotations

import errno
import sqlite3
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol

from harness.errors import UserError
from harness.inventory import load_inventory
from harness.plan import CellSpec, expand_plan, load_plan
from harness.run.cell import PROFILING, CellResult, wants_profile
from harness.run.workers import measure_concurrently
from harness.store import Store
from harness.store.builds import KEEP_RUNS, BuildCache
from harness.store.state import RUNS_PLANNED, run_state


class Progress(Protocol):
    def start(self, run_id: str, total: int, already_done: int) -> None: ...
    def device_ready(self, facts) -> None: ...
    def cell_started(self, spec: CellSpec) -> None: ...
    def cell_finished(self, spec: CellSpec, result: CellResult) -> None: ...
    def profiling(self, spec: CellSpec, running: bool) -> None: ...


class _Silent:
    def start(self, run_id, total, already_done): pass
    def device_ready(self, facts): pass
    def cell_started(self, spec): pass
    def cell_finished(self, spec, result): pass
    def profiling(self, spec, running): pass


@dataclass
class RunOutcome:
    run_id: str
    statuses: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    resumed_cells: int = 0
    already_complete: bool = False  # a --resume of a run that held every run already: nothing was changed

    @property
    def failed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "ok")


def round_order(cells: list[CellSpec]) -> list[CellSpec]:
    """The order within a round: by device, then builds that differ only in quantization side by side."""
    def key(spec: CellSpec):
        a = spec.artifact
        return (spec.device.id, spec.task, a.model, a.stage, a.format, a.backend, a.quantization, spec.key)

    return sorted(cells, key=key)


def rounds_wanted(spec: CellSpec, rounds_of: dict[str, int] | None = None) -> int:
    """The rounds a cell is measured for: its ``runs``, unless extra rounds were asked for it."""
    return (rounds_of or {}).get(spec.key, spec.settings.runs)


def schedule(cells: list[CellSpec], stored: dict[str, tuple[str, set[int]]],
             rounds_of: dict[str, int] | None = None, to_profile: set[str] | None = None) -> list[tuple[CellSpec, int]]:
    """Every (cell, run index) still to measure, round by round, odd rounds reversed.

    ``stored``: what a resumed run already holds (cell key -> (status, run indices)); a cell that
    failed is not measured again, a cell whose device was lost is (its lost runs are not in the indices).
    ``rounds_of``: rounds wanted per cell key, instead of each cell's ``runs`` (extra rounds for some cells).
    ``to_profile``: keys of the cells still to profile; each gets a (cell, PROFILING) step right after its last
    measured run (the device worker skips it when a run of the cell failed).
    """
    want = {c.key: rounds_wanted(c, rounds_of) for c in cells}
    ordered = round_order(cells)
    out = []
    for r in range(max(want.values(), default=0)):
        for spec in (ordered if r % 2 == 0 else ordered[::-1]):
            status, done = stored.get(spec.key, ("ok", set()))
            if r < want[spec.key] and r not in done and status in ("ok", "lost"):
                out.append((spec, r))
            if r == want[spec.key] - 1 and spec.key in (to_profile or ()) and status in ("ok", "lost"):
                out.append((spec, PROFILING))
    return out


def measured_runs(todo: list[tuple[CellSpec, int]]) -> int:
    """The measured runs of a schedule (its profiling steps left out)."""
    return sum(1 for _, run_index in todo if run_index != PROFILING)


def still_to_profile(cells: list[CellSpec], profiled: set[str]) -> set[str]:
    """The keys of the cells with profiling runs whose profiling step has not ended (``profiled``)."""
    return {c.key for c in cells if c.key not in profiled and wants_profile(c)}


AA_SUFFIX = "/aa"
REF_SUFFIX = "/ref"  # last night's bytes, measured again tonight beside the changed build


def identity_of(device_id: str, artifact) -> tuple:
    """What makes two cells the same measurement across nights: device and build configuration."""
    a = artifact
    get = (lambda k: a[k]) if isinstance(a, dict) else (lambda k: getattr(a, k))
    return (device_id, get("model"), get("stage"), get("format"), get("backend"), get("quantization"))


def reference_cells(cells: list[CellSpec], store: Store, baseline_id: str, cache: BuildCache) -> list[CellSpec]:
    """For every latency cell whose bytes differ from the baseline run's cell of the same identity, that
    cell's baseline build (from the build cache) as a cell of its own, measured in the same rounds."""
    before = {identity_of(c.device_id, c.artifact): c.artifact["sha256"]
              for c in store.cells(baseline_id, with_samples=False)
              if c.task == "latency" and c.status == "ok" and not c.cell_key.endswith((AA_SUFFIX, REF_SUFFIX))}
    out = []
    for spec in cells:
        sha = before.get(identity_of(spec.device.id, spec.artifact))
        if spec.task == "latency" and sha and sha != spec.artifact.sha256:
            old = cache.load(sha)
            if old is not None:
                out.append(replace(spec, key=spec.key + REF_SUFFIX, artifact=old))
    return out


def aa_cells(cells: list[CellSpec]) -> list[CellSpec]:
    """An A/A calibration: every latency cell twice (the copy's key ends in /aa), side by side in each round."""
    latency = [c for c in cells if c.task == "latency"]
    return latency + [replace(c, key=c.key + AA_SUFFIX) for c in latency]


def finish_with_kept_bytes(cells: list[CellSpec], store: Store, run_id: str, cache: BuildCache) -> list[CellSpec]:
    """For --resume: a latency cell the run began whose file was rebuilt since is finished with the bytes it began
    with (the build cache kept them when the run started), under its stored key, so resuming always completes the
    run that was started; the rebuilt bytes belong to a new run.  A cell begun that cannot be finished so (its
    bytes are not kept) refuses the resume rather than leave it short of its runs for good."""
    began = {c.cell_key: c for c in store.cells(run_id, with_samples=False)}
    by_identity = {identity_of(c.device_id, c.artifact): c for c in began.values()
                   if c.task == "latency" and not c.cell_key.endswith((AA_SUFFIX, REF_SUFFIX))}
    out = []
    for spec in cells:
        suffix = AA_SUFFIX if spec.key.endswith(AA_SUFFIX) else ""
        before = by_identity.get(identity_of(spec.device.id, spec.artifact)) if spec.task == "latency" else None
        kept = cache.load(before.artifact["sha256"]) if before and before.cell_key + suffix != spec.key else None
        if kept is None:
            out.append(spec)
            continue
        out.append(replace(spec, key=before.cell_key + suffix, artifact=kept))
        if not suffix:
            print(f"warning: {spec.artifact.path} changed since run {run_id} began; its cell is finished with the "
                  "bytes the run began with (kept in the build cache). Measure the new build with a new run.",
                  file=sys.stderr)
    planned, paths = {c.key for c in out}, {str(c.artifact.path) for c in cells}
    for key, cell in began.items():
        if (key not in planned and not key.endswith(REF_SUFFIX) and cell.status in ("ok", "lost")
                and cell.runs_done < cell.runs_planned and cell.artifact.get("path") in paths):
            raise UserError(f"run {run_id} began {cell.artifact.get('path') or key} with other bytes than its file "
                            f"holds now, and those bytes are not kept: its cell would stay at {cell.runs_done} of "
                            f"{cell.runs_planned} runs.", path=cell.artifact.get("path"),
                            fix="restore the file as it was, or start a new run without --resume.")
    return out


def run_plan(plan_path: Path, db_path: Path, inventory_path: Path | None = None, resume: str | None = None,
             progress: Progress | None = None, calibration: bool = False,
             reference_run: str | None = None, measure: Callable | None = None,
             extra_rounds: dict[str, int] | None = None) -> RunOutcome:
    """Execute a plan into the store at ``db_path``; return how the cells ended.

    ``calibration``: measure every latency cell twice, interleaved (an A/A run for noise floors).
    ``reference_run``: a baseline run; every build whose bytes changed since it is measured again
    from the build cache beside the new one (``/ref`` cells), for a comparison paired in time.
    ``measure``: what measures the scheduled runs and yields their events; by default every device attached
    to this controller at once (:func:`measure_concurrently`); :func:`harness.lab.measurer` sends each
    device's runs to the Ray node that holds it.
    ``extra_rounds`` (with ``resume``): cell key -> rounds wanted in all; only those cells are measured, beyond
    their ``runs``, in the same interleaved order (the nightly's second look at a pair it could not call).
    """
    progress = progress or _Silent()
    plan, plan_sha, lines = load_plan(plan_path)
    if plan.inventory is not None:
        inventory_path = plan_path.parent / plan.inventory
    elif inventory_path is not None:  # the project's (or HARNESS_INVENTORY's): missing, say where it looked
        from harness.project import refuse_missing_default_inventory

        refuse_missing_default_inventory(inventory_path)
    inventory = load_inventory(inventory_path or Path("devices.yaml"))
    cells, skipped = expand_plan(plan, plan_path, lines, inventory)
    if calibration:
        cells = aa_cells(cells)
    if not cells:
        reasons = "; ".join(sorted({f"{s.device_id}: {s.reason}" for s in skipped})) or "the plan selects nothing"
        raise UserError(f"nothing to run: {reasons}.", path=plan_path,
                        fix="add devices that offer the builds' backends, or builds those devices can run.")
    cache = BuildCache(db_path)
    with Store(db_path) as store:
        if resume:
            record = store.run(resume)
            store.claim_run(resume)  # before reading what it holds: a second --resume would measure the same runs
            reference_run = record.settings.get("reference_run")
            if record.plan_sha256 != plan_sha:
                raise UserError(f"run {resume} was made from a different version of this plan; resuming would mix "
                                "two plans in one run.", path=plan_path,
                                fix="restore the plan as it was, or start a new run without --resume.")
            cells = finish_with_kept_bytes(cells, store, resume, cache)
            run_id, stored = resume, store.stored_runs(resume)
            if reference_run:
                cells = cells + reference_cells(cells, store, reference_run, cache)
            # A run interrupted while profiling a cell, or one whose cells were lost: the cells' measured runs are
            # stored, their profiles are taken now.  A complete run is not profiled again (a finished run's record
            # does not change); one with lost cells is not complete (harness.store.state).
            to_profile = set() if run_state(store, resume).complete else still_to_profile(
                cells, store.profiled_cells(resume))
            if record.status == "complete" and not extra_rounds and not schedule(cells, stored):
                # Nothing to measure: the run is left as it was (its finished_at says when it was measured).
                statuses = store.cell_statuses(run_id, [c.key for c in cells]).values()
                return RunOutcome(run_id=run_id, statuses=dict(Counter(statuses)), skipped=len(skipped),
                                  resumed_cells=len(cells), already_complete=True)
            store.set_run_status(run_id, "running")
        else:
            settings = plan.model_dump(mode="json", include={"warmup_iterations", "iterations", "runs", "profile_runs", "threads",
                                                             "timeout_s", "cooldown", "thermal_period_s", "seed", "llm"})
            if calibration:
                settings["calibration"] = True
            if reference_run:
                settings["reference_run"] = reference_run
                cells = cells + reference_cells(cells, store, reference_run, cache)
            settings[RUNS_PLANNED] = sum(rounds_wanted(c) for c in cells)  # what "complete" means, for verdicts
            to_profile = still_to_profile(cells, set())
        for spec in cells:
            if spec.task == "latency":
                try:
                    cache.keep(spec.artifact)  # copied once per sha256: tomorrow may need tonight's bytes
                except OSError as exc:
                    if exc.errno == errno.ENOSPC:
                        raise
                    # Without the copy, tomorrow compares night against night instead of pairing: not worth a night.
                    print(f"warning: could not keep a copy of {spec.artifact.path} ({exc.strerror})", file=sys.stderr)
        arts = {c.artifact.sha256: c.artifact for c in cells}
        arts.update({a.sha256: a for c in cells if c.chain for a in c.chain.parts.values()})
        arts.update({skip.artifact.sha256: skip.artifact for skip in skipped})
        for art in arts.values():
            store.record_artifact(art)
        if not resume:  # only now: a build the store refuses (a name that is not UTF-8) or a copy that fails
            # leaves no 'running' run with nothing in it behind
            run_id = store.create_run(plan.name, plan_path, plan_sha, plan.budgets_p95_ms.model_dump(), settings)
            store.claim_run(run_id)
            stored = {}
        complete = {c.key for c in cells if c.key in stored and
                    (stored[c.key][0] != "ok" or len(stored[c.key][1]) >= c.settings.runs)}
        outcome = RunOutcome(run_id=run_id, skipped=len(skipped), resumed_cells=len(complete))
        for skip in skipped:
            store.record_skipped(run_id, skip.device_id, skip.artifact.sha256, skip.reason)
        if extra_rounds:
            cells = [c for c in cells if c.key in extra_rounds]
        todo = schedule(cells, stored, extra_rounds, to_profile)
        total_runs = sum(rounds_wanted(c, extra_rounds) for c in cells)
        progress.start(run_id, total_runs, total_runs - measured_runs(todo))
        events = (measure or measure_concurrently)(todo)
        try:
            for event in events:  # one worker per device; this thread is the only one writing to the store
                if event.kind == "device":
                    facts, config = event.payload
                    store.record_device(run_id, facts, config)
                    progress.device_ready(facts)
                elif event.run_index == PROFILING:
                    progress.profiling(event.spec, running=event.kind == "started")
                    if event.kind == "finished" and event.result.status == "ok":
                        store.record_profiles(run_id, event.spec.key, event.result)
                    # else not stored: a device lost while profiling leaves the cell to profile on --resume
                elif event.kind == "started":
                    progress.cell_started(event.spec)
                elif event.kind == "finished":
                    store.record_run(run_id, event.spec, event.run_index, event.result)
                    progress.cell_finished(event.spec, event.result)
        except BaseException:
            events.close()  # stop the workers: a run in flight is lost, every finished one is stored
            try:
                store.set_run_status(run_id, "interrupted")
            except sqlite3.Error:
                pass  # a full disk may refuse this too; the run then reads as 'running', and --resume still works
            raise
        for status in store.cell_statuses(run_id, [c.key for c in cells]).values():
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
        store.set_run_status(run_id, "complete")
        cache.prune(store.recent_build_shas(KEEP_RUNS))
    return outcome
