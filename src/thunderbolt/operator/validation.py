"""Check an Experiment before anything is created for it.

The API server's schema catches most mistakes at ``kubectl apply``; servers without CEL
(Kubernetes < 1.25) let cross-field errors such as ``low > high`` through, and names
can be too long for the Jobs they lead to. Whatever slips past ends here as one
readable message that becomes the ``Failed`` condition.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from pydantic import ValidationError

from thunderbolt.api.experiment import ExperimentSpec, TrialTemplate, parse_spec
from thunderbolt.api.meta import describe_errors

# Job names become the pod label job-name (<= 63 chars); trial names add "-NNN".
MAX_EXPERIMENT_NAME = 63 - len("-000")


class SpecError(ValueError):
    """An Experiment that cannot run as written; the message names the problem."""


def format_errors(exc: ValidationError) -> str:
    return describe_errors(exc, root="spec")


def check_service_account(template: TrialTemplate, allowed: tuple[str, ...]) -> None:
    """A trialTemplate may name only the ServiceAccounts the operator's settings allow, so
    an Experiment author cannot run code with a more powerful account's token."""
    name = template.serviceAccountName
    if name is None or "*" in allowed or name in allowed:
        return
    raise SpecError(
        f"spec.trialTemplate.serviceAccountName: {name!r} is not allowed by the operator "
        "(setting THUNDERBOLT_TRIAL_SERVICE_ACCOUNTS / chart value "
        "trials.allowedServiceAccounts); leave it out to run as the namespace default"
    )


def validate_experiment(
    name: str, spec: dict[str, Any], allowed_service_accounts: tuple[str, ...] = ()
) -> ExperimentSpec:
    """Parse and check a raw Experiment; raises SpecError with a readable message."""
    if len(name) > MAX_EXPERIMENT_NAME:
        raise SpecError(
            f"metadata.name: {len(name)} characters; at most {MAX_EXPERIMENT_NAME} "
            "so that trial and job names fit in 63"
        )
    try:
        parsed = parse_spec(spec)
    except ValidationError as exc:
        raise SpecError(format_errors(exc)) from None
    check_service_account(parsed.trialTemplate, allowed_service_accounts)
    if parsed.algorithm.name == "gp" and importlib.util.find_spec("torch") is None:
        raise SpecError(
            "spec.algorithm: the gp sampler needs PyTorch in the operator "
            "(build the operator image with TORCH_VERSION); use tpe, random, grid or cmaes"
        )
    try:
        from thunderbolt.operator.search import make_sampler

        make_sampler(parsed, seed=parsed.algorithm.seed)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"spec.algorithm: {exc}") from None
    return parsed
