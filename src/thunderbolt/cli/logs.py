"""`thunderbolt logs TRIAL`: the logs of the pod(s) of the trial's Job."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from thunderbolt.cli.kube import CliError, Kube, add_kube_args, api_errors, connect, friendly


def job_name(trial: dict[str, Any]) -> str:
    """status.jobName once the operator recorded it; the Trial's own name before that."""
    return (trial.get("status") or {}).get("jobName") or trial["metadata"]["name"]


def newest_first(pods: list[Any]) -> list[Any]:
    return sorted(pods, key=lambda p: p.metadata.creation_timestamp or 0, reverse=True)


def pods_of_job(kube: Kube, job: str) -> list[Any]:
    try:
        result = kube.core.list_namespaced_pod(kube.namespace, label_selector=f"job-name={job}")
    except api_errors() as exc:
        raise CliError(f"cannot list pods of job {job}: {getattr(exc, 'reason', exc)}") from exc
    return newest_first(list(result.items))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "logs", help="logs of a trial's training pod", description=__doc__
    )
    parser.add_argument("trial")
    parser.add_argument("-f", "--follow", action="store_true", help="stream until the pod ends")
    parser.add_argument("--tail", type=int, default=None, help="last N lines only")
    parser.add_argument("--all-pods", action="store_true", help="every retry, not only the newest")
    parser.add_argument("-c", "--container", default=None)
    add_kube_args(parser)
    parser.set_defaults(func=run)


@friendly
def run(args: argparse.Namespace) -> int:
    kube = connect(args)
    trial = kube.get("trials", args.trial)
    job = job_name(trial)
    pods = pods_of_job(kube, job)
    if not pods:
        phase = (trial.get("status") or {}).get("phase", "Pending")
        raise CliError(f"trial {args.trial} ({phase}) has no pods for job {job} yet")
    for pod in reversed(pods) if args.all_pods else pods[:1]:
        name = pod.metadata.name
        if args.all_pods or len(pods) > 1:
            print(f"==> pod {name} ({pod.status.phase}) <==", flush=True)
        kwargs: dict[str, Any] = {"container": args.container}
        if args.tail is not None:
            kwargs["tail_lines"] = args.tail
        try:
            if args.follow:
                stream = kube.core.read_namespaced_pod_log(
                    name, kube.namespace, follow=True, _preload_content=False, **kwargs
                )
                for chunk in stream.stream():
                    sys.stdout.write(chunk.decode("utf-8", "replace"))
                    sys.stdout.flush()
            else:
                text = kube.core.read_namespaced_pod_log(name, kube.namespace, **kwargs)
                sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        except api_errors() as exc:
            raise CliError(
                f"cannot read logs of pod {name}: {getattr(exc, 'body', None) or exc}"
            ) from exc
    return 0
