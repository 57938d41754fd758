"""Reconcile one Experiment: tell finished Trials to the study, create the next ones,
write the status. Called from several handlers; one reconcile per Experiment at a time.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from thunderbolt.api.experiment import ExperimentSpec
from thunderbolt.api.meta import now_utc
from thunderbolt.api.trial import trial_number
from thunderbolt.operator import (
    aggregate,
    cleanup,
    completion,
    kube,
    metrics,
    trials,
    validation_digest,
)
from thunderbolt.operator.builders import build_trial
from thunderbolt.operator.locks import KeyedLocks
from thunderbolt.operator.search import STUDIES, StudyCache, search_space_size
from thunderbolt.operator.tally import TALLIES, Tallies
from thunderbolt.operator.trialcache import TRIALS, TrialCache
from thunderbolt.operator.trialstatus import stopped_with_experiment
from thunderbolt.operator.validation import SpecError, validate_experiment
from thunderbolt.optuna_bridge import TrialRecord
from thunderbolt.settings import OperatorSettings

log = logging.getLogger(__name__)
_lock = KeyedLocks()  # one reconcile per Experiment at a time


def _name(trial: dict[str, Any]) -> str:
    return str(trial["metadata"]["name"])


def study_name(experiment: dict[str, Any]) -> str:
    meta = experiment["metadata"]
    return f"{meta['namespace']}.{meta['name']}.{meta['uid'][:8]}"


def _changed(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in new.items() if old.get(k) != v}


def _write_status(experiment: dict[str, Any], status: dict[str, Any]) -> None:
    meta = experiment["metadata"]
    patch = _changed(experiment.get("status") or {}, status)
    if patch:
        kube.patch_status("experiments", meta["namespace"], meta["name"], patch)


def _announce_end(experiment: dict[str, Any], plan: aggregate.Plan) -> None:
    old_phase = (experiment.get("status") or {}).get("phase")
    if plan.terminal and old_phase != plan.phase:
        kube.post_event(
            experiment,
            f"Experiment{plan.phase}",
            f"{plan.reason}: {plan.message}",
            warning=plan.phase == "Failed",
        )


def _create_trials(
    experiment: dict[str, Any],
    spec: ExperimentSpec,
    plan: aggregate.Plan,
    studies: StudyCache,
    settings: OperatorSettings,
) -> int:
    """Create the planned Trials in order; stops at the first that already exists."""
    meta = experiment["metadata"]
    search, _ = studies.get(meta["uid"], spec, study_name(experiment))
    created = 0
    for number in plan.create:
        with metrics.SUGGEST_SECONDS.labels(spec.algorithm.name).time():
            params = search.suggest(number)
        trial = kube.create_custom("trials", build_trial(experiment, spec, number, params))
        if trial is None:
            break  # created by an earlier attempt; the next reconcile lists it
        TRIALS.observe("ADDED", trial)
        created += 1
        try:
            # Start its Job now rather than after a watch round-trip; the Trial's own
            # create handler does the same again (409s) and retries if this fails.
            trials.ensure_children(trial, settings)
        except ApiException as exc:
            log.warning("children of %s left to its handler: %s", trial["metadata"]["name"], exc)
        metrics.TRIALS_CREATED.labels(meta["namespace"], meta["name"]).inc()
        kube.post_event(
            experiment,
            "TrialCreated",
            f"trial {trial['metadata']['name']} started with {params}",
        )
    return created


def _stop_trials(namespace: str, names: list[str], message: str) -> set[str]:
    """Stop Trials of an Experiment that ended: delete the Job first, then mark the Trial
    (guarded by its resourceVersion, so a Trial that finished meanwhile keeps its result).
    Runs before the Experiment's status is written: a kill in between leaves the status
    unwritten, so the next reconcile (or resync) finds the Trial unfinished and repeats."""
    stopped = set()
    for name in names:
        kube.delete_job(namespace, name)
        for _ in range(trials.STATUS_CONFLICT_RETRIES):
            trial = kube.get_custom("trials", namespace, name)
            if trial is None or trials.is_finished(trial):
                break
            status = stopped_with_experiment(trial, message)
            try:
                kube.patch_status(
                    "trials", namespace, name, status, trial["metadata"]["resourceVersion"]
                )
            except ApiException as exc:
                if exc.status == 409:
                    continue
                raise
            stopped.add(name)
            trials.announce(trials.Finished(trial, status))
            break
    return stopped


def reconcile(
    namespace: str,
    name: str,
    settings: OperatorSettings,
    studies: StudyCache = STUDIES,
    cache: TrialCache = TRIALS,
    tallies: Tallies = TALLIES,
) -> aggregate.Plan | None:
    """One pass over one Experiment; None when it is gone or its spec is invalid."""
    with _lock(f"{namespace}/{name}"), metrics.RECONCILE_SECONDS.labels("experiment").time():
        experiment = kube.get_custom("experiments", namespace, name)
        if experiment is None or experiment["metadata"].get("deletionTimestamp"):
            return None
        uid = experiment["metadata"]["uid"]
        now = now_utc()
        try:
            spec = validate_experiment(
                name, experiment.get("spec") or {}, settings.trial_service_accounts
            )
        except SpecError as exc:
            if (experiment.get("status") or {}).get("reason") != "InvalidSpec":
                kube.post_event(experiment, "InvalidSpec", str(exc), warning=True)
            _write_status(experiment, aggregate.invalid_status(experiment, str(exc), now))
            return None

        existing = cache.trials(namespace, name, uid, lambda: kube.list_trials(namespace, name))
        search, built = studies.get(uid, spec, study_name(experiment))
        # Only what the study has not been told yet (finished Trials told before are
        # skipped by ``observe`` anyway): no record per Trial per reconcile.
        told = search.observe(
            TrialRecord.from_trial(t, spec.goals)
            for t in existing
            if trial_number(t) not in search.told
        )
        if built:
            log.info("%s/%s: study rebuilt from %d trials", namespace, name, len(existing))
        elif told:
            log.info("%s/%s: told trials %s", namespace, name, told)
        grid = search_space_size(spec)
        tally = tallies.get(uid, spec)
        plan = aggregate.plan(experiment, spec, existing, now, grid, tally)
        if plan.create:
            created = _create_trials(experiment, spec, plan, studies, settings)
            if created < len(plan.create):  # a Trial the cache did not know: LIST again
                existing = cache.trials(
                    namespace, name, uid, lambda: kube.list_trials(namespace, name), refresh=True
                )
                plan = aggregate.plan(experiment, spec, existing, now, grid, tally)
                plan = aggregate.Plan(plan.phase, plan.reason, plan.message, [], plan.status)
        stopping = completion.to_stop(spec, plan.terminal, existing)
        if stopping:
            stopped = _stop_trials(namespace, stopping, completion.stop_message(plan.reason))
            existing = [completion.as_stopped(t) if _name(t) in stopped else t for t in existing]
            plan = aggregate.plan(experiment, spec, existing, now, grid, tally)
        _write_status(
            experiment, validation_digest.with_summary(plan.status, experiment, tally.validation)
        )
        _announce_end(experiment, plan)
        metrics.set_trial_counts(namespace, name, plan.status["trials"])
        _retain(experiment, plan, spec, existing, settings)
        return plan


def _retain(
    experiment: dict[str, Any],
    plan: aggregate.Plan,
    spec: ExperimentSpec,
    existing: list[dict[str, Any]],
    settings: OperatorSettings,
) -> None:
    """spec.retention, with the status just written (its best Trial is always kept); a
    failure here never holds up the search: the next reconcile tries again."""
    if spec.retention is None or spec.retention.keepBest is None:
        return
    try:
        cleanup.retain({**experiment, "status": plan.status}, spec, existing, settings)
    except ApiException as exc:
        metrics.ERRORS.labels("cleanup").inc()
        log.warning("retention of %s left for later: %s", experiment["metadata"]["name"], exc)


def experiment_uid(trial: Any) -> str | None:
    """The uid of the Experiment that controls ``trial``."""
    for ref in trial["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "Experiment" and ref.get("controller"):
            return str(ref.get("uid"))
    return None
