"""The exceptions a user can meet, each with its exit code.

Every error says what failed, where (service and URL, or file), and what to do.
The runner prints ``str(error)`` as one line and exits with ``error.exit_code``.
"""


class GensvcError(Exception):
    """Base of every expected failure.

    ``what`` failed, ``where`` (a URL or a file), and a ``hint`` of what to do. An error
    made from a service's answer (``gensvc.core.errormap``) also carries, as requests'
    exceptions carry their response: the ``service``, the HTTP ``status``, the ``url``
    asked (no query) and the ``message`` the service gave; None for any other error.
    """

    exit_code = 1

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None,
                 service: str | None = None, status: int | None = None, url: str | None = None,
                 message: str | None = None):
        self.what = what
        self.where = where if where is not None else url
        self.hint = hint
        self.service = service
        self.status = status
        self.url = url
        self.message = message
        super().__init__(what)

    def __str__(self) -> str:
        text = self.what
        if self.where:
            text += f" [{self.where}]"
        if self.hint:
            text += f"; {self.hint}"
        # one line, always: server messages may carry newlines
        return " ".join(text.split())


class UsageError(GensvcError):
    """A bad call, input or config; nothing was sent."""

    exit_code = 2


class RequestRejected(UsageError):
    """The service refused the request as invalid (HTTP 400/404/422)."""


class AuthError(GensvcError):
    """Authentication or authorisation failed."""

    exit_code = 3


class JobFailed(GensvcError):
    """The remote job ended in a failed state."""

    exit_code = 4


class ServiceUnavailable(GensvcError):
    """The service stayed unavailable through every retry, or the deadline passed."""

    exit_code = 5


class UnexpectedAnswer(GensvcError):
    """The service answered what it never sends: not JSON where JSON belongs, a wrong
    shape, a job id that is not one. Not waited out like an outage: such an answer
    usually means the URL points at something else (a web page, a proxy)."""

    exit_code = 5
