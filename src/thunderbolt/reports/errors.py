"""Rejections with their HTTP status, raised by the pure layers and mapped once by the server."""

from __future__ import annotations


class Rejected(Exception):
    """A report that must change nothing. ``code`` is stable and documented in docs/reports.md."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class InvalidJson(Rejected):
    """The body is not JSON."""

    status = 400
    code = "invalid_json"


class Unauthenticated(Rejected):
    """No or malformed bearer token."""

    status = 401
    code = "unauthenticated"


class Forbidden(Rejected):
    """The token is not this Trial's."""

    status = 403
    code = "forbidden"


class NotFound(Rejected):
    """No such Trial (or path)."""

    status = 404
    code = "not_found"


class TrialFinished(Rejected):
    """The Trial already ended; its record is final."""

    status = 409
    code = "trial_finished"


class StepBackwards(Rejected):
    """An epoch older than the latest one, not on record."""

    status = 409
    code = "step_backwards"


class StepConflict(Rejected):
    """The step is on record with a different value."""

    status = 409
    code = "step_conflict"


class TooLarge(Rejected):
    """Body over MAX_BODY_BYTES."""

    status = 413
    code = "too_large"


class UnsupportedMediaType(Rejected):
    """Not application/json."""

    status = 415
    code = "unsupported_media_type"


class InvalidReport(Rejected):
    """JSON, but not a valid report (schema, NaN, kind...)."""

    status = 422
    code = "invalid_report"


class RateLimited(Rejected):
    """This Trial's token bucket is empty."""

    status = 429
    code = "rate_limited"


class Unavailable(Rejected):
    """The API server could not be reached; retry."""

    status = 503
    code = "unavailable"
