"""`thunderbolt get experiments|trials|modeldeployments`: one line per object."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from typing import Any

from thunderbolt.cli.kube import add_kube_args, connect, friendly, plural_of
from thunderbolt.cli.tables import age, number, table
from thunderbolt.cli.trial_reads import selected_trials


def experiment_row(obj: dict[str, Any], now: dt.datetime) -> list[Any]:
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    counts = status.get("trials") or {}
    finished = sum(counts.get(k, 0) for k in ("succeeded", "failed", "pruned"))
    best = status.get("bestTrial") or {}
    return [
        obj["metadata"]["name"],
        status.get("phase", "Pending"),
        f"{finished}/{spec.get('maxTrials', '?')}",
        counts.get("running", 0),
        number(best.get("objective")),
        best.get("name", "-"),
        age(obj["metadata"].get("creationTimestamp"), now),
    ]


def trial_row(obj: dict[str, Any], now: dt.datetime) -> list[Any]:
    status = obj.get("status") or {}
    params = (obj.get("spec") or {}).get("parameters") or {}
    sn = params.get("spectral_norm")
    return [
        obj["metadata"]["name"],
        (obj.get("spec") or {}).get("experiment", "-"),
        status.get("phase", "Pending"),
        number(status.get("objective")),
        "-" if sn is None else str(sn).lower(),
        status.get("reason") or "",
        age(obj["metadata"].get("creationTimestamp"), now),
    ]


def modeldeployment_row(obj: dict[str, Any], now: dt.datetime) -> list[Any]:
    status = obj.get("status") or {}
    current = status.get("currentRevision") or {}
    canary = status.get("canary") or {}
    return [
        obj["metadata"]["name"],
        status.get("phase", "Pending"),
        current.get("number", "-"),
        current.get("source") or current.get("trial") or "-",
        f"{canary['weight']}%" if canary else "-",
        status.get("endpoint") or "-",
        age(obj["metadata"].get("creationTimestamp"), now),
    ]


VIEWS: dict[str, tuple[list[str], Callable[[dict[str, Any], dt.datetime], list[Any]]]] = {
    "experiments": (
        ["NAME", "PHASE", "PROGRESS", "RUNNING", "BEST", "BEST-TRIAL", "AGE"],
        experiment_row,
    ),
    "trials": (
        ["NAME", "EXPERIMENT", "PHASE", "OBJECTIVE", "SPECTRAL-NORM", "REASON", "AGE"],
        trial_row,
    ),
    "modeldeployments": (
        ["NAME", "PHASE", "REVISION", "SOURCE", "CANARY", "ENDPOINT", "AGE"],
        modeldeployment_row,
    ),
}


def render(plural: str, objects: list[dict[str, Any]], now: dt.datetime, all_ns: bool) -> str:
    headers, row = VIEWS[plural]
    objects = sorted(
        objects, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
    )
    rows = [row(o, now) for o in objects]
    if all_ns:
        headers = ["NAMESPACE", *headers]
        rows = [
            [o["metadata"].get("namespace", "")] + r for o, r in zip(objects, rows, strict=True)
        ]
    return table(headers, rows)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "get", help="list experiments, trials or modeldeployments", description=__doc__
    )
    parser.add_argument(
        "kind", help="experiments | trials | modeldeployments (or tbexp, tbtrial, tbmd)"
    )
    parser.add_argument("name", nargs="?", help="only this object")
    parser.add_argument("-A", "--all-namespaces", action="store_true")
    parser.add_argument(
        "-l", "--selector", help="label selector, e.g. thunderbolt.io/param.spectral_norm=true"
    )
    parser.add_argument("--experiment", help="trials of this experiment only")
    add_kube_args(parser)
    parser.set_defaults(func=run)


@friendly
def run(args: argparse.Namespace) -> int:
    from thunderbolt.api.meta import EXPERIMENT_LABEL, now_utc

    plural = plural_of(args.kind, "experiments, trials or modeldeployments")
    kube = connect(args)
    selector = args.selector
    if args.experiment:
        owner = f"{EXPERIMENT_LABEL}={args.experiment}"
        selector = f"{selector},{owner}" if selector else owner
    if args.name:
        objects = [kube.get(plural, args.name)]
    elif plural == "trials" and not args.all_namespaces:
        objects = selected_trials(kube, selector)  # a search can have 10 000 of them
    else:
        objects = kube.list(
            plural, "" if args.all_namespaces else None, selector, cached=plural == "trials"
        )
    if not objects:
        where = "any namespace" if args.all_namespaces else f"namespace {kube.namespace}"
        print(f"No {plural} found in {where}.")
        return 0
    print(render(plural, objects, now_utc(), args.all_namespaces))
    return 0
