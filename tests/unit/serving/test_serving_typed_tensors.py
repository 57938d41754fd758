"""FP16 and BYTES tensors (HTTP JSON and binary) and the gRPC decoder's client mistakes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from thunderbolt.serving.grpc_protocol import encode_grpc_response, parse_grpc_request
from thunderbolt.serving.model import TensorSpec
from thunderbolt.serving.protocol import (
    InferError,
    decode_bytes_tensor,
    encode_bytes_tensor,
    encode_infer_response,
    parse_infer_request,
)
from thunderbolt.serving.v2grpc import open_inference_grpc_pb2 as pb

INPUTS = [TensorSpec("h", "FP16", (-1, 2)), TensorSpec("s", "BYTES", (-1,))]
OUTPUTS = [TensorSpec("h2", "FP16", (-1, 2)), TensorSpec("s2", "BYTES", (-1,))]


def test_bytes_round_trip_and_malformed_length_prefixes() -> None:
    arr = np.array(["a", "", "héllo"], dtype=object)
    raw = encode_bytes_tensor(arr)
    assert raw[:4] == (1).to_bytes(4, "little")
    assert list(decode_bytes_tensor(raw, "s", 3)) == ["a", "", "héllo"]
    for bad, fragment in [
        (raw[:-1], "runs past"),
        (raw + b"x", "after the last"),
        (raw[:2], "ends before"),
        ((2).to_bytes(4, "little") + b"\xff\xfe", "UTF-8"),
    ]:
        with pytest.raises(InferError, match=fragment) as info:
            decode_bytes_tensor(bad, "s", 3 if len(bad) > 8 else 1)
        assert info.value.status == 400


def test_json_fp16_and_bytes_inputs() -> None:
    doc = {
        "inputs": [
            {"name": "h", "shape": [1, 2], "datatype": "FP16", "data": [1.5, -2]},
            {"name": "s", "shape": [1], "datatype": "BYTES", "data": ["yes"]},
        ]
    }
    req = parse_infer_request(json.dumps(doc).encode(), None, INPUTS, OUTPUTS)
    assert req.inputs["h"].dtype == np.float16 and req.inputs["h"].tolist() == [[1.5, -2.0]]
    assert req.inputs["s"].dtype == object and req.inputs["s"].tolist() == ["yes"]
    doc["inputs"][1]["data"] = [3]
    with pytest.raises(InferError, match="strings"):
        parse_infer_request(json.dumps(doc).encode(), None, INPUTS, OUTPUTS)


def test_binary_fp16_and_bytes_inputs_and_outputs() -> None:
    h = np.array([[1, 2], [3, 4]], np.float16)
    s = encode_bytes_tensor(np.array(["x", "yz"], dtype=object))
    doc = {
        "inputs": [
            {
                "name": "h",
                "shape": [2, 2],
                "datatype": "FP16",
                "parameters": {"binary_data_size": 8},
            },
            {
                "name": "s",
                "shape": [2],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(s)},
            },
        ],
        "parameters": {"binary_data_output": True},
    }
    header = json.dumps(doc).encode()
    req = parse_infer_request(header + h.tobytes() + s, str(len(header)), INPUTS, OUTPUTS)
    np.testing.assert_array_equal(req.inputs["h"], h)
    assert req.inputs["s"].tolist() == ["x", "yz"]
    body, length = encode_infer_response(
        "m", "1", req, {"h2": req.inputs["h"], "s2": req.inputs["s"]}
    )
    assert length is not None
    tensors = json.loads(body[:length])["outputs"]
    assert [t["datatype"] for t in tensors] == ["FP16", "BYTES"]
    assert body[length:] == h.tobytes() + s


def _grpc_request(**overrides: object) -> pb.ModelInferRequest:
    msg = pb.ModelInferRequest(model_name="m", id="g")
    h = msg.inputs.add(name="h", datatype="FP16", shape=[1, 2])
    s = msg.inputs.add(name="s", datatype="BYTES", shape=[1])
    del h, s
    msg.raw_input_contents.extend(
        [
            np.array([[1, 2]], np.float16).tobytes(),
            encode_bytes_tensor(np.array(["q"], dtype=object)),
        ]
    )
    for key, value in overrides.items():
        setattr(msg, key, value)
    return msg


def test_grpc_raw_inputs_decode_and_outputs_come_back_raw() -> None:
    req = parse_grpc_request(_grpc_request(), INPUTS, OUTPUTS)
    assert req.id == "g" and req.inputs["s"].tolist() == ["q"]
    assert [o.name for o in req.outputs] == ["h2", "s2"]
    response = encode_grpc_response("m", "1", req, {"h2": req.inputs["h"], "s2": req.inputs["s"]})
    assert [o.datatype for o in response.outputs] == ["FP16", "BYTES"]
    assert response.raw_output_contents[0] == np.array([[1, 2]], np.float16).tobytes()


def test_grpc_typed_contents_decode() -> None:
    specs = [TensorSpec("x", "FP32", (-1, 2)), TensorSpec("s", "BYTES", (-1,))]
    msg = pb.ModelInferRequest(model_name="m")
    x = msg.inputs.add(name="x", datatype="FP32", shape=[1, 2])
    x.contents.fp32_contents.extend([0.5, 2])
    s = msg.inputs.add(name="s", datatype="BYTES", shape=[1])
    s.contents.bytes_contents.append("é".encode())
    req = parse_grpc_request(msg, specs, [TensorSpec("y", "FP32", (-1,))])
    assert req.inputs["x"].dtype == np.float32 and req.inputs["x"].tolist() == [[0.5, 2.0]]
    assert req.inputs["s"].tolist() == ["é"]


def _mutate_raw_count(msg: pb.ModelInferRequest) -> None:
    msg.raw_input_contents.pop()


def _mutate_unknown(msg: pb.ModelInferRequest) -> None:
    msg.inputs[0].name = "nope"


def _mutate_datatype(msg: pb.ModelInferRequest) -> None:
    msg.inputs[0].datatype = "FP32"


def _mutate_shape(msg: pb.ModelInferRequest) -> None:
    msg.inputs[0].shape[:] = [1, 3]


def _mutate_raw_size(msg: pb.ModelInferRequest) -> None:
    msg.raw_input_contents[0] = b"\x00" * 3


def _mutate_output(msg: pb.ModelInferRequest) -> None:
    msg.outputs.add(name="nope")


def _mutate_duplicate(msg: pb.ModelInferRequest) -> None:
    msg.inputs[1].name = "h"
    msg.inputs[1].datatype = "FP16"


def _mutate_fp16_contents(msg: pb.ModelInferRequest) -> None:
    del msg.raw_input_contents[:]
    msg.inputs[0].contents.fp32_contents.extend([1, 2])


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (_mutate_raw_count, "raw_input_contents has 1"),
        (_mutate_unknown, "unknown input"),
        (_mutate_datatype, "expected datatype FP16"),
        (_mutate_shape, "expected 2 dimensions|expected shape"),
        (_mutate_raw_size, "must be 4 bytes"),
        (_mutate_output, "unknown output"),
        (_mutate_duplicate, "twice"),
        (_mutate_fp16_contents, "raw_input_contents"),
    ],
)
def test_grpc_client_mistakes_are_400(mutate, fragment) -> None:  # type: ignore[no-untyped-def]
    msg = _grpc_request()
    mutate(msg)
    with pytest.raises(InferError, match=fragment) as info:
        parse_grpc_request(msg, INPUTS, OUTPUTS)
    assert info.value.status == 400
