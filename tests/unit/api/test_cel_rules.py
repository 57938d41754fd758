"""Every CEL rule in the generated CRDs, evaluated by a real CEL interpreter.

Why: the local API server (1.20) cannot run `x-kubernetes-validations`, so without this a
rule with a typo, or one that rejects good objects, would first fail on a user's 1.25+
cluster. Each rule needs passing and failing objects here; a new rule without cases fails
`test_every_rule_has_cases`. The pydantic models must agree with the rule, so the operator
rejects on 1.20 what CEL rejects on newer servers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import celpy
import pydantic
import pytest

from thunderbolt.api.common import LABEL_KEY_PATTERN
from thunderbolt.api.crdgen import KINDS, crd
from thunderbolt.api.experiment import Parameter, TrialTemplate
from thunderbolt.api.modeldeployment import CANARY_STEPS_RULE, GRPC_PORT_RULE, Canary, Serving

Validate = Callable[[Any], object]


def _node_selector(selector: dict[str, str]) -> object:
    template = {"image": "trainer:1", "dataset": {"uri": "builtin://iris"}}
    return TrialTemplate.model_validate({**template, "nodeSelector": selector})


def _steps(*weights: int) -> dict[str, Any]:
    return {"steps": [{"weight": w} for w in weights]}


# rule text -> (the pydantic check of the same object, [(object, accepted), ...])
CASES: dict[str, tuple[Validate, list[tuple[Any, bool]]]] = {
    "self.type == 'categorical' || self.low <= self.high": (
        Parameter.model_validate,
        [
            ({"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1}, True),
            ({"name": "lr", "type": "float", "low": 0.1, "high": 0.1}, True),
            ({"name": "units", "type": "int", "low": 8, "high": 256}, True),
            ({"name": "act", "type": "categorical", "choices": ["relu", "tanh"]}, True),
            ({"name": "lr", "type": "float", "low": 0.5, "high": 0.1}, False),
            ({"name": "units", "type": "int", "low": 64, "high": 8}, False),
            ({"name": "x", "type": "float", "low": -1.0, "high": -2.0}, False),
        ],
    ),
    f"self.all(k, k.matches('{LABEL_KEY_PATTERN}'))": (
        _node_selector,
        [
            ({}, True),
            ({"disktype": "ssd", "kubernetes.io/arch": "amd64"}, True),
            ({"node.example.com/gpu-class": "a100", "zone_a.b-c": ""}, True),
            ({"bad key!": "x"}, False),
            ({"-leading": "x"}, False),
            ({"Upper.Prefix/name": "x"}, False),
            ({"a" * 64: "x"}, False),
        ],
    ),
    CANARY_STEPS_RULE: (
        Canary.model_validate,
        [
            (_steps(10), True),
            (_steps(10, 50, 100), True),
            (_steps(50, 10), False),
            (_steps(20, 20, 50), False),
            (_steps(10, 60, 40), False),
        ],
    ),
    GRPC_PORT_RULE: (
        Serving.model_validate,
        [
            ({}, True),
            ({"grpcPort": 0}, True),
            ({"grpcPort": 9000, "port": 9001}, True),
            ({"port": 9000}, True),
            ({"grpcPort": 8080}, False),
            ({"grpcPort": 9000, "port": 9000}, False),
            ({"grpcPort": 80}, False),
            ({"port": 8081}, False),
        ],
    ),
}


def _is_sorted(values: Any) -> Any:
    """Kubernetes' CEL list library isSorted(), which plain CEL lacks."""
    return celpy.celtypes.BoolType(all(a <= b for a, b in zip(values, values[1:], strict=False)))


def _rules(node: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """(path, rule, message) of every x-kubernetes-validations entry under node."""
    if isinstance(node, dict):
        for entry in node.get("x-kubernetes-validations", []):
            yield path, entry["rule"], entry.get("message", "")
        for key, value in node.items():
            if key == "properties":
                for name, sub in value.items():
                    yield from _rules(sub, f"{path}.{name}")
            elif key in ("items", "additionalProperties"):
                yield from _rules(value, f"{path}[]")


def _all_rules() -> list[tuple[str, str, str]]:
    found = []
    for kind in KINDS:
        for version in crd(kind)["spec"]["versions"]:
            found += _rules(version["schema"]["openAPIV3Schema"], kind.kind)
    return found


def _evaluate(rule: str, obj: dict[str, Any]) -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(rule), functions={"isSorted": _is_sorted})
    return bool(program.evaluate({"self": celpy.json_to_cel(obj)}))


def test_the_crds_carry_cel_rules() -> None:
    assert _all_rules(), "no x-kubernetes-validations found: the walk or the generator broke"


@pytest.mark.parametrize("path,rule,message", _all_rules(), ids=lambda v: str(v)[:60])
def test_every_rule_has_cases(path: str, rule: str, message: str) -> None:
    assert rule in CASES, f"{path}: add passing and failing objects for CEL rule {rule!r}"
    outcomes = {accepted for _obj, accepted in CASES[rule][1]}
    assert outcomes == {True, False}, f"{path}: {rule!r} needs both passing and failing cases"
    assert message, f"{path}: CEL rule {rule!r} has no message for users"


@pytest.mark.parametrize(
    "rule,obj,accepted",
    [(rule, obj, ok) for rule, (_model, cases) in CASES.items() for obj, ok in cases],
    ids=lambda v: str(v)[:50],
)
def test_cel_and_pydantic_agree(rule: str, obj: Any, accepted: bool) -> None:
    validate = CASES[rule][0]
    assert _evaluate(rule, obj) is accepted
    try:
        validate(obj)
        pydantic_accepts = True
    except pydantic.ValidationError:
        pydantic_accepts = False
    assert pydantic_accepts is accepted
