"""What a job id may look like, wherever it comes from (a server's answer, a receipt, a param).

A job id goes into URLs and, in some operations, file names; a server or a tampered receipt
that sends ``../x``, an HTML page or a newline must be refused before it is used. Every
service's id (CGI's 20 hex characters, OpenCRAVAT's ``261121-230345``, UUIDs, OpenCGA's
dotted names) is a short token of letters, digits, ``-``, ``_`` and ``.``, starting with a
letter or digit, with no ``..``. schemas/receipt.yaml carries the same pattern.
"""

from __future__ import annotations

import re

JOB_ID_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)
# another id a server hands out to go into a URL (CAVATICA's upload ids are URL-safe base64,
# which may start with '-' or '_'): one path segment, never '.' or '..'
_URL_ID = re.compile(r"^(?!.*\.\.)[A-Za-z0-9_-][A-Za-z0-9_.-]{0,255}$")


def is_job_id(value) -> bool:
    # fullmatch: `$` alone would let a trailing newline through
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None


def shown(value, limit: int = 60) -> str:
    """A value as an error message quotes it: repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def server_job_id(value, *, service: str, where: str, what: str = "a job id") -> str:
    """A job id a server sent, or UnexpectedAnswer; for ``what`` other id (an upload's, a
    file's), any one URL path segment of letters, digits, '-', '_' and '.', with no '..'."""
    from gensvc.errors import UnexpectedAnswer

    valid = is_job_id(value) if what == "a job id" else isinstance(value, str) and _URL_ID.fullmatch(value)
    if not valid:
        raise UnexpectedAnswer(f"{service} answered {shown(value)}, which is not {what}", where=where,
                               hint=f"check GENSVC_{service.upper()}_URL; {what.split(' ', 1)[1]} is a short token of "
                                    "letters, digits, '-', '_' and '.'")
    return value
