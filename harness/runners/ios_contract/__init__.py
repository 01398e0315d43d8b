"""The contract between the harness and the on-device iOS benchmark app, version 1.

The app cannot be built here, so its interface is specified like a protocol: the
JSON Schemas beside this file (``job.v1.schema.json`` in, ``result.v1.schema.json``
out) with examples in ``examples/``.  The harness writes a job, launches the app
naming it, and validates whatever comes back before a number from it is stored.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from harness.errors import UserError
from harness.extras import require
from harness.jsontext import load_json

HERE = Path(__file__).parent
JOB_SCHEMA, RESULT_SCHEMA = "harness.ios-job/1", "harness.ios-result/1"
THERMAL_STATES = ("nominal", "fair", "serious", "critical")  # ProcessInfo.ThermalState, in order


class ContractError(ValueError):
    """A job or result file that breaks the contract; the message names the JSON path."""


@lru_cache(maxsize=None)
def _validator(kind: str):
    Draft202012Validator = require("jsonschema", "ios", "the iPhone app contract").Draft202012Validator

    schema = json.loads((HERE / f"{kind}.v1.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _check(kind: str, document) -> None:
    errors = sorted(_validator(kind).iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{e.json_path}: {e.message}" for e in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise ContractError("; ".join(lines) + more)


def validate_job(job: dict) -> dict:
    _check("job", job)
    return job


def load_result(text: str) -> dict:
    """A result file's text -> the result checked against the schema, or ContractError (strict JSON: no key
    twice, no NaN, nesting bounded)."""
    try:
        result = load_json(text, "result.json")
    except UserError as exc:
        raise ContractError(f"{exc.message[:-1]} (line {exc.line})" if exc.line else exc.message[:-1]) from None
    _check("result", result)
    return result


def parse_result(text: str, job: dict) -> dict:
    """A result file's text -> the validated result, or ContractError saying what is wrong and where."""
    result = load_result(text)
    if result["job_id"] != job["job_id"]:
        raise ContractError(f"$.job_id: '{result['job_id']}' answers another job (expected '{job['job_id']}')")
    if result["status"] == "ok":
        if job["task"] == "latency" and len(result["latency_ms"]) != job["iterations"]:
            raise ContractError(f"$.latency_ms: {len(result['latency_ms'])} values for {job['iterations']} iterations")
        if job["task"] == "transcribe":
            want = [a["id"] for a in job["audio"]]
            got = [t["id"] for t in result.get("transcripts", [])]
            if got != want:
                raise ContractError(f"$.transcripts: ids {got[:5]}... do not match the job's audio {want[:5]}...")
    return result
