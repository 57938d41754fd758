"""When the API server refuses an object as invalid, retrying the same request is futile.

Why here: the Trial runner and the ModelDeployment controller both turn such a refusal
into a final status with a reason instead of an endless retry, and must agree on which
answers are final. Duck-typed on the client's ApiException (``status``, ``reason``,
``body``) so that this bottom layer imports no Kubernetes client.
"""

from __future__ import annotations

import json
from typing import Any

# 400 Bad Request, 422 Unprocessable Entity: the object itself is wrong. Others (403 from
# a quota, 409, 5xx, timeouts) can pass on a later try.
UNFIXABLE_STATUSES = frozenset({400, 422})


def is_unfixable(exc: BaseException) -> bool:
    return getattr(exc, "status", None) in UNFIXABLE_STATUSES


def refusal_message(exc: Any) -> str:
    """The API server's own explanation (a Status object's message), else code and reason."""
    try:
        body = json.loads(getattr(exc, "body", None) or "")
    except (TypeError, ValueError):
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or f"{getattr(exc, 'status', '?')} {getattr(exc, 'reason', '')}".strip())
