"""`thunderbolt gate`: run a ModelDeployment's quality gate (inside the gate Job).

Reads the request from ``THUNDERBOLT_GATE`` (written by the controller, see
``thunderbolt.deploy.gate``), fetches the candidate and the serving model and verifies
their checksums, reads the held-out dataset as the trainer does, runs both with
onnxruntime, and writes the ``GateResult`` as one JSON line to stdout and to the
termination-message path, where the controller reads it. Exit 0 whether or not the gate
passed; 1 when it could not measure (the result then says why and does not pass).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from typing import Any

import numpy as np

from thunderbolt.api.modeldeployment import GateResult
from thunderbolt.api.trainer_config import TERMINATION_MESSAGE_PATH
from thunderbolt.deploy import gate as gates


class GateError(Exception):
    """The gate could not measure; the message goes into the result."""


def _label(value: Any) -> str:
    """As the trainer names classes (``trainer.data``): 1.0 and 1 are the class "1"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _load(ref: gates.ModelRef, s3: str | None) -> Any:
    from thunderbolt.artifacts import ArtifactError, sha256_digest
    from thunderbolt.serving.model import ModelLoadError, OnnxModel
    from thunderbolt.serving.source import fetch_model, redact

    try:
        data = fetch_model(ref.uri, s3_endpoint_url=s3).data
    except ArtifactError as exc:
        raise GateError(f"cannot fetch {redact(ref.uri)}: {type(exc).__name__}") from exc
    if ref.checksum and sha256_digest(data) != ref.checksum:
        raise GateError(f"{redact(ref.uri)} does not match its checksum {ref.checksum}")
    try:
        return OnnxModel(data)
    except ModelLoadError as exc:
        raise GateError(f"{redact(ref.uri)}: onnxruntime cannot load it") from exc


def _features(frame: Any, model: Any, target: str) -> np.ndarray:
    names = json.loads(model.metadata.get("thunderbolt.feature_names", "null") or "null")
    columns = names or [c for c in frame.columns if c != target]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise GateError(f"the dataset lacks the model's feature columns {missing[:5]}")
    return frame[columns].to_numpy(dtype=np.float32)


def _run(model: Any, x: np.ndarray) -> np.ndarray:
    feeds = {model.inputs[0].name: x}
    out = model.run(feeds)
    return np.asarray(out[model.outputs[0].name])


def _truth(frame: Any, target: str, model: Any, builtin_labels: list[str] | None) -> np.ndarray:
    """Class indices as the model numbers them (its ``thunderbolt.class_labels``)."""
    values = frame[target].to_numpy()
    labels = json.loads(model.metadata.get("thunderbolt.class_labels", "null") or "null")
    uniques = np.unique(values)
    if builtin_labels is not None and len(builtin_labels) == len(uniques):
        names = [builtin_labels[i] for i in np.searchsorted(uniques, values)]
    else:
        names = [_label(v) for v in values]
    if labels is None:  # a model without class names: classes are the sorted values
        return np.searchsorted(uniques, values)
    index = {name: i for i, name in enumerate(labels)}
    unknown = sorted({n for n in names if n not in index})
    if unknown:
        raise GateError(f"target values {unknown[:5]} are not classes of the model {labels[:10]}")
    return np.array([index[n] for n in names])


def evaluate(request: gates.GateRequest, s3: str | None) -> GateResult:
    from thunderbolt.api.trainer_config import DatasetConfig
    from thunderbolt.sdk.errors import DatasetError
    from thunderbolt.trainer.data import read_frame

    g = request.gate
    candidate = _load(request.candidate, s3)
    baseline = _load(request.baseline, s3) if request.baseline else None
    config = DatasetConfig(uri=g.dataset.uri, target=g.dataset.target, format=g.dataset.format)
    try:
        frame, builtin_labels = read_frame(config, s3_endpoint_url=s3)
    except DatasetError as exc:
        raise GateError(str(exc)) from exc
    if g.dataset.target not in frame.columns:
        raise GateError(f"the dataset has no target column {g.dataset.target!r}")
    frame = frame.head(g.maxRows)
    x = _features(frame, candidate, g.dataset.target)
    out = _run(candidate, x)
    classification = g.metric == "accuracy" or (
        g.metric is None and out.ndim == 2 and out.shape[1] > 1
    )
    value = None
    if g.metric is not None:
        truth = (_truth(frame, g.dataset.target, candidate, builtin_labels) if classification
                 else frame[g.dataset.target].to_numpy(dtype=np.float64))  # fmt: skip
        value = gates.measure(g.metric, out, truth)
    agreed = None
    if baseline is not None:
        agreed = gates.agreement(out, _run(baseline, _features(frame, baseline, g.dataset.target)),
                                 classification)  # fmt: skip
    return gates.verdict(g, value, agreed, len(frame))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gate", help="run a ModelDeployment quality gate (inside its Job)", description=__doc__
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    code = 0
    try:
        request = gates.GateRequest.model_validate_json(os.environ.get(gates.ENV_REQUEST, ""))
        result = evaluate(request, os.environ.get("AWS_ENDPOINT_URL"))
    except (GateError, ValueError) as exc:
        result, code = GateResult(passed=False, message=f"gate could not run: {exc}"[:1024]), 1
    line = result.model_dump_json(exclude_none=True)
    print(line)
    path = os.environ.get("THUNDERBOLT_TERMINATION_MESSAGE_PATH", TERMINATION_MESSAGE_PATH)
    try:
        pathlib.Path(path).write_text(line)
    except OSError:
        print(f"cannot write {path}", file=sys.stderr)
    return code
