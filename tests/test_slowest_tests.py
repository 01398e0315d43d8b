"""benchmarks/slowest_tests.py: the ten slowest tests of a run, setup and teardown counted with the call."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO

LOG = """\
============================= slowest durations ==============================
30.00s setup    tests/test_a.py::test_first_of_a_fixture
2.50s call     tests/test_a.py::test_first_of_a_fixture
20.00s call     tests/test_b.py::test_slow_call[case 1]
1.00s teardown tests/test_b.py::test_slow_call[case 1]
25.00s call     tests/test_c.py::test_middle
0.50s call     tests/test_d.py::test_quick
========================= 4 passed in 79.00s =========================
"""


def test_slowest_tests_ranks_by_setup_call_and_teardown_together(tmp_path):
    """Catches ranking by the call alone (the fixture's 30 s setup would hide test_a behind test_c) and a
    parametrised id cut at its space."""
    (tmp_path / "run.log").write_text(LOG)
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "slowest_tests.py"), "--top", "3",
                           str(tmp_path / "run.log")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    ranked = [line.rsplit("  ", 1)[-1] for line in proc.stdout.splitlines()[1:4]]
    assert ranked == ["tests/test_a.py::test_first_of_a_fixture", "tests/test_c.py::test_middle",
                      "tests/test_b.py::test_slow_call[case 1]"], proc.stdout
    assert proc.stdout.splitlines()[1].split()[0] == "32.5s"  # 30 + 2.5: the setup counted
    assert "3 of 4 tests: 99% of 79 s" in proc.stdout
