"""Export and quantization steps shared by the reference builds.

Each function takes an eager module (or a built file) and writes one build; the
recipe strings they return go into the manifest so a build says how it was made.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

INT4_GROUP = 32  # weights per scale in the 4-bit schemes (ONNX MatMulNBits, torchao 8da4w, Core ML)


def _drop_value_info(path: Path) -> None:
    # Exporters record value_info for initializers too; onnxruntime's quantizers re-run shape
    # inference over renamed tensors and trip on those stale entries.  They are optional: drop them.
    import onnx

    model = onnx.load_model(str(path))
    del model.graph.value_info[:]
    onnx.save_model(model, str(path))


def export_onnx(module: torch.nn.Module, example: tuple[torch.Tensor, ...], out: Path,
                input_names: list[str], output_names: list[str]) -> str:
    """torch.onnx (dynamo exporter), static shapes, weights inside the file."""
    program = torch.onnx.export(module, example, dynamo=True, input_names=input_names,
                                output_names=output_names, external_data=False, verbose=False)
    program.save(str(out), external_data=False)
    _drop_value_info(out)
    return "torch.onnx.export(dynamo=True), static shapes"


def _untie_initializers(src: Path, out: Path) -> None:
    """Give every node its own copy of an initializer it shares with other nodes.

    Whisper ties the token embedding (read by Gather) to the vocabulary projection (a Gemm
    with transB).  onnxruntime's dynamic quantizer rewrites the shared tensor for the Gemm
    and the Gather then reads it in the wrong layout: the session fails to load.
    """
    import onnx

    model = onnx.load_model(str(src))
    inits = {init.name: init for init in model.graph.initializer}
    seen: set[str] = set()
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name not in inits:
                continue
            if name in seen:
                copy_ = onnx.TensorProto()
                copy_.CopyFrom(inits[name])
                copy_.name = f"{name}__{node.name or node.op_type}_{i}"
                model.graph.initializer.append(copy_)
                node.input[i] = copy_.name
            seen.add(name)
    onnx.save_model(model, str(out))


def onnx_int8(src: Path, out: Path) -> str:
    """Dynamic quantization: int8 per-channel weights, activations quantized at run time."""
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        untied = Path(tmp) / "untied.onnx"
        _untie_initializers(src, untied)
        quantize_dynamic(str(untied), str(out), weight_type=QuantType.QInt8, per_channel=True)
    return "onnxruntime quantize_dynamic(QInt8, per_channel=True), shared initializers untied first"


def onnx_int4(src: Path, out: Path) -> str:
    """Block-wise 4-bit weights for MatMul (onnxruntime's MatMulNBits), activations stay float."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(onnx.load_model(str(src)), block_size=INT4_GROUP, is_symmetric=True)
    quantizer.process()
    quantizer.model.save_model_to_file(str(out), False)
    return f"onnxruntime MatMulNBitsQuantizer(bits=4, block_size={INT4_GROUP}, symmetric)"


def _lower_xnnpack(exported, out: Path) -> None:
    """One ExportedProgram as an XNNPACK-delegated .pte, with its ETRecord beside it (``<name>.etrecord``): the
    map from each profiled call back to the ATen ops it runs, which the host's operator profile names."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()],
                                          generate_etrecord=True).to_executorch()
    out.write_bytes(program.buffer)
    program.get_etrecord().save(str(out.with_suffix(".etrecord")))


def _drop_unused_weights(graph_module: torch.fx.GraphModule) -> None:
    """Remove parameters and buffers the graph no longer reads.

    After convert_pt2e the float weights stay registered beside their int8 copies;
    torch.export would serialize them, and the "int8" program came out larger than fp32.
    """
    # The only reader left of each float weight is an _assert_tensor_metadata check export inserted.
    for node in list(graph_module.graph.nodes):
        if node.op == "call_function" and node.target == torch.ops.aten._assert_tensor_metadata.default:
            graph_module.graph.erase_node(node)
    graph_module.graph.eliminate_dead_code()
    graph_module.recompile()
    used = {node.target for node in graph_module.graph.nodes if node.op == "get_attr"}
    for name, _ in list(graph_module.named_parameters()) + list(graph_module.named_buffers()):
        if name not in used:
            owner_name, _, attr = name.rpartition(".")
            owner = graph_module.get_submodule(owner_name) if owner_name else graph_module
            delattr(owner, attr)


def export_pte_xnnpack(module: torch.nn.Module, example: tuple[torch.Tensor, ...], out: Path,
                       quantization: str = "fp32") -> str:
    """torch.export -> (quantize) -> edge -> XNNPACK-delegated ExecuTorch program."""
    if quantization not in _PTE_RECIPES:
        raise ValueError(f"unknown quantization {quantization}")
    _lower_xnnpack(_quantized_export(module, example, quantization), out)
    return _PTE_RECIPES[quantization]


def _quantized_export(module: torch.nn.Module, example: tuple[torch.Tensor, ...], quantization: str):
    if quantization == "fp32":
        return torch.export.export(module, example)
    if quantization == "int8":
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer, get_symmetric_quantization_config)
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True))
        prepared = prepare_pt2e(torch.export.export(module, example).module(), quantizer)
        prepared(*example)
        converted = convert_pt2e(prepared)
        _drop_unused_weights(converted)
        return torch.export.export(converted, example)
    if quantization == "int4":
        from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_
        from torchao.quantization.granularity import PerGroup

        module = copy.deepcopy(module)
        quantize_(module, Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4,
                                                                weight_granularity=PerGroup(INT4_GROUP)))
        return torch.export.export(module, example)
    raise ValueError(f"unknown quantization {quantization}")


_PTE_RECIPES = {
    "fp32": "torch.export; to_edge_transform_and_lower(XnnpackPartitioner)",
    "int8": "PT2E XNNPACKQuantizer(symmetric, per-channel int8 weights, dynamic int8 activations); XNNPACK",
    "int4": f"torchao 8da4w: Int8DynamicActivationIntxWeightConfig(int4, PerGroup({INT4_GROUP})); XNNPACK",
}


def export_coreml(module: torch.nn.Module, example: tuple[torch.Tensor, ...], out: Path, input_names: list[str],
                  output_names: list[str], quantization: str) -> str:
    """coremltools: trace -> ML program (FP16 compute) -> optional int8/int4 weight compression.

    Conversion runs on Linux; prediction needs macOS, so these builds are checked statically.
    """
    import coremltools as ct
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig, linear_quantize_weights

    traced = torch.jit.trace(module, example)
    model = ct.convert(traced, inputs=[ct.TensorType(name=n, shape=t.shape) for n, t in zip(input_names, example)],
                       outputs=[ct.TensorType(name=n) for n in output_names], convert_to="mlprogram",
                       compute_precision=ct.precision.FLOAT16, minimum_deployment_target=ct.target.iOS18)
    recipe = "coremltools convert(mlprogram, FP16, iOS18)"
    if quantization == "int8":
        config = OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel")
        model = linear_quantize_weights(model, OptimizationConfig(global_config=config))
        recipe += "; linear_quantize_weights(int8, per_channel)"
    elif quantization == "int4":
        config = OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int4", granularity="per_block",
                                         block_size=INT4_GROUP)
        model = linear_quantize_weights(model, OptimizationConfig(global_config=config))
        recipe += f"; linear_quantize_weights(int4, per_block {INT4_GROUP})"
    model.save(str(out))
    return recipe
