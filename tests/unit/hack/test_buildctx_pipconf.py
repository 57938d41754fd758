"""The host pip setup that image builds see: every local file or folder pip names is mounted.

Why: a fresh machine whose pip.conf names a constraint file failed the first image build
("Could not open requirements file: /etc/xdg/pip/constraints.txt"), because only
find-links, index URLs and the CA bundle were mounted.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BUILDCTX = Path(__file__).resolve().parents[3] / "hack" / "images" / "buildctx.py"


@pytest.fixture
def buildctx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    """buildctx with no host pip files and no PIP_* variables: each test sets its own."""
    spec = importlib.util.spec_from_file_location("buildctx_under_test", BUILDCTX)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "PIP_FILES", [tmp_path / "etc-xdg-pip.conf"])
    for env in list(__import__("os").environ):
        if env.startswith("PIP_"):
            monkeypatch.delenv(env)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    return mod


def test_constraint_file_from_pip_conf_is_mounted(buildctx: ModuleType, tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("torch<=2.14.1\n")
    (tmp_path / "etc-xdg-pip.conf").write_text(f"[global]\nconstraint = {constraints}\n")

    cfg = buildctx.merged_pip_config()

    assert cfg.get("global", "constraint") == str(constraints)
    assert str(constraints) in buildctx.local_paths(cfg)


def test_every_path_option_and_env_variable_reaches_the_build(
    buildctx: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    index = tmp_path / "pypi" / "simple"
    index.mkdir(parents=True)
    client_cert = tmp_path / "client.pem"
    client_cert.write_text("pem")
    req = tmp_path / "req" / "requirements.txt"
    req.parent.mkdir()
    nested = tmp_path / "req" / "nested-constraints.txt"
    nested.write_text("numpy<3\n")
    req.write_text(f"-c nested-constraints.txt\n--find-links {wheels}\nrequests\n")
    (tmp_path / "etc-xdg-pip.conf").write_text(
        "[global]\n"
        f"extra-index-url = file://{index} https://pypi.org/simple\n"
        f"client-cert = {client_cert}\n"
        "[install]\n"
        f"requirement = {req}\n"
    )
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_CONSTRAINT", str(nested))
    monkeypatch.setenv("PIP_TARGET", "/host/only")  # an install location: never copied

    cfg = buildctx.merged_pip_config()
    paths = buildctx.local_paths(cfg)

    assert cfg.get("global", "find-links") == str(wheels)
    assert cfg.get("global", "constraint") == str(nested)
    assert not cfg.has_option("global", "target")
    # the index's parent (simple/ links up to ../files), the client cert, both requirement
    # files; wheels/ twice (env and nested -f) but mounted once
    assert str(index.parent) in paths
    assert str(client_cert) in paths
    assert str(req) in paths and str(nested) in paths
    assert paths.count(str(wheels)) == 1
    assert not any(p.startswith("https:") for p in paths)


def test_machine_without_pip_settings_builds_from_the_public_index(
    buildctx: ModuleType,
) -> None:
    cfg = buildctx.merged_pip_config()

    assert not cfg.has_option("global", "index-url")
    assert not cfg.has_option("global", "constraint")
    # at most the system CA bundle is mounted
    assert all(p.endswith(".crt") or p.endswith(".pem") for p in buildctx.local_paths(cfg))


def test_missing_paths_are_not_mounted(buildctx: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "etc-xdg-pip.conf").write_text(
        f"[global]\nconstraint = {tmp_path / 'gone.txt'}\nfind-links = relative/dir\n"
    )

    paths = buildctx.local_paths(buildctx.merged_pip_config())

    assert not any("gone" in p or "relative" in p for p in paths)
    assert all(p.endswith(".crt") for p in paths)  # the system CA bundle, if any
