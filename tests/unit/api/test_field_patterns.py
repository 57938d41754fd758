"""Values that used to pass both validation layers and then fail Job creation with 422.

Each pattern also goes into the CRD schema, so `kubectl apply` refuses them; these tests
check the pydantic twin that guards API servers and clients that skip validation.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from thunderbolt.api.common import Resources
from thunderbolt.api.experiment import Artifacts, Dataset, TrialTemplate
from thunderbolt.api.modeldeployment import ModelSource

TEMPLATE: dict[str, Any] = {
    "image": "thunderbolt-trainer:0.1.0",
    "dataset": {"uri": "builtin://iris"},
}


@pytest.mark.parametrize("value", ["1", "500m", "1.5", "2Gi", "512Mi", "1e3", "+2", ".5", "100k"])
def test_kubernetes_quantities_pass(value: str) -> None:
    assert Resources(cpu=value, memory=value).cpu == value


@pytest.mark.parametrize("value", ["1.2.3", "5MGT", "1Gb", "-1", "one", "1 Gi", "", "Gi"])
def test_malformed_quantities_are_rejected(value: str) -> None:
    with pytest.raises(ValidationError):
        Resources(cpu=value)


@pytest.mark.parametrize(
    "image",
    [
        "thunderbolt-trainer:0.1.0",
        "localhost/thunderbolt-trainer:0.1.0",
        "registry.example.com:5000/team/trainer:v1.2-rc.1",
        "python:3.11-slim",
        "ghcr.io/org/img@sha256:" + "a" * 64,
        "docker.io/library/busybox",
    ],
)
def test_image_references_pass(image: str) -> None:
    assert TrialTemplate.model_validate({**TEMPLATE, "image": image}).image == image


@pytest.mark.parametrize(
    "image",
    [
        "My Image:LATEST!",
        "Trainer:1",
        "img:",
        "img@sha256:xyz",
        "/img",
        "a//b",
        "img:tag with space",
    ],
)
def test_malformed_image_references_are_rejected(image: str) -> None:
    with pytest.raises(ValidationError, match="image"):
        TrialTemplate.model_validate({**TEMPLATE, "image": image})


@pytest.mark.parametrize("name", ["Not Valid!", "UPPER", "-lead", "trail-", "a..b"])
def test_priority_class_names_must_be_dns_subdomains(name: str) -> None:
    with pytest.raises(ValidationError, match="priorityClassName"):
        TrialTemplate.model_validate({**TEMPLATE, "priorityClassName": name})
    assert TrialTemplate.model_validate({**TEMPLATE, "priorityClassName": "high-priority.gpu"})


@pytest.mark.parametrize("value", ["bad value!", "x" * 64, "-lead"])
def test_node_selector_values_must_be_label_values(value: str) -> None:
    with pytest.raises(ValidationError, match="nodeSelector"):
        TrialTemplate.model_validate({**TEMPLATE, "nodeSelector": {"disktype": value}})


@pytest.mark.parametrize("uri", ["s3://", "s3:///key", "s3://bucket", "s3://Bucket/x"])
def test_s3_uris_name_a_bucket_and_a_path(uri: str) -> None:
    with pytest.raises(ValidationError):
        Dataset(uri=uri)
    with pytest.raises(ValidationError):
        ModelSource(uri=uri, checksum="sha256:" + "0" * 64)


@pytest.mark.parametrize("uri", ["s3://", "s3:///p", "file://", "s3://Bad/p"])
def test_artifact_store_uris_name_a_place(uri: str) -> None:
    with pytest.raises(ValidationError):
        Artifacts(uri=uri)


@pytest.mark.parametrize(
    "uri", ["s3://models", "s3://models/exp-1", "file:///data/models", "mlflow"]
)
def test_artifact_store_uris_pass(uri: str) -> None:
    assert Artifacts(uri=uri).uri == uri
