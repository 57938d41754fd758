"""An onnxruntime session described in V2 terms (datatypes, shapes with -1).

The HTTP layer validates requests against ``TensorSpec``s before anything reaches
onnxruntime, so client mistakes become 4xx and only the model itself can cause a 5xx.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

# V2 datatype <-> numpy dtype; the subset the server accepts. BYTES tensors (ONNX strings)
# are numpy object arrays of str.
V2_TO_NUMPY: dict[str, np.dtype] = {
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "BOOL": np.dtype(np.bool_),
    "BYTES": np.dtype(object),
}
NUMPY_TO_V2: dict[np.dtype, str] = {v: k for k, v in V2_TO_NUMPY.items()}
_ORT_TO_V2 = {
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}


class ModelLoadError(RuntimeError):
    """The bytes are not an ONNX model this server can serve."""


class ModelRunError(RuntimeError):
    """onnxruntime raised while running a validated request: a server-side (5xx) fault."""


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1 marks a dynamic dimension

    def as_metadata(self) -> dict[str, object]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def _spec(name: str, ort_type: str, shape: Sequence[object]) -> TensorSpec:
    datatype = _ORT_TO_V2.get(ort_type)
    if datatype is None:
        raise ModelLoadError(f"tensor {name!r} has unsupported type {ort_type}")
    dims = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in shape)
    return TensorSpec(name=name, datatype=datatype, shape=dims)


class OnnxModel:
    """One loaded model. ``run`` is thread-safe (onnxruntime sessions are)."""

    def __init__(
        self,
        model_bytes: bytes,
        *,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        spinning: bool = False,
    ) -> None:
        import onnxruntime as ort  # heavy; imported only where a model is loaded

        options = ort.SessionOptions()
        options.log_severity_level = 4  # run errors reach the client and our log already
        if intra_op_threads > 0:
            options.intra_op_num_threads = intra_op_threads
        if inter_op_threads > 0:
            options.inter_op_num_threads = inter_op_threads
        # Idle pool threads spin for a while by default: CPU a pod's quota pays for and
        # that a server waiting on the network rarely gets back (docs/serving.md).
        spin = "1" if spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        try:
            self.session = ort.InferenceSession(
                model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception classes
            raise ModelLoadError(f"onnxruntime cannot load the model: {exc}") from exc
        self.inputs = [_spec(i.name, i.type, i.shape) for i in self.session.get_inputs()]
        self.outputs = [_spec(o.name, o.type, o.shape) for o in self.session.get_outputs()]
        self.input_by_name = {s.name: s for s in self.inputs}
        self.output_by_name = {s.name: s for s in self.outputs}
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    @property
    def batchable(self) -> bool:
        """Requests can be stacked only when every tensor has a dynamic first dimension."""
        return all(s.shape and s.shape[0] == -1 for s in [*self.inputs, *self.outputs])

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            results = self.session.run(None, dict(feeds))
        except Exception as exc:
            raise ModelRunError(f"model failed: {exc}") from exc
        return {spec.name: np.asarray(r) for spec, r in zip(self.outputs, results, strict=True)}
