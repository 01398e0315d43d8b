"""Whisper's log-mel preprocessor as an exportable module.

Whisper computes an 80-bin log-mel spectrogram of 30 s of 16 kHz audio with a
400-point Hann-windowed STFT and hop 160.  ``torch.stft`` does not lower to every
on-device runtime, so the STFT here is a strided 1-D convolution with fixed
cos/sin kernels: the same arithmetic, and it exports to ONNX and ExecuTorch alike.
"""

from __future__ import annotations

import numpy as np
import torch

from harness.models.whisper_facts import CHUNK_SAMPLES, SAMPLE_RATE

N_FFT = 400
HOP_LENGTH = 160
N_MELS = 80
N_FRAMES = CHUNK_SAMPLES // HOP_LENGTH


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    # Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa's default, used by Whisper).
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    freq = np.asarray(freq, dtype=np.float64)
    mels = freq / f_sp
    high = freq >= min_log_hz
    mels[high] = min_log_mel + np.log(freq[high] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    mels = np.asarray(mels, dtype=np.float64)
    freqs = f_sp * mels
    high = mels >= min_log_mel
    freqs[high] = min_log_hz * np.exp(logstep * (mels[high] - min_log_mel))
    return freqs


def mel_filters(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Slaney-normalised triangular mel filterbank, shape (n_mels, n_fft // 2 + 1)."""
    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_pts = _mel_to_hz(np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([sr / 2]))[0], n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_pts[2:n_mels + 2] - mel_pts[:n_mels]))[:, None]
    return weights.astype(np.float32)


class LogMel(torch.nn.Module):
    """audio (1, 480000) float32 -> log-mel (1, 80, 3000), normalised as Whisper does."""

    def __init__(self) -> None:
        super().__init__()
        n = torch.arange(N_FFT, dtype=torch.float64)
        window = 0.5 - 0.5 * torch.cos(2 * torch.pi * n / N_FFT)  # periodic Hann, as torch.hann_window
        k = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)[:, None]
        angle = 2 * torch.pi * k * n[None, :] / N_FFT
        kernels = torch.cat([window * torch.cos(angle), -window * torch.sin(angle)])  # (402, 400)
        self.register_buffer("kernels", kernels.float()[:, None, :])
        self.register_buffer("filters", torch.from_numpy(mel_filters()))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        padded = torch.nn.functional.pad(audio[:, None, :], (N_FFT // 2, N_FFT // 2), mode="reflect")
        spec = torch.nn.functional.conv1d(padded, self.kernels, stride=HOP_LENGTH)[:, :, :-1]
        real, imag = spec[:, : N_FFT // 2 + 1], spec[:, N_FFT // 2 + 1:]
        power = real * real + imag * imag
        mel = torch.matmul(self.filters, power)
        log_spec = torch.log10(torch.clamp(mel, min=1e-10))
        log_spec = torch.maximum(log_spec, log_spec.amax(dim=(1, 2), keepdim=True) - 8.0)
        return (log_spec + 4.0) / 4.0
