"""Which API-server answers are final, and what a user is told about them."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from thunderbolt.api.refusals import is_unfixable, refusal_message


def _error(status: int, body: str | None, reason: str = "Unprocessable Entity") -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = body
    return exc


@pytest.mark.parametrize(("status", "final"), [(400, True), (422, True), (403, False),
                                               (409, False), (500, False), (503, False)])  # fmt: skip
def test_only_invalid_objects_are_final(status: int, final: bool) -> None:
    assert is_unfixable(_error(status, None)) is final
    assert not is_unfixable(ValueError("not from the API server"))


def test_the_servers_own_message_is_used() -> None:
    body = json.dumps(
        {"kind": "Status", "message": 'Job.batch "x" is invalid: metadata.labels: Invalid value'}
    )
    assert (
        refusal_message(_error(422, body))
        == 'Job.batch "x" is invalid: metadata.labels: Invalid value'
    )


@pytest.mark.parametrize("body", [None, "", "not json", "[1, 2]", '{"kind": "Status"}'])
def test_without_a_status_body_the_code_and_reason_are_used(body: str | None) -> None:
    assert refusal_message(_error(422, body)) == "422 Unprocessable Entity"
