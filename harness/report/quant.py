"""The INT4-versus-INT8 table: is INT4 worth it, per device and pipeline stage?

Pairs builds that differ only in quantization (same device, model, stage, format,
backend), and chains whose encoder and decoder differ only in quantization.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.profile.diff import OperatorDiff, operator_diff
from harness.profile.records import profile_noise_ms
from harness.stats.compare import ALPHA, DEFAULT_THRESHOLD, LatencyComparison, compare_runs
from harness.stats.runlevel import LEVEL

# The table prints each ratio's interval beside its verdict, so the interval is the test's own (1 - ALPHA): it
# excludes 1 exactly when the verdict's test is significant.
QUANT_CI_LEVEL = 1 - ALPHA


@dataclass
class QuantPair:
    device_id: str
    subject: str  # "whisper-tiny.en asr-encoder onnx/ort-cpu" or a chain pair
    latency: LatencyComparison | None  # B = int4 against A = int8
    wer: object | None  # harness.accuracy.bootstrap.PairedComparison
    size_ratio: float | None
    operators: object | None = None  # harness.profile.diff.OperatorDiff, B against A, when both were profiled


def paired_runs(a_cell, b_cell, threshold: float = DEFAULT_THRESHOLD, alpha: float = ALPHA,
                ci_level: float = LEVEL) -> LatencyComparison:
    """B against A where both were measured in the same rounds: run i of each is a pair in time."""
    a = {r["run_index"]: r for r in a_cell.runs if r["status"] == "ok"}
    b = {r["run_index"]: r for r in b_cell.runs if r["status"] == "ok"}
    rounds = sorted(set(a) & set(b))
    return compare_runs([a[i]["p50_ms"] for i in rounds], [b[i]["p50_ms"] for i in rounds],
                        [a[i]["p95_ms"] for i in rounds], [b[i]["p95_ms"] for i in rounds], paired=True,
                        threshold=threshold, alpha=alpha, ci_level=ci_level)


# The engine measures a chain's utterances in one process and the next chain after it, not alternately: load that
# came or went between them is in every "pair", so a paired test on utterances would claim what it cannot know
# (identical VAD builds measured 16.4 and 7.71 ms).  The row gives the ratios and says why there is no verdict.
NOT_SIDE_BY_SIDE = "not side by side"


def chains_one_after_another(a_ms: list[float], b_ms: list[float]) -> LatencyComparison:
    """B / A of the per-utterance medians and P95s of two chains measured one after the other: no interval,
    no test, and the reason says so."""
    from harness.stats import per_utterance_p95, percentile

    a_p95, b_p95 = per_utterance_p95(a_ms), per_utterance_p95(b_ms)
    ratio = percentile(b_ms, 50) / percentile(a_ms, 50) if a_ms and b_ms else float("nan")
    p95 = b_p95 / a_p95 if a_p95 and b_p95 else None
    return LatencyComparison(len(a_ms), len(b_ms), ratio, None, p95, None, None, False, None, None, NOT_SIDE_BY_SIDE,
                             "the chains ran one after the other, not alternately, so load that changed between "
                             "them is in the ratio: no paired significance is claimed; measure them again to confirm",
                             ci_level=QUANT_CI_LEVEL)


def _differ_only_in_quantization(a: dict, b: dict) -> bool:
    """Two chains are an INT4/INT8 pair when they have the same parts (a voice pipeline is no pair for a plain
    chain: its ASR hears only what its VAD kept) on the same backends, and only quantizations differ."""
    parts = lambda chain: {role: part for role, part in chain.items() if isinstance(part, dict)}  # noqa: E731
    pa, pb = parts(a), parts(b)
    return pa.keys() == pb.keys() and all(pa[role].get("backend") == pb[role].get("backend") for role in pa)


def operator_diff_of(a, b) -> OperatorDiff | None:
    """Which operators explain cell view ``b``'s change against ``a`` (INT4 against INT8, tonight against the
    baseline); a change within either profile's own spread between inferences is not put on them, nor one that
    disagrees with the change of the cells' measured P50s (harness.profile.diff.disagreement)."""
    if not (a.operators and b.operators):
        return None
    noise_ms = max(profile_noise_ms(a.cell.profiles), profile_noise_ms(b.cell.profiles))
    measured = [getattr(view.summary, "p50_ms", None) for view in (a, b)]
    measured_change_ms = measured[1] - measured[0] if None not in measured else None
    return operator_diff(a.operators, b.operators, noise_ms=noise_ms, measured_change_ms=measured_change_ms)


def quant_pairs(data, low: str = "int4", high: str = "int8") -> list[QuantPair]:
    pairs: list[QuantPair] = []
    by_key: dict[tuple, dict[str, object]] = {}
    for view in data.cells:
        a = view.cell.artifact
        if view.summary is None or view.role:  # not the plan's own builds
            continue
        key = (view.cell.device_id, a["model"], a["stage"], a["format"], a["backend"])
        by_key.setdefault(key, {})[a["quantization"]] = view
    for (device, model, stage, fmt, backend), views in sorted(by_key.items()):
        if low in views and high in views:
            a, b = views[high], views[low]
            pairs.append(QuantPair(device, f"{model} {stage} {fmt}/{backend}",
                                   paired_runs(a.cell, b.cell, ci_level=QUANT_CI_LEVEL),
                                   None, b.cell.artifact["size_bytes"] / a.cell.artifact["size_bytes"],
                                   operator_diff_of(a, b)))
    for cmp in data.comparisons:
        qa, qb = cmp.a.asr_parts[-1]["quantization"], cmp.b.asr_parts[-1]["quantization"]
        if (qa, qb) == (high, low) and _differ_only_in_quantization(cmp.a.chain, cmp.b.chain):
            size = lambda c: sum(part["size_bytes"] for part in c.asr_parts)
            # Utterances are the units here: both chains transcribed the same ones, so pair by utterance.
            a_ms = {t["utt_id"]: t["total_ms"] for t in cmp.a.cell.transcripts}
            b_ms = {t["utt_id"]: t["total_ms"] for t in cmp.b.cell.transcripts}
            ids = sorted(set(a_ms) & set(b_ms))
            latency = chains_one_after_another([a_ms[i] for i in ids], [b_ms[i] for i in ids])
            pairs.append(QuantPair(cmp.device_id, f"chain {cmp.a.chain['name']} → {cmp.b.chain['name']} (per utterance)",
                                   latency, cmp.result, size(cmp.b) / size(cmp.a)))
    return pairs


def stage_verdicts(data) -> list:
    """One tile per device and stage (harness.report.verdict.Tile): the worst verdict of every row under it."""
    return data.tiles
