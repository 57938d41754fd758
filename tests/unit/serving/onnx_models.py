"""Small ONNX models built with onnx.helper, so serving tests never need the trainer.

Import as ``from tests.unit.serving.onnx_models import ...`` (unit and integration).
"""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from thunderbolt.artifacts import sha256_digest

OPSET = [helper.make_opsetid("", 17)]


def _model(graph: onnx.GraphProto, metadata: dict[str, str] | None = None) -> bytes:
    model = helper.make_model(graph, opset_imports=OPSET, ir_version=8)
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def linear_weights(n_features: int = 4, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    weight = rng.normal(size=(n_features, k)).astype(np.float32)
    bias = rng.normal(size=(k,)).astype(np.float32)
    return weight, bias


def linear_model(n_features: int = 4, k: int = 3, tag: str = "") -> bytes:
    """``output = input @ W + b``: the trainer's contract (``input`` -> ``output``); a
    ``tag`` (metadata) gives other bytes with the same answers."""
    weight, bias = linear_weights(n_features, k)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["output"]),
        ],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", n_features])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", k])],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    names = ",".join(f"f{i}" for i in range(n_features))
    return _model(graph, {"feature_names": names, **({"tag": tag} if tag else {})})


def multi_dtype_model() -> bytes:
    """Four inputs of four datatypes, each mapped to an output of the same type."""
    info = helper.make_tensor_value_info
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x_fp64", "x_fp64"], ["y_fp64"]),
            helper.make_node("Add", ["x_int32", "one32"], ["y_int32"]),
            helper.make_node("Mul", ["x_int64", "three64"], ["y_int64"]),
            helper.make_node("Not", ["flag"], ["not_flag"]),
        ],
        "multi_dtype",
        [
            info("x_fp64", TensorProto.DOUBLE, ["batch", 2]),
            info("x_int32", TensorProto.INT32, ["batch", 2]),
            info("x_int64", TensorProto.INT64, ["batch", 1]),
            info("flag", TensorProto.BOOL, ["batch", 1]),
        ],
        [
            info("y_fp64", TensorProto.DOUBLE, ["batch", 2]),
            info("y_int32", TensorProto.INT32, ["batch", 2]),
            info("y_int64", TensorProto.INT64, ["batch", 1]),
            info("not_flag", TensorProto.BOOL, ["batch", 1]),
        ],
        initializer=[
            numpy_helper.from_array(np.array(1, dtype=np.int32), "one32"),
            numpy_helper.from_array(np.array(3, dtype=np.int64), "three64"),
        ],
    )
    return _model(graph)


def lookup_model(rows: int = 5) -> bytes:
    """``output = table[index]``: onnxruntime raises at run time for an index >= ``rows``,
    so one request can make the model fail while others succeed."""
    table = np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "index"], ["output"], axis=0)],
        "lookup",
        [helper.make_tensor_value_info("index", TensorProto.INT64, ["batch", 1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1, 2])],
        initializer=[numpy_helper.from_array(table, "table")],
    )
    return _model(graph)


def failing_model(n_features: int = 4) -> bytes:
    """Valid ONNX that fails on every real input (Gather index out of range at run time)."""
    graph = helper.make_graph(
        [helper.make_node("Gather", ["input", "idx"], ["output"], axis=1)],
        "failing",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", n_features])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1])],
        initializer=[numpy_helper.from_array(np.array([n_features + 10], dtype=np.int64), "idx")],
    )
    return _model(graph)


def slow_model(iterations: int = 400, size: int = 256, n_features: int = 4) -> bytes:
    """``output = input``, after ``iterations`` input-dependent size x size matmuls
    (a Loop onnxruntime cannot constant-fold), so a request stays in flight a while."""
    w = (np.eye(size) * 0.5).astype(np.float32)
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["state_in", "W"], ["mm"]),
            helper.make_node("Tanh", ["mm"], ["state_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_in", TensorProto.FLOAT, [size, size]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [size, size]),
        ],
    )
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["input"], ["total"], keepdims=0),
            helper.make_node("Expand", ["total", "square"], ["state0"]),
            helper.make_node("Loop", ["trips", "cond", "state0"], ["state"], body=body),
            helper.make_node("ReduceSum", ["state"], ["s"], keepdims=0),
            helper.make_node("Mul", ["s", "zero"], ["z"]),
            helper.make_node("Add", ["input", "z"], ["output"]),
        ],
        "slow",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", n_features])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", n_features])],
        initializer=[
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(np.array([size, size], dtype=np.int64), "square"),
            numpy_helper.from_array(np.array(iterations, dtype=np.int64), "trips"),
            numpy_helper.from_array(np.array(True), "cond"),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        ],
    )
    return _model(graph)


def elementwise_model() -> bytes:
    """``output = -input`` with both dimensions dynamic, so requests can disagree on width."""
    graph = helper.make_graph(
        [helper.make_node("Neg", ["input"], ["output"])],
        "elementwise",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", "width"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", "width"])],
    )
    return _model(graph)


def fixed_batch_model(n_features: int = 4) -> bytes:
    """Static shape [1, n]: nothing to batch, so the server must run requests alone."""
    graph = helper.make_graph(
        [helper.make_node("Neg", ["input"], ["output"])],
        "fixed",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, n_features])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, n_features])],
    )
    return _model(graph)


def fp16_bytes_model() -> bytes:
    """FP16 and BYTES (ONNX string) tensors: ``half = x_fp16 * 2``, ``echo = text``."""
    info = helper.make_tensor_value_info
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x_fp16", "two"], ["half"]),
            helper.make_node("Identity", ["text"], ["echo"]),
        ],
        "fp16_bytes",
        [
            info("x_fp16", TensorProto.FLOAT16, ["batch", 2]),
            info("text", TensorProto.STRING, ["batch", 1]),
        ],
        [
            info("half", TensorProto.FLOAT16, ["batch", 2]),
            info("echo", TensorProto.STRING, ["batch", 1]),
        ],
        initializer=[numpy_helper.from_array(np.array(2, np.float16), "two")],
    )
    return _model(graph)


def write_model(data: bytes, directory: pathlib.Path, name: str = "model.onnx") -> tuple[str, str]:
    """Save a model; returns its ``file://`` URI and ``sha256:`` checksum."""
    path = directory / name
    path.write_bytes(data)
    return path.as_uri(), sha256_digest(data)
