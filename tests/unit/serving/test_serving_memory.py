"""The memory budget: the container's limit, the plan derived from it, leases, and the
decode-cost estimate, which must bound what json.loads and numpy really allocate."""

from __future__ import annotations

import json
import pathlib
import tracemalloc

import numpy as np
import pytest

from tests.unit.serving import onnx_models
from thunderbolt.serving.memory import (
    BudgetExceeded,
    MemoryBudget,
    MiB,
    cgroup_memory_limit,
    default_max_body,
    json_decode_cost,
    memory_quantity,
    plan_memory,
    rss_bytes,
)
from thunderbolt.serving.model import OnnxModel
from thunderbolt.serving.protocol import parse_infer_request


def _files(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return root


@pytest.mark.parametrize(
    ("files", "proc", "expected"),
    [
        ({"memory.max": "536870912"}, None, 512 * MiB),  # v2, cgroup namespace: the root
        ({"memory.max": "max"}, None, None),
        ({"kubepods/pod1/memory.max": "268435456", "memory.max": "max"}, "0::/kubepods/pod1", 256 * MiB),
        ({"memory/memory.limit_in_bytes": "1073741824"}, None, 1024 * MiB),  # v1
        ({"memory/memory.limit_in_bytes": "9223372036854771712"}, None, None),  # v1 unlimited
        ({}, None, None),
    ],
)  # fmt: skip
def test_cgroup_memory_limit_v2_and_v1(
    tmp_path: pathlib.Path, files: dict[str, str], proc: str | None, expected: int | None
) -> None:
    assert cgroup_memory_limit(_files(tmp_path, files), proc) == expected


def test_memory_quantities() -> None:
    assert memory_quantity("512Mi") == 512 * MiB
    assert memory_quantity("1Gi") == 1024 * MiB
    assert memory_quantity("500M") == 500_000_000
    assert memory_quantity("1048576") == MiB
    with pytest.raises(ValueError, match="not a memory size"):
        memory_quantity("lots")


def test_plan_derives_body_limit_and_budget_from_the_limit() -> None:
    assert default_max_body(512 * MiB) == 16 * MiB
    assert default_max_body(256 * MiB) == 8 * MiB
    assert default_max_body(8 * 1024 * MiB) == 16 * MiB  # capped
    assert default_max_body(None) == 16 * MiB
    plan = plan_memory(512 * MiB, baseline_rss=100 * MiB)
    assert plan.budget == int(512 * MiB * 0.85) - 100 * MiB
    assert plan_memory(512 * MiB, 100 * MiB, workers=2).budget == int(512 * MiB * 0.85) // 2 - (
        100 * MiB
    )
    assert plan_memory(None, 100 * MiB) == plan_memory(None, 0)
    assert plan_memory(None, 0).budget is None
    assert plan_memory(64 * MiB, 200 * MiB).budget == 8 * MiB  # never below the floor
    assert plan_memory(512 * MiB, 0, max_body=1000).max_body == 1000  # the setting wins


def test_leases_refuse_503_when_busy_and_413_when_never_fitting() -> None:
    budget = MemoryBudget(100)
    first, second = budget.lease(), budget.lease()
    first.resize(60)
    with pytest.raises(BudgetExceeded) as busy:
        second.resize(50)
    assert busy.value.status == 503
    with pytest.raises(BudgetExceeded) as never:
        second.resize(101)
    assert never.value.status == 413 and "smaller batches" in never.value.message
    second.resize(40)
    assert budget.used == 100
    first.resize(10)  # shrinking always succeeds and frees the difference
    assert budget.used == 50
    with second:
        second.grow(50)
    assert (budget.used, second.held, budget.refused) == (10, 0, 2)
    first.release()
    assert budget.used == 0
    unbounded = MemoryBudget(None).lease()
    unbounded.resize(10**15)  # no limit: nothing refused


def _measured_decode(body: bytes) -> int:
    """Peak bytes Python allocates while parsing ``body`` against the linear model."""
    specs = OnnxModel(onnx_models.linear_model()).inputs
    outputs = OnnxModel(onnx_models.linear_model()).outputs
    tracemalloc.start()
    try:
        parsed = parse_infer_request(body, None, specs, outputs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parsed.rows > 0
    return peak


def _request(data: object, shape: list[int], **extra: object) -> bytes:
    doc = {"inputs": [{"name": "input", "shape": shape, "datatype": "FP32", "data": data}]}
    return json.dumps({**doc, **extra}, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "body",
    [
        _request([1.5] * 40000, [10000, 4]),  # short floats: the worst case per byte
        _request(np.round(np.random.default_rng(0).normal(size=40000), 3).tolist(), [10000, 4]),
        _request([[1.5, 2.5, 3.5, 4.5]] * 10000, [10000, 4]),  # nested rows
        _request([1, 2, 3, 4] * 10000, [10000, 4]),  # small ints (cached objects)
        _request([1.5] * 4, [1, 4], parameters={f"k{i}": [] for i in range(5000)}),
        _request([1.5] * 4, [1, 4], parameters={"x": [[]] * 20000}),
        _request([1.5] * 4, [1, 4], parameters={"x": [{}] * 10000}),
        _request([1.5] * 4, [1, 4], parameters={"x": [{"a": "b"}] * 10000}),
        _request([1.5] * 4, [1, 4], id="x" * 200000),
    ],
)
def test_decode_cost_bounds_what_decoding_allocates(body: bytes) -> None:
    measured = _measured_decode(body)
    estimate = json_decode_cost(body)
    assert measured <= estimate, (measured, estimate)
    assert estimate < 8 * max(measured, 64 * 1024)  # and not absurdly above it


def test_decode_cost_counts_only_the_json_header_of_binary_requests() -> None:
    body = b'{"a":[1,2,3]}' + b",,,,[[[[" * 1000
    assert json_decode_cost(body, 13) == json_decode_cost(body[:13])
    assert json_decode_cost(body, 13) < json_decode_cost(body)


def test_rss_of_this_process_is_known() -> None:
    assert rss_bytes() > 10 * MiB
    assert rss_bytes(2**22 + 7) == 0  # no such process
