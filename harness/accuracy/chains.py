"""Chains of builds (mel -> encoder -> decoder step) on a runtime: eager PyTorch, onnxruntime, ExecuTorch.

Each chain exposes numpy-in, numpy-out callables for :func:`harness.accuracy.decode.greedy_decode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from harness.runtime import import_executorch_runtime, ort_session, set_executorch_threads


@dataclass
class RuntimeChain:
    mel: Callable
    encoder: Callable
    step: Callable
    cache_shape: tuple[int, ...]
    label: str


def eager_chain(whisper) -> RuntimeChain:
    """The source of truth: the split modules run in PyTorch."""
    import torch

    from harness.models.mel import LogMel
    from harness.models.whisper_split import DecoderStep, EncoderWithCrossKV, empty_cache

    mel_mod, enc, dec = LogMel().eval(), EncoderWithCrossKV(whisper).eval(), DecoderStep(whisper).eval()

    def run(module):
        def call(*arrays):
            with torch.no_grad():
                out = module(*(torch.from_numpy(np.asarray(a)) for a in arrays))
            return tuple(o.numpy() for o in out) if isinstance(out, tuple) else out.numpy()
        return call

    return RuntimeChain(run(mel_mod), run(enc), run(dec), tuple(empty_cache(whisper).shape), "eager")


def _onnx_call(path: Path, threads: int | None) -> Callable:
    session = ort_session(str(path), threads)
    names = [i.name for i in session.get_inputs()]

    def call(*arrays):
        out = session.run(None, dict(zip(names, arrays)))
        return out[0] if len(out) == 1 else tuple(out)
    return call


def pte_methods(path: Path, names: tuple[str, ...] = ("forward",), threads: int | None = None) -> dict[str, Callable]:
    """Methods of one ExecuTorch program as numpy-in, numpy-out callables (a bundle has several).

    Each callable carries ``input_shapes``, its inputs' static shapes from the program's metadata.
    """
    import torch

    # The runtime without the exporter: seconds less per transcription process (see import_executorch_runtime).
    runtime = import_executorch_runtime()
    set_executorch_threads(threads)
    program = runtime.Runtime.get().load_program(str(path))

    def caller(method):
        def call(*arrays):
            out = method.execute([torch.from_numpy(np.ascontiguousarray(a)) for a in arrays])
            out = [o.numpy() for o in out]
            return out[0] if len(out) == 1 else tuple(out)
        meta = method.metadata
        call.input_shapes = [tuple(meta.input_tensor_meta(i).sizes()) for i in range(meta.num_inputs())]
        return call

    return {name: caller(program.load_method(name)) for name in names}


def _pte_call(path: Path, threads: int | None) -> Callable:
    return pte_methods(path, ("forward",), threads)["forward"]


_CALLERS = {".onnx": _onnx_call, ".pte": _pte_call}


def load_part(path: Path, threads: int | None = None) -> Callable:
    """One model file as a numpy-in, numpy-out callable on the runtime its suffix names."""
    return _CALLERS[path.suffix](path, threads)


def file_chain(mel: Path, encoder: Path, decoder: Path, cache_shape: tuple[int, ...], threads: int | None = None) -> RuntimeChain:
    """A chain of model files; each part runs on the runtime its suffix names."""
    parts = [load_part(p, threads) for p in (mel, encoder, decoder)]
    return RuntimeChain(*parts, cache_shape=cache_shape, label=f"{decoder.name}")


def bundle_chain(model: Path, processor: Path, threads: int | None = None) -> RuntimeChain:
    """A Whisper program as ExecuTorch's Whisper runner loads it, behind its preprocessor program.

    The contract is Optimum-ExecuTorch's (harness/zoo/whisper_upstream.py): ``encoder(features)`` gives one
    tensor and ``text_decoder(ids[1,1], encoder_out, cache_position[1])`` keeps its KV cache inside the
    program.  To share :func:`greedy_decode` with the split chains, the encoder output stands in for the
    cross-attention keys and values, and the explicit self-attention caches pass through untouched.
    """
    methods = pte_methods(model, ("encoder", "text_decoder"), threads)
    preprocess = pte_methods(processor, ("forward",), threads)["forward"]
    encode, decode = methods["encoder"], methods["text_decoder"]

    def mel(audio):  # upstream's preprocessor takes the raw samples (it pads to 30 s itself)
        return preprocess(np.asarray(audio, dtype=np.float32).reshape(-1))

    def encoder(features):
        out = encode(features)
        return out, out

    def step(token, position, self_k, self_v, encoder_out, _):
        return decode(token, encoder_out, position), self_k, self_v

    return RuntimeChain(mel, encoder, step, (1,), label=model.name)
