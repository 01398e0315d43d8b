"""Paired bootstrap over utterances for the WER difference of two systems (Bisani & Ney, 2004).

Both systems transcribed the same utterances.  Resampling utterances (not words)
keeps each utterance's errors together, which is what makes the interval honest
when errors cluster in hard utterances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.accuracy.wer import CorpusScore


@dataclass(frozen=True)
class PairedComparison:
    wer_a: float
    wer_b: float
    delta: float  # wer_b - wer_a
    low: float  # 95% interval of delta
    high: float
    p_b_better: float  # fraction of resamples where B has the lower WER
    resamples: int
    utterances: int

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def paired_bootstrap(a: CorpusScore, b: CorpusScore, resamples: int = 10_000, seed: int = 0,
                     level: float = 0.95) -> PairedComparison:
    """Compare system B against system A on the same utterances (matched by id)."""
    by_id = {u.id: u for u in b.utterances}
    if set(by_id) != {u.id for u in a.utterances}:
        raise ValueError("the two systems must be scored on the same utterance ids")
    words = np.array([u.words for u in a.utterances], dtype=float)
    err_a = np.array([u.errors for u in a.utterances], dtype=float)
    err_b = np.array([by_id[u.id].errors for u in a.utterances], dtype=float)
    if words.sum() == 0:
        raise ValueError("no reference words: WER is undefined")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(words), size=(resamples, len(words)))
    n = words[idx].sum(axis=1)
    n[n == 0] = np.nan  # a resample of only empty references has no WER
    wa, wb = err_a[idx].sum(axis=1) / n, err_b[idx].sum(axis=1) / n
    delta = (wb - wa)[~np.isnan(n)]
    alpha = (1 - level) / 2
    return PairedComparison(
        wer_a=err_a.sum() / words.sum(), wer_b=err_b.sum() / words.sum(),
        delta=(err_b.sum() - err_a.sum()) / words.sum(),
        low=float(np.quantile(delta, alpha)), high=float(np.quantile(delta, 1 - alpha)),
        p_b_better=float(np.mean(delta < 0)), resamples=resamples, utterances=len(words),
    )
