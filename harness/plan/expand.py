"""Turn a plan into cells: one device x one build x one task, each runnable on its own.

A cell carries everything it needs (device entry, artifact, settings) so that a
later scheduler can send it to another host without this process's state.
"""

from __future__ import annotations

import glob
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from harness.artifacts import Artifact, load_artifact
from harness.artifacts.manifest import MANIFEST_SUFFIXES
from harness.errors import UserError
from harness.inventory import DeviceConfig, Inventory
from harness.plan.models import ROLE_STAGES, Cooldown, Plan
from harness.runners import RunSettings, onnxruntime_perf_test, qnn_executor_runner, select_runner
from harness.termsafe import term_safe
from harness.vocab import QNN_BACKENDS
from harness.yamlconf import all_problems, format_loc


@dataclass(frozen=True)
class ChainSpec:
    """What a transcription cell needs besides its device: its builds by role, and the corpus.

    Roles are ``mel``/``encoder``/``decoder`` for a split chain, or ``model`` for one bundled program.
    """

    name: str
    parts: dict[str, Artifact]
    corpus: Path
    limit: int | None

    @property
    def build(self) -> Artifact:
        """The artifact that names the build in results: the bundle, or the decoder of a split chain."""
        return self.parts.get("model") or self.parts["decoder"]

    @property
    def is_pipeline(self) -> bool:
        """VAD -> ASR -> LLM per utterance (see plan.models.Chain), not ASR alone."""
        return "vad" in self.parts


@dataclass(frozen=True)
class CellSpec:
    """One unit of work with explicit inputs."""

    key: str  # stable across resumes: device/sha256-prefix/task
    task: str  # "latency" | "transcribe"
    device: DeviceConfig
    artifact: Artifact  # for "transcribe": the chain's decoder, which names the build
    runner: str
    settings: RunSettings
    cooldown: Cooldown | None
    thermal_period_s: float
    chain: ChainSpec | None = None


@dataclass(frozen=True)
class SkippedCell:
    """A device x build pair the plan named but that cannot run, with the reason."""

    device_id: str
    artifact: Artifact
    reason: str


def resolve_artifacts(plan: Plan, plan_path: Path, lines: dict) -> list[Artifact]:
    """Expand the plan's paths and globs (relative to the plan) into checked artifacts."""
    artifacts, problems = _load_artifacts(plan, plan_path, lines)
    if problems:
        raise all_problems(problems)
    return artifacts


def _load_artifacts(plan: Plan, plan_path: Path, lines: dict) -> tuple[list[Artifact], list[UserError]]:
    """The plan's artifacts, and every problem found on the way (a user fixes them all in one go)."""
    if not plan.artifacts:
        return [], []
    base = plan_path.parent
    problems: list[UserError] = []
    found: list[Path] = []
    pattern_of: dict[Path, int] = {}  # which plan line listed each file, to point at it
    for i, pattern in enumerate(plan.artifacts):
        full = str(base / pattern)
        matches = sorted(Path(p) for p in glob.glob(full)) if glob.has_magic(pattern) else [Path(full)]
        # A build's manifest and its ETRecord (the exporter's map for operator profiles) sit beside it: not builds.
        matches = [m for m in matches if not m.name.endswith(tuple(f".manifest{s}" for s in (".yaml", ".yml", ".json")))
                   and m.suffix != ".etrecord"]
        if not matches or not matches[0].exists():
            problems.append(UserError(
                f"artifacts[{i}]: '{pattern}' matches no file (looked in {base.resolve()}).",
                path=plan_path, line=lines.get(("artifacts", i)),
                fix="correct the path; it is relative to the plan file. Reference builds come from 'harness zoo build'.",
            ))
            continue
        for m in matches:
            if m not in found:
                found.append(m)
                pattern_of[m] = i
    _warn_of_stray_manifests(found)
    # The same bytes under two names are measured once per backend; one file may be listed for several backends
    # (its manifest's list, or copies whose manifests differ in the backend alone), never as two other builds.
    by_build: dict[tuple[str, str], Artifact] = {}
    for path in found:
        index = pattern_of[path]
        try:
            for art in load_artifact(path).for_each_backend():
                first = next((a for (sha, _), a in by_build.items() if sha == art.sha256), art)
                if _but_backend(first) != _but_backend(art):
                    _refuse_same_bytes(plan_path, lines.get(("artifacts", index)), first, art)
                by_build.setdefault((art.sha256, art.backend), art)
        except UserError as problem:
            problems.append(_from_the_plan(problem, path, f"artifacts[{index}]", plan_path,
                                           lines.get(("artifacts", index))))
    return list(by_build.values()), problems


def _relative(path: Path, plan_path: Path) -> str:
    """A build's path as the plan would write it: relative to the plan's folder when it is inside it."""
    return path.relative_to(plan_path.parent).as_posix() if path.is_relative_to(plan_path.parent) else str(path)


def _from_the_plan(problem: UserError, build: Path, key: str, plan_path: Path, line: int | None) -> UserError:
    """A problem of the build file itself (its suffix, its content) told at the plan line that lists it; a
    manifest's problem already names the manifest's file and line, and stays as it is."""
    if problem.line is not None or problem.path is None or Path(problem.path) != build:
        return problem
    return UserError(f"{key}: {_relative(build, plan_path)}: {problem.message}", path=plan_path, line=line,
                     fix=problem.fix)


def _but_backend(art: Artifact) -> dict:
    return {k: v for k, v in art.manifest_dict().items() if k != "backend"}


def _warn_of_stray_manifests(builds: list[Path]) -> None:
    """A manifest named after no file beside it (c.manifest.json for c.onnx) is never read: its build is
    measured with guessed values.  Say so, naming the build it was probably meant for."""
    for folder in sorted({path.parent for path in builds}):
        for manifest in sorted(folder.glob("*.manifest.*")):
            suffix = next((s for s in MANIFEST_SUFFIXES if manifest.name.endswith(s)), None)
            if suffix is None or manifest.with_name(manifest.name[: -len(suffix)]).exists():
                continue
            base = manifest.name[: -len(suffix)]
            meant = [b.name for b in builds if b.parent == folder and b.stem == base]
            fix = f"rename it to {meant[0]}{suffix}" if meant else f"name it after its build, e.g. {base}.onnx{suffix}"
            print(term_safe(f"warning: {manifest} describes no file beside it and is not read; {fix}."),
                  file=sys.stderr)


def _refuse_same_bytes(plan_path: Path, line: int | None, first: Artifact, second: Artifact) -> None:
    """Cells are keyed by bytes: one build would go unmeasured, and the other inherit its history."""
    raise UserError(f"{_relative(second.path, plan_path)} has the same bytes as {_relative(first.path, plan_path)} "
                    f"but another manifest "
                    f"({second.label} vs {first.label}); only one of them would be measured.", path=plan_path,
                    line=line, fix="export the second build again (a copy is the same build), or list only one of "
                                   "them (one ONNX file for several backends: backend: [ort-cpu, ort-qnn] in its "
                                   "manifest).")


def _unknown_devices(plan: Plan, plan_path: Path, lines: dict, inventory: Inventory) -> list[UserError]:
    """Every device id the plan names (devices, accuracy.devices) that the inventory lacks, each at its line."""
    known = [entry.id for entry in inventory.devices]
    listed = [] if "*" in plan.devices else [(("devices", i), d) for i, d in enumerate(plan.devices)]
    if plan.accuracy is not None and plan.accuracy.devices:
        listed += [(("accuracy", "devices", i), d) for i, d in enumerate(plan.accuracy.devices)]
    return [UserError(f"{format_loc(loc)}: no device '{device_id}' in the inventory {inventory.path} "
                      f"(known: {', '.join(known) or 'none'}).", path=plan_path,
                      line=lines.get(loc) or lines.get(loc[:-1]),
                      fix="correct the id in the plan, or add the device to the inventory.")
            for loc, device_id in listed if device_id not in known]


def select_devices(plan: Plan, inventory: Inventory) -> list[DeviceConfig]:
    chosen = list(inventory.devices) if "*" in plan.devices else [inventory.get(d) for d in plan.devices]
    return [expanded for config in chosen for expanded in config.expand()]


def _for_backend(settings: RunSettings, plan: Plan, *backends: str) -> RunSettings:
    """A cell with a QNN build (a latency cell's, or any part of a chain's) carries the plan's HTP power mode (it
    changes the latency, and is recorded so that a change makes nights not comparable); other cells carry none."""
    if any(backend in QNN_BACKENDS for backend in backends):
        return replace(settings, htp_performance_mode=plan.htp_performance_mode)
    return settings


def expand_plan(plan: Plan, plan_path: Path, lines: dict, inventory: Inventory) -> tuple[list[CellSpec], list[SkippedCell]]:
    """All cells of a plan, in a stable order, plus the pairs that cannot run and why."""
    artifacts, problems = _load_artifacts(plan, plan_path, lines)
    problems = _unknown_devices(plan, plan_path, lines, inventory) + problems
    if problems:  # every unknown device and every bad build at once, not one per attempt
        raise all_problems(problems)
    devices = select_devices(plan, inventory)
    _check_llm_room(plan, plan_path, lines, artifacts)
    settings = RunSettings(
        warmup_iterations=plan.warmup_iterations, iterations=plan.iterations,
        timeout_s=plan.timeout_s, threads=plan.threads, seed=plan.seed,
        llm_prompt=plan.llm.prompt, llm_seq_len=plan.llm.seq_len, runs=plan.runs, profile_runs=plan.profile_runs,
    )
    # A transcription cell is one pass over the corpus: its latencies are per utterance, and a corpus
    # transcribed again would give the same transcripts at several times the cost.
    cells, skipped = _accuracy_cells(plan, plan_path, lines, inventory, replace(settings, runs=1, profile_runs=0), devices)
    shas = [art.sha256 for art in artifacts]
    for device in devices:
        for art in artifacts:
            if art.backend not in device.backends:
                skipped.append(SkippedCell(device.id, art, f"device offers {', '.join(device.backends)}; "
                                                           f"the build needs {art.backend}"))
                continue
            runner = select_runner(device.platform, art, task="latency")
            if runner is None:
                why = f"no runner measures {art.stage} {art.format} builds on {device.platform}"
                if select_runner(device.platform, art, task="transcribe"):
                    why += f" (a bundled ASR program is transcribed: list it under accuracy.chains as {{name, model}})"
                skipped.append(SkippedCell(device.id, art, why))
                continue
            if runner == onnxruntime_perf_test.NAME:
                onnxruntime_perf_test.check_ort_libraries(
                    device, art.backend, inventory.path,
                    lambda: _inventory_line(inventory, device.id, "tools", onnxruntime_perf_test.ORT_LIBS_KEY))
            _check_qnn_libraries(inventory, device, [art])
            cells.append(CellSpec(
                key=_latency_key(device.id, art, several_backends=shas.count(art.sha256) > 1), task="latency",
                device=device, artifact=art,
                runner=runner, settings=_for_backend(settings, plan, art.backend), cooldown=plan.cooldown,
                thermal_period_s=plan.thermal_period_s,
            ))
    return cells, skipped


def _check_qnn_libraries(inventory: Inventory, device: DeviceConfig, builds) -> None:
    """At load, for a phone's cell that runs any of ``builds`` (a latency cell's build, a chain's every part) on
    qnn or ort-qnn: the QNN libraries it needs are there (qnn_executor_runner.check_qnn_libraries), or the load
    stops naming the inventory line, instead of the cell failing once the night has started."""
    if device.platform != "android":
        return
    for backend in sorted({build.backend for build in builds} & QNN_BACKENDS):
        qnn_executor_runner.check_qnn_libraries(device, backend, inventory.path,
                                                lambda: _inventory_line(inventory, device.id, "tools"))


def _inventory_line(inventory: Inventory, device_id: str, *keys: str) -> int | None:
    """The inventory line of a device entry's key (an entry with ``serial: '*'`` stands for devices named
    ``<id>-<serial>``)."""
    from harness.yamlconf import load_data

    _, lines = load_data(inventory.path)
    ids = [entry.id for entry in inventory.devices]
    index = ids.index(device_id) if device_id in ids else next(
        (i for i, entry_id in enumerate(ids) if device_id.startswith(f"{entry_id}-")), None)
    return None if index is None else lines.get(("devices", index, *keys))


def _latency_key(device_id: str, art: Artifact, several_backends: bool) -> str:
    """A latency cell's key: device and bytes, and the backend when the plan measures those bytes on several (the
    keys of a build on one backend stay as they were, so --resume of an earlier run finds its cells)."""
    return f"{device_id}/{art.sha256[:16]}/{art.backend}/latency" if several_backends else \
        f"{device_id}/{art.sha256[:16]}/latency"


def _check_llm_room(plan: Plan, plan_path: Path, lines: dict, artifacts: list[Artifact]) -> None:
    """Refuse an ``llm.seq_len`` the prompt fills: the runner would stop at once ("Max new tokens 0 is less than
    or equal to 0") on every night.  Counted with each LLM build's own tokenizer when it is a Hugging Face
    ``tokenizer.json`` here and the tokenizers package is installed; otherwise the failed run's reason names it."""
    for art in artifacts:
        prompt_tokens = _prompt_tokens(art, plan.llm.prompt) if art.stage == "llm" else None
        if prompt_tokens is not None and plan.llm.seq_len <= prompt_tokens:
            raise UserError(f"llm.seq_len is {plan.llm.seq_len} but the prompt alone is {prompt_tokens} tokens with "
                            f"{art.path.name}'s tokenizer: no token would be generated.", path=plan_path,
                            line=lines.get(("llm", "seq_len")) or lines.get(("llm",)),
                            fix=f"set llm.seq_len to at least {prompt_tokens + 2} (prompt + generated tokens), "
                                "or shorten llm.prompt.")


def _prompt_tokens(art: Artifact, prompt: str) -> int | None:
    """How many tokens ``prompt`` is with the build's tokenizer companion, or None when it cannot be counted here."""
    import importlib.util

    tokenizer = art.companions.get("tokenizer")
    if tokenizer is None or tokenizer.suffix != ".json" or importlib.util.find_spec("tokenizers") is None:
        return None
    from tokenizers import Tokenizer

    try:
        return len(Tokenizer.from_file(str(tokenizer)).encode(prompt).ids)
    except Exception:  # noqa: BLE001 - a tokenizer this library cannot read: the runner says what is wrong with it
        return None


def _chain_part(plan_path: Path, lines: dict, index: int, role: str, rel: str) -> Artifact:
    path = plan_path.parent / rel
    if not path.exists():
        raise UserError(f"accuracy.chains[{index}].{role}: '{rel}' does not exist (looked in {plan_path.parent.resolve()}).",
                        path=plan_path, line=lines.get(("accuracy", "chains", index, role)),
                        fix="correct the path; reference builds come from 'harness zoo build'.")
    artifact = load_artifact(path)
    wanted = ROLE_STAGES[role]
    if artifact.stage not in (wanted, "unknown"):  # unknown: no manifest and no telling name, nothing to check
        raise UserError(f"accuracy.chains[{index}].{role}: '{rel}' is a {artifact.stage} build; a chain's {role} "
                        f"is a {wanted} build.", path=plan_path, line=lines.get(("accuracy", "chains", index, role)),
                        fix=f"name a {wanted} build for '{role}' (or correct the 'stage' in that build's manifest).")
    return artifact


def _accuracy_cells(plan: Plan, plan_path: Path, lines: dict, inventory: Inventory, settings: RunSettings,
                    default_devices: list[DeviceConfig]) -> tuple[list[CellSpec], list[SkippedCell]]:
    """Transcription cells: each chain on each accuracy device, after checking the corpus and builds."""
    from harness.accuracy.corpus import load_checked

    acc = plan.accuracy
    if acc is None:
        return [], []
    corpus_path = plan_path.parent / acc.corpus
    load_checked(corpus_path)  # a bad corpus stops the run before anything is measured
    devices = [e for d in acc.devices for e in inventory.get(d).expand()] if acc.devices else default_devices
    cells, skipped = [], []
    for i, chain in enumerate(acc.chains):
        spec = ChainSpec(chain.name, {role: _chain_part(plan_path, lines, i, role, rel)
                                      for role, rel in chain.roles().items()}, corpus=corpus_path, limit=acc.limit)
        build = spec.build
        for device in devices:
            missing = sorted({a.backend for a in spec.parts.values()} - set(device.backends))
            if missing:
                skipped.append(SkippedCell(device.id, build, f"chain {chain.name} needs {', '.join(missing)}"))
                continue
            task = "pipeline" if spec.is_pipeline else "transcribe"  # a runner that can, stores it as transcripts
            runner = select_runner(device.platform, build, task=task)
            if runner is None:
                what = "runs the voice pipeline with" if spec.is_pipeline else "transcribes"
                skipped.append(SkippedCell(device.id, build, f"no runner {what} {build.label} on {device.platform}"))
                continue
            _check_qnn_libraries(inventory, device, spec.parts.values())
            cells.append(CellSpec(
                key=f"{device.id}/{build.sha256[:16]}/transcribe/{chain.name}", task="transcribe",
                device=device, artifact=build, runner=runner, cooldown=plan.cooldown,
                settings=_for_backend(settings, plan, *(part.backend for part in spec.parts.values())),
                thermal_period_s=plan.thermal_period_s, chain=spec,
            ))
    return cells, skipped
