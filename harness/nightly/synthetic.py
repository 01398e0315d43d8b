"""A synthetic history of nights, written through the store's own API.

For the report-generation benchmark (a year of nights) and for tests of history
features; every row is labelled as synthetic (plan name, device facts, runner) so it can
never be mistaken for a measurement.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from harness.devices.base import DeviceFacts
from harness.run.cell import CellResult
from harness.runners.base import Measurement, RunSettings
from harness.store.db import Store

QUANTS = ("fp32", "int8", "int4")
STAGES = ("vad", "mel", "asr-encoder", "asr-decoder", "llm")


@dataclass(frozen=True)
class SyntheticBuild:
    """Just what the store records of a build."""

    sha256: str
    model: str
    stage: str
    quantization: str
    format: str = "pte"
    backend: str = "xnnpack"
    size_bytes: int = 10_000_000
    path: Path = Path("synthetic")
    inferred: list[str] = field(default_factory=list)

    def manifest_dict(self) -> dict:
        return {"model": self.model, "stage": self.stage, "synthetic": True}


def write_synthetic_history(db: Path, nights: int, devices: int, builds: int, samples: int,
                            step: tuple[int, int, float] | None = None, seed: int = 0,
                            plan_name: str = "synthetic-nightly", runs: int = 5,
                            between_run_sd: float = 0.02, step_new_bytes: bool = False) -> list[str]:
    """Write ``nights`` complete runs of devices x builds cells, each ``runs`` runs of ``samples // runs``
    iterations (lognormal within a run, a lognormal run effect of ``between_run_sd``); return run ids.

    ``step = (night, build_index, factor)`` multiplies that build's latency from that night on; with
    ``step_new_bytes`` the stepped build is new bytes of the same identity from then on (a slower new build),
    else the same bytes (the machine moved).
    """
    rng = np.random.default_rng(seed)
    start = datetime(2025, 11, 21, 2, 30, tzinfo=timezone.utc)
    per_run = max(1, samples // runs)
    settings = RunSettings(warmup_iterations=0, iterations=per_run, timeout_s=60, runs=runs)
    run_ids = []
    with Store(db, durable=False) as store:
        artifacts = []
        for b in range(builds):
            art = SyntheticBuild(hashlib.sha256(f"synthetic-{b}".encode()).hexdigest(), f"synthetic-{b}",
                                 STAGES[b % len(STAGES)], QUANTS[b % len(QUANTS)])
            store.record_artifact(art)
            artifacts.append((art, 5.0 + 3.0 * b))
        if step and step_new_bytes:
            stepped = artifacts[step[1]][0]
            rebuilt = SyntheticBuild(hashlib.sha256(f"{stepped.sha256}-step".encode()).hexdigest(), stepped.model,
                                     stepped.stage, stepped.quantization)
            store.record_artifact(rebuilt)
        for night in range(nights):
            when = (start + timedelta(days=night)).isoformat(timespec="seconds")
            run_id = store.create_run(plan_name, Path("synthetic"), "0" * 64, {"vad": 10, "asr": 150},
                                      {"synthetic": True}, run_id=f"synthetic-{night:04d}", plan_text="synthetic",
                                      started_at=when)
            run_ids.append(run_id)
            for d in range(devices):
                device = SimpleNamespace(id=f"phone-{d}")
                store.record_device(run_id, DeviceFacts(device.id, "android", True, {"model": "synthetic"}), {})
                for b, (art, base_ms) in enumerate(artifacts):
                    factor = step[2] if step and night >= step[0] and b == step[1] else 1.0
                    if factor != 1.0 and step_new_bytes:
                        art = rebuilt
                    spec = SimpleNamespace(key=f"{device.id}/{art.sha256[:16]}/latency", device=device, artifact=art,
                                           task="latency", runner="synthetic", settings=settings, chain=None)
                    for r in range(runs):
                        level = base_ms * factor * rng.lognormal(0, between_run_sd)
                        values = level * rng.lognormal(0, 0.05, per_run)
                        result = CellResult(key=spec.key, status="ok", started_at=when, finished_at=when,
                                            measurement=Measurement(samples_ms=[float(v) for v in values]))
                        store.record_run(run_id, spec, r, result)
            store.set_run_status(run_id, "complete")
    return run_ids
