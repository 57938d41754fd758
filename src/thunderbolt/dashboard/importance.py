"""Parameter importance of an Experiment, from its Trials, by Optuna's own evaluators.

The Trials are turned into Optuna trials with the same rules as the search
(``optuna_bridge.TrialRecord``) and the same distributions (``operator.search``), so the
importance describes the study the operator ran. fANOVA needs scikit-learn; without it
(the operator image has none) PED-ANOVA, which needs nothing more, answers instead.
"""

from __future__ import annotations

import warnings
from typing import Any

MIN_TRIALS = 4  # fewer completed trials than this tell nothing about importance


def param_importance(experiment: dict[str, Any], trials: list[dict[str, Any]]) -> dict[str, Any]:
    """{"evaluator": name, "importances": [{"param", "importance"}], "note"}."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from thunderbolt.api.experiment import Parameter
    from thunderbolt.operator.search import distribution
    from thunderbolt.optuna_bridge import TrialRecord

    spec = experiment.get("spec") or {}
    dists = {}
    for p in spec.get("parameters") or []:
        try:
            dists[p["name"]] = distribution(Parameter.model_validate(p))
        except (ValueError, KeyError, TypeError, AssertionError):
            continue
    direction = (spec.get("objective") or {}).get("direction", "maximize")
    frozen = []
    for obj in trials:
        record = TrialRecord.from_trial(obj)
        if record.state != TrialState.COMPLETE:
            continue
        params = {k: v for k, v in record.parameters.items() if k in dists}
        if set(params) != set(dists):
            continue
        try:
            frozen.append(
                create_trial(
                    params=params,
                    distributions={k: dists[k] for k in params},
                    value=record.objective,
                    state=TrialState.COMPLETE,
                )
            )
        except ValueError:
            continue  # a value outside its declared range (the spec changed since)
    varying = [k for k, d in dists.items() if not d.single()]
    if len(frozen) < MIN_TRIALS or not varying:
        return {
            "evaluator": None,
            "importances": [],
            "note": f"needs {MIN_TRIALS} succeeded trials and a varying parameter",
        }
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction)
    study.add_trials(frozen)
    evaluator: Any
    try:
        import sklearn  # noqa: F401

        # Optuna's defaults (64 trees, depth 64) took 32 s for 1000 trials on 2 CPUs; 16
        # trees of depth 8 take ~1.4 s and rank the parameters the same (bench/dashboard.py).
        evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=16, max_depth=8, seed=0)
        name = "fANOVA"
    except ImportError:
        evaluator, name = optuna.importance.PedAnovaImportanceEvaluator(), "PED-ANOVA"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = optuna.importance.get_param_importances(
            study, evaluator=evaluator, params=varying, normalize=True
        )
    return {
        "evaluator": name,
        "importances": [{"param": k, "importance": float(v)} for k, v in values.items()],
        "note": f"{len(frozen)} succeeded trials",
    }
