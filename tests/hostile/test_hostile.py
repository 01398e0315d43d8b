"""Every row of the hostile table (tests/hostile/cases.py): bad input, injection and faults."""

from __future__ import annotations

import pytest

from tests.hostile.cases import CASES


@pytest.mark.parametrize("case", CASES, ids=[f"{c.kind}: {c.name}" for c in CASES])
def test_hostile(case, tmp_path):
    case.check(tmp_path)
