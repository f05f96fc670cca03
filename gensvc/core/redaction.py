"""Keep secrets out of logs and messages.

Secrets are registered once when they are read; a logging filter and
``redact()`` replace them wherever they appear, including in text a server
echoes back.
"""

import logging
import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()

MASK = "***"
SECRET_HEADERS = frozenset({"authorization", "x-sbg-auth-token", "cookie", "set-cookie", "x-sbg-session-id"})
_SECRET_QUERY = re.compile(r"(?i)\b((?:access_|auth_|refresh_)?token|password|api_key|key|session_id|signature)=([^&\s]+)")


def register_secret(value: str | None) -> None:
    # very short values would blank out ordinary words
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}={MASK}", text)


def redact_headers(headers) -> dict[str, str]:
    return {k: (MASK if k.lower() in SECRET_HEADERS else redact(str(v))) for k, v in headers.items()}


class RedactingFilter(logging.Filter):
    """Rewrites every record's message with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True
