"""Figures of the hostile table (tests/hostile/cases.py) and of the fuzzing (tests/test_fuzz.py): bad inputs
tried / handled cleanly, injections tried / succeeded (terminal escapes included), faults tried / survived with
nothing lost, then the totals docs/hostile.md quotes: tracebacks, data loss, injections, processes left after a
signal, hangs (a bad input not answered within 10 s) and fuzz cases tried.  Each case runs in a fresh folder,
as in the tests.

    python benchmarks/hostile_summary.py            # the whole table and the fuzzing
    python benchmarks/hostile_summary.py --no-fuzz  # the table only
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HANG_S = 10.0  # every bad input is answered within this
# Rows about stopping the harness: what they check is that nothing it started keeps running.
SIGNAL_ROWS = re.compile(r"SIGKILL|SIGTERM|SIGINT|SIGHUP|Ctrl-C|killed|signal", re.IGNORECASE)
# A failed row whose message says stored data changed or went missing.
LOSS_WORDS = re.compile(r"database changed|changed|integrity|lost|not stored|missing", re.IGNORECASE)


def _timing_cli(calls_s: list[float]):
    """The table's own ``cli`` helper, timed: each command's answer, not the case's setup, is what must be quick."""
    from tests.hostile import cases

    plain = cases.cli

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return plain(*args, **kwargs)
        finally:
            calls_s.append(time.perf_counter() - started)

    cases.cli = timed


def _run_case(case) -> tuple[str | None, bool]:
    """(problem or None, whether it was a traceback)."""
    traceback = False
    with tempfile.TemporaryDirectory() as tmp:
        try:
            case.check(Path(tmp))
            problem = None
        except AssertionError as exc:
            text = str(exc).strip()
            problem = text.splitlines()[0][:200] if text else "assertion failed"
            traceback = "Traceback" in text
        except Exception as exc:  # noqa: BLE001 - a crash of the case is a failure to report, not to hide
            problem, traceback = f"{type(exc).__name__}: {exc}"[:200], True
    return problem, traceback


def _fuzz() -> tuple[int, int]:
    """Every fuzz test of tests/test_fuzz.py, as pytest runs them: (cases tried, cases that failed)."""
    from tests import test_fuzz

    failed = 0
    tests = [(t, ()) for t in test_fuzz.FUZZ_TESTS] + [(test_fuzz.test_any_runner_log, (tool,))
                                                        for tool in test_fuzz.PARSE_TOOLS]
    for test, args in tests:
        try:
            test(*args)
        except Exception as exc:  # noqa: BLE001 - Hypothesis raises the failing example's own error
            failed += 1
            print(f"FAIL fuzz {test.__name__}{args}: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
    return test_fuzz.CASES_TRIED[0], failed


def main() -> int:
    from tests.hostile import cases
    from tests.hostile.cases import CASES, stored_db

    # Each command a new `python -m harness`, not a fork of the tests' server: the slowest answer printed below
    # is what a user waits for, the interpreter's start and imports included.
    cases.FORK_CLI = False
    with tempfile.TemporaryDirectory() as tmp:
        stored_db(Path(tmp))  # the shared stored run is measured once, before any case is timed
    outcome: dict[str, list[tuple[str, str | None]]] = {}
    tracebacks = loss = signal_rows = signal_left = hangs = 0
    slowest = (0.0, "")
    calls_s: list[float] = []
    _timing_cli(calls_s)
    started = time.perf_counter()
    for case in CASES:
        calls_s.clear()
        case_started = time.perf_counter()
        problem, traceback = _run_case(case)
        wall_s = time.perf_counter() - case_started
        outcome.setdefault(case.kind, []).append((case.name, problem))
        tracebacks += traceback
        loss += problem is not None and case.kind in ("bad input", "fault") and bool(LOSS_WORDS.search(problem))
        if SIGNAL_ROWS.search(case.name):
            signal_rows += 1
            signal_left += problem is not None
        answer_s = max(calls_s, default=0.0)
        if case.kind == "bad input":
            hangs += sum(s > HANG_S for s in calls_s)
            if answer_s > slowest[0]:
                slowest = (answer_s, case.name)
        print(f"{'ok  ' if problem is None else 'FAIL'} {case.kind}: {case.name} ({wall_s:.1f} s)"
              + (f" — {problem}" if problem else ""), file=sys.stderr)
    words = {"bad input": ("bad inputs tried", "handled cleanly"), "injection": ("injections tried", "succeeded"),
             "fault": ("faults tried", "survived with nothing lost")}
    for kind, results in outcome.items():
        tried, verb = words[kind]
        good = sum(problem is None for _, problem in results)
        shown = len(results) - good if kind == "injection" else good
        print(f"{tried}: {len(results)}, {verb}: {shown}")
    injected = sum(p is not None for _, p in outcome.get("injection", []))
    fuzz_tried, fuzz_failed = (0, 0) if "--no-fuzz" in sys.argv else _fuzz()
    print(f"tracebacks: {tracebacks + fuzz_failed}")
    print(f"data loss: {loss}")
    print(f"injections succeeded (HTML, shell, paths, terminal escapes, XML): {injected}")
    print(f"rows stopping the harness by a signal: {signal_rows}, with processes left or a check failed: "
          f"{signal_left}")
    print(f"hangs (a bad input answered after more than {HANG_S:.0f} s): {hangs}; slowest answer to a bad input "
          f"{slowest[0]:.1f} s ({slowest[1]})")
    print(f"fuzz cases tried: {fuzz_tried}, failed: {fuzz_failed}")
    print(f"({time.perf_counter() - started:.0f} s)")
    failed_rows = any(p is not None for results in outcome.values() for _, p in results)
    return 1 if failed_rows or fuzz_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
