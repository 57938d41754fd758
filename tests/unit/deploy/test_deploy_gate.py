"""``spec.gate``: the measuring (pure), the planner holding a revision until its gate
passed, the Job the controller runs, and ``thunderbolt gate`` itself on models the real
trainer made (iris, onnxruntime)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.unit.deploy.test_deploy_rollout import Sim, model, serve_first
from thunderbolt.api.modeldeployment import Gate, GateResult, Revision, parse_spec
from thunderbolt.deploy import builders as b
from thunderbolt.deploy import gate as gates
from thunderbolt.deploy.rollout import Observed, plan

GATE = {"dataset": {"uri": "builtin://iris"}, "metric": "accuracy", "threshold": 0.9}


def test_metrics_agreement_and_the_verdict():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    assert gates.measure("accuracy", scores, np.array([0, 1, 1, 1])) == 0.75
    out = np.array([[1.0], [2.0], [4.0]])
    assert gates.measure("mae", out, np.array([1.0, 2.0, 3.0])) == pytest.approx(1 / 3)
    assert gates.measure("mse", out, np.array([1.0, 2.0, 3.0])) == pytest.approx(1 / 3)
    assert gates.measure("r2", out, np.array([1.0, 2.0, 3.0])) == pytest.approx(0.5)
    assert gates.agreement(scores, scores[[0, 1, 3, 2]], classification=True) == 0.5
    assert gates.agreement(out, out * 1.005, classification=False) == 1.0

    gate = Gate.model_validate({**GATE, "minAgreement": 0.95})
    ok = gates.verdict(gate, 0.93, 0.97, 150)
    assert ok.passed and ok.message == "passed: accuracy 0.93, agreement 97.0% on 150 rows"
    low = gates.verdict(gate, 0.8, 0.5, 150)
    assert not low.passed
    assert low.message == ("accuracy 0.8 is below the threshold 0.9; agrees with the serving "
                           "model on 50.0% of rows, needs 95.0%")  # fmt: skip
    mse = Gate.model_validate(
        {"dataset": {"uri": "file:///d.csv"}, "metric": "mse", "threshold": 2}
    )
    assert not gates.verdict(mse, 2.5, None, 10).passed and gates.verdict(mse, 1.5, None, 10).passed
    with pytest.raises(ValueError, match="go together"):
        Gate.model_validate({"dataset": {"uri": "builtin://iris"}, "metric": "accuracy"})
    with pytest.raises(ValueError, match="needs metric"):
        Gate.model_validate({"dataset": {"uri": "builtin://iris"}})


def test_the_job_result_is_read_from_its_termination_message():
    line = GateResult(passed=False, message="accuracy 0.5 is below").model_dump_json()
    assert gates.parse_result(f"log line\n{line}\n") == GateResult.model_validate_json(line)
    assert gates.parse_result("Traceback ...") is None and gates.parse_result(None) is None


def test_the_gate_job_runs_the_serving_image_restricted_with_the_models_to_compare():
    spec = parse_spec({"model": {"uri": "s3://m/c.onnx", "checksum": "sha256:" + "c" * 64},
                       "gate": {**GATE, "minAgreement": 0.9}, "artifactsCredentialsSecret": "s3"})  # fmt: skip
    owner = b.Owner("iris", "ml", "uid-1")
    candidate = Revision(number=3, modelUri="s3://m/c.onnx", modelChecksum="sha256:" + "c" * 64)
    stable = Revision(number=2, modelUri="s3://m/s.onnx", modelChecksum="sha256:" + "s" * 64)
    job = gates.job(owner, spec, candidate, stable, b.ServingDefaults(image="tb:1"))
    assert job["metadata"]["name"] == "iris-gate-r3"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 600
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert (container["image"], container["command"], container["args"]) == (
        "tb:1",
        ["thunderbolt"],
        ["gate"],
    )
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e["value"] for e in container["env"]}
    request = gates.GateRequest.model_validate_json(env["THUNDERBOLT_GATE"])
    assert request.candidate.uri == "s3://m/c.onnx" and request.baseline is not None
    assert request.baseline.checksum == stable.modelChecksum
    assert "THUNDERBOLT_MODEL_URI" not in env and "AWS_SHARED_CREDENTIALS_FILE" in env


class GateSim(Sim):
    def __init__(self, **spec):
        super().__init__(**spec)
        self.results: dict[int, GateResult] = {}
        self.gated: list[int] = []

    def tick(self, desired, verdict=None, seconds=1.0, gateway=False):
        self.now = self.now
        for n, o in list(self.observed.items()):
            self.observed[n] = Observed(o.replicas, o.replicas, o.replicas)
        p = plan(self.spec, self.status, desired, dict(self.observed), self.now, generation=1,
                 verdict=verdict, gate_results=self.results)  # fmt: skip
        self.status, self.plan = p.status, p
        self.events += p.events
        if p.gate_revision is not None:
            self.gated.append(p.gate_revision)
        for n, (_, replicas) in p.deployments.items():
            if n not in self.observed or self.observed[n].replicas != replicas:
                self.observed[n] = Observed(replicas, 0, 0)
        for n in p.delete:
            self.observed.pop(n, None)
        return p


def test_a_first_revision_gets_no_pod_and_no_service_until_its_gate_passed():
    sim = GateSim(gate=GATE)
    p = sim.tick(model(1))
    assert p.deployments == {} and p.selector_revision is None and p.gate_revision == 1
    assert sim.status.reason == "Gating"
    sim.results[1] = GateResult(passed=True, metric="accuracy", value=0.95, message="passed")
    p = sim.tick(model(1))
    assert set(p.deployments) == {1} and sim.status.history[0].gate.value == 0.95
    sim.tick(model(1))
    assert sim.status.phase == "Available" and sim.outcomes() == [(1, "Promoted")]
    assert any(e[1] == "GatePassed" for e in sim.events)


def test_a_failed_gate_is_never_deployed_and_not_retried_while_stable_serves():
    sim = GateSim(gate=GATE, strategy={"type": "Canary", "canary": {"steps": [{"weight": 50}]}})
    sim.results[1] = GateResult(passed=True, message="passed")
    for _ in range(3):
        sim.tick(model(1))
    assert sim.status.phase == "Available"
    p = sim.tick(model(2))
    assert set(p.deployments) == {1} and p.gate_revision == 2 and not p.select_all
    assert sim.status.canary is None  # no canary step while the gate runs
    sim.results[2] = GateResult(
        passed=False, value=0.5, message="accuracy 0.5 is below the threshold 0.9"
    )
    for _ in range(3):
        p = sim.tick(model(2))
        assert set(p.deployments) == {1} and p.gate_revision is None
    assert sim.outcomes() == [(1, "Promoted"), (2, "GateFailed")]
    assert sim.status.phase == "Degraded" and sim.status.reason == "GateFailed"
    assert sim.status.canary is None and sim.status.currentRevision.number == 1
    assert "accuracy 0.5" in sim.status.history[-1].reason


def test_a_passed_gate_starts_the_canary():
    sim = GateSim(gate=GATE, strategy={"type": "Canary", "canary": {"steps": [{"weight": 50}]}})
    sim.results = {1: GateResult(passed=True), 2: GateResult(passed=True, message="passed")}
    for _ in range(3):
        sim.tick(model(1))
    p = sim.tick(model(2))
    assert sim.status.canary is not None and sim.status.canary.revision == 2
    assert p.deployments[2][1] == 1 and p.select_all


def test_a_rollback_skips_the_gate():
    sim = GateSim(gate=GATE)
    sim.results = {1: GateResult(passed=True), 2: GateResult(passed=True)}
    serve_first(sim, model(1))
    for _ in range(3):
        sim.tick(model(2))
    sim.spec = sim.spec.model_copy(update={"rollbackTo": 1})
    from thunderbolt.deploy import revisions as rv

    target = rv.rollback_target(sim.status, 1)
    p = sim.tick(target)
    assert p.gate_revision is None and 3 in p.deployments


@pytest.fixture(scope="module")
def iris_models(tmp_path_factory):
    """A good and a poor iris model from the real trainer (and their checksums)."""
    from thunderbolt.api.trainer_config import TrainerConfig
    from thunderbolt.trainer.run import train

    root = tmp_path_factory.mktemp("gate-models")
    made = {}
    for name, epochs, lr in (("good", 40, 0.05), ("poor", 1, 1e-4)):
        config = TrainerConfig.model_validate({
            "dataset": {"uri": "builtin://iris"}, "epochs": epochs, "seed": 0,
            "parameters": {"learning_rate": lr, "hidden_dim": 16},
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
        })  # fmt: skip
        result, code = train(config, str(root / name), emit=lambda _m: None)
        assert code == 0, result
        made[name] = (result.modelUri, result.modelChecksum)
    return made


def run_gate(monkeypatch, tmp_path, request: dict) -> tuple[int, GateResult]:
    from thunderbolt.cli import main as cli

    message = tmp_path / "termination"
    monkeypatch.setenv("THUNDERBOLT_GATE", json.dumps(request))
    monkeypatch.setenv("THUNDERBOLT_TERMINATION_MESSAGE_PATH", str(message))
    code = cli(["gate"])
    return code, GateResult.model_validate_json(message.read_text())


def test_thunderbolt_gate_measures_real_models_on_the_dataset(iris_models, monkeypatch, tmp_path):
    good, poor = iris_models["good"], iris_models["poor"]
    ref = lambda m: {"uri": m[0], "checksum": m[1]}  # noqa: E731
    code, passed = run_gate(monkeypatch, tmp_path, {"gate": GATE, "candidate": ref(good)})
    assert code == 0 and passed.passed and passed.rows == 150 and passed.value >= 0.9
    code, failed = run_gate(monkeypatch, tmp_path, {"gate": GATE, "candidate": ref(poor)})
    assert code == 0 and not failed.passed and failed.value < 0.9
    assert "below the threshold 0.9" in failed.message
    agree = {**GATE, "minAgreement": 0.95}
    code, differ = run_gate(monkeypatch, tmp_path,
                            {"gate": agree, "candidate": ref(good), "baseline": ref(poor)})  # fmt: skip
    assert code == 0 and not differ.passed and differ.agreement < 0.95
    code, same = run_gate(monkeypatch, tmp_path,
                          {"gate": agree, "candidate": ref(good), "baseline": ref(good)})  # fmt: skip
    assert same.passed and same.agreement == 1.0
    tampered = {"uri": good[0], "checksum": "sha256:" + "0" * 64}
    code, broken = run_gate(monkeypatch, tmp_path, {"gate": GATE, "candidate": tampered})
    assert code == 1 and not broken.passed and "does not match its checksum" in broken.message
