"""Whisper split the way on-device pipelines split it: log-mel -> encoder -> decoder step.

* ``EncoderWithCrossKV``: mel (1, 80, 3000) -> cross_k, cross_v (layers, 1, 1500, d).  The
  cross-attention keys and values depend only on the audio, so they are computed once
  per utterance here instead of at every decoded token.
* ``DecoderStep``: one token at a time with a self-attention KV cache of fixed length
  ``MAX_TOKENS``.  Every shape is static and the cache is updated with ``where`` rather
  than in place, so the same module exports to ONNX and to ExecuTorch.
"""

from __future__ import annotations

import torch

from harness.models.whisper_facts import MAX_TOKENS



def _heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    b, t, d = x.shape
    return x.view(b, t, n_head, d // n_head).transpose(1, 2)


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v, written out so every runtime sees plain matmul/softmax ops."""
    scores = torch.matmul(q, k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(b, t, h * dh)


class EncoderWithCrossKV(torch.nn.Module):
    def __init__(self, whisper: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = whisper.encoder
        self.blocks = whisper.decoder.blocks

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        audio = self.encoder(mel)
        keys = torch.stack([block.cross_attn.key(audio) for block in self.blocks])
        values = torch.stack([block.cross_attn.value(audio) for block in self.blocks])
        return keys, values


class DecoderStep(torch.nn.Module):
    """(token (1,1) int64, position (1,) int64, self_k, self_v, cross_k, cross_v) -> (logits (1, vocab), self_k, self_v)."""

    def __init__(self, whisper: torch.nn.Module) -> None:
        super().__init__()
        self.decoder = whisper.decoder
        self.n_head = whisper.dims.n_text_head
        self.register_buffer("slots", torch.arange(MAX_TOKENS), persistent=False)
        # The vocabulary projection as a module sharing the embedding's weight: quantizers that work
        # on nn.Linear (torchao, PT2E) then quantize it.  The embedding lookup itself stays float.
        vocab, width = whisper.decoder.token_embedding.weight.shape
        self.project = torch.nn.Linear(width, vocab, bias=False)
        self.project.weight = whisper.decoder.token_embedding.weight

    def forward(self, token, position, self_k, self_v, cross_k, cross_v):
        dec = self.decoder
        x = dec.token_embedding(token) + torch.index_select(dec.positional_embedding, 0, position)[None]
        here = (self.slots == position)[None, :, None]  # (1, T, 1): the slot this token writes
        visible = (self.slots <= position)[None, None, None, :]  # causal mask over the cache
        new_k, new_v = [], []
        for i, block in enumerate(dec.blocks):
            h = block.attn_ln(x)
            k_cache = torch.where(here, block.attn.key(h), self_k[i])
            v_cache = torch.where(here, block.attn.value(h), self_v[i])
            new_k.append(k_cache)
            new_v.append(v_cache)
            q = _heads(block.attn.query(h), self.n_head)
            attn = _attention(q, _heads(k_cache, self.n_head), _heads(v_cache, self.n_head), visible)
            x = x + block.attn.out(_merge(attn))
            h = block.cross_attn_ln(x)
            q = _heads(block.cross_attn.query(h), self.n_head)
            attn = _attention(q, _heads(cross_k[i], self.n_head), _heads(cross_v[i], self.n_head))
            x = x + block.cross_attn.out(_merge(attn))
            x = x + block.mlp(block.mlp_ln(x))
        x = dec.ln(x)
        logits = self.project(x[:, 0])
        return logits, torch.stack(new_k), torch.stack(new_v)


def empty_cache(whisper: torch.nn.Module) -> torch.Tensor:
    dims = whisper.dims
    return torch.zeros(dims.n_text_layer, 1, MAX_TOKENS, dims.n_text_state)


def example_inputs(whisper: torch.nn.Module) -> dict[str, tuple]:
    """Example inputs of each exported part, for tracing/export."""
    dims = whisper.dims
    mel = torch.zeros(1, dims.n_mels, 2 * dims.n_audio_ctx)
    cross_shape = (dims.n_text_layer, 1, dims.n_audio_ctx, dims.n_text_state)
    # Every input must be its own tensor: torch.export treats one object passed twice as one input
    # (cross_v silently became cross_k in the exported graph).
    step = (torch.tensor([[50257]]), torch.tensor([0]), empty_cache(whisper), empty_cache(whisper),
            torch.zeros(cross_shape), torch.zeros(cross_shape))
    return {"encoder": (mel,), "decoder": step}


ENCODER_IO = (["mel"], ["cross_k", "cross_v"])
DECODER_IO = (["token", "position", "self_k", "self_v", "cross_k", "cross_v"], ["logits", "new_self_k", "new_self_v"])
