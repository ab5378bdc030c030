"""The one exception tree of sora-widgets.

Errors are converted once, at the client boundary (``client.py``), and raised
``from`` the transport error that caused them::

    SoraError
     ├── ValidationError            bad input, caught before anything is sent or charged
     │    ├── BudgetExceededError   the submit would pass a budget (session, day, team)
     │    └── ConfirmationRequired  one call's new charges pass SORA_CONFIRM_USD
     ├── JournalError               the journal cannot be read or written (says what to do)
     ├── APIError(status_code)      the relay answered with an error
     │    ├── BadRequestError       400 (also a ValidationError: the server's words)
     │    ├── AuthenticationError   401 missing or wrong key
     │    ├── PermissionDeniedError 403 key not in the provider's VIP group / link expired
     │    ├── NotFoundError         404 unknown task id
     │    ├── RateLimitError        429, carries retry_after
     │    ├── ServerError           5xx
     │    └── MalformedResponseError  2xx whose body is not the documented JSON
     ├── APIConnectionError         transport failure (refused, reset, timeout)
     │    └── APITimeoutError
     ├── SubmissionUnknown          a submit whose outcome is unknown: maybe charged
     └── JobFailed                  the job ended ``failed`` (or was rejected)

No message ever contains the API key: messages are built from server text and
our own words only, and the client scrubs the key from server text as well.

The journal records how a job ended as an :class:`ErrorKind` (a word of ours, stable across
renames), never a class name: :func:`kind_of` names an exception's kind, :func:`error_of`
builds the exception a kind stands for (``job.wait()`` raises it), and 0.2's class names
are read as their kinds (:func:`kind_named`).
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ConfirmationRequired",
    "ErrorKind",
    "JobFailed",
    "JournalError",
    "MalformedResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "SoraError",
    "SubmissionUnknown",
    "ValidationError",
    "error_of",
    "kind_named",
    "kind_of",
]


class SoraError(Exception):
    """Base of every error raised by sora-widgets."""


class ValidationError(SoraError, ValueError):
    """The request is invalid; raised before anything is sent, so nothing is charged."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BudgetExceededError(ValidationError):
    """Submitting would take spend past the configured budget (``SORA_BUDGET_USD``)."""

    def __init__(self, message: str, *, spent_usd: float, price_usd: float, budget_usd: float,
                 scope: str = "session") -> None:
        super().__init__(message, field="budget")
        self.spent_usd = spent_usd
        self.price_usd = price_usd
        self.budget_usd = budget_usd
        self.scope = scope


class ConfirmationRequired(ValidationError):
    """The new charges of one call pass ``SORA_CONFIRM_USD``: nothing was sent.

    ``quote`` says what the call would pay; call again with ``confirm=True`` (``--yes``).
    """

    def __init__(self, message: str, *, quote: object) -> None:
        super().__init__(message, field="confirm")
        self.quote = quote


class JournalError(SoraError):
    """The journal (sqlite file or database) cannot be used; the message says what to do."""


class APIError(SoraError):
    """The relay answered with an HTTP error status."""

    def __init__(self, message: str, *, status_code: int, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code


class BadRequestError(APIError, ValidationError):
    """400: the relay rejected the request body (nothing was charged)."""

    def __init__(self, message: str, *, status_code: int = 400, code: str | None = None):
        APIError.__init__(self, message, status_code=status_code, code=code)
        self.field = None


class AuthenticationError(APIError):
    """401: no API key, or a key the relay does not know."""


class PermissionDeniedError(APIError):
    """403: the key is valid but not in the provider's VIP group (or a link expired)."""


class NotFoundError(APIError):
    """404: the relay does not know this task id (or the video link is gone)."""


class RateLimitError(APIError):
    """429: too many requests; ``retry_after`` is in seconds when the server said."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx from the relay or a gateway in front of it."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code)
        self.retry_after = retry_after


class MalformedResponseError(APIError):
    """A success status whose body is not the JSON the contract describes."""


class APIConnectionError(SoraError):
    """The relay could not be reached, or the connection broke."""


class APITimeoutError(APIConnectionError):
    """The relay did not answer in time."""


class SubmissionUnknown(SoraError):
    """A submit that may have reached the relay but whose answer was lost.

    The relay has no idempotency key and no list endpoint, so the job cannot be
    found again and the submit is never retried automatically: it may have been
    charged. ``local_id`` names the journal record kept for it.
    """

    def __init__(self, message: str, *, local_id: str | None = None) -> None:
        super().__init__(message)
        self.local_id = local_id


class JobFailed(SoraError):
    """The job ended ``failed`` (the relay's ``error.message``), or was rejected at submit."""

    def __init__(self, message: str, *, job_id: str | None = None, code: str | None = None):
        super().__init__(message)
        self.job_id = job_id
        self.code = code


class ErrorKind(str, Enum):
    """How a job ended badly, as the journal stores it."""

    UNKNOWN_OUTCOME = "unknown_outcome"      # the submit's answer was lost: maybe charged
    RELAY_FAILED = "relay_failed"            # the relay ran the job and failed it
    BAD_REQUEST = "bad_request"              # the relay rejected the submit (400) ...
    AUTHENTICATION = "authentication"        # 401
    PERMISSION_DENIED = "permission_denied"  # 403
    NOT_FOUND = "not_found"                  # 404
    RATE_LIMITED = "rate_limited"            # 429
    SERVER = "server"                        # 5xx
    MALFORMED = "malformed"                  # a 2xx that was not the documented JSON
    API = "api"                              # another HTTP error
    INVALID = "invalid"                      # could not be sent (refused locally)
    CONNECTION = "connection"                # refused each time: nothing was sent
    TIMEOUT = "timeout"
    NOT_SENT = "not_sent"                    # cancelled, or never sent: nothing charged
    ERROR = "error"                          # anything else of ours

    def __str__(self) -> str:
        return str(self.value)


#: Most specific first: the first class an exception is an instance of names its kind.
_KINDS: tuple[tuple[type[SoraError], ErrorKind], ...] = (
    (SubmissionUnknown, ErrorKind.UNKNOWN_OUTCOME),
    (JobFailed, ErrorKind.RELAY_FAILED),
    (BadRequestError, ErrorKind.BAD_REQUEST),
    (AuthenticationError, ErrorKind.AUTHENTICATION),
    (PermissionDeniedError, ErrorKind.PERMISSION_DENIED),
    (NotFoundError, ErrorKind.NOT_FOUND),
    (RateLimitError, ErrorKind.RATE_LIMITED),
    (ServerError, ErrorKind.SERVER),
    (MalformedResponseError, ErrorKind.MALFORMED),
    (APIError, ErrorKind.API),
    (APITimeoutError, ErrorKind.TIMEOUT),
    (APIConnectionError, ErrorKind.CONNECTION),
    (ValidationError, ErrorKind.INVALID),
)
#: The class each kind raises again (NOT_SENT and ERROR: a plain SoraError).
_CLASSES = {kind: cls for cls, kind in _KINDS}
#: 0.2 stored class names: each one's kind (a migration reads them; anything else is ERROR).
_BY_NAME = {cls.__name__: kind for cls, kind in _KINDS} | {
    "SoraError": ErrorKind.NOT_SENT, "BudgetExceededError": ErrorKind.INVALID,
    "ConfirmationRequired": ErrorKind.INVALID, "JournalError": ErrorKind.ERROR}


def kind_of(exc: BaseException) -> ErrorKind:
    """The kind the journal records for ``exc``."""
    for cls, kind in _KINDS:
        if isinstance(exc, cls):
            return kind
    return ErrorKind.ERROR


def kind_named(word: str | None) -> ErrorKind | None:
    """The kind a stored word means: a kind, or a class name of 0.2 (None stays None)."""
    if word is None:
        return None
    try:
        return ErrorKind(word)
    except ValueError:
        return _BY_NAME.get(word, ErrorKind.ERROR)


def error_of(kind: str | None, message: str, *, code: str | None = None) -> SoraError:
    """The exception a recorded kind raises again (``job.wait()`` after a rejection)."""
    cls = _CLASSES.get(kind_named(kind) or ErrorKind.ERROR)
    status = int(code) if code and code.isdigit() else 0
    if cls is None:
        return SoraError(message)
    if issubclass(cls, APIError):
        return cls(message, status_code=status)
    if cls is SubmissionUnknown:
        return SubmissionUnknown(message)
    if cls is JobFailed:
        return JobFailed(message, code=code)
    return cls(message)
