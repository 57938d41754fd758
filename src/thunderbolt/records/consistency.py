"""Compare an Experiment's Trials with the MLflow runs tagged with it (pure), and fetch
those runs (I/O, bounded).

Lists every disagreement: a finished Trial without its run (no ``mlflowRunId``, or the
run is gone), a run tagged with a Trial that no longer exists (or with another Trial of
the same name, by uid), and values that differ: the objective (run tag
``thunderbolt.objective``), the model checksum (``thunderbolt.io/checksum`` on the run and
on its model versions), the model version, and the switches (``thunderbolt.spectral_norm``).
Values a run does not record (runs older than the tags) are counted as unchecked, not as
disagreements. Finding messages quote MLflow tag values; ``summary`` (for conditions and
Events) quotes only counts and kinds, never what the server returned.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Any

from thunderbolt.api import lineage

# Finished Trials that must have a run when tracking is on (a Failed one may have died
# before its run started: it is checked only when it names a run).
RUN_EXPECTED = ("Succeeded", "Pruned")


@dataclasses.dataclass(frozen=True)
class Run:
    """What the check needs of one MLflow run."""

    run_id: str
    tags: dict[str, str]
    versions: list[tuple[str, str, dict[str, str]]]  # (model name, version, version tags)


@dataclasses.dataclass(frozen=True)
class Finding:
    kind: str
    trial: str | None
    run_id: str | None
    message: str


@dataclasses.dataclass
class Report:
    experiment: str
    trials: int
    runs: int
    checks: int = 0
    unchecked: int = 0
    findings: list[Finding] = dataclasses.field(default_factory=list)

    @property
    def agreement(self) -> float:
        return 1.0 if self.checks == 0 else 1.0 - len(self.findings) / self.checks

    def as_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "trials": self.trials,
            "runs": self.runs,
            "checks": self.checks,
            "unchecked": self.unchecked,
            "disagreements": len(self.findings),
            "agreement": round(self.agreement, 6),
            "findings": [dataclasses.asdict(f) for f in self.findings],
        }


def _same_number(a: Any, b: str) -> bool:
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return False
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def compare(experiment: str, trials: list[dict[str, Any]], runs: list[Run]) -> Report:
    """Pure: every disagreement between ``trials`` (the Experiment's) and ``runs``."""
    report = Report(experiment, len(trials), len(runs))
    by_run = {r.run_id: r for r in runs}
    by_name = {t["metadata"]["name"]: t for t in trials}

    def check(ok: bool, kind: str, trial: str | None, run: str | None, message: str) -> None:
        report.checks += 1
        if not ok:
            report.findings.append(Finding(kind, trial, run, message))

    def compare_tag(status_value: Any, tags: dict[str, str], tag: str, kind: str, name: str,
                    run: Run, same: Any = None) -> None:  # fmt: skip
        recorded = tags.get(tag)
        if status_value is None or recorded is None:
            report.unchecked += 1
            return
        equal = same(status_value, recorded) if same else str(status_value) == recorded
        check(equal, kind, name, run.run_id,
              f"Trial {name} says {status_value}, run {run.run_id} tag {tag} says {recorded}")  # fmt: skip

    for name, trial in sorted(by_name.items()):
        status = trial.get("status") or {}
        phase, run_id = status.get("phase"), status.get("mlflowRunId")
        if phase not in RUN_EXPECTED and not (phase == "Failed" and run_id):
            continue
        if not run_id:
            check(
                False, "TrialWithoutRun", name, None, f"{phase} Trial {name} records no MLflow run"
            )
            continue
        run = by_run.get(run_id)
        check(run is not None, "RunMissing", name, run_id,
              f"{phase} Trial {name}'s run {run_id} is not in MLflow (deleted, or another experiment)")  # fmt: skip
        if run is None:
            continue
        check(run.tags.get(lineage.TRIAL_UID_TAG) in (None, trial["metadata"].get("uid")),
              "RunOfAnotherTrial", name, run_id,
              f"run {run_id} is tagged with another Trial uid than {name}'s")  # fmt: skip
        if phase == "Succeeded":
            compare_tag(status.get("objective"), run.tags, lineage.OBJECTIVE_TAG,
                        "ObjectiveDiffers", name, run, _same_number)  # fmt: skip
        checksum = status.get("modelChecksum")
        compare_tag(checksum, run.tags, lineage.CHECKSUM_TAG, "ChecksumDiffers", name, run)
        for switch, value in sorted((status.get("switches") or {}).items()):
            compare_tag(str(value).lower(), run.tags, f"thunderbolt.{switch}", "SwitchDiffers",
                        name, run)  # fmt: skip
        version = status.get("mlflowModelVersion")
        registered = [v for _, v, _ in run.versions]
        if version is not None or registered:
            check(version in registered and len(registered) == 1, "ModelVersionDiffers", name,
                  run_id, f"Trial {name} says model version {version}, run {run_id} registered "
                  f"{registered or 'none'}")  # fmt: skip
        for model, number, tags in run.versions:
            tagged = tags.get(lineage.CHECKSUM_TAG)
            if checksum is None or tagged is None:
                report.unchecked += 1
                continue
            check(tagged == checksum, "ChecksumDiffers", name, run_id,
                  f"Trial {name} says {checksum}, model {model} version {number} is tagged {tagged}")  # fmt: skip
    for run in runs:
        trial_name = run.tags.get(lineage.TRIAL_TAG)
        if not trial_name:
            continue
        check(trial_name in by_name, "OrphanRun", trial_name, run.run_id,
              f"run {run.run_id} is tagged with Trial {trial_name}, which does not exist")  # fmt: skip
    return report


def summary(report: Report) -> tuple[bool, str, str]:
    """(consistent, reason, message) for a condition: the most frequent kind of
    disagreement as the reason, counts only in the message."""
    if not report.findings:
        return (
            True,
            "Consistent",
            (
                f"{report.checks} checks agree ({report.trials} trials, {report.runs} runs, "
                f"{report.unchecked} unchecked)"
            ),
        )
    kinds = collections.Counter(f.kind for f in report.findings)
    listed = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    reason = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    return (
        False,
        reason,
        (
            f"{len(report.findings)} of {report.checks} checks disagree ({listed}); "
            f"{report.agreement:.2%} agreement; `thunderbolt check mlflow` lists them"
        ),
    )


def fetch_runs(
    tracking_uri: str, namespace: str, experiment: str, mlflow_experiment: str
) -> list[Run]:
    """The runs tagged with the Experiment (in its MLflow experiment), with their versions."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = client.get_experiment_by_name(mlflow_experiment)
    if found is None:
        return []
    if "'" in experiment or "'" in namespace:
        raise ValueError("names with quotes cannot be searched for")
    query = (f"tags.`{lineage.EXPERIMENT_TAG}` = '{experiment}' "
             f"and tags.`{lineage.NAMESPACE_TAG}` = '{namespace}'")  # fmt: skip
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs([found.experiment_id], filter_string=query, max_results=1000,
                                  page_token=token)  # fmt: skip
        for r in page:
            versions = client.search_model_versions(f"run_id = '{r.info.run_id}'")
            runs.append(Run(r.info.run_id, dict(r.data.tags),
                            [(v.name, str(v.version), dict(v.tags or {})) for v in versions]))  # fmt: skip
        token = page.token
        if not token:
            return runs
