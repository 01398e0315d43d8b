"""Greedy decoding over a mel -> encoder -> decoder-step chain, whatever runtime runs each part.

A chain is three callables on numpy arrays, so eager PyTorch, onnxruntime and
ExecuTorch share this one decoding loop (and so the same tokens mean the same thing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from harness.models.whisper_facts import CHUNK_SAMPLES

SOT, NO_TIMESTAMPS, EOT = 50257, 50362, 50256  # tiny.en (English-only vocabulary)
TIMESTAMP_BEGIN = 50363


class Chain(Protocol):
    mel: Callable[[np.ndarray], np.ndarray]  # audio (1, 480000) -> (1, 80, 3000)
    encoder: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # mel -> cross_k, cross_v
    step: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]  # token, pos, sk, sv, ck, cv -> logits, sk, sv
    cache_shape: tuple[int, ...]


@dataclass
class Decoded:
    tokens: list[int]
    mel_ms: float
    encoder_ms: float
    step_ms: list[float] = field(default_factory=list)  # one per decoder call, prompt included

    @property
    def total_ms(self) -> float:
        return self.mel_ms + self.encoder_ms + sum(self.step_ms)


def pad_audio(audio: np.ndarray) -> np.ndarray:
    """Mono float32 16 kHz audio -> (1, 480000): zero-padded or cut to Whisper's 30 s window."""
    out = np.zeros((1, CHUNK_SAMPLES), dtype=np.float32)
    n = min(len(audio), CHUNK_SAMPLES)
    out[0, :n] = audio[:n]
    return out


def greedy_decode(chain: Chain, audio: np.ndarray, suppress: list[int], suppress_begin: list[int],
                  max_tokens: int) -> Decoded:
    """Transcribe one utterance: <|startoftranscript|><|notimestamps|> then argmax until EOT."""
    clock = time.perf_counter_ns
    t0 = clock()
    mel = chain.mel(pad_audio(audio))
    t1 = clock()
    cross_k, cross_v = chain.encoder(mel)
    t2 = clock()
    result = Decoded(tokens=[], mel_ms=(t1 - t0) / 1e6, encoder_ms=(t2 - t1) / 1e6)
    self_k = np.zeros(chain.cache_shape, dtype=np.float32)
    self_v = np.zeros(chain.cache_shape, dtype=np.float32)
    always = np.array(sorted(set(suppress) | {SOT, NO_TIMESTAMPS}), dtype=np.int64)
    prompt = [SOT, NO_TIMESTAMPS]
    token, position = prompt[0], 0
    while position < max_tokens - 1:
        t = clock()
        logits, self_k, self_v = chain.step(np.array([[token]], dtype=np.int64), np.array([position], dtype=np.int64),
                                            self_k, self_v, cross_k, cross_v)
        result.step_ms.append((clock() - t) / 1e6)
        position += 1
        if position < len(prompt):
            token = prompt[position]
            continue
        scores = np.asarray(logits, dtype=np.float32).reshape(-1).copy()
        scores[always] = -np.inf
        scores[TIMESTAMP_BEGIN:] = -np.inf  # no timestamps were asked for
        if not result.tokens:
            scores[np.array(suppress_begin, dtype=np.int64)] = -np.inf
        token = int(np.argmax(scores))
        if token == EOT:
            break
        result.tokens.append(token)
    return result
