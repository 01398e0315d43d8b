"""LLM reference builds: Qwen2-0.5B's architecture through ExecuTorch's own LLM export, with seeded weights.

No weights can be downloaded here, so the parameters are seeded random numbers: latency, memory and
size are those of the real model (same layers, widths, heads, vocabulary, KV cache and SDPA op), the
text it writes is meaningless.  The manifest's ``source`` says so, and the report shows it.

The export is ExecuTorch's own (``executorch.examples.models.llama.export_llama_lib.export_llama``,
the path ``extension/llm/export/export_llm`` drives), as its runners (``llama_main``, the Python
``TextLLMRunner``) expect: KV cache inside the program, ``llama::custom_sdpa``, XNNPACK, metadata
methods (``get_max_seq_len``, ``get_eos_ids``...).  Quantization is the export's own: ``int8`` is its
PT2E XNNPACK dynamic mode (8-bit per-channel weights, 8-bit dynamic activations; its source-transform
"int8" mode cannot keep Qwen2's q/k/v biases), ``int4`` is ``8da4w`` (4-bit weights in groups of 32,
8-bit dynamic activations); both quantize the embedding table too.

Sizes from ExecuTorch's examples/models/qwen2_5/config/0_5b_config.json (v1.0 on), which match
Qwen2-0.5B's Hugging Face config (24 layers, hidden 896, 14 heads / 2 KV heads, FFN 4864,
vocabulary 151,936, RoPE theta 1e6, q/k/v biases, tied embeddings).
"""

from __future__ import annotations

import json
import tempfile
from importlib import metadata
from pathlib import Path

from harness.zoo import Recipe
from harness.zoo.recipes import QUANTS, REPO_CORPORA

QWEN2_0_5B = {"dim": 896, "hidden_dim": 4864, "ffn_dim_multiplier": 1, "n_heads": 14, "n_kv_heads": 2,
              "n_layers": 24, "vocab_size": 151936, "norm_eps": 1e-06, "rope_theta": 1000000.0,
              "use_scaled_rope": False, "use_hf_rope": True, "attention_qkv_bias": True}
# The same family at a size a test can export in seconds (head_dim 16, as small as XNNPACK's SDPA likes).
QWEN2_TINY = {**QWEN2_0_5B, "dim": 64, "hidden_dim": 128, "n_heads": 4, "n_kv_heads": 2, "n_layers": 2,
              "vocab_size": 1024}
ARCHITECTURES = {"qwen2-0.5b-arch": QWEN2_0_5B, "qwen2-tiny-arch": QWEN2_TINY}
MAX_SEQ_LEN = 128  # the KV cache's length: prompt (a transcript) + the predicted words
SEED = 0
GROUP_SIZE = 32
EMBEDDING_QUANT = {"int8": "8,0", "int4": f"4,{GROUP_SIZE}"}  # bits, group size (0: one scale per row)
EOS = "<|endoftext|>"  # Qwen2's end of text, at its id (151643) in the full-size vocabulary
QWEN2_EOS_ID = 151643


def eos_id(vocab_size: int) -> int:
    """Qwen2's end-of-text id where the vocabulary has it, else its last id (the tiny config)."""
    return QWEN2_EOS_ID if QWEN2_EOS_ID < vocab_size else vocab_size - 1


def tokenizer_name(arch: str) -> str:
    return f"{arch}.tokenizer.json"


def write_tokenizer(path: Path, vocab_size: int, corpus_text: list[str]) -> None:
    """A byte-level BPE in Hugging Face ``tokenizer.json`` form (what ExecuTorch's HFTokenizer loads).

    Qwen2's own vocabulary cannot be downloaded, so one is trained here on the corpus text: English
    words come out as one or two tokens, as with Qwen2's.  Its one special token is ``<|endoftext|>``
    (HFTokenizer takes it for both BOS and EOS, as Qwen2's config does), at Qwen2's id when it fits.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=min(vocab_size - 1, 4096), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus_text, trainer)
    doc = json.loads(tokenizer.to_str())
    doc["added_tokens"] = [{"id": eos_id(vocab_size), "content": EOS, "single_word": False, "lstrip": False, "rstrip": False,
                            "normalized": False, "special": True}]
    path.write_text(json.dumps(doc, ensure_ascii=False))


def _seeded_checkpoint(params: dict, path: Path) -> None:
    """Seeded random weights in the layout export_llama loads, output projection tied to the embedding."""
    import torch
    from executorch.examples.models.llama.llama_transformer import construct_transformer
    from executorch.examples.models.llama.model_args import ModelArgs

    torch.manual_seed(SEED)
    model = construct_transformer(ModelArgs(**params))
    state = model.state_dict()
    state["output.weight"] = state["tok_embeddings.weight"]  # Qwen2-0.5B ties them
    torch.save(state, path)


def export_llm(target: Path, params: dict, quant: str, max_seq_len: int = MAX_SEQ_LEN) -> list[str]:
    """Export one program with ExecuTorch's LLM export; returns the recipe's steps, in words."""
    from executorch.examples.models.llama.export_llama_lib import export_llama
    from executorch.extension.llm.export.config.llm_config import DtypeOverride, LlmConfig, ModelType, Pt2eQuantize

    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        scratch = Path(scratch)
        (scratch / "params.json").write_text(json.dumps(params))
        _seeded_checkpoint(params, scratch / "seeded.pth")  # no "int8"/"8da4w" in the name: that means pre-quantized
        cfg = LlmConfig()
        # qwen2_5_0_5b selects Qwen's weight layout; a checkpoint is given, so nothing is downloaded.
        cfg.base.model_class = ModelType.qwen2_5_0_5b
        cfg.base.params = str(scratch / "params.json")
        cfg.base.checkpoint = str(scratch / "seeded.pth")
        eos = eos_id(params["vocab_size"])
        cfg.base.metadata = json.dumps({"get_bos_id": eos, "get_eos_ids": [eos]})
        cfg.model.use_kv_cache = True
        cfg.model.use_sdpa_with_kv_cache = True
        cfg.model.dtype_override = DtypeOverride.fp32
        cfg.backend.xnnpack.enabled = True
        cfg.export.max_seq_length = max_seq_len
        cfg.export.max_context_length = max_seq_len
        cfg.export.output_dir = str(scratch)
        cfg.export.output_name = str(scratch / "model.pte")  # a name ending in .pte is taken verbatim, so absolute
        if quant == "int8":
            # The source-transform "int8" mode drops the q/k/v biases Qwen2 has (its state dict load fails);
            # the PT2E XNNPACK quantizer keeps them: 8-bit per-channel weights, 8-bit dynamic activations.
            cfg.quantization.pt2e_quantize = Pt2eQuantize.xnnpack_dynamic
        elif quant == "int4":
            cfg.quantization.qmode = "8da4w"
            cfg.quantization.group_size = GROUP_SIZE
        if quant in EMBEDDING_QUANT:
            # The embedding table is a quarter of Qwen2-0.5B's weights and the linear-layer modes leave it in
            # FP32 (an "INT4" build of 823 MB); ExecuTorch's LLM recipes quantize it too ("bits,group").
            cfg.quantization.embedding_quantize = EMBEDDING_QUANT[quant]
        Path(export_llama(cfg)).replace(target)
    how = {"fp32": "FP32", "int8": "INT8 (PT2E XNNPACK: per-channel weights, dynamic activations), embedding INT8 per row",
           "int4": f"8da4w (INT4 weights, groups of {GROUP_SIZE}), embedding INT4 in groups of {GROUP_SIZE}"}[quant]
    return [f"seeded random weights (torch.manual_seed({SEED})), output tied to the embedding",
            f"executorch export_llama: KV cache, SDPA custom op, XNNPACK, {how}, max_seq_len {max_seq_len}"]


# The tokenizer learns its merges from the sentences the pipeline will transcribe and continue.
CORPUS_TEXT = REPO_CORPORA / "harvard-hibari" / "manifest.jsonl"


def _corpus_text() -> list[str]:
    from harness.accuracy.corpus import read_manifest

    return [utt.text for utt in read_manifest(CORPUS_TEXT).utterances]


def llm_recipe(arch: str, quant: str) -> Recipe:
    params = ARCHITECTURES[arch]

    def build(target: Path, deps: dict) -> dict:
        steps = export_llm(target, params, quant)
        write_tokenizer(target.parent / tokenizer_name(arch), params["vocab_size"], _corpus_text())
        return {"model": arch, "stage": "llm", "backend": "xnnpack", "quantization": quant,
                "companions": {"tokenizer": tokenizer_name(arch)},
                "source": {"architecture": "Qwen2 (executorch.examples.models.llama, model_class qwen2_5_0_5b)",
                           "params": params, "weights": f"seeded random (seed {SEED}): real size and latency, "
                                                       "meaningless text",
                           "executorch": metadata.version("executorch"),
                           "tokenizer": "byte-level BPE trained on the repository's corpus text (not Qwen2's)"},
                "recipe": {"steps": steps}}
    # Opt-in: minutes to build and 0.5-2 GB each, so `harness zoo build` makes them only when named.
    return Recipe(f"{arch}-{quant}-xnnpack", ".pte", 1, ("torch", "executorch", "torchao", "tokenizers"), build,
                  data=(CORPUS_TEXT, Path(__file__)), default=False)  # this module is its own input


RECIPES = [llm_recipe(arch, q) for arch in ("qwen2-0.5b-arch", "qwen2-tiny-arch") for q in QUANTS]
