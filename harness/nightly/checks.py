"""Checks of one run against its baseline: latency, WER, size, budgets, failures.

Cells are matched by what they measure, not by bytes: a latency cell by device and
build identity (model, stage, format, backend, quantization), a transcription cell by
device and chain name.  A new build of the same configuration is exactly what a
nightly must compare against last night's.
"""

from __future__ import annotations

from harness.accuracy.bootstrap import paired_bootstrap
from harness.nightly.noise import NoiseFloor
from harness.report.quant import operator_diff_of
from harness.report.model import ReportData
from harness.report.verdict import CHAIN_GROUP, MISSING, TOO_FEW_UTTERANCES, Check, run_judgements
from harness.run.engine import REF_SUFFIX, identity_of
from harness.runners.base import RunSettings
from harness.stats.compare import ALPHA, DEFAULT_THRESHOLD, compare_runs

# A level that moved while bytes, settings and device facts stayed the same: the machine or phone changed, not
# the build.  Reported beside the verdict, never failing it; a lasting move is caught by the history check.
SHIFT = "shift"
# A changed build is compared with last night's bytes paired by round, in up to two looks (the second after
# extra rounds, when the first was too noisy to call): each look tests at half the significance level, so
# the two together call a change that is not there no more often than one look at ALPHA would (Bonferroni).
PAIRED_ALPHA = ALPHA / 2
# The run-level quantile the paired gate compares (see paired_gate).
GATE_QUANTILE = 10
# Device facts that change from hour to hour without changing what a latency means; "controller" is the lab
# node that drove the phone (a phone moved to another controller host measures the same).
VOLATILE_FACTS = ("battery_", "uptime", "controller")


def _identity(view) -> tuple:
    return identity_of(view.cell.device_id, view.cell.artifact)


def _facts(report: ReportData, device_id: str) -> dict:
    facts = next((d["facts"] for d in report.devices if d["device_id"] == device_id), {})
    return {k: v for k, v in facts.items() if not k.startswith(VOLATILE_FACTS)}


def not_comparable(before, now, before_facts: dict, now_facts: dict) -> str | None:
    """Why two cells of the same build identity cannot be compared (asv's benchmark versions), or None."""
    reasons = []
    for key in RunSettings.COMPARABLE:
        a, b = before.cell.settings.get(key), now.cell.settings.get(key)
        if a != b:
            reasons.append(f"{key} {RunSettings.shown(key, a)} -> {RunSettings.shown(key, b)}")
    if before.cell.runner != now.cell.runner:
        reasons.append(f"runner {before.cell.runner} -> {now.cell.runner}")
    ra, rb = before.cell.extra.get("runner_sha256"), now.cell.extra.get("runner_sha256")
    if ra and rb and ra != rb:
        reasons.append(f"runner binary {ra[:12]} -> {rb[:12]}")
    for key in sorted(set(before_facts) | set(now_facts)):
        if before_facts.get(key) != now_facts.get(key):
            reasons.append(f"device {key} {before_facts.get(key, '–')} -> {now_facts.get(key, '–')}")
    return "; ".join(reasons) or None


def paired_gate(reference_cell, now_cell, threshold: float = DEFAULT_THRESHOLD, alpha: float = PAIRED_ALPHA):
    """Tonight's build against last night's bytes re-measured in the same rounds, on each run's P10.

    Why P10 and not the median: the noise of a shared machine (or a phone's background work) mostly
    adds time, in bursts that hit one process and not the next, while a build that does more work is
    slower at every quantile.  A run's low quantile carries its cost with the least of that noise
    (Chen & Revels, "Robust benchmarking in noisy environments", 2016, the reasoning behind
    BenchmarkTools.jl's minimum; P10 by Harrell-Davis rather than the minimum, so one lucky
    iteration or a millisecond clock does not decide).  Measured here with MLPs 10% heavier, 24
    paired rounds, twice: the paired t of P10 was 1.4-1.7x that of the median, and 12 rounds found
    the slowdown in 100% of resamples against 48-100% for medians.  Summary-only runners have no
    P10; their pairs are compared on the runner's own P50s."""
    from harness.report.quant import paired_runs

    a, b = reference_cell.run_quantile_ms(GATE_QUANTILE), now_cell.run_quantile_ms(GATE_QUANTILE)
    rounds = sorted(set(a) & set(b))
    # Its interval is printed beside its verdict: at the test's own level (1 - alpha), so it excludes 1 exactly when
    # the test is significant.
    if len(rounds) < 2:
        return paired_runs(reference_cell, now_cell, threshold=threshold, alpha=alpha, ci_level=1 - alpha)
    return compare_runs([a[i] for i in rounds], [b[i] for i in rounds], paired=True, threshold=threshold,
                        alpha=alpha, statistic=f"P{GATE_QUANTILE}", ci_level=1 - alpha)


def second_look_words(reference_cell, now_cell) -> str:
    """What the reason says when the pair was measured in more rounds than the plan's (the second look)."""
    rounds = min(len(reference_cell.runs), len(now_cell.runs))
    if rounds <= now_cell.runs_planned:
        return ""
    return (f"; a second look ran: {rounds} rounds instead of the plan's {now_cell.runs_planned}, because the first "
            f"was too noisy to call; each look tests at α = {PAIRED_ALPHA:g}, so the two together at {ALPHA:g}")


def _unseen_move_words(cmp) -> str:
    """What runs too spread to call could not see. 'Too noisy' comes only with at least MIN_RUNS runs a side (fewer
    are 'too few runs'), so the fix is more runs than these, never the minimum the plan already meets."""
    if cmp.mde_ratio is not None:
        return f"a move of the machine smaller than {cmp.mde_ratio - 1:+.0%} would not show in these runs"
    runs = min(cmp.runs_a, cmp.runs_b)
    return (f"too few runs ({runs}) to detect a move of the machine of this size; more runs (e.g. {2 * runs}) "
            "narrow it")


def latency_check(before, now, threshold: float, floor: NoiseFloor | None, reference=None,
                  ci_level: float = 1 - ALPHA, baseline: str = "last night") -> Check:
    """One cell against last night's.

    With ``reference`` (last night's bytes re-measured tonight, in the same rounds) the comparison is
    paired by round, so whatever the machine did tonight cancels.  Otherwise night against night on
    run-level values, with the cell's learned night-to-night spread; then a change of a build whose
    bytes did not change is a 'shift' of the environment, reported and not failing.
    ``baseline``: how the reasons name ``before`` ("last night"; ``harness compare`` says "in RUN_ID").
    """
    def status_of(cmp, *cells) -> str:
        status = {"slower": "regression", "faster": "improvement", "no change": "pass"}.get(cmp.verdict, cmp.verdict)
        if status == "regression" and any(c.cell.throttled for c in cells):
            return "suspect"  # a throttled night is reported, neither hidden nor trusted
        return status

    if reference is not None:
        cmp = paired_gate(reference.cell, now.cell, threshold=threshold)
        data = {**cmp.as_dict(), "against": "last night's build re-measured tonight, paired by round"}
        status = status_of(cmp, reference, now)
        return _explained(Check(now.cell.device_id, now.cell.label, "latency", status,
                                cmp.reason + " (against last night's build, re-measured tonight)"
                                + second_look_words(reference.cell, now.cell), data),
                          reference if _has_operators(reference) else before, now)
    a, b = before.cell.run_values(), now.cell.run_values()
    cmp = compare_runs([r.p50_ms for r in a], [r.p50_ms for r in b], [r.p95_ms for r in a], [r.p95_ms for r in b],
                       threshold=threshold, noise_floor=floor.fraction if floor else None,
                       night_sd=floor.night_sd if floor else 0.0, ci_level=ci_level)
    status = status_of(cmp, before, now)
    same_bytes = before.cell.artifact["sha256"] == now.cell.artifact["sha256"]
    if status in ("regression", "improvement", "suspect") and same_bytes:
        return _explained(Check(now.cell.device_id, now.cell.label, "latency", SHIFT,
                                f"{cmp.reason}; the build, its settings and the device facts are unchanged, so the "
                                "device or machine moved, not the build", cmp.as_dict()), before, now)
    data = cmp.as_dict()
    if floor is not None:
        data.update(noise_floor_sources=floor.sources, night_sd=floor.night_sd)
    if status == "too noisy" and same_bytes:
        # Nothing of the build can have changed (the same bytes, settings and device facts), so there is no
        # change to call; what the runs could not resolve is a move of the machine: said, not flagged as
        # undecided on every night a build is left alone.
        return Check(now.cell.device_id, now.cell.label, "latency", "pass",
                     f"the same bytes, settings and device facts as {baseline} (median {cmp.ratio - 1:+.1%}); "
                     + _unseen_move_words(cmp), data)
    return _explained(Check(now.cell.device_id, now.cell.label, "latency", status, cmp.reason, data), before, now)


# A latency change called either way (or a same-bytes move): what an engineer chasing it wants next is which
# operators moved.  "pass" and "too noisy" called no change, so no operator explains one.
EXPLAINED = ("regression", "improvement", "suspect", SHIFT)


def _has_operators(view) -> bool:
    return view is not None and bool(getattr(view, "operators", None))


def _explained(check: Check, before, now) -> Check:
    """A called change with both cells profiled gains the per-operator difference (harness.profile.diff): in its
    detail "top 3 operators explain X% of the change: ...", in its data each operator's move.  ``before`` is the
    cell the change was measured against (last night's bytes re-measured tonight, when there are such)."""
    if check.status not in EXPLAINED or not (_has_operators(before) and _has_operators(now)):
        return check
    diff = operator_diff_of(before, now)
    if diff is None or not (diff.top or diff.refused):  # within the profiles' own noise: nothing to say
        return check
    # A profiled change against the measured one is said plainly, not left out: the reader would look for a line.
    check.detail += f"; per operator (profiling runs): {diff.reading()}"
    check.data["operators"] = {"change_ms": diff.change_ms, "explained_share": diff.explained_share,
                               "measured_change_ms": diff.measured_change_ms, "refused": diff.refused,
                               "others_ms": diff.others_ms,
                               "top": [{"name": c.name, "backend": c.backend, "before_ms": c.a_ms, "now_ms": c.b_ms,
                                        "delta_ms": c.delta_ms} for c in diff.top]}
    return check


def run_checks(current: ReportData, baseline: ReportData | None, threshold: float = DEFAULT_THRESHOLD,
               floors: dict[tuple, NoiseFloor] | None = None) -> list[Check]:
    """Every check for ``current``; comparisons only where ``baseline`` has the same, comparable cell."""
    floors = floors or {}
    base_cells = {_identity(v): v for v in baseline.cells if not v.role} if baseline else {}
    references = {_identity(v): v for v in current.cells
                  if v.cell.cell_key.endswith(REF_SUFFIX) and v.summary is not None}
    base_chains = {(c.cell.device_id, c.chain.get("name")): c for c in baseline.chains} if baseline else {}
    checks: list[Check] = run_judgements(current)  # budgets and failures: the run on its own
    for view in current.cells:
        if view.role or view.verdict == "failed":  # extra cells are not the plan's own; a failure is judged
            continue
        for check in _comparisons(view, baseline, current, base_cells, references, threshold, floors):
            check.group = view.cell.artifact["stage"]
            checks.append(check)
    for chain in current.chains:
        name = chain.chain.get("name")
        before = base_chains.get((chain.cell.device_id, name))
        same_utts = before is not None and [u.id for u in before.score.utterances] == [u.id for u in chain.score.utterances]
        if not same_utts or not chain.score.words:
            checks.append(Check(chain.cell.device_id, name, "wer", "new",
                                "no baseline transcripts of the same utterances"))
            continue
        checks.append(wer_check(before, chain))
    for chain in current.chains:
        before = base_chains.get((chain.cell.device_id, chain.chain.get("name")))
        if before is not None:
            checks += chain_change_checks(before, chain, threshold)
    return checks + missing_tonight(current, baseline)


def _size_check(device_id: str, subject: str, before_bytes: int, now_bytes: int, threshold: float,
                group: str = "") -> Check | None:
    """A build's size against the baseline's, beyond the threshold: sizes are exact, so no test is needed."""
    ratio = now_bytes / before_bytes
    if abs(ratio - 1) <= threshold:
        return None
    return Check(device_id, subject, "size", "regression" if ratio > 1 else "improvement",
                 f"size x{ratio:.3f} ({before_bytes} -> {now_bytes} bytes)", {"ratio": ratio}, group=group)


def chain_change_checks(before, now, threshold: float) -> list[Check]:
    """What changed in a chain since the baseline: each changed part's size (exact), and, when parts changed, a
    per-utterance P95 that moved beyond the threshold, called out as undecided.  A chain is one pass over the corpus
    per night, so there is no run-to-run spread to judge a latency change against: the move is shown, not judged
    (the chain's builds, measured as plan cells, get the verdict)."""
    name, device = now.chain.get("name"), now.cell.device_id
    changed = {role: (before.chain[role], part) for role, part in now.chain.items()
               if isinstance(part, dict) and isinstance(before.chain.get(role), dict)
               and before.chain[role].get("sha256") != part.get("sha256")}
    out = [check for role, (old, part) in changed.items() if old.get("size_bytes") and part.get("size_bytes")
           and (check := _size_check(device, f"chain {name} {role}", old["size_bytes"], part["size_bytes"],
                                     threshold, CHAIN_GROUP))]
    a, b = before.timing.get("p95_total_ms"), now.timing.get("p95_total_ms")
    # Only a chain whose bytes changed: the same bytes moving from one pass to the next is the machine, every
    # night a little (it would fill the banner), and its builds' own cells say so as a shift.
    if changed and a and b and abs(b / a - 1) > threshold:
        out.append(Check(device, name, "latency", "too few runs",
                         f"per-utterance P95 {a:.0f} -> {b:.0f} ms (x{b / a:.2f}; changed parts: {', '.join(changed)});"
                         " one pass per night, so not judged: measure the chain's builds as plan cells for a verdict",
                         {"ratio": b / a}, group=CHAIN_GROUP))
    return out


def missing_tonight(current: ReportData, baseline: ReportData | None) -> list[Check]:
    """A failing check for every baseline cell and chain with no counterpart in ``current``, matched as the
    comparisons match them (build identity; device and chain name)."""
    if baseline is None:
        return []
    tonight = {_identity(v) for v in current.cells if not v.role}
    # A chain that ran and failed tonight is there (its failure is the failing check), not missing as well.
    chains_tonight = {(c.cell.device_id, c.chain.get("name")) for c in current.chains}
    chains_tonight |= {(v.cell.device_id, v.cell.extra.get("chain", {}).get("name")) for v in current.cells
                       if v.cell.task == "transcribe"}
    detail = f"measured in baseline {baseline.run.run_id}, not in this run"
    out = [Check(v.cell.device_id, v.cell.label, "latency", MISSING, detail, group=v.cell.artifact["stage"])
           for v in baseline.cells if not v.role and _identity(v) not in tonight]
    out += [Check(c.cell.device_id, c.chain.get("name"), "wer", MISSING, detail, group=CHAIN_GROUP)
            for c in baseline.chains if (c.cell.device_id, c.chain.get("name")) not in chains_tonight]
    return out


def _unpaired_why(view, current: ReportData) -> str:
    """Why a changed build was compared night against night, not paired with last night's bytes re-measured
    tonight (the nightly re-measures them from the build cache): said, so a weaker test is not taken for the
    paired one."""
    tried = [v for v in current.cells if v.cell.cell_key.endswith(REF_SUFFIX) and _identity(v) == _identity(view)]
    if tried:
        return ("not paired: last night's build was re-measured tonight but that measurement failed, so this is "
                "night against night")
    return ("not paired: last night's build is no longer in the build cache, so it could not be re-measured "
            "tonight and this is night against night")


def _comparisons(view, baseline, current, base_cells, references, threshold, floors) -> list[Check]:
    """A plan cell against the baseline's cell of the same build identity: latency, and size when it moved."""
    label = view.cell.label
    before = base_cells.get(_identity(view))
    if before is None or before.summary is None:
        return [Check(view.cell.device_id, label, "latency", "new", "no baseline cell to compare with")]
    why = not_comparable(before, view, _facts(baseline, before.cell.device_id), _facts(current, view.cell.device_id))
    if why:
        return [Check(view.cell.device_id, label, "latency", "not comparable", why)]
    reference = references.get(_identity(view))
    latency = latency_check(before, view, threshold, floors.get(_identity(view)), reference)
    if reference is None and before.cell.artifact["sha256"] != view.cell.artifact["sha256"]:
        latency.detail += "; " + _unpaired_why(view, current)
    size = _size_check(view.cell.device_id, label, before.cell.artifact["size_bytes"],
                       view.cell.artifact["size_bytes"], threshold)
    return [latency] + ([size] if size else [])


# A WER comparison's reading (harness.accuracy.bootstrap.PairedComparison.reading) as a check's status.
WER_STATUS = {"B worse": "regression", "B better": "improvement", "no clear difference": "pass"}


def wer_check(before, now) -> Check:
    """A chain's WER against the same chain's on the same utterances (paired bootstrap over utterances)."""
    r = paired_bootstrap(before.score, now.score, seed=0)
    return Check(now.cell.device_id, now.chain.get("name"), "wer", WER_STATUS.get(r.reading, TOO_FEW_UTTERANCES),
                 r.summary(), r.as_dict())


# A step is reported on the first night whose history shows it and on the nights after, this many in all (a week
# of nightly pages); after that its level is the one the build is compared with.  There is no acknowledging a
# step: a week of failing nights is the acknowledgement window.
REPORT_NIGHTS = 7


def _nights(count: int) -> str:
    return "tonight" if count == 0 else f"{count} night{'s' if count != 1 else ''} ago"


def history_checks(series, run_id: str, current: ReportData | None = None) -> list[Check]:
    """A step in a build's nightly levels (``Series.step``, E-Divisive's newest change point): the slow drift
    night-to-night checks cannot see.  Reported from the first night it is detectable for ``REPORT_NIGHTS``
    nights.  Each counts under its build's stage (found among ``current``'s cells), else under "history"."""
    stages = {(v.cell.device_id, v.cell.label): v.cell.artifact["stage"] for v in current.cells} if current else {}
    checks = []
    for s in series:
        if s.step is None or not s.run_ids or s.run_ids[-1] != run_id:
            continue
        last = len(s.p50_ms) - 1
        detected = s.step.detected_index if s.step.detected_index is not None else last
        if last - detected >= REPORT_NIGHTS:
            continue
        slower = s.step.ratio > 1
        status = "regression" if slower else "improvement"
        if slower and any(s.throttled[s.step.index:]):
            status = "suspect"
        began, seen = s.run_ids[s.step.index], s.run_ids[detected]
        checks.append(Check(s.device_id, s.subject, "history", status,
                            f"median stepped from {s.step.before:.3g} to {s.step.after:.3g} ms "
                            f"(x{s.step.ratio:.3f}) from {began} ({_nights(last - s.step.index)}); first detectable "
                            f"{_nights(last - detected)}, reported for {REPORT_NIGHTS} nights from then "
                            f"(E-Divisive change point, t-test p={s.step.p_value:.1g})",
                            {"step_run_id": began, "detected_run_id": seen, "ratio": s.step.ratio},
                            group=stages.get((s.device_id, s.subject), "history")))
    return checks
