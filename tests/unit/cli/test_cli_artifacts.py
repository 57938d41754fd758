"""`thunderbolt artifacts delete` against a real filesystem and a real S3 server (moto)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.servers import S3Server, s3_server  # noqa: F401
from thunderbolt.cli import main

REPO = Path(__file__).resolve().parents[3]
CLI = "import sys; from thunderbolt.cli import main; sys.exit(main())"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(["artifacts", "delete", *args])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return code, lines


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_file_store_deletes_under_prefixes_keeps_what_is_kept_and_repeats_quietly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [
        "ml/iris/iris-000/model.onnx",
        "ml/iris/iris-000/result.json",
        "ml/iris/iris-001/model.onnx",
        "ml/iris/iris-002/validation.json",
        "ml/iris-2/iris-2-000/model.onnx",  # another Experiment whose name starts alike
        "checkpoints/iris-000/checkpoint.pt",
        "checkpoints/iris-000/fold-1/checkpoint.pt",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    store = tmp_path.as_uri()
    code, lines = run(
        capsys,
        f"{store}/ml/iris",
        f"{store}/checkpoints/iris-000",
        "--keep",
        f"{store}/ml/iris/iris-001",
    )
    assert code == 0
    assert [line["deleted"] for line in lines] == [3, 2]
    assert tree(tmp_path) == {"ml/iris/iris-001/model.onnx", "ml/iris-2/iris-2-000/model.onnx"}
    assert not (tmp_path / "checkpoints/iris-000").exists()
    # idempotent: a retried Job finds nothing left and succeeds
    code, lines = run(capsys, f"{store}/ml/iris", f"{store}/checkpoints/iris-000")
    assert code == 0
    assert [line["deleted"] for line in lines] == [1, 0]  # nothing kept this time
    assert tree(tmp_path) == {"ml/iris-2/iris-2-000/model.onnx"}


def test_prefixes_too_broad_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a").write_bytes(b"x")
    code, lines = run(capsys, "file:///", "s3://bucket", f"{tmp_path.as_uri()}/../x")
    assert code == 1
    assert all("refusing" in line["error"] for line in lines)
    assert (tmp_path / "a").exists()


def test_s3_deletes_every_page_of_objects_and_keeps_the_rest(
    s3_server: S3Server,  # noqa: F811
) -> None:
    s3 = s3_server.client()
    s3_server.bucket("retention")
    keys = [f"runs/ml/iris/iris-000/part-{i:04d}" for i in range(1005)]  # two list pages
    keys += [
        "runs/ml/iris/iris-001/model.onnx",
        "runs/ml/iris-2/iris-2-000/model.onnx",
        "runs/checkpoints/iris-000/checkpoint.pt",
    ]
    for key in keys:
        s3.put_object(Bucket="retention", Key=key, Body=b"x")
    env = {
        **os.environ,
        **s3_server.env,
        "PYTHONPATH": str(REPO / "src"),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CLI,
            "artifacts",
            "delete",
            "s3://retention/runs/ml/iris",
            "s3://retention/runs/checkpoints/iris-000",
            "s3://retention/runs/checkpoints/iris-009",  # never written: nothing to do
            "--keep",
            "s3://retention/runs/ml/iris/iris-001",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    counts = [json.loads(line)["deleted"] for line in proc.stdout.splitlines()]
    assert counts == [1005, 1, 0]
    left = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="retention"):
        left += [o["Key"] for o in page.get("Contents", [])]
    assert sorted(left) == [
        "runs/ml/iris-2/iris-2-000/model.onnx",
        "runs/ml/iris/iris-001/model.onnx",
    ]


def test_s3_failure_exits_nonzero_without_a_traceback(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "PYTHONPATH": str(REPO / "src"),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CLI,
            "artifacts",
            "delete",
            "s3://retention/runs/ml/iris",
            "--s3-endpoint-url",
            "http://127.0.0.1:1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    (line,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert "cannot delete under s3://retention/runs/ml/iris" in line["error"]


def test_describe_and_the_dashboard_say_a_deleted_model_is_gone() -> None:
    import datetime as dt

    from thunderbolt.cli.describe import trial_view
    from thunderbolt.dashboard.views import trial_view as page

    trial: dict[str, Any] = {
        "metadata": {"name": "iris-003", "namespace": "ml"},
        "spec": {"experiment": "iris", "number": 3, "parameters": {}},
        "status": {"phase": "Succeeded", "modelUri": "s3://m/ml/iris/iris-003/model.onnx"},
    }
    assert "deleted" not in trial_view(trial)
    trial["status"]["artifactsDeleted"] = {"reason": "Retention", "time": "2026-12-01T10:00:00Z"}
    text = trial_view(trial)
    assert "model and files deleted from the store (Retention, 2026-12-01T10:00:00Z)" in text
    view = page(trial, [], "", dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert view["modelUri"].startswith("deleted (Retention")
