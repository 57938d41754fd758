"""Repository-wide pytest hooks.

`@pytest.mark.gpu` tests are skipped where there is no NVIDIA driver, so the same suite
runs on CPU-only CI machines and on GPU machines without edits.
"""

from __future__ import annotations

import shutil

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if shutil.which("nvidia-smi"):
        return
    skip_gpu = pytest.mark.skip(reason="needs a GPU: nvidia-smi not found")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
