"""Export a stored run as one tidy table: a row per sample, with the cell's identity beside it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from harness.errors import UserError
from harness.extras import require
from harness.outfile import replacing
from harness.store.db import Store, identity_columns
from harness.termsafe import term_safe

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("csv", "parquet")  # raw samples; ExecuTorch v3 records are rendered by harness.report.et_v3


def samples_frame(store: Store, run_id: str) -> pd.DataFrame:
    """Every stored sample (warm-up and measured) of a run, long format."""
    pd = require("pandas", "export", "harness export")  # the light install leaves pandas out
    store.run(run_id)  # a clear error for an unknown run id
    rows = store.db.execute(
        f"""SELECT c.run_id, c.device_id, c.cell_key, c.status, {identity_columns()},
                  a.sha256 AS artifact_sha256, a.size_bytes, c.load_ms, c.first_inference_ms,
                  c.peak_rss_mb, s.run_index, s.phase, s.idx, s.latency_ms
           FROM samples s JOIN cells c ON c.cell_id = s.cell_id JOIN artifacts a ON a.sha256 = c.artifact_sha256
           WHERE c.run_id = ? ORDER BY c.device_id, model, stage, quantization, s.phase DESC, s.idx""",
        (run_id,),
    ).fetchall()
    columns = ["run_id", "device_id", "cell_key", "status", "model", "stage", "format", "backend", "quantization",
               "artifact_sha256", "size_bytes", "load_ms", "first_inference_ms", "peak_rss_mb", "run_index", "phase", "idx",
               "latency_ms"]
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as a formula (OWASP, CSV injection)


CSV_DECIMALS = 6  # a CSV's floats: 0.105, not 0.10500000000000001; a microsecond of a millisecond is kept


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula ('=HYPERLINK(...)' as a model name) get a leading
    quote, as OWASP advises, and their controls (a bidi override U+202E in a node name) are shown as escapes, as
    on the terminal; floats are rounded to CSV_DECIMALS places."""
    from pandas.api.types import is_float_dtype, is_numeric_dtype  # a frame to clean: pandas is installed

    def neutral(value):
        if not isinstance(value, str):
            return value
        return "'" + term_safe(value) if value.startswith(FORMULA_STARTS) else term_safe(value)

    # Every column that is not numbers holds text: object under pandas 2, the str dtype under pandas 3 (which
    # select_dtypes("object") stops selecting, so neutralisation would silently stop).
    text = [column for column in frame.columns if not is_numeric_dtype(frame[column])]
    floats = [column for column in frame.columns if is_float_dtype(frame[column])]
    return frame.assign(**{column: frame[column].map(neutral) for column in text},
                        **{column: frame[column].round(CSV_DECIMALS) for column in floats})


def operators_frame(store: Store, run_id: str) -> pd.DataFrame:
    """Every profiled operator of a run's cells, one row per operator of each profiling run, long format."""
    pd = require("pandas", "export", "harness export")
    store.run(run_id)
    rows = store.db.execute(
        f"""SELECT c.run_id, c.device_id, c.cell_key, {identity_columns()}, a.sha256 AS artifact_sha256,
                  p.profile_index, p.iterations, o.position, o.name, o.backend, o.op_type, o.calls, o.total_ms,
                  o.median_ms
           FROM operators o JOIN profile_runs p ON p.cell_id = o.cell_id AND p.profile_index = o.profile_index
           JOIN cells c ON c.cell_id = o.cell_id JOIN artifacts a ON a.sha256 = c.artifact_sha256
           WHERE c.run_id = ? ORDER BY c.device_id, model, stage, quantization, p.profile_index, o.position""",
        (run_id,),
    ).fetchall()
    columns = ["run_id", "device_id", "cell_key", "model", "stage", "format", "backend", "quantization",
               "artifact_sha256", "profile_index", "iterations", "position", "operator", "ran_on", "op_type", "calls",
               "total_ms", "median_ms"]
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


# What an export holds: every sample (the default), or every profiled operator.  The report's tables (cells,
# transcripts: harness.report.tables) come in through ``frame_of``, so the store never imports the report.
TABLES = {"samples": samples_frame, "operators": operators_frame}
FrameOf = Callable[[Store, str], "pd.DataFrame"]


def default_output(run_id: str, fmt: str, what: str) -> Path:
    """``<run_id>.<fmt>`` for samples, ``<run_id>-<what>.<fmt>`` for any other table."""
    return Path(f"{run_id}{'' if what == 'samples' else '-' + what}.{fmt}")


def export_run(db_path: Path, run_id: str, fmt: str, out: Path | None, what: str = "samples",
               frame_of: FrameOf | None = None, to_stdout: bool = False) -> tuple[Path | None, int]:
    """Write the run's samples (or its profiled operators, ``what="operators"``; or the table ``frame_of`` makes,
    named ``what``) to ``out`` (default :func:`default_output`), or as CSV to stdout (``to_stdout``); return the path
    (None for stdout) and row count."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format '{fmt}'.", fix=f"use one of {', '.join(FORMATS)}.")
    if frame_of is None and what not in TABLES:
        raise UserError(f"unknown export table '{what}'.", fix=f"use one of {', '.join(TABLES)}.")
    require("pandas", "export", "harness export")  # before anything is read or written
    if fmt == "parquet":
        require("pyarrow", "export", "harness export --format parquet")
    if to_stdout and fmt != "csv":
        raise UserError(f"only CSV is written to stdout, not {fmt}.", fix="give a file name with -o.")
    out = out or default_output(run_id, fmt, what)
    with Store(db_path, read_only=True) as store:
        frame = (frame_of or TABLES[what])(store, run_id)
    if to_stdout:
        spreadsheet_safe(frame).to_csv(sys.stdout, index=False)
        sys.stdout.flush()
        return None, len(frame)
    with replacing(out) as temp:
        if fmt == "csv":
            spreadsheet_safe(frame).to_csv(temp, index=False)
        else:
            frame.to_parquet(temp, index=False)
    return out, len(frame)
