"""Model files are recognised by their bytes; manifests are checked; gaps are inferred and listed."""

from __future__ import annotations

import hashlib

import pytest

from harness.artifacts import load_artifact
from harness.artifacts.manifest import sha256_of
from harness.artifacts.sniff import sniff_format
from harness.errors import UserError
from tests.helpers import copy_model, write


def test_real_exports_are_recognised(model_dir):
    assert sniff_format(model_dir / "tiny.pte") == "pte"
    assert sniff_format(model_dir / "tiny.onnx") == "onnx"


def test_pte_renamed_to_onnx_is_rejected_with_the_fix(model_dir, tmp_path):
    fake = tmp_path / "encoder.onnx"
    fake.write_bytes((model_dir / "tiny.pte").read_bytes())
    with pytest.raises(UserError) as err:
        load_artifact(fake)
    assert str(fake) in str(err.value)
    assert "content is a pte file" in str(err.value) and "rename it to encoder.pte" in str(err.value)


def test_garbage_named_pte_is_rejected(tmp_path):
    page = write(tmp_path / "model.pte", "<html>404 Not Found</html>")
    with pytest.raises(UserError, match="not a model file this harness can read"):
        load_artifact(page)


def test_truncated_onnx_is_rejected(model_dir, tmp_path):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes((model_dir / "tiny.onnx").read_bytes()[:500])
    with pytest.raises(UserError, match="not a model file"):
        load_artifact(cut)


def test_missing_manifest_is_inferred_and_listed(model_dir, tmp_path):
    art = load_artifact(copy_model(model_dir, "tiny.pte", tmp_path / "whisper_encoder_int8"))
    assert art.format == "pte"
    assert art.backend == "xnnpack"  # read from the delegate id inside the program
    assert "manifest" in art.inferred and "backend" in art.inferred
    # hashlib over the bytes, not sha256_of (which load_artifact itself calls).
    assert art.sha256 == hashlib.sha256(art.path.read_bytes()).hexdigest() and art.size_bytes == art.path.stat().st_size


def test_a_folder_digest_covers_each_file_name_and_its_bytes(tmp_path):
    """A folder build (.mlpackage) is digested as its files in sorted order, each as its relative name, a NUL,
    then its bytes: worked out here with hashlib.  Catches a folder digest that ignores names (a renamed member,
    or bytes moved from one file to another, must change it) or the order."""
    package = tmp_path / "enc.mlpackage"
    write(package / "Manifest.json", '{"v": 1}')
    (package / "Data").mkdir()
    (package / "Data" / "w.bin").write_bytes(b"\x00\x01weights")
    expected = hashlib.sha256(b"Data/w.bin\0" + b"\x00\x01weights" + b"Manifest.json\0" + b'{"v": 1}').hexdigest()
    assert sha256_of(package) == expected
    (package / "Data" / "w.bin").rename(package / "Data" / "v.bin")  # same bytes, same order, another name
    assert sha256_of(package) != expected


def test_name_words_guide_inference(model_dir, tmp_path):
    target = tmp_path / "whisper-encoder-int8.onnx"
    target.write_bytes((model_dir / "tiny.onnx").read_bytes())
    art = load_artifact(target)
    assert (art.stage, art.quantization, art.backend) == ("asr-encoder", "int8", "ort-cpu")


def test_onnx_quantization_is_read_from_the_graph(model_dir, tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = tmp_path / "plain.onnx"
    quantize_dynamic(str(model_dir / "tiny.onnx"), str(quantized), weight_type=QuantType.QInt8)
    assert load_artifact(quantized).quantization == "int8"
    assert load_artifact(model_dir / "tiny.onnx").quantization == "fp32"


def test_manifest_fields_win_and_are_not_listed_as_inferred(model_dir, tmp_path):
    path = copy_model(model_dir, "tiny.onnx", tmp_path, manifest={
        "model": "whisper-tiny.en", "stage": "asr-decoder", "backend": "ort-cpu", "quantization": "int4"})
    art = load_artifact(path)
    assert (art.model, art.stage, art.quantization) == ("whisper-tiny.en", "asr-decoder", "int4")
    assert art.inferred == []


def test_stale_manifest_sha256_is_rejected(model_dir, tmp_path):
    path = copy_model(model_dir, "tiny.onnx", tmp_path, manifest={"sha256": "0" * 64})
    with pytest.raises(UserError, match="does not match the model file"):
        load_artifact(path)


def test_manifest_unknown_key_names_the_manifest(model_dir, tmp_path):
    path = copy_model(model_dir, "tiny.onnx", tmp_path, manifest={"quantisation": "int8"})
    with pytest.raises(UserError) as err:
        load_artifact(path)
    assert "tiny.onnx.manifest.json" in str(err.value) and "quantisation" in str(err.value)


def test_manifest_format_contradicting_the_file(model_dir, tmp_path):
    path = copy_model(model_dir, "tiny.onnx", tmp_path, manifest={"format": "pte"})
    with pytest.raises(UserError, match="manifest says pte but the file is onnx"):
        load_artifact(path)


@pytest.mark.parametrize("claimed", ["qnn", "portable", "ort-qnn"])
def test_a_manifest_backend_the_pte_is_not_delegated_to_is_refused(model_dir, tmp_path, claimed):
    """A manifest saying qnn over an XNNPACK .pte was taken at its word: its cells were labelled QNN and measured
    XNNPACK (or the QNN runner failed on the phone); the .pte's own delegate ids now decide."""
    path = copy_model(model_dir, "tiny.pte", tmp_path, manifest={"backend": claimed})
    with pytest.raises(UserError, match=f"manifest says {claimed} but the .pte delegates to xnnpack") as err:
        load_artifact(path)
    assert "backend: xnnpack" in str(err.value) and "tiny.pte.manifest.json" in str(err.value)
    (tmp_path / "tiny.pte.manifest.json").write_text('{"backend": "xnnpack"}')  # the truth is accepted
    assert load_artifact(path).backend == "xnnpack"


def test_the_log_mel_front_end_is_named_stage_mel(model_dir, tmp_path):
    """whisper-logmel.onnx was inferred stage asr ("whisper" matched, "logmel" did not), so a chain refused it as
    its mel part, and its latency was held to the ASR budget."""
    for name in ("whisper-logmel.onnx", "whisper_logmel-fp32.onnx", "whisper-log-mel.onnx"):
        assert load_artifact(copy_model(model_dir, "tiny.onnx", tmp_path, as_name=name)).stage == "mel", name


def test_a_half_precision_onnx_graph_is_fp16_without_a_name_saying_so(tmp_path):
    """An ONNX graph whose weights are all float16 was inferred fp32 (the default when no quantizing operator is
    found), unlike a name saying fp16."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4, 4), dtype=np.float16), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 4])], [weight])
    onnx.save(helper.make_model(graph), tmp_path / "half.onnx")
    art = load_artifact(tmp_path / "half.onnx")
    assert art.quantization == "fp16" and "quantization" in art.inferred


@pytest.mark.parametrize("given", ["nonsense", ["ort-cpu", "nonsense"]])
def test_an_unknown_backend_is_one_problem_named_whether_alone_or_listed(model_dir, tmp_path, given):
    """With a backend list allowed, a typo drew one message per form the field takes ("Input should be a valid
    string (and 1 more problem)") instead of naming the unknown backend."""
    path = copy_model(model_dir, "tiny.onnx", tmp_path, manifest={"backend": given})
    with pytest.raises(UserError, match="unknown backend 'nonsense'") as err:
        load_artifact(path)
    assert "more problem" not in str(err.value)
