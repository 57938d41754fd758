"""The serving pod must not pay for torch: importing the server must not load it."""

from __future__ import annotations

import subprocess
import sys

SERVING_MODULES = [
    "thunderbolt.serving.server",
    "thunderbolt.serving.app",
    "thunderbolt.deploy.promparse",
    "thunderbolt.serving.__main__",
    "thunderbolt.cli.serve",
]


def test_serving_modules_do_not_import_torch_or_mlflow() -> None:
    code = (
        "import sys, importlib\n"
        f"for m in {SERVING_MODULES!r}: importlib.import_module(m)\n"
        "from thunderbolt.serving.model import OnnxModel\n"
        "from tests.unit.serving.onnx_models import linear_model\n"
        "OnnxModel(linear_model())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mlflow')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_full_cli_parser_does_not_import_torch_either() -> None:
    """Pods run ``thunderbolt serve``, which registers every subcommand first."""
    code = (
        "import sys\n"
        "from thunderbolt.cli import build_parser\n"
        "build_parser().parse_args(['serve', '--model-uri', 'file:///m.onnx', '--model-name', 'm'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mlflow')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
