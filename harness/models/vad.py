"""Silero VAD at 16 kHz as its own wrapper drives it: windows with context and a carried state.

Shared by the zoo (calibrating the INT8 build, checking parity) and by the pipeline at run time
(finding the speech an utterance holds), so it lives here and not in the build code.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

SAMPLE_RATE = 16000
# Each call sees 64 samples of context (the previous window's tail) plus a new 512-sample window (32 ms),
# and a recurrent state of (2, 1, 128); silero-vad's own wrapper does the same.
VAD_CONTEXT, VAD_WINDOW = 64, 512
SPEECH_THRESHOLD = 0.5  # silero-vad's get_speech_timestamps default
PAD_S = 0.1  # kept either side of the speech found, so a clipped onset does not cost a word


def vad_frames(clip: np.ndarray, run_state: Callable[[dict], np.ndarray]) -> Iterator[dict]:
    """Feeds for the VAD graph over one clip: context + window, with the state carried by ``run_state``."""
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros((1, VAD_CONTEXT), np.float32)
    for start in range(0, len(clip) - VAD_WINDOW + 1, VAD_WINDOW):
        framed = np.concatenate([context, clip[start:start + VAD_WINDOW][None].astype(np.float32)], axis=1)
        context = framed[:, -VAD_CONTEXT:]
        feed = {"input": framed, "state": state, "sr": np.array(SAMPLE_RATE, np.int64)}
        yield feed
        state = run_state(feed)


def speech_span(probabilities: list[float], n_samples: int, threshold: float = SPEECH_THRESHOLD,
                pad_s: float = PAD_S) -> tuple[int, int] | None:
    """First to last window whose speech probability reaches ``threshold``, padded, as sample offsets
    [start, end); None when no window does."""
    hits = [i for i, p in enumerate(probabilities) if p >= threshold]
    if not hits:
        return None
    pad = int(pad_s * SAMPLE_RATE)
    return max(0, hits[0] * VAD_WINDOW - pad), min(n_samples, (hits[-1] + 1) * VAD_WINDOW + pad)
