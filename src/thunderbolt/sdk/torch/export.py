"""ONNX export, checked against PyTorch with onnxruntime before anyone serves it.

The graph takes ``input`` (float32, [batch, ...], any rank the inference server
accepts) and returns ``output``. Spectral norm is folded into plain weights first; the
model's sha256 is the checksum serving verifies; ``metadata_props`` carry the shapes
and the Trial's identity so the file is usable without the training code.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import torch
from torch import nn

from thunderbolt.artifacts import sha256_digest
from thunderbolt.sdk.errors import ExportMismatch
from thunderbolt.sdk.publish import MODEL_FILE
from thunderbolt.sdk.torch.spectral import constrained_layers, plain_copy

if TYPE_CHECKING:
    from thunderbolt.sdk.trial import Trial

log = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "output"
OPSET = 18
PARITY_TOLERANCE = 1e-4
PARITY_ROWS = 4096  # enough rows to catch a mismatch, few enough to check in a second


@dataclasses.dataclass
class Exported:
    data: bytes
    checksum: str
    max_abs_diff: float
    exporter: str
    uri: str | None = None  # where it was published (with a trial)


def export_onnx(
    model: nn.Module,
    example: torch.Tensor | np.ndarray,
    *,
    validation: torch.Tensor | np.ndarray | None = None,
    metadata: Mapping[str, str] | None = None,
    tolerance: float = PARITY_TOLERANCE,
) -> Exported:
    """Export ``model`` (its forward on a [batch, ...] float32 input), stamp metadata,
    and verify it on ``validation`` rows (default: ``example``) with onnxruntime.

    Raises ``ExportMismatch`` when onnxruntime and PyTorch disagree beyond ``tolerance``.
    """
    plain = plain_copy(model)
    x = torch.as_tensor(np.asarray(example, dtype=np.float32))
    if x.ndim < 2:
        raise ValueError(f"example must be a batch [batch, ...], got shape {list(x.shape)}")
    proto, exporter = to_onnx(plain, x[:2])
    with torch.no_grad():
        out_shape = [-1, *plain(x[:1]).shape[1:]]
    props = {
        "thunderbolt.input_name": INPUT_NAME,
        "thunderbolt.output_name": OUTPUT_NAME,
        "thunderbolt.input_shape": json.dumps([-1, *x.shape[1:]]),
        "thunderbolt.output_shape": json.dumps(out_shape),
    } | dict(metadata or {})
    del proto.metadata_props[:]
    for key, value in sorted(props.items()):
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    blob = proto.SerializeToString()
    rows = np.asarray(validation if validation is not None else x, dtype=np.float32)
    diff = parity(plain, blob, rows[:PARITY_ROWS])
    if not diff <= tolerance:
        raise ExportMismatch(
            f"onnxruntime and PyTorch disagree by {diff:.3g} on validation rows "
            f"(tolerance {tolerance:g})"
        )
    return Exported(data=blob, checksum=sha256_digest(blob), max_abs_diff=diff, exporter=exporter)


def export(
    model: nn.Module,
    example: torch.Tensor | np.ndarray,
    trial: Trial | None = None,
    *,
    validation: torch.Tensor | np.ndarray | None = None,
    metadata: Mapping[str, str] | None = None,
    tolerance: float = PARITY_TOLERANCE,
) -> Exported:
    """``export_onnx``, then (with a ``trial``) write ``<output>/model.onnx``, upload it
    to the artifact store and register it in MLflow, so ``trial.finish()`` reports its
    URI and checksum. What the built-in trainer does with its own models.
    """
    props = dict(metadata or {})
    if trial is not None:
        props = identity_metadata(trial) | props
    exported = export_onnx(
        model, example, validation=validation, metadata=props, tolerance=tolerance
    )
    if trial is not None:
        # Read off the trained model: true exactly when a layer carries spectral norm.
        trial.switches.setdefault("spectral_norm", bool(constrained_layers(model)))
    if trial is not None and trial.is_main:
        trial.output_dir.mkdir(parents=True, exist_ok=True)
        path = trial.output_dir / MODEL_FILE
        path.write_bytes(exported.data)
        trial.emit(
            f"exported ONNX ({exported.exporter}), parity max abs diff {exported.max_abs_diff:.2e}"
        )
        exported.uri = trial.publish_model(path, exported.checksum, exported.max_abs_diff).uri
    return exported


def identity_metadata(trial: Trial) -> dict[str, str]:
    ident = trial.identity
    return {
        "thunderbolt.namespace": ident.namespace,
        "thunderbolt.experiment": ident.experiment,
        "thunderbolt.trial": ident.trial,
        "thunderbolt.trial_uid": ident.uid,
        "thunderbolt.parameters": json.dumps(trial.params.as_dict(), sort_keys=True),
    }


def to_onnx(model: nn.Module, example: torch.Tensor) -> tuple[onnx.ModelProto, str]:
    """The TorchScript exporter (fast, offline); the dynamo exporter if it is gone."""
    try:
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
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
        want = model.eval()(torch.as_tensor(x32)).numpy()
    if got.shape != want.shape:
        raise ExportMismatch(f"ONNX output shape {got.shape} != PyTorch {want.shape}")
    return float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
