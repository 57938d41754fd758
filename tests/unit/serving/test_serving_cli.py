"""`thunderbolt serve` flags: environment defaults for the pod, early rejection of bad input."""

from __future__ import annotations

import argparse

import pytest

from thunderbolt.cli import serve


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_environment_supplies_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    checksum = "sha256:" + "ab" * 32
    monkeypatch.setenv("THUNDERBOLT_MODEL_URI", "s3://models/iris.onnx")
    monkeypatch.setenv("THUNDERBOLT_MODEL_CHECKSUM", checksum)
    monkeypatch.setenv("THUNDERBOLT_MODEL_NAME", "iris")
    args = _parse([])
    assert (args.model_uri, args.checksum, args.model_name) == (
        "s3://models/iris.onnx",
        checksum,
        "iris",
    )
    assert (args.port, args.max_batch_size, args.max_delay_ms, args.no_batching) == (
        8080,
        32,
        2.0,
        False,
    )
    assert _parse(["--model-name", "other"]).model_name == "other"  # flags win


@pytest.mark.parametrize(
    "argv",
    [["--checksum", "md5:abc"], ["--checksum", "sha256:xyz"], ["--max-batch-size", "0"]],
)
def test_malformed_flags_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _parse(argv)
    assert info.value.code == 2


def test_missing_model_uri_exits_2_before_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THUNDERBOLT_MODEL_URI", raising=False)
    assert serve.run(_parse(["--model-name", "iris"])) == 2
