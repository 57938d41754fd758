"""ONNX export, checked against PyTorch with onnxruntime before anyone serves it.

The graph takes ``input`` (float32, [batch, features]) and returns ``output`` (class
probabilities, or predictions in the target's units). Everything serving or a person
needs to use it without the training code is in ``metadata_props``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import warnings
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from thunderbolt.artifacts import sha256_digest
from thunderbolt.trainer.data import Dataset
from thunderbolt.trainer.errors import ExportMismatch
from thunderbolt.trainer.model import InferenceModel, plain_copy

log = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "output"
OPSET = 18
PARITY_TOLERANCE = 1e-4


@dataclasses.dataclass
class Exported:
    data: bytes
    checksum: str
    max_abs_diff: float
    exporter: str


def export(net: nn.Module, data: Dataset, metadata: dict[str, str]) -> Exported:
    """Export, stamp metadata, and verify on the validation rows."""
    model = InferenceModel(plain_copy(net), data.task, data.target_mean, data.target_std).eval()
    example = torch.as_tensor(data.x_val[:2])
    proto, exporter = _to_onnx(model, example)
    props = _metadata(data) | metadata
    del proto.metadata_props[:]
    for key, value in sorted(props.items()):
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    blob = proto.SerializeToString()
    diff = parity(model, blob, data.x_val)
    if not diff <= PARITY_TOLERANCE:
        raise ExportMismatch(
            f"onnxruntime and PyTorch disagree by {diff:.3g} on validation rows "
            f"(tolerance {PARITY_TOLERANCE:g})"
        )
    return Exported(data=blob, checksum=sha256_digest(blob), max_abs_diff=diff, exporter=exporter)


def _to_onnx(model: nn.Module, example: torch.Tensor) -> tuple[onnx.ModelProto, str]:
    """The TorchScript exporter (fast, offline); the dynamo exporter if it is gone."""
    try:
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                (example,),
                buf,  # type: ignore[arg-type]
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        return onnx.load_from_string(buf.getvalue()), "torchscript"
    except Exception as exc:  # removed or failing legacy exporter: try the new one
        log.info("TorchScript ONNX export failed (%s); using the dynamo exporter", exc)
    program: Any = torch.onnx.export(
        model,
        (example,),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes={"input": {0: torch.export.Dim("batch")}},
        opset_version=OPSET,
        dynamo=True,
    )
    return program.model_proto, "dynamo"


def parity(model: nn.Module, blob: bytes, x: np.ndarray) -> float:
    """Max abs difference between onnxruntime and PyTorch outputs on ``x``."""
    import onnxruntime as ort

    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x32})
    with torch.no_grad():
        want = model(torch.as_tensor(x32)).numpy()
    if got.shape != want.shape:
        raise ExportMismatch(f"ONNX output shape {got.shape} != PyTorch {want.shape}")
    return float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))


def _metadata(data: Dataset) -> dict[str, str]:
    n_out = data.num_outputs
    props = {
        "thunderbolt.task": data.task,
        "thunderbolt.input_name": INPUT_NAME,
        "thunderbolt.output_name": OUTPUT_NAME,
        "thunderbolt.input_shape": json.dumps([-1, data.num_features]),
        "thunderbolt.output_shape": json.dumps([-1, n_out]),
        "thunderbolt.output_kind": "probabilities" if data.task == "classification" else "values",
        "thunderbolt.feature_names": json.dumps(data.feature_names),
        "thunderbolt.standardization": json.dumps(
            {"mean": [float(v) for v in data.mean], "std": [float(v) for v in data.std]}
        ),
    }
    if data.class_labels is not None:
        props["thunderbolt.class_labels"] = json.dumps(data.class_labels)
    else:
        props["thunderbolt.target_standardization"] = json.dumps(
            {"mean": data.target_mean, "std": data.target_std}
        )
    return props
