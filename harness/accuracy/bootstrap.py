"""Paired bootstrap over utterances for the WER difference of two systems (Bisani & Ney, 2004).

Both systems transcribed the same utterances.  Resampling utterances (not words)
keeps each utterance's errors together, which is what makes the interval honest
when errors cluster in hard utterances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.accuracy.wer import CorpusScore

# Fewer utterances than this and no interval is given.  A percentile bootstrap over n utterances can only
# resample what those n show (2 utterances have 3 distinct resamples; identical errors on both give [0, 0] for
# any difference the next utterance could reveal), so its "95%" interval covers far less than 95%.  Simulated
# (per-utterance difficulty Beta(1, 5), 6-13 words, B 3 points worse, 1,500 corpora per size, 1,000 resamples):
# the 95% interval covered the true difference 47% of the time at 2 utterances, 86% at 5, 90% at 10-15 and
# 92% at 20; tests/test_compare.py re-checks 20 and 5 on draws of its own.
MIN_UTTERANCES_FOR_INTERVAL = 20


@dataclass(frozen=True)
class PairedComparison:
    wer_a: float
    wer_b: float
    delta: float  # wer_b - wer_a
    low: float | None  # 95% interval of delta; None with fewer than MIN_UTTERANCES_FOR_INTERVAL utterances
    high: float | None
    p_b_better: float  # fraction of resamples where B has the lower WER
    p_b_worse: float  # ... the higher WER
    p_equal: float  # ... the same WER (identical errors, or errors that cancel)
    resamples: int
    utterances: int

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def reading(self) -> str:
        """What the comparison says, in words: the one rule every report and check uses."""
        if not self.has_interval:
            return f"too few utterances for an interval ({self.utterances})"
        if self.low > 0:
            return "B worse"
        if self.high < 0:
            return "B better"
        return "no clear difference"

    @property
    def interval_text(self) -> str:
        """'95% [+0.10, +2.30]' in WER points, or why there is none."""
        if not self.has_interval:
            return f"no interval from {self.utterances} utterance{'s' if self.utterances != 1 else ''}"
        return f"95% [{self.low * 100:+.2f}, {self.high * 100:+.2f}]"

    def summary(self) -> str:
        """One line: 'WER 18.75% -> 18.75% (+0.00 pts, ...; P(B better) 0%, P(equal) 100%, P(B worse) 0%)'."""
        return (f"WER {self.wer_a:.2%} -> {self.wer_b:.2%} ({self.delta * 100:+.2f} pts, {self.interval_text}; "
                f"P(B better) {self.p_b_better:.0%}, P(equal) {self.p_equal:.0%}, P(B worse) {self.p_b_worse:.0%})")

    def as_dict(self) -> dict:
        return {**self.__dict__, "reading": self.reading}


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
    # The difference of error counts is exact (integers), so a tie is a tie, not a rounding residue.
    delta = ((err_b[idx].sum(axis=1) - err_a[idx].sum(axis=1)) / n)[~np.isnan(n)]
    alpha = (1 - level) / 2
    enough = len(words) >= MIN_UTTERANCES_FOR_INTERVAL
    return PairedComparison(
        wer_a=err_a.sum() / words.sum(), wer_b=err_b.sum() / words.sum(),
        delta=(err_b.sum() - err_a.sum()) / words.sum(),
        low=float(np.quantile(delta, alpha)) if enough else None,
        high=float(np.quantile(delta, 1 - alpha)) if enough else None,
        p_b_better=float(np.mean(delta < 0)), p_b_worse=float(np.mean(delta > 0)),
        p_equal=float(np.mean(delta == 0)), resamples=resamples, utterances=len(words),
    )
