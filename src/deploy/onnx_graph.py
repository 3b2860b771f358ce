"""Edits of the ONNX graphs ``mindspore.onnx.export`` 2.10 writes: the repair every export needs, and the fixes
MindSpore Lite 2.0's converter needs (the why of each is in src/deploy/lite_convert.py's docstring)."""

import os
import stat

import numpy as np
import onnx
from onnx import helper, numpy_helper


def repair_onnx(onnx_path):
    """Fix what ``mindspore.onnx.export`` 2.10 writes, then run the ONNX checker:

    - when the network ends inside a composite cell (iResNet's ``features`` BatchNorm1d ends in a Reshape), the
      graph output keeps its requested name but no node produces it, and ONNX Runtime refuses the file; the one
      node output nothing consumes is renamed to it;
    - a dynamic dimension is written as ``dim_value: -1``; it is rewritten the ONNX way (``dim_param``).
    """
    model = onnx.load(onnx_path)
    graph = model.graph
    produced = {name for node in graph.node for name in node.output}
    consumed = {name for node in graph.node for name in node.input}
    for output in graph.output:
        if output.name in produced:
            continue
        sinks = [
            (node, i)
            for node in graph.node
            for i, name in enumerate(node.output)
            if name not in consumed and node.op_type != "Constant"
        ]
        if len(sinks) != 1:
            raise RuntimeError(
                f"{onnx_path}: graph output '{output.name}' is produced by no node and the graph has "
                f"{len(sinks)} unconsumed node outputs; cannot tell which one it is"
            )
        node, index = sinks[0]
        node.output[index] = output.name
    mark_dynamic_dims(model)
    onnx.checker.check_model(model)
    mode = stat.S_IMODE(os.stat(onnx_path).st_mode)
    os.chmod(onnx_path, mode | stat.S_IWUSR)
    onnx.save(model, onnx_path)
    os.chmod(onnx_path, mode)


def _unsqueeze_axes(node, initializers):
    """The axes of an Unsqueeze node: an attribute up to opset 12, a constant second input from 13 on."""
    for attribute in node.attribute:
        if attribute.name == "axes":
            return list(attribute.ints)
    if len(node.input) > 1 and node.input[1] in initializers:
        return [int(a) for a in numpy_helper.to_array(initializers[node.input[1]])]
    return None


def fold_prelu_slope_unsqueeze(model):
    """Fold every Unsqueeze of a constant that feeds a PRelu slope into a new initializer, in place.

    Initializers left unused afterwards are removed. Returns the number of Unsqueeze nodes folded.
    """
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    slope_inputs = {node.input[1] for node in graph.node if node.op_type == "PRelu" and len(node.input) > 1}
    kept, folded = [], 0
    for node in graph.node:
        axes = _unsqueeze_axes(node, initializers) if node.op_type == "Unsqueeze" else None
        if axes is None or node.input[0] not in initializers or node.output[0] not in slope_inputs:
            kept.append(node)
            continue
        value = numpy_helper.to_array(initializers[node.input[0]])
        rank = value.ndim + len(axes)
        for axis in sorted(a % rank for a in axes):
            value = np.expand_dims(value, axis)
        graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
        folded += 1
    del graph.node[:]
    graph.node.extend(kept)

    used = {name for node in graph.node for name in node.input} | {out.name for out in graph.output}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    unused_names = {init.name for init in unused}
    for graph_input in [i for i in graph.input if i.name in unused_names]:
        graph.input.remove(graph_input)
    return folded


def mark_dynamic_dims(model):
    """Rewrite negative ``dim_value`` of graph inputs and outputs as ``dim_param``, in place.

    Returns True when the graph has a dynamic dimension (marked here or already a ``dim_param``).
    """
    dynamic = False
    for value in list(model.graph.input) + list(model.graph.output):
        for index, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value < 0:
                dim.dim_param = "batch" if index == 0 else f"dim{index}"
            dynamic = dynamic or not dim.HasField("dim_value")
    return dynamic


def decompose_prelu(model):
    """Replace each ``PRelu(x, slope)`` by ``Relu(x) + slope * Min(x, 0)``, in place; returns the count."""
    graph = model.graph
    zero = "to_lite_zero"
    nodes, count = [], 0
    for node in graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope = node.input
        y = node.output[0]
        nodes += [
            helper.make_node("Relu", [x], [f"{y}_positive"]),
            helper.make_node("Min", [x, zero], [f"{y}_negative"]),
            helper.make_node("Mul", [f"{y}_negative", slope], [f"{y}_scaled"]),
            helper.make_node("Add", [f"{y}_positive", f"{y}_scaled"], [y]),
        ]
        count += 1
    if count:
        graph.initializer.append(numpy_helper.from_array(np.zeros((), np.float32), zero))
        del graph.node[:]
        graph.node.extend(nodes)
    return count


def has_dynamic_input(onnx_path):
    """True when an input of the graph has a dimension that is not a fixed size (a dynamic batch)."""
    inputs = onnx.load(onnx_path).graph.input
    return any(
        not dim.HasField("dim_value") or dim.dim_value < 0
        for value in inputs
        for dim in value.type.tensor_type.shape.dim
    )


def fix_onnx(onnx_path, fixed_path):
    """Write the ONNX that Lite 2.0 converts and runs to ``fixed_path`` (see the module docstring).

    Returns (Unsqueeze nodes folded, PRelu nodes decomposed).
    """
    model = onnx.load(onnx_path)
    folded = fold_prelu_slope_unsqueeze(model)
    decomposed = decompose_prelu(model) if mark_dynamic_dims(model) else 0
    onnx.checker.check_model(model)
    onnx.save(model, fixed_path)
    return folded, decomposed
