"""Open Inference Protocol (V2) over gRPC: ``ModelInferRequest`` in, ``ModelInferResponse`` out.

Pure functions over protobuf messages, with the same validation as the HTTP decoder
(``protocol``): the same ``InferRequest`` reaches the batcher whichever transport carried
it, and every client mistake raises ``InferError`` (answered as INVALID_ARGUMENT).
Inputs come either in the typed ``contents`` fields or as ``raw_input_contents`` (what
tritonclient.grpc sends); outputs are always returned raw, as Triton does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from thunderbolt.serving.model import V2_TO_NUMPY, TensorSpec
from thunderbolt.serving.protocol import (
    InferRequest,
    RequestedOutput,
    bad_request,
    check_batch,
    check_finite,
    check_shape,
    encode_bytes_tensor,
    from_raw,
    v2_array,
)
from thunderbolt.serving.v2grpc import open_inference_grpc_pb2 as pb

# Which typed field of InferTensorContents carries each datatype (FP16 has none: raw only).
_CONTENTS_FIELD = {
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "BOOL": "bool_contents",
    "BYTES": "bytes_contents",
}


def parameter_value(param: Any) -> object:
    """An ``InferParameter`` as a Python value (None when unset)."""
    which = param.WhichOneof("parameter_choice")
    return None if which is None else getattr(param, which)


def _from_contents(contents: Any, spec: TensorSpec, shape: tuple[int, ...]) -> np.ndarray:
    field = _CONTENTS_FIELD.get(spec.datatype)
    if field is None:
        raise bad_request(f"input {spec.name!r}: {spec.datatype} must come in raw_input_contents")
    values = getattr(contents, field)
    expected = math.prod(shape)
    if len(values) != expected:
        raise bad_request(
            f"input {spec.name!r}: shape {list(shape)} needs {expected} values in {field}, "
            f"got {len(values)}"
        )
    if spec.datatype == "BYTES":
        out = np.empty(expected, dtype=object)
        for i, item in enumerate(values):
            try:
                out[i] = item.decode()
            except UnicodeDecodeError:
                raise bad_request(f"input {spec.name!r}: element {i} is not UTF-8 text") from None
        return out.reshape(shape)
    # protobuf already enforced each field's type and range, not that floats are finite;
    # fromiter, not asarray: asarray copies the field into a list of Python numbers first
    arr = np.fromiter(values, dtype=V2_TO_NUMPY[spec.datatype], count=expected)
    return check_finite(arr, spec).reshape(shape)


def parse_grpc_request(
    message: Any, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]
) -> InferRequest:
    """Decode and validate one ``ModelInferRequest`` against the model's tensor specs."""
    specs = {s.name: s for s in inputs}
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise bad_request(
            f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs"
        )
    if not message.inputs:
        raise bad_request("'inputs' must be a non-empty list")
    arrays: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(message.inputs):
        spec = specs.get(tensor.name)
        if spec is None:
            raise bad_request(f"unknown input {tensor.name!r}; the model takes {sorted(specs)}")
        if tensor.name in arrays:
            raise bad_request(f"input {tensor.name!r} given twice")
        if tensor.datatype != spec.datatype:
            raise bad_request(
                f"input {tensor.name!r}: expected datatype {spec.datatype}, got {tensor.datatype!r}"
            )
        shape = check_shape(list(tensor.shape), spec)
        if raw:
            arrays[tensor.name] = from_raw(raw[i], spec, shape)
        else:
            arrays[tensor.name] = _from_contents(tensor.contents, spec, shape)
    missing = sorted(set(specs) - set(arrays))
    if missing:
        raise bad_request(f"missing inputs {missing}")
    check_batch(arrays, inputs)
    known = {s.name for s in outputs}
    requested: list[RequestedOutput] = []
    for wanted in message.outputs:
        if wanted.name not in known:
            raise bad_request(f"unknown output {wanted.name!r}; the model has {sorted(known)}")
        if any(r.name == wanted.name for r in requested):
            raise bad_request(f"output {wanted.name!r} requested twice")
        if "classification" in wanted.parameters:
            raise bad_request("the classification extension is not supported")
        requested.append(RequestedOutput(wanted.name, True))
    if not requested:
        requested = [RequestedOutput(s.name, True) for s in outputs]
    return InferRequest(arrays, requested, message.id or None, None)


def encode_grpc_response(
    model_name: str,
    model_version: str,
    request: InferRequest,
    results: Mapping[str, np.ndarray],
    parameters: Mapping[str, Any] | None = None,
) -> Any:
    """The ``ModelInferResponse``, every output in ``raw_output_contents``; the request's
    id and parameters are echoed as over HTTP."""
    response = pb.ModelInferResponse(
        model_name=model_name, model_version=model_version, id=request.id or ""
    )
    for key, value in (parameters or {}).items():
        response.parameters[key].CopyFrom(value)
    encode: Callable[[np.ndarray], bytes]
    for wanted in request.outputs:
        arr, datatype = v2_array(results[wanted.name])
        encode = encode_bytes_tensor if datatype == "BYTES" else np.ndarray.tobytes
        response.outputs.add(name=wanted.name, datatype=datatype, shape=arr.shape)
        response.raw_output_contents.append(encode(arr))
    return response
