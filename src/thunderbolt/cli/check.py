"""`thunderbolt check mlflow EXPERIMENT [-o json] [--tracking-uri URI]`: do the Trials and
the MLflow record agree?

Lists every disagreement between an Experiment's Trials and the MLflow runs tagged with
it: a finished Trial without its run (no ``mlflowRunId``, or the run is gone), a run
tagged with a Trial that no longer exists (or with another Trial of the same name, by
uid), and values that differ — the objective (run tag ``thunderbolt.objective``), the
model checksum (``thunderbolt.io/checksum`` on the run and on its model versions), the
model version, and the switches (``thunderbolt.spectral_norm``). Exits 1 when anything
disagrees, so CI can run it. Values a run does not record (runs older than the tags)
are counted as unchecked, not as disagreements.
"""

from __future__ import annotations

import argparse
import json
import os

from thunderbolt.cli.kube import CliError, add_kube_args, connect, friendly
from thunderbolt.cli.tables import table
from thunderbolt.records.consistency import Report, compare, fetch_runs

__all__ = ["compare", "fetch_runs", "render"]


def render(report: Report) -> str:
    head = (f"experiment {report.experiment}: {report.trials} trials, {report.runs} runs, "
            f"{report.checks} checks, {len(report.findings)} disagreements "
            f"({report.agreement:.2%} agreement), {report.unchecked} unchecked")  # fmt: skip
    if not report.findings:
        return head
    rows = [(f.kind, f.trial or "-", f.run_id or "-", f.message) for f in report.findings]
    return head + "\n" + table(["KIND", "TRIAL", "RUN", "DETAIL"], rows)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="check records against each other", description=__doc__
    )
    parser.add_argument("what", choices=["mlflow"], help="mlflow: Trials vs MLflow runs")
    parser.add_argument("experiment")
    parser.add_argument("--tracking-uri", help="MLflow as this machine reaches it (default: "
                        "MLFLOW_TRACKING_URI, else the Experiment's tracking.mlflow.trackingUri)")  # fmt: skip
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    add_kube_args(parser)
    parser.set_defaults(func=run)


@friendly
def run(args: argparse.Namespace) -> int:
    kube = connect(args)
    experiment = kube.get("experiments", args.experiment)
    mlflow = ((experiment.get("spec") or {}).get("tracking") or {}).get("mlflow") or {}
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get("trackingUri")
    if not uri:
        raise CliError("no MLflow to check: pass --tracking-uri (or set MLFLOW_TRACKING_URI)")
    trials = kube.list("trials", label_selector=f"thunderbolt.io/experiment={args.experiment}")
    try:
        runs = fetch_runs(uri, kube.namespace, args.experiment,
                          mlflow.get("experimentName") or args.experiment)  # fmt: skip
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    except Exception as exc:  # MLflow or the network: one line, no traceback
        raise CliError(f"cannot read MLflow at {uri}: {type(exc).__name__}") from exc
    report = compare(args.experiment, trials, runs)
    print(json.dumps(report.as_json(), indent=2) if args.output == "json" else render(report))
    return 1 if report.findings else 0
