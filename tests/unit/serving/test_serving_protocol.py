"""V2 request decoding: every client mistake is an InferError with a 4xx status."""

from __future__ import annotations

import json

import numpy as np
import pytest

from thunderbolt.serving.model import TensorSpec
from thunderbolt.serving.protocol import (
    InferError,
    InferRequest,
    RequestedOutput,
    encode_infer_response,
    parse_infer_request,
)

INPUTS = [
    TensorSpec("x", "FP32", (-1, 3)),
    TensorSpec("n", "INT32", (-1, 1)),
    TensorSpec("b", "BOOL", (-1, 1)),
]
OUTPUTS = [TensorSpec("y", "FP32", (-1, 2)), TensorSpec("z", "INT64", (-1,))]


def _good(**overrides: object) -> dict:
    doc = {
        "id": "r1",
        "inputs": [
            {"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4.5, 5, 6]},
            {"name": "n", "shape": [2, 1], "datatype": "INT32", "data": [7, -8]},
            {"name": "b", "shape": [2, 1], "datatype": "BOOL", "data": [True, False]},
        ],
    }
    doc.update(overrides)
    return doc


def _parse(doc: object, header_length: str | None = None, body: bytes | None = None):
    raw = body if body is not None else json.dumps(doc).encode()
    return parse_infer_request(raw, header_length, INPUTS, OUTPUTS)


def test_json_tensors_become_arrays_of_the_model_dtypes() -> None:
    request = _parse(_good())
    assert request.inputs["x"].dtype == np.float32 and request.inputs["x"].shape == (2, 3)
    assert request.inputs["n"].dtype == np.int32 and request.inputs["n"].tolist() == [[7], [-8]]
    assert request.inputs["b"].dtype == np.bool_ and request.inputs["b"].tolist() == [
        [True],
        [False],
    ]
    assert request.rows == 2 and request.id == "r1"
    assert [o.name for o in request.outputs] == ["y", "z"]


def test_nested_data_is_accepted_in_row_major_order() -> None:
    doc = _good()
    doc["inputs"][0]["data"] = [[1, 2, 3], [4, 5, 6]]
    assert _parse(doc).inputs["x"].tolist() == [[1, 2, 3], [4, 5, 6]]


def test_binary_tensors_after_the_json_header() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    n = np.array([[1], [2]], dtype=np.int32)
    doc = _good()
    doc["inputs"][0] = {
        "name": "x",
        "shape": [2, 3],
        "datatype": "FP32",
        "parameters": {"binary_data_size": 24},
    }
    doc["inputs"][1] = {
        "name": "n",
        "shape": [2, 1],
        "datatype": "INT32",
        "parameters": {"binary_data_size": 8},
    }
    header = json.dumps(doc).encode()
    request = _parse(None, str(len(header)), header + x.tobytes() + n.tobytes())
    np.testing.assert_array_equal(request.inputs["x"], x)
    np.testing.assert_array_equal(request.inputs["n"], n)


def test_requested_output_subset_and_binary_flag() -> None:
    request = _parse(_good(outputs=[{"name": "z", "parameters": {"binary_data": True}}]))
    assert request.outputs == [RequestedOutput("z", True)]
    request = _parse(_good(parameters={"binary_data_output": True}))
    assert all(o.binary for o in request.outputs)


def test_batch_key_separates_incompatible_shapes() -> None:
    a = InferRequest({"x": np.zeros((1, 3))}, [])
    b = InferRequest({"x": np.zeros((4, 3))}, [])
    c = InferRequest({"x": np.zeros((1, 5))}, [])
    assert a.batch_key() == b.batch_key() != c.batch_key()


def _with_input(index: int, **changes: object) -> dict:
    doc = _good()
    doc["inputs"][index] = {**doc["inputs"][index], **changes}
    return doc


MALFORMED: dict[str, tuple[object, str]] = {
    "not an object": ([1, 2], "JSON object"),
    "no inputs": ({"id": "x"}, "'inputs'"),
    "empty inputs": ({"inputs": []}, "'inputs'"),
    "input not an object": ({"inputs": [3]}, "JSON object"),
    "input without name": (_with_input(0, name=None), "'name'"),
    "unknown input": (_with_input(0, name="nope"), "unknown input"),
    "duplicate input": (_good(inputs=[_good()["inputs"][0]] * 2), "twice"),
    "missing input": (_good(inputs=_good()["inputs"][:2]), "missing inputs"),
    "wrong datatype": (_with_input(0, datatype="FP64"), "datatype"),
    "unsupported datatype": (_with_input(0, datatype="BYTES"), "datatype"),
    "shape not a list": (_with_input(0, shape="2,3"), "shape"),
    "shape of floats": (_with_input(0, shape=[2.0, 3.0]), "shape"),
    "wrong rank": (_with_input(0, shape=[6]), "dimensions"),
    "wrong static dim": (_with_input(0, shape=[3, 2]), "expected shape"),
    "zero batch": (_with_input(0, shape=[0, 3], data=[]), "positive"),
    "negative dim": (_with_input(0, shape=[-2, 3]), "positive"),
    "too few values": (_with_input(0, data=[1, 2, 3]), "needs 6 values"),
    "too many values": (_with_input(0, data=list(range(9))), "needs 6 values"),
    "ragged nested": (_with_input(0, data=[[1, 2, 3], [4, 5]]), "rectangular"),
    "strings as floats": (_with_input(0, data=["a"] * 6), "numbers"),
    "nulls as floats": (_with_input(0, data=[None] * 6), "numbers"),
    "floats as ints": (_with_input(1, data=[1.5, 2]), "integers"),
    "int32 overflow": (_with_input(1, data=[2**31, 1]), "out of range"),
    "huge int": (_with_input(1, data=[2**80, 1]), "integers"),
    "numbers as bools": (_with_input(2, data=[1, 0]), "true/false"),
    "data not a list": (_with_input(0, data="123456"), "JSON array"),
    "no data": (_good(inputs=[{"name": "x", "shape": [2, 3], "datatype": "FP32"}]), "no 'data'"),
    "batch disagreement": (_with_input(1, shape=[1, 1], data=[1]), "batch dimension"),
    "id not a string": (_good(id=5), "'id'"),
    "parameters not an object": (_good(parameters=[1]), "'parameters'"),
    "unknown output": (_good(outputs=[{"name": "nope"}]), "unknown output"),
    "outputs not a list": (_good(outputs={"name": "y"}), "'outputs'"),
    "duplicate output": (_good(outputs=[{"name": "y"}, {"name": "y"}]), "twice"),
    "classification": (
        _good(outputs=[{"name": "y", "parameters": {"classification": 2}}]),
        "classification",
    ),
    "binary_data not bool": (
        _good(outputs=[{"name": "y", "parameters": {"binary_data": "yes"}}]),
        "binary_data",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_json_requests_are_400(case: str) -> None:
    doc, fragment = MALFORMED[case]
    with pytest.raises(InferError) as info:
        _parse(doc)
    assert info.value.status == 400
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("body", "header_length", "fragment"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"\xff\xfe", None, "not valid JSON"),
        (b"[" * 100_000, None, "not valid JSON"),
        (b"{}", "abc", "must be an integer"),
        (b"{}", "99", "outside the body"),
        (json.dumps(_good()).encode() + b"\x00\x01", None, "not valid JSON"),
    ],
)
def test_malformed_bodies_are_400(body: bytes, header_length: str | None, fragment: str) -> None:
    with pytest.raises(InferError) as info:
        _parse(None, header_length, body)
    assert info.value.status == 400 and fragment in info.value.message


def test_binary_size_mismatches_are_400() -> None:
    doc = _good()
    doc["inputs"][0] = {
        "name": "x",
        "shape": [2, 3],
        "datatype": "FP32",
        "parameters": {"binary_data_size": 20},
    }
    header = json.dumps(doc).encode()
    with pytest.raises(InferError, match="binary_data_size must be 24"):
        _parse(None, str(len(header)), header + bytes(20))
    doc["inputs"][0]["parameters"]["binary_data_size"] = 24
    header = json.dumps(doc).encode()
    with pytest.raises(InferError, match="shorter"):
        _parse(None, str(len(header)), header + bytes(10))
    with pytest.raises(InferError, match="not claimed"):
        _parse(None, str(len(header)), header + bytes(30))


def test_json_response_echoes_id_and_parameters() -> None:
    request = InferRequest({}, [RequestedOutput("y", False)], "abc", {"trace": 1})
    body, header_length = encode_infer_response(
        "m", "1", request, {"y": np.array([[1.5, 2]], np.float32)}
    )
    assert header_length is None
    assert json.loads(body) == {
        "model_name": "m",
        "model_version": "1",
        "id": "abc",
        "parameters": {"trace": 1},
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [1, 2], "data": [1.5, 2.0]}],
    }


def test_binary_response_puts_raw_bytes_after_the_header() -> None:
    request = InferRequest({}, [RequestedOutput("z", True)])
    z = np.array([3, 4], dtype=np.int64)
    body, header_length = encode_infer_response("m", "1", request, {"z": z})
    assert header_length is not None
    header = json.loads(body[:header_length])
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 16}
    assert header["outputs"][0]["datatype"] == "INT64"
    np.testing.assert_array_equal(np.frombuffer(body[header_length:], np.int64), z)


@pytest.mark.parametrize(
    "data", ["[NaN, 2, 3, 4, 5, 6]", "[Infinity, 2, 3, 4, 5, 6]", "[-Infinity, 2, 3, 4, 5, 6]"]
)
def test_non_finite_json_literals_are_400(data: str) -> None:
    doc = json.dumps(_good()).replace("[1, 2, 3, 4.5, 5, 6]", data)
    with pytest.raises(InferError) as err:
        _parse(None, body=doc.encode())
    assert err.value.status == 400 and "finite" in err.value.message


def test_values_beyond_fp32_are_400() -> None:
    doc = _good()
    doc["inputs"][0]["data"] = [1e39, 2, 3, 4, 5, 6]
    with pytest.raises(InferError) as err:
        _parse(doc)
    assert err.value.status == 400 and "FP32" in err.value.message


def test_non_finite_binary_floats_are_400() -> None:
    blob = np.array([1, 2, np.nan, 4, 5, 6], dtype=np.float32).tobytes()
    doc = _good()
    doc["inputs"][0] = {"name": "x", "shape": [2, 3], "datatype": "FP32",
                        "parameters": {"binary_data_size": len(blob)}}  # fmt: skip
    header = json.dumps(doc).encode()
    with pytest.raises(InferError) as err:
        _parse(None, str(len(header)), header + blob)
    assert err.value.status == 400


def test_a_non_finite_output_is_never_sent_as_invalid_json() -> None:
    request = _parse(_good())
    results = {"y": np.array([[np.nan, 1.0], [2.0, 3.0]], np.float32), "z": np.array([1, 2])}
    with pytest.raises(InferError) as err:
        encode_infer_response("m", "1", request, results)
    assert err.value.status == 422 and "binary" in err.value.message
    finite = {"y": np.array([[0.5, 1.0], [2.0, 3.0]], np.float32), "z": np.array([1, 2])}
    body, _ = encode_infer_response("m", "1", request, finite)
    json.loads(body, parse_constant=lambda c: pytest.fail(f"{c} in the answer"))
