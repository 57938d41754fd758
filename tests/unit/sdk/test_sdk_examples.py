"""examples/byo: the manifests validate, the Experiment's seeded search yields a pruning
candidate, and the SDK example script runs as a Trial would (config file, report
endpoint that prunes, or a full run that exports a served-shape model)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import onnx
import pytest
import yaml

from thunderbolt.api.experiment import parse_spec
from thunderbolt.api.modeldeployment import parse_spec as parse_md_spec
from thunderbolt.operator.search import Search

REPO = pathlib.Path(__file__).resolve().parents[3]
BYO = REPO / "examples" / "byo"
SCRIPT = BYO / "sdk-cnn-digits" / "train.py"


def docs() -> list[tuple[str, dict]]:
    return [
        (str(path.relative_to(BYO)), doc)
        for folder in ("sdk-cnn-digits", "sequence-builtin")
        for path in sorted((BYO / folder).glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]


def test_byo_manifests_validate_and_each_experiment_promotes_to_its_deployment():
    found = docs()
    experiments = {n: d for n, d in found if d["kind"] == "Experiment"}
    deployments = {n: d for n, d in found if d["kind"] == "ModelDeployment"}
    assert len(experiments) == 2 and len(deployments) == 2
    for doc in deployments.values():
        parse_md_spec(doc["spec"])
    for name, doc in experiments.items():
        spec = parse_spec(doc["spec"])
        assert spec.promote is not None
        target = name.split("/")[0] + "/modeldeployment.yaml"
        assert deployments[target]["metadata"]["name"] == spec.promote.modelDeployment
    sequence = parse_spec(experiments["sequence-builtin/experiment.yaml"]["spec"])
    assert sequence.trialTemplate.model == "sequence"


def test_the_digits_search_puts_a_low_learning_rate_after_a_good_one():
    """The median pruner (startupTrials 1) needs a finished good Trial before a bad one."""
    doc = yaml.safe_load((BYO / "sdk-cnn-digits" / "experiment.yaml").read_text())
    spec = parse_spec(doc["spec"])
    assert spec.pruner.name == "median" and spec.parallelTrials == 1
    search = Search(spec, "digits-cnn")
    rates = [search.suggest(n)["learning_rate"] for n in range(spec.maxTrials)]
    assert rates[0] > 3e-3 and min(rates[1:]) < 2e-4, rates


def run_script(tmp_path: pathlib.Path, config: dict) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    env = {
        "PYTHONPATH": str(REPO / "src"),
        "PATH": "/usr/bin:/bin",
        "THUNDERBOLT_CONFIG": str(path),
        "THUNDERBOLT_OUTPUT_DIR": str(tmp_path / "out"),
        "THUNDERBOLT_CPU_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=600, env=env
    )


CONFIG = {
    "identity": {"namespace": "ns", "experiment": "digits-cnn", "trial": "digits-cnn-001"},
    "parameters": {"learning_rate": 0.01, "channels": 8, "spectral_norm": True},
    "epochs": 2,
    "objective": {"metric": "val_accuracy", "direction": "maximize"},
}


@pytest.mark.slow
def test_the_example_script_trains_exports_and_retrains_the_same_model(tmp_path):
    done = run_script(tmp_path, CONFIG)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["status"] == "Succeeded" and result["objective"] > 0.5
    assert result["modelChecksum"].startswith("sha256:") and result["epochs"] == 2
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "out" / "model.onnx")).metadata_props}
    assert json.loads(props["thunderbolt.input_shape"]) == [-1, 1, 8, 8]
    assert props["thunderbolt.trial"] == "digits-cnn-001"
    # the run succeeded: its checkpoint is gone (a finished run is never resumed), and a
    # rerun of the same Trial trains again, to the very same model (resuming an
    # interrupted run: tests/unit/trainer/test_trainer_cli.py)
    assert not (tmp_path / "out" / "checkpoints" / "checkpoint.pt").exists()
    (tmp_path / "out" / "result.json").unlink()
    again = run_script(tmp_path, CONFIG)
    assert again.returncode == 0, again.stderr
    assert "resumed" not in again.stdout and "epoch=1 " in again.stdout
    rerun = json.loads((tmp_path / "out" / "result.json").read_text())
    assert rerun["modelChecksum"] == result["modelChecksum"]
    # another configuration is another run: it starts from scratch
    fresh = run_script(tmp_path, {**CONFIG, "parameters": {**CONFIG["parameters"], "channels": 4}})
    assert fresh.returncode == 0 and "resumed" not in fresh.stdout


def test_the_example_script_stops_when_the_operator_prunes(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Prune(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            reply = b'{"prune": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Prune)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp_path / "token"
    token.write_text("t")
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        done = run_script(tmp_path, {**CONFIG, "epochs": 4,
                                     "report": {"url": url, "tokenFile": str(token)}})  # fmt: skip
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert (result["status"], result["epochs"]) == ("Pruned", 1)
    assert not (tmp_path / "out" / "model.onnx").exists()
