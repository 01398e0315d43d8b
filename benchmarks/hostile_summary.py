"""Figures of the hostile table (tests/hostile/cases.py): bad inputs tried / handled cleanly, injections tried /
succeeded, faults tried / survived with nothing lost.  Each case runs in a fresh folder, as in the tests.

    python benchmarks/hostile_summary.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from tests.hostile.cases import CASES

    outcome: dict[str, list[tuple[str, str | None]]] = {}
    started = time.perf_counter()
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                case.check(Path(tmp))
                problem = None
            except AssertionError as exc:
                problem = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "assertion failed"
            except Exception as exc:  # noqa: BLE001 - a crash of the case is a failure to report, not to hide
                problem = f"{type(exc).__name__}: {exc}"[:200]
        outcome.setdefault(case.kind, []).append((case.name, problem))
        print(f"{'ok  ' if problem is None else 'FAIL'} {case.kind}: {case.name}" + (f" — {problem}" if problem else ""),
              file=sys.stderr)
    words = {"bad input": ("bad inputs tried", "handled cleanly"), "injection": ("injections tried", "succeeded"),
             "fault": ("faults tried", "survived with nothing lost")}
    for kind, results in outcome.items():
        tried, verb = words[kind]
        good = sum(problem is None for _, problem in results)
        shown = len(results) - good if kind == "injection" else good
        print(f"{tried}: {len(results)}, {verb}: {shown}")
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0 if all(p is None for results in outcome.values() for _, p in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
