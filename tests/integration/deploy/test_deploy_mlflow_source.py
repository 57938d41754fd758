"""``MlflowSource`` against a real ``mlflow server`` (no cluster needed)."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.servers import free_port, mlflow_server  # noqa: F401
from tests.integration.deploy.test_deploy_mlflow import register
from tests.unit.serving.onnx_models import linear_model
from thunderbolt.api.modeldeployment import ModelSource
from thunderbolt.artifacts import sha256_digest
from thunderbolt.deploy.sources import MlflowSource, SourceNotReady, SourcePolicy, SourceRefused


def source(name: str, url: str, **ref) -> ModelSource:
    return ModelSource(mlflowModel={"name": name, "trackingUri": url, **ref})


def test_version_and_alias_resolve_to_a_pinned_uri_with_a_verified_checksum(mlflow_server):  # noqa: F811
    client = mlflow_server.client()
    name = f"m-{uuid.uuid4().hex[:6]}"
    data = linear_model(k=2)
    v1 = register(client, name, data)
    client.set_registered_model_alias(name, "champion", v1)
    resolver = MlflowSource()
    pinned = resolver.resolve(source(name, mlflow_server.url, version=v1))
    assert pinned.uri == f"models:/{name}/{v1}" and pinned.checksum == sha256_digest(data)
    assert pinned.source == f"mlflow/{name}/{v1}" and pinned.mlflow_version == v1
    assert pinned.mlflow_url == f"{mlflow_server.url}/#/models/{name}/versions/{v1}"
    followed = resolver.resolve(source(name, mlflow_server.url, alias="champion"))
    assert followed.identity() == pinned.identity()
    assert followed.note == f"alias champion -> version {v1}"


def test_a_tagged_checksum_that_does_not_match_the_artifact_is_refused(mlflow_server):  # noqa: F811
    client = mlflow_server.client()
    name = f"m-{uuid.uuid4().hex[:6]}"
    good = linear_model(k=1)
    v1 = register(client, name, good, {"thunderbolt.io/checksum": sha256_digest(good)})
    v2 = register(client, name, linear_model(k=3), {"thunderbolt.io/checksum": sha256_digest(good)})
    resolver = MlflowSource()
    assert resolver.resolve(source(name, mlflow_server.url, version=v1)).checksum == sha256_digest(
        good
    )
    with pytest.raises(SourceRefused) as refused:
        resolver.resolve(source(name, mlflow_server.url, version=v2))
    assert refused.value.reason == "ChecksumMismatch"
    assert refused.value.model is not None and refused.value.model.mlflow_version == v2


def test_missing_versions_and_unreachable_registries_are_retried_not_refused(mlflow_server):  # noqa: F811
    with pytest.raises(SourceNotReady):
        MlflowSource().resolve(source("no-such-model", mlflow_server.url, alias="champion"))
    with pytest.raises(SourceNotReady):
        MlflowSource().resolve(source("m", f"http://127.0.0.1:{free_port()}", version="1"))


def test_the_operators_policy_caps_downloads_and_names_the_allowed_hosts(mlflow_server):  # noqa: F811
    from thunderbolt.deploy.sources import SourcePolicy

    client = mlflow_server.client()
    name = f"m-{uuid.uuid4().hex[:6]}"
    v1 = register(client, name, linear_model(k=1))
    small = MlflowSource(policy=SourcePolicy(hosts=("*",), max_bytes=64))
    with pytest.raises(SourceRefused) as refused:
        small.resolve(source(name, mlflow_server.url, version=v1))
    assert refused.value.reason == "ModelTooLarge" and "at most 64" in str(refused.value)

    elsewhere = MlflowSource(policy=SourcePolicy(hosts=("mlflow.example.com",)))
    with pytest.raises(SourceRefused) as refused:
        elsewhere.resolve(source(name, mlflow_server.url, version=v1))
    assert refused.value.reason == "SourceNotAllowed"


def test_the_trainers_own_version_is_verified_by_its_tag_and_carries_its_objective(
    mlflow_server,  # noqa: F811
    tmp_path,
):
    from tests.integration.deploy.helpers import train_and_register

    name = f"iris-{uuid.uuid4().hex[:6]}"
    result = train_and_register(mlflow_server.url, name, tmp_path / "out")
    version = result.mlflowModelVersion
    resolved = MlflowSource().resolve(source(name, mlflow_server.url, version=version))
    assert resolved.checksum == result.modelChecksum and resolved.checksum_tagged
    assert (resolved.trial, resolved.experiment) == ("iris-t0", "iris")
    assert resolved.objective == result.objective and resolved.objective_metric == "val_accuracy"
    assert resolved.mlflow_run == result.mlflowRunId
    # A tag that requires tags changes nothing for it: the trainer always tags.
    strict = MlflowSource(policy=SourcePolicy(hosts=("*",), require_checksum_tag=True))
    assert strict.resolve(source(name, mlflow_server.url, version=version)).checksum_tagged
    # Another metric of the run, when the deployment names one.
    loss = MlflowSource().resolve(
        source(name, mlflow_server.url, version=version, objectiveMetric="val_loss")
    )
    assert loss.objective_metric == "val_loss" and loss.objective is not None
    assert loss.objective != resolved.objective


def test_tampered_untagged_and_deprecated_versions_are_refused(mlflow_server, tmp_path):  # noqa: F811
    from tests.integration.deploy.helpers import train_and_register

    client = mlflow_server.client()
    name = f"iris-{uuid.uuid4().hex[:6]}"
    result = train_and_register(mlflow_server.url, name, tmp_path / "out")
    # The artifact's bytes change in the store after registration: the tag no longer matches.
    run = client.get_run(result.mlflowRunId)
    relative = run.info.artifact_uri.split("mlflow-artifacts:/", 1)[1]
    stored = mlflow_server.root / "artifacts" / relative / "model" / "model.onnx"
    assert stored.is_file(), stored
    stored.write_bytes(linear_model(k=5))
    with pytest.raises(SourceRefused) as refused:
        MlflowSource().resolve(source(name, mlflow_server.url, version=result.mlflowModelVersion))
    assert refused.value.reason == "ChecksumMismatch"
    assert refused.value.model is not None and refused.value.model.checksum == result.modelChecksum

    untagged = register(client, name, linear_model(k=2))
    assert MlflowSource().resolve(source(name, mlflow_server.url, version=untagged)).checksum
    for resolver, ref in (
        (MlflowSource(policy=SourcePolicy(hosts=("*",), require_checksum_tag=True)), {}),
        (MlflowSource(), {"requireChecksumTag": True}),
    ):
        with pytest.raises(SourceRefused) as refused:
            resolver.resolve(source(name, mlflow_server.url, version=untagged, **ref))
        assert refused.value.reason == "ChecksumTagMissing"

    resolver = MlflowSource()
    resolver.resolve(source(name, mlflow_server.url, version=untagged))
    client.set_model_version_tag(name, untagged, "thunderbolt.io/deprecated", "true")
    with pytest.raises(SourceRefused) as refused:  # read on every lookup, not cached
        resolver.resolve(source(name, mlflow_server.url, version=untagged))
    assert refused.value.reason == "Deprecated"
