"""Word and character error rates the way the field computes them.

Text is normalised with Whisper's English normaliser (the ``whisper-normalizer`` package, which
reproduces openai-whisper's without needing it or torch; a test holds them equal), then
aligned with jiwer.  WER is corpus-level: all errors over all reference words, not
a mean of per-utterance rates.  An empty reference is handled explicitly: its
hypothesis words count as insertions, and a corpus with no reference words at all
has an undefined WER (``None``), never the bare count jiwer 4 returns for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache

import jiwer


@lru_cache(maxsize=1)
def _normalizer():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize(text: str) -> str:
    """Whisper's English normalisation: case, punctuation, spelling variants, numbers."""
    return _normalizer()(text)


class _ErrorRate:
    """Errors and WER from ``words``, ``substitutions``, ``deletions``, ``insertions`` (None without words)."""

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float | None:
        return self.errors / self.words if self.words else None


@dataclass
class UtteranceScore(_ErrorRate):
    id: str
    reference: str  # normalised
    hypothesis: str  # normalised
    words: int
    substitutions: int
    deletions: int
    insertions: int
    characters: int
    char_errors: int
    alignment: list[tuple[str, str, str]] = field(default_factory=list)  # (op, ref word, hyp word)


@dataclass
class CorpusScore(_ErrorRate):
    utterances: list[UtteranceScore]

    def _sum(self, attr: str) -> int:
        return sum(getattr(u, attr) for u in self.utterances)

    @property
    def words(self) -> int:
        return self._sum("words")

    @property
    def substitutions(self) -> int:
        return self._sum("substitutions")

    @property
    def deletions(self) -> int:
        return self._sum("deletions")

    @property
    def insertions(self) -> int:
        return self._sum("insertions")

    @property
    def cer(self) -> float | None:
        chars = self._sum("characters")
        return self._sum("char_errors") / chars if chars else None

    @property
    def empty_references(self) -> int:
        return sum(1 for u in self.utterances if u.words == 0)

    def totals(self) -> dict:
        return {"wer": self.wer, "cer": self.cer, "words": self.words, "substitutions": self.substitutions,
                "deletions": self.deletions, "insertions": self.insertions, "errors": self.errors,
                "utterances": len(self.utterances), "empty_references": self.empty_references}

    def as_dict(self) -> dict:
        return {"totals": self.totals(),
                "utterances": [{**asdict(u), "wer": u.wer, "errors": u.errors} for u in self.utterances]}


def _alignment(out, ref: list[str], hyp: list[str]) -> list[tuple[str, str, str]]:
    pairs = []
    for chunk in out.alignments[0]:
        r, h = ref[chunk.ref_start_idx:chunk.ref_end_idx], hyp[chunk.hyp_start_idx:chunk.hyp_end_idx]
        if chunk.type in ("equal", "substitute"):
            pairs += [("=" if chunk.type == "equal" else "S", a, b) for a, b in zip(r, h)]
        elif chunk.type == "delete":
            pairs += [("D", a, "") for a in r]
        else:
            pairs += [("I", "", b) for b in h]
    return pairs


def score_utterance(utt_id: str, reference: str, hypothesis: str, normalise: bool = True) -> UtteranceScore:
    ref = normalize(reference) if normalise else " ".join(reference.split())
    hyp = normalize(hypothesis) if normalise else " ".join(hypothesis.split())
    ref_words, hyp_words = ref.split(), hyp.split()
    if not ref_words:
        return UtteranceScore(utt_id, ref, hyp, 0, 0, 0, len(hyp_words), 0, len(hyp.replace(" ", "")),
                              [("I", "", w) for w in hyp_words])
    out = jiwer.process_words(ref, hyp)
    chars = jiwer.process_characters(ref, hyp)
    return UtteranceScore(
        utt_id, ref, hyp, len(ref_words), out.substitutions, out.deletions, out.insertions,
        characters=len(ref), char_errors=chars.substitutions + chars.deletions + chars.insertions,
        alignment=_alignment(out, ref_words, hyp_words),
    )


def score_corpus(ids: list[str], references: list[str], hypotheses: list[str], normalise: bool = True) -> CorpusScore:
    """Score utterance pairs; ``ids``, ``references`` and ``hypotheses`` are parallel lists."""
    if not (len(ids) == len(references) == len(hypotheses)):
        raise ValueError("ids, references and hypotheses must have the same length")
    return CorpusScore([score_utterance(i, r, h, normalise) for i, r, h in zip(ids, references, hypotheses)])
