"""Kubeconfig resolution matches kubectl: flag over KUBECONFIG, context namespace, -n wins."""

from __future__ import annotations

import argparse

import pytest
import yaml

from thunderbolt.cli.kube import CliError, connect


def write_kubeconfig(path, current="a"):
    cluster = {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "a", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}},
                    {"name": "b", "context": {"cluster": "c", "user": "u"}},
                ],
                "current-context": current,
            }
        )
    )
    return path


def args(**kw):
    return argparse.Namespace(**{"kubeconfig": None, "context": None, "namespace": None, **kw})


def test_namespace_from_current_context(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "config")))
    kube = connect(args())
    assert kube.namespace == "team-a"
    assert kube.api_client.configuration.host == "https://127.0.0.1:6443"


def test_flag_and_context_and_namespace_override(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    path = write_kubeconfig(tmp_path / "other", current="a")
    assert connect(args(kubeconfig=str(path), context="b")).namespace == "default"
    assert connect(args(kubeconfig=str(path), namespace="x")).namespace == "x"


def test_unknown_context_and_no_config_are_clear_errors(tmp_path, monkeypatch):
    path = write_kubeconfig(tmp_path / "config")
    with pytest.raises(CliError):
        connect(args(kubeconfig=str(path), context="nope"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(CliError, match="no kubeconfig"):
        connect(args())
