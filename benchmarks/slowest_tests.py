"""The ten slowest tests of a run, setup and teardown included (what a shared fixture costs lands on the first
test that asks for it), from pytest's ``--durations`` lines.

    python benchmarks/slowest_tests.py LOG             # a saved run: pytest ... --durations=0 > LOG
    python benchmarks/slowest_tests.py -- tests/test_x.py -n 2 --dist loadgroup   # run pytest now, then tell
    python benchmarks/slowest_tests.py --top 20 LOG

With -n (xdist) the durations are each worker's, so they add up to more than the wall clock.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

# pytest's durations line: "12.34s call     tests/test_x.py::test_y[param]"
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s (setup|call|teardown)\s+(\S.*?)\s*$")


def per_test_s(lines) -> dict[str, dict[str, float]]:
    """test id -> {phase: seconds} from the durations section of a pytest log."""
    tests: dict[str, dict[str, float]] = defaultdict(dict)
    for line in lines:
        match = DURATION.match(line)
        if match:
            seconds, phase, test = match.groups()
            tests[test][phase] = tests[test].get(phase, 0.0) + float(seconds)
    return dict(tests)


def slowest(tests: dict[str, dict[str, float]], top: int) -> list[tuple[str, float, dict[str, float]]]:
    ranked = sorted(((t, sum(p.values()), p) for t, p in tests.items()), key=lambda row: -row[1])
    return ranked[:top]


def render(rows, tests: dict[str, dict[str, float]]) -> str:
    if not rows:
        return "no durations found: run pytest with --durations=0 (and without -q -q)"
    total_s = sum(sum(p.values()) for p in tests.values())
    lines = [f"{'total':>8}  {'setup':>7}  {'call':>7}  {'teardown':>8}  test"]
    for test, seconds, phases in rows:
        lines.append(f"{seconds:7.1f}s  {phases.get('setup', 0):6.1f}s  {phases.get('call', 0):6.1f}s  "
                     f"{phases.get('teardown', 0):7.1f}s  {test}")
    share = sum(seconds for _, seconds, _ in rows) / total_s if total_s else 0
    lines.append(f"these {len(rows)} of {len(tests)} tests: {share:.0%} of {total_s:.0f} s of test time")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", nargs="?", type=Path, help="a pytest log with --durations lines")
    parser.add_argument("--top", type=int, default=10, help="how many tests to show (default 10)")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: run pytest with these arguments")
    args = parser.parse_args(argv)
    if args.log is not None:
        lines = args.log.read_text(errors="replace").splitlines()
    else:
        extra = [a for a in args.pytest_args if a != "--"]
        proc = subprocess.run([sys.executable, "-m", "pytest", "--durations=0", "-p", "no:cacheprovider", *extra],
                              capture_output=True, text=True)
        sys.stderr.write(proc.stdout.splitlines()[-1] + "\n" if proc.stdout.strip() else proc.stderr[-2000:])
        lines = proc.stdout.splitlines()
    tests = per_test_s(lines)
    print(render(slowest(tests, args.top), tests))
    return 0


if __name__ == "__main__":
    sys.exit(main())
