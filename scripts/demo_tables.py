"""The demo tables of docs/measurements.md, printed from a stored run (nothing is measured here).

    python scripts/demo_tables.py RUN_ID [--db reports/harness.db]

Per latency cell: the run-level P50 and P95 the report prints (geometric means over runs) with the
median load time and the stage budget verdict; per transcription chain: WER over the utterances it
transcribed and its per-utterance timing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NAMES = {"silero-vad": "Silero VAD (32 ms window)", "whisper-tiny.en mel": "Whisper log-mel (30 s window)",
         "whisper-tiny.en asr-encoder": "Whisper tiny.en encoder", "whisper-tiny.en asr-decoder": "Whisper tiny.en decoder step"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id")
    parser.add_argument("--db", type=Path, default=Path("reports/harness.db"))
    args = parser.parse_args()

    from harness.report.model import build_report_data
    from harness.store import Store

    with Store(args.db) as store:
        data = build_report_data(store, args.run_id)
    s = data.run.settings
    print(f"run {args.run_id}: {s['runs']} runs x ({s['warmup_iterations']} warm-up + {s['iterations']} measured) "
          f"per build, {s['threads']} thread(s)\n")
    print("| build | format / backend | quant | P50 ms | P95 ms | load ms | budget (P95) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    order = lambda v: (list(NAMES).index(_name_key(v)) if _name_key(v) in NAMES else 9, v.cell.artifact["format"],
                       ["fp32", "int8", "int4"].index(v.cell.artifact["quantization"]))
    for view in sorted((v for v in data.cells if v.summary is not None and not v.role), key=order):
        a, m = view.cell.artifact, view.summary
        fmt = "ONNX / ort-cpu" if a["format"] == "onnx" else ".pte / XNNPACK"
        p95 = f"{m.p95_ms:.3g}" if m.p95_ms < 100 else f"{m.p95_ms:.0f}"
        p50 = f"{m.p50_ms:.3g}" if m.p50_ms < 100 else f"{m.p50_ms:.0f}"
        budget = f"{view.budget_name} < {view.budget_ms:g}: {view.verdict}" if view.budget_ms else view.verdict
        print(f"| {NAMES.get(_name_key(view), a['model'])} | {fmt} | {a['quantization'].upper()} | {p50} | {p95} | "
              f"{view.cell.load_ms:.0f} | {budget} |")
    if data.chains:
        n = len(data.chains[0].cell.transcripts)
        print(f"\n| chain | WER ({n} utts) | per-utterance P50 ms | P95 ms | encoder ms | decoder ms/token | RTF |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for chain in data.chains:
            t = chain.timing
            print(f"| {chain.chain.get('name', chain.cell.cell_key)} | {chain.score.wer:.2%} | {t['total_ms']:.0f} | "
                  f"{t['p95_total_ms']:.0f} | {t['encoder_ms']:.0f} | {t['decoder_ms_per_token']:.1f} | {t['rtf']:.3f} |")
    return 0


def _name_key(view) -> str:
    a = view.cell.artifact
    return a["model"] if a["model"] in NAMES else f"{a['model']} {a['stage']}"


if __name__ == "__main__":
    raise SystemExit(main())
