"""Every row of the hostile table (tests/hostile/cases.py): bad input, injection and faults."""

from __future__ import annotations

import pytest

from tests.hostile.cases import CASES


# Rows that take many seconds (a night measured, a phone or a process killed): `-m "not slow"` skips them.
SLOW = ("fault", "injection: shell metacharacters", "injection: HTML in build and plan names",
        "injection: an iPhone result file")


def _param(c):
    return pytest.param(c, marks=pytest.mark.slow) if f"{c.kind}: {c.name}".startswith(SLOW) else c


@pytest.mark.parametrize("case", [_param(c) for c in CASES], ids=[f"{c.kind}: {c.name}" for c in CASES])
def test_hostile(case, tmp_path):
    case.check(tmp_path)
