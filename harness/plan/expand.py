"""Turn a plan into cells: one device x one build x one task, each runnable on its own.

A cell carries everything it needs (device entry, artifact, settings) so that a
later scheduler can send it to another host without this process's state.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from harness.artifacts import Artifact, load_artifact
from harness.errors import UserError
from harness.inventory import DeviceConfig, Inventory
from harness.plan.models import Cooldown, Plan
from harness.runners import RunSettings, select_runner


@dataclass(frozen=True)
class CellSpec:
    """One unit of work with explicit inputs."""

    key: str  # stable across resumes: device/sha256-prefix/task
    task: str  # "latency" for now
    device: DeviceConfig
    artifact: Artifact
    runner: str
    settings: RunSettings
    cooldown: Cooldown | None
    thermal_period_s: float


@dataclass(frozen=True)
class SkippedCell:
    """A device x build pair the plan named but that cannot run, with the reason."""

    device_id: str
    artifact: Artifact
    reason: str


def resolve_artifacts(plan: Plan, plan_path: Path, lines: dict) -> list[Artifact]:
    """Expand the plan's paths and globs (relative to the plan) into checked artifacts."""
    base = plan_path.parent
    found: list[Path] = []
    for i, pattern in enumerate(plan.artifacts):
        full = str(base / pattern)
        matches = sorted(Path(p) for p in glob.glob(full)) if glob.has_magic(pattern) else [Path(full)]
        matches = [m for m in matches if not m.name.endswith(tuple(f".manifest{s}" for s in (".yaml", ".yml", ".json")))]
        if not matches or not matches[0].exists():
            raise UserError(
                f"artifacts[{i}]: '{pattern}' matches no file (looked in {base.resolve()}).",
                path=plan_path, line=lines.get(("artifacts", i)),
                fix="correct the path; it is relative to the plan file. Reference builds come from 'harness zoo build'.",
            )
        found.extend(m for m in matches if m not in found)
    artifacts = [load_artifact(p) for p in found]
    by_sha: dict[str, Artifact] = {}
    for art in artifacts:
        by_sha.setdefault(art.sha256, art)  # the same bytes under two names are measured once
    return list(by_sha.values())


def select_devices(plan: Plan, inventory: Inventory) -> list[DeviceConfig]:
    if "*" in plan.devices:
        return list(inventory.devices)
    return [inventory.get(device_id) for device_id in plan.devices]


def expand_plan(plan: Plan, plan_path: Path, lines: dict, inventory: Inventory) -> tuple[list[CellSpec], list[SkippedCell]]:
    """All cells of a plan, in a stable order, plus the pairs that cannot run and why."""
    devices = select_devices(plan, inventory)
    artifacts = resolve_artifacts(plan, plan_path, lines)
    settings = RunSettings(
        warmup_iterations=plan.warmup_iterations, iterations=plan.iterations,
        timeout_s=plan.timeout_s, threads=plan.threads, seed=plan.seed,
    )
    cells, skipped = [], []
    for device in devices:
        for art in artifacts:
            if art.backend not in device.backends:
                skipped.append(SkippedCell(device.id, art, f"device offers {', '.join(device.backends)}; "
                                                           f"the build needs {art.backend}"))
                continue
            runner = select_runner(device.platform, art)
            if runner is None:
                skipped.append(SkippedCell(device.id, art, f"no runner measures {art.format} on {device.platform}"))
                continue
            cells.append(CellSpec(
                key=f"{device.id}/{art.sha256[:16]}/latency", task="latency", device=device, artifact=art,
                runner=runner, settings=settings, cooldown=plan.cooldown, thermal_period_s=plan.thermal_period_s,
            ))
    return cells, skipped
