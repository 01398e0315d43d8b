"""Export helpers shared by the reference builds: eager module -> .onnx / XNNPACK .pte."""

from __future__ import annotations

from pathlib import Path

import torch


def export_onnx(module: torch.nn.Module, example: tuple[torch.Tensor, ...], out: Path,
                input_names: list[str], output_names: list[str]) -> None:
    """torch.onnx (dynamo exporter), static shapes, weights inside the file."""
    program = torch.onnx.export(module, example, dynamo=True, input_names=input_names,
                                output_names=output_names, external_data=False, verbose=False)
    program.save(str(out), external_data=False)
    # The exporter records value_info for initializers too; onnxruntime's quantizers re-run shape
    # inference over renamed tensors and trip on those stale entries.  They are optional: drop them.
    import onnx

    model = onnx.load_model(str(out))
    del model.graph.value_info[:]
    onnx.save_model(model, str(out))


def export_pte_xnnpack(module: torch.nn.Module, example: tuple[torch.Tensor, ...], out: Path) -> None:
    """torch.export -> edge -> XNNPACK-delegated ExecuTorch program."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    exported = torch.export.export(module, example)
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    out.write_bytes(program.buffer)
