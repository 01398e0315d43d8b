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
    target = tmp_path / "whisper-encoder-fp32.onnx"
    target.write_bytes((model_dir / "tiny.onnx").read_bytes())
    art = load_artifact(target)
    assert (art.stage, art.quantization, art.backend) == ("asr-encoder", "fp32", "ort-cpu")


def test_an_onnx_name_the_graph_contradicts_is_refused_and_the_graph_decides(model_dir, tmp_path):
    """The name's quantization word beat the graph: quantize_dynamic's output named model-fp32.onnx was labelled
    fp32, and the fp32 graph named tiny-int8.onnx int8."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = tmp_path / "model-fp32.onnx"
    quantize_dynamic(str(model_dir / "tiny.onnx"), str(quantized), weight_type=QuantType.QInt8)
    with pytest.raises(UserError, match=r"model-fp32.onnx: the name says 'fp32' \(fp32\) but the graph is int8"):
        load_artifact(quantized)
    plain = copy_model(model_dir, "tiny.onnx", tmp_path, as_name="tiny-int8.onnx")
    with pytest.raises(UserError, match="the name says 'int8' .* graph is fp32") as err:
        load_artifact(plain)
    assert "rename the file" in str(err.value) and "quantization:" in str(err.value)
    named_right = copy_model(model_dir, "tiny.onnx", tmp_path, as_name="tiny-fp32.onnx")
    assert load_artifact(named_right).quantization == "fp32"


def test_an_int4_name_over_an_int8_graph_is_refused(model_dir, tmp_path):
    """int4 is MatMulNBits in an ONNX graph; a QInt8 graph named int4 was labelled int4 and paired as INT4."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = tmp_path / "enc-int4.onnx"
    quantize_dynamic(str(model_dir / "tiny.onnx"), str(quantized), weight_type=QuantType.QInt8)
    with pytest.raises(UserError, match="the name says 'int4' .* graph is int8"):
        load_artifact(quantized)


def test_an_int4_graph_is_int4_whatever_its_name(tmp_path):
    """A MatMulNBits graph with no word in its name was inferred fp32 (and one named int8 was taken as int8)."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("MatMulNBits", ["x", "w", "s"], ["y"], domain="com.microsoft", K=32, N=8, bits=4,
                            block_size=32)
    w = helper.make_tensor("w", TensorProto.UINT8, [8, 1, 16], bytes(8 * 16), raw=True)
    s = helper.make_tensor("s", TensorProto.FLOAT, [8], [1.0] * 8)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], [w, s])
    onnx.save(helper.make_model(graph), tmp_path / "lm.onnx")
    assert load_artifact(tmp_path / "lm.onnx").quantization == "int4"
    (tmp_path / "lm-int8.onnx").write_bytes((tmp_path / "lm.onnx").read_bytes())
    with pytest.raises(UserError, match="graph is int4"):
        load_artifact(tmp_path / "lm-int8.onnx")


def test_a_manifest_quantization_is_taken_over_the_graph(model_dir, tmp_path):
    """Decided: a manifest's quantization is written on purpose (and is the fix the refusal above offers), so it
    stands even where the graph's operators show nothing of the scheme."""
    path = copy_model(model_dir, "tiny.onnx", tmp_path, as_name="tiny-int8.onnx", manifest={"quantization": "int8"})
    art = load_artifact(path)
    assert art.quantization == "int8" and "quantization" not in art.inferred


def test_the_model_name_keeps_the_dots_inside_it(model_dir, tmp_path):
    """The name was cut at its first dot: whisper-tiny.en-logmel-fp32.onnx and whisper-tiny.en-logmel.onnx were
    both model 'whisper-tiny', one model with another's cells."""
    for name in ("whisper-tiny.en-logmel-fp32.onnx", "whisper-tiny.en-logmel.onnx"):
        art = load_artifact(copy_model(model_dir, "tiny.onnx", tmp_path, as_name=name))
        assert art.model == name.removesuffix(".onnx") and art.stage == "mel", name


@pytest.mark.parametrize("name", ["whisper-encoder-logmel.onnx", "whisper-logmel-decoder-fp32.onnx",
                                  "silero-vad-encoder.onnx"])
def test_a_name_with_two_stage_words_is_refused(model_dir, tmp_path, name):
    """whisper-encoder-logmel and whisper-logmel-decoder were both silently stage mel (the first word in the
    table's order won)."""
    path = copy_model(model_dir, "tiny.onnx", tmp_path, as_name=name)
    with pytest.raises(UserError, match="more than one stage") as err:
        load_artifact(path)
    assert "stage:" in str(err.value) and name in str(err.value)
    (tmp_path / f"{name}.manifest.json").write_text('{"stage": "asr-encoder"}')  # the manifest settles it
    assert load_artifact(path).stage == "asr-encoder"


def test_whisper_yields_to_a_more_specific_stage_word(model_dir, tmp_path):
    art = load_artifact(copy_model(model_dir, "tiny.onnx", tmp_path, as_name="whisper-tiny.en-decoder-fp32.onnx"))
    assert art.stage == "asr-decoder"


@pytest.mark.parametrize(("given", "fix"), [("qnn", "write ort-qnn"), ("xnnpack", "write ort-xnnpack"),
                                            (["ort-cpu", "qnn"], "write ort-qnn"), ("portable", "write one of")])
def test_an_executorch_backend_on_an_onnx_build_is_refused_at_load(model_dir, tmp_path, given, fix):
    """backend: qnn over an .onnx was accepted and the cell failed mid-night ("no runner measures unknown onnx
    builds on android")."""
    path = copy_model(model_dir, "tiny.onnx", tmp_path, manifest={"backend": given})
    with pytest.raises(UserError, match=r"is a .pte backend .* \.onnx build") as err:
        load_artifact(path)
    assert fix in str(err.value) and "tiny.onnx.manifest.json" in str(err.value)


def test_an_onnx_runtime_backend_on_a_pte_says_ort_backends_are_for_onnx(model_dir, tmp_path):
    """The fix said "export the model again for ort-qnn", which is no .pte export."""
    path = copy_model(model_dir, "tiny.pte", tmp_path, manifest={"backend": "ort-qnn"})
    with pytest.raises(UserError, match="ort-qnn is an ONNX Runtime backend") as err:
        load_artifact(path)
    assert "ort-* backends are for .onnx builds" in str(err.value) and "export the model again" not in str(err.value)


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


@pytest.mark.parametrize("claimed", ["qnn", "portable"])
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
