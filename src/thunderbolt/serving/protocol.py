"""Open Inference Protocol (V2) request decoding and response encoding.

Pure functions over bytes, so every way a client can get a request wrong is a unit
test. Both JSON tensors and the binary tensor extension (what tritonclient sends by
default: a JSON header of ``Inference-Header-Content-Length`` bytes followed by raw
tensor bytes) are accepted. Every client mistake raises ``InferError`` with a 4xx
status; nothing here can raise anything else for any input.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from thunderbolt.serving.model import NUMPY_TO_V2, V2_TO_NUMPY, TensorSpec


class InferError(Exception):
    """A request the server will not run; ``status`` is the HTTP code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclasses.dataclass
class InferRequest:
    inputs: dict[str, np.ndarray]
    outputs: list[RequestedOutput]
    id: str | None = None
    parameters: dict[str, Any] | None = None

    @property
    def rows(self) -> int:
        """Size of the first (batch) dimension, used by the batcher."""
        first = next(iter(self.inputs.values()))
        return int(first.shape[0]) if first.ndim else 1

    def batch_key(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """Requests with equal keys can be concatenated along the first dimension."""
        return tuple(sorted((n, tuple(a.shape[1:])) for n, a in self.inputs.items()))


def bad_request(message: str) -> InferError:
    return InferError(400, message)


_bad = bad_request


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _split_body(body: bytes | bytearray, header_length: str | None) -> tuple[Any, memoryview]:
    if header_length is None:
        json_part, binary = body, memoryview(b"")
    else:
        try:
            n = int(header_length)
        except ValueError:
            raise _bad("Inference-Header-Content-Length must be an integer") from None
        if not 0 < n <= len(body):
            raise _bad(f"Inference-Header-Content-Length {n} outside the body of {len(body)} bytes")
        json_part, binary = body[:n], memoryview(body)[n:]
    try:
        document = json.loads(json_part, parse_constant=_no_constant)
    except InferError:
        raise
    except (ValueError, RecursionError) as exc:
        raise _bad(f"request body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _bad("request body must be a JSON object")
    return document, binary


def _no_constant(name: str) -> float:
    """NaN, Infinity and -Infinity are not JSON (Python's parser accepts them)."""
    raise _bad(f"{name} is not a JSON number; inputs must be finite")


def check_finite(arr: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float inputs must be finite: NaN/Infinity (or a value too large for the datatype,
    e.g. 1e39 as FP32) would only come back as an answer JSON cannot carry."""
    if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        raise _bad(
            f"input {spec.name!r}: values must be finite {spec.datatype} numbers "
            f"(NaN, Infinity or out of the {spec.datatype} range given)"
        )
    return arr


def check_shape(raw: object, spec: TensorSpec) -> tuple[int, ...]:
    if not isinstance(raw, list) or not all(_is_int(d) for d in raw):
        raise _bad(f"input {spec.name!r}: shape must be a list of integers")
    shape = tuple(int(d) for d in raw)
    if len(shape) != len(spec.shape):
        raise _bad(
            f"input {spec.name!r}: expected {len(spec.shape)} dimensions {list(spec.shape)}, "
            f"got {list(shape)}"
        )
    for got, want in zip(shape, spec.shape, strict=True):
        if got <= 0:
            raise _bad(f"input {spec.name!r}: dimensions must be positive, got {list(shape)}")
        if want != -1 and got != want:
            raise _bad(f"input {spec.name!r}: expected shape {list(spec.shape)}, got {list(shape)}")
    return shape


_KINDS = {
    "FP16": "iuf",
    "FP32": "iuf",
    "FP64": "iuf",
    "INT32": "iu",
    "INT64": "iu",
    "BOOL": "b",
    "BYTES": "U",
}


def _from_json(data: object, spec: TensorSpec, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(data, list):
        raise _bad(f"input {spec.name!r}: data must be a JSON array")
    try:
        arr = np.array(data)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise _bad(f"input {spec.name!r}: data is not a rectangular array of numbers") from None
    if arr.dtype.kind not in _KINDS[spec.datatype] and arr.size:
        kind = "true/false" if spec.datatype == "BOOL" else "numbers"
        if spec.datatype.startswith("INT"):
            kind = "integers"
        if spec.datatype == "BYTES":
            kind = "strings"
        raise _bad(f"input {spec.name!r}: {spec.datatype} data must be {kind}")
    expected = math.prod(shape)
    if arr.size != expected:
        raise _bad(
            f"input {spec.name!r}: shape {list(shape)} needs {expected} values, got {arr.size}"
        )
    if spec.datatype == "BYTES":
        return arr.astype(object).reshape(shape)
    dtype = V2_TO_NUMPY[spec.datatype]
    if dtype.kind == "i" and arr.size:
        info = np.iinfo(dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise _bad(f"input {spec.name!r}: values out of range for {spec.datatype}")
    with np.errstate(over="ignore"):
        converted = arr.astype(dtype, copy=False)
    return check_finite(converted, spec).reshape(shape)


def decode_bytes_tensor(raw: memoryview | bytes, name: str, count: int) -> np.ndarray:
    """BYTES in the binary form: each element a 4-byte little-endian length, then its bytes
    (UTF-8 text: ONNX string tensors hold text)."""
    out = np.empty(count, dtype=object)
    view, pos = memoryview(raw), 0
    for i in range(count):
        if pos + 4 > len(view):
            raise _bad(f"input {name!r}: BYTES data ends before element {i}")
        n = int.from_bytes(view[pos : pos + 4], "little")
        pos += 4
        if pos + n > len(view):
            raise _bad(f"input {name!r}: BYTES element {i} runs past the data")
        try:
            out[i] = bytes(view[pos : pos + n]).decode()
        except UnicodeDecodeError:
            raise _bad(f"input {name!r}: BYTES element {i} is not UTF-8 text") from None
        pos += n
    if pos != len(view):
        raise _bad(f"input {name!r}: {len(view) - pos} bytes after the last BYTES element")
    return out


def encode_bytes_tensor(arr: np.ndarray) -> bytes:
    parts = []
    for item in arr.reshape(-1):
        data = item if isinstance(item, bytes) else str(item).encode()
        parts += [len(data).to_bytes(4, "little"), data]
    return b"".join(parts)


def from_raw(raw: memoryview | bytes, spec: TensorSpec, shape: tuple[int, ...]) -> np.ndarray:
    """One tensor from its raw bytes (HTTP binary extension, gRPC ``raw_input_contents``)."""
    if spec.datatype == "BYTES":
        return decode_bytes_tensor(raw, spec.name, math.prod(shape)).reshape(shape)
    dtype = V2_TO_NUMPY[spec.datatype]
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise _bad(
            f"input {spec.name!r}: raw data must be {expected} bytes for shape {list(shape)}"
        )
    arr = np.frombuffer(raw, dtype=dtype).reshape(shape)
    if spec.datatype == "BOOL" and arr.view(np.uint8).max(initial=0) > 1:
        raise _bad(f"input {spec.name!r}: BOOL bytes must be 0 or 1")
    return check_finite(arr, spec)


def _from_binary(
    size: object, binary: memoryview, offset: int, spec: TensorSpec, shape: tuple[int, ...]
) -> np.ndarray:
    if spec.datatype == "BYTES":
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _bad(f"input {spec.name!r}: binary_data_size must be a byte count")
        if offset + size > len(binary):
            raise _bad(f"input {spec.name!r}: binary data shorter than binary_data_size")
        return from_raw(binary[offset : offset + size], spec, shape)
    dtype = V2_TO_NUMPY[spec.datatype]
    expected = math.prod(shape) * dtype.itemsize
    if not _is_int(size) or size != expected:
        raise _bad(
            f"input {spec.name!r}: binary_data_size must be {expected} for shape {list(shape)}"
        )
    if offset + expected > len(binary):
        raise _bad(f"input {spec.name!r}: binary data shorter than binary_data_size")
    arr = np.frombuffer(binary[offset : offset + expected], dtype=dtype).reshape(shape)
    if spec.datatype == "BOOL" and arr.view(np.uint8).max(initial=0) > 1:
        raise _bad(f"input {spec.name!r}: BOOL bytes must be 0 or 1")
    return check_finite(arr, spec)


def _parse_inputs(
    raw_inputs: object, specs: Mapping[str, TensorSpec], binary: memoryview
) -> dict[str, np.ndarray]:
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise _bad("'inputs' must be a non-empty list")
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for raw in raw_inputs:
        if not isinstance(raw, dict):
            raise _bad("each input must be a JSON object")
        name = raw.get("name")
        if not isinstance(name, str):
            raise _bad("each input needs a string 'name'")
        spec = specs.get(name)
        if spec is None:
            raise _bad(f"unknown input {name!r}; the model takes {sorted(specs)}")
        if name in inputs:
            raise _bad(f"input {name!r} given twice")
        if raw.get("datatype") != spec.datatype:
            raise _bad(
                f"input {name!r}: expected datatype {spec.datatype}, got {raw.get('datatype')!r}"
            )
        shape = check_shape(raw.get("shape"), spec)
        params = raw.get("parameters") or {}
        if not isinstance(params, dict):
            raise _bad(f"input {name!r}: parameters must be an object")
        if "binary_data_size" in params:
            if "data" in raw:
                raise _bad(f"input {name!r}: both 'data' and binary_data_size given")
            inputs[name] = _from_binary(params["binary_data_size"], binary, offset, spec, shape)
            offset += params["binary_data_size"]
        elif "data" in raw:
            inputs[name] = _from_json(raw["data"], spec, shape)
            raw["data"] = None  # the Python list took ~40 bytes a number: free it now
        else:
            raise _bad(f"input {name!r} has no 'data'")
    missing = sorted(set(specs) - set(inputs))
    if missing:
        raise _bad(f"missing inputs {missing}")
    if offset != len(binary):
        raise _bad(f"{len(binary) - offset} bytes of binary data not claimed by any input")
    return inputs


def _parse_outputs(
    raw_outputs: object, specs: Sequence[TensorSpec], binary_default: bool
) -> list[RequestedOutput]:
    if raw_outputs is None:
        return [RequestedOutput(s.name, binary_default) for s in specs]
    if not isinstance(raw_outputs, list) or not raw_outputs:
        raise _bad("'outputs' must be a non-empty list when given")
    known = {s.name for s in specs}
    outputs: list[RequestedOutput] = []
    for raw in raw_outputs:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise _bad("each requested output must be an object with a string 'name'")
        name = raw["name"]
        if name not in known:
            raise _bad(f"unknown output {name!r}; the model has {sorted(known)}")
        if any(o.name == name for o in outputs):
            raise _bad(f"output {name!r} requested twice")
        params = raw.get("parameters") or {}
        if not isinstance(params, dict):
            raise _bad(f"output {name!r}: parameters must be an object")
        if params.get("classification"):
            raise _bad("the classification extension is not supported")
        binary = params.get("binary_data", binary_default)
        if not isinstance(binary, bool):
            raise _bad(f"output {name!r}: binary_data must be true or false")
        outputs.append(RequestedOutput(name, binary))
    return outputs


def check_batch(arrays: Mapping[str, np.ndarray], inputs: Sequence[TensorSpec]) -> None:
    """Batchable inputs must agree on their first dimension."""
    if len(inputs) > 1 and all(s.shape and s.shape[0] == -1 for s in inputs):
        rows = {a.shape[0] for a in arrays.values()}
        if len(rows) > 1:
            raise _bad(f"inputs disagree on the batch dimension: {sorted(rows)}")


def parse_infer_request(
    body: bytes | bytearray,
    header_length: str | None,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
) -> InferRequest:
    """Decode and validate one request against the model's tensor specs."""
    document, binary = _split_body(body, header_length)
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise _bad("'id' must be a string")
    parameters = document.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise _bad("'parameters' must be an object")
    binary_default = (parameters or {}).get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise _bad("binary_data_output must be true or false")
    arrays = _parse_inputs(document.get("inputs"), {s.name: s for s in inputs}, binary)
    check_batch(arrays, inputs)
    requested = _parse_outputs(document.get("outputs"), outputs, binary_default)
    return InferRequest(arrays, requested, request_id, parameters)


def v2_array(result: np.ndarray) -> tuple[np.ndarray, str]:
    """An output as a contiguous array of a V2 datatype (strings: BYTES, else FP32)."""
    arr = np.ascontiguousarray(result)
    if arr.dtype.kind in "OUS":
        return arr.astype(object), "BYTES"
    datatype = NUMPY_TO_V2.get(arr.dtype)
    if datatype is None:
        return arr.astype(np.float32), "FP32"
    return arr, datatype


CHUNK_ELEMENTS = 65536  # numbers per encoded piece of a JSON response
# Shortest text that reads back as the same value: 9 significant digits identify every
# float32, 5 every float16; Python's repr is the shortest for float64. Printing a float32
# as a float64 (0.10000000149011612) made responses twice their size.
_FORMAT = {"FP32": "%.9g".__mod__, "FP16": "%.5g".__mod__}


def _numbers(flat: np.ndarray, datatype: str) -> Iterator[bytes]:
    """A tensor's ``data`` as comma-separated JSON values, in pieces of bounded size."""
    for start in range(0, flat.size, CHUNK_ELEMENTS):
        values = flat[start : start + CHUNK_ELEMENTS].tolist()
        if datatype == "BYTES":
            text = ",".join(
                json.dumps(x.decode(errors="replace") if isinstance(x, bytes) else str(x))
                for x in values
            )
        elif datatype == "BOOL":
            text = ",".join("true" if x else "false" for x in values)
        else:
            text = ",".join(map(_FORMAT.get(datatype, repr), values))
        yield (text if start == 0 else "," + text).encode()


def _open_object(document: Mapping[str, Any]) -> bytes:
    """``document`` as JSON without its closing brace, so more members can follow."""
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()[:-1]


@dataclasses.dataclass
class EncodedResponse:
    """A response body as pieces: ``parts`` yields them lazily (a large JSON response
    is produced piece by piece while it is sent); ``header_length`` is set when binary
    outputs follow the JSON header; ``length`` when the total size is known up front."""

    parts: Iterator[bytes | memoryview]
    header_length: int | None
    length: int | None

    def join(self) -> bytes:
        return b"".join(self.parts)


def encode_infer_response_parts(
    model_name: str,
    model_version: str,
    request: InferRequest,
    results: Mapping[str, np.ndarray],
) -> EncodedResponse:
    """The response body in pieces. Every output is checked first (a JSON output that is
    not finite is 422), so nothing is sent for a response that cannot be completed."""
    json_tensors: list[tuple[dict[str, Any], np.ndarray | None, str]] = []
    blobs: list[bytes | memoryview] = []
    for wanted in request.outputs:
        arr, datatype = v2_array(results[wanted.name])
        tensor: dict[str, Any] = {"name": wanted.name, "datatype": datatype}
        tensor["shape"] = list(arr.shape)
        if wanted.binary:
            if datatype == "BYTES":
                blob: bytes | memoryview = encode_bytes_tensor(arr)
            else:
                blob = memoryview(arr.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
            json_tensors.append((tensor, None, datatype))
            continue
        if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
            raise InferError(
                422,
                f"output {wanted.name!r} is not finite (NaN/Infinity) for this input, and "
                "JSON cannot carry that; request it as binary data to receive it",
            )
        json_tensors.append((tensor, arr.reshape(-1), datatype))
    document: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        document["id"] = request.id
    if request.parameters is not None:
        document["parameters"] = request.parameters

    def header() -> Iterator[bytes]:
        yield _open_object(document) + b',"outputs":['
        for i, (tensor, flat, datatype) in enumerate(json_tensors):
            if flat is None:
                yield (b"," if i else b"") + _open_object(tensor) + b"}"
            else:
                yield (b"," if i else b"") + _open_object(tensor) + b',"data":['
                yield from _numbers(flat, datatype)
                yield b"]}"
        yield b"]}"

    if not blobs:
        return EncodedResponse(header(), None, None)
    head = b"".join(header())
    return EncodedResponse(iter([head, *blobs]), len(head), len(head) + sum(len(b) for b in blobs))


def encode_infer_response(
    model_name: str,
    model_version: str,
    request: InferRequest,
    results: Mapping[str, np.ndarray],
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header length when binary outputs follow it."""
    encoded = encode_infer_response_parts(model_name, model_version, request, results)
    return encoded.join(), encoded.header_length


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()
