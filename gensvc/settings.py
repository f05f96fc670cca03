"""Settings and secrets for one service.

Settings, later winning: built-in defaults < gensvc.yaml (``GENSVC_CONFIG`` or
./gensvc.yaml) < environment ``GENSVC_<SERVICE>_<KEY>`` < params.
Secrets, first found wins: a ``token_file`` named in params, the environment,
then the credentials file (refused unless mode 0600). Never from params.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gensvc.core.ratelimit import RateLimit
from gensvc.core.redaction import register_secret
from gensvc.errors import UsageError
from gensvc.schema import parse_yaml

SERVICES = ("bravo", "opencravat", "cgi", "cavatica", "opencga")

DEFAULT_URLS = {
    "bravo": "https://bravo.sph.umich.edu/freeze5/hg38/api/v1/",
    "opencravat": "https://run.opencravat.org/",
    "cgi": "https://www.cancergenomeinterpreter.org/api/v1/",
    "cavatica": "https://cavatica-api.sbgenomics.com/v2/",
    "opencga": "http://localhost:8080/opencga/",
}
DEFAULT_RATE_LIMITS = {"bravo": "180/900", "cavatica": "1000/300"}

# setting -> (parser, default); every one may be set at every level
SETTINGS = {
    "url": (str, None),
    "rate_limit": (str, None),
    "connect_timeout": (float, 10.0),
    "read_timeout": (float, 120.0),
    "max_attempts": (int, 6),
    "deadline": (float, 1800.0),
    "backoff": (float, 1.0),
    "backoff_max": (float, 120.0),
    # what one answer may hold: a JSON body read whole (a service's pages are far smaller),
    # and a download with no size of its own to check (a report); past them it never ends
    "max_answer_bytes": (int, 128 << 20),
    "max_download_bytes": (int, 16 << 30),
}

# service -> names of its secrets; the first is what a token_file holds
SECRETS = {
    "bravo": ("token",),
    "opencravat": ("password", "user"),
    "cgi": ("token", "email"),
    "cavatica": ("token",),
    "opencga": ("token", "user", "password", "organization"),  # organization: OpenCGA 5's, for a login
}
# credentials that name someone rather than unlock anything: kept, but not masked in logs
NOT_SECRET = {("opencravat", "user"), ("opencga", "user"), ("opencga", "organization")}
# the services' own variables, honoured like ours
FOREIGN_ENV = {("cavatica", "token"): "SB_AUTH_TOKEN", ("cavatica", "url"): "SB_API_ENDPOINT"}


@dataclass
class Credentials:
    service: str
    values: dict[str, str] = field(default_factory=dict)
    source: str | None = None

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def __repr__(self) -> str:  # never show the values
        return f"Credentials({self.service}, {sorted(self.values)}, from {self.source})"


@dataclass
class ServiceSettings:
    service: str
    url: str
    rate_limit: RateLimit | None
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    deadline: float
    backoff: float
    backoff_max: float
    max_answer_bytes: int
    max_download_bytes: int
    state_dir: Path  # the submission journal
    limiter_dir: Path  # the rate limiter's shared state
    credentials: Credentials

    def env_name(self, key: str) -> str:
        return f"GENSVC_{self.service.upper()}_{key.upper()}"


def state_dir() -> Path:
    """Where the submission journal lives: with the workflow (its working directory)."""
    return Path(os.environ.get("GENSVC_STATE_DIR") or ".gensvc")


def limiter_dir() -> Path:
    """Where the rate limiter's state lives: one per user and host, whatever the working
    directory, so that runs started from two directories share one budget.

    ``GENSVC_STATE_DIR`` overrides it (with the journal); otherwise the XDG state
    directory, ``$XDG_STATE_HOME/gensvc`` or ``~/.local/state/gensvc``.
    """
    if os.environ.get("GENSVC_STATE_DIR"):
        return Path(os.environ["GENSVC_STATE_DIR"])
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore a relative path
        return Path(xdg) / "gensvc"
    return Path.home() / ".local" / "state" / "gensvc"


def resolve(service: str, params: dict) -> tuple[ServiceSettings, dict]:
    """Settings for ``service``; returns them and the params left for the operation."""
    params = dict(params)
    config = _config_file().get(service) or {}
    chosen: dict = {}
    for key, (parse, default) in SETTINGS.items():
        value = default
        if key == "url":
            value = DEFAULT_URLS[service]
        elif key == "rate_limit":
            value = DEFAULT_RATE_LIMITS.get(service)
        for layer in (config.get(key), _env_setting(service, key), params.pop(key, None)):
            if layer is not None:
                value = layer
        if value is not None and key != "rate_limit":
            try:
                value = parse(value)
            except (TypeError, ValueError):
                raise UsageError(f"setting {key}={value!r} for {service} is not a {parse.__name__}") from None
        chosen[key] = value
    if chosen["max_attempts"] < 1:
        raise UsageError(f"max_attempts for {service} must be at least 1")
    chosen["url"] = chosen["url"].rstrip("/") + "/"
    token_file = params.pop("token_file", None)
    settings = ServiceSettings(
        service=service,
        rate_limit=RateLimit.parse(chosen.pop("rate_limit")),
        state_dir=state_dir(),
        limiter_dir=limiter_dir(),
        credentials=read_credentials(service, token_file),
        **chosen,
    )
    return settings, params


def _env_setting(service: str, key: str) -> str | None:
    value = os.environ.get(f"GENSVC_{service.upper()}_{key.upper()}")
    if value is None and (service, key) in FOREIGN_ENV:
        value = os.environ.get(FOREIGN_ENV[(service, key)])
    return value or None


def _config_file() -> dict:
    path = os.environ.get("GENSVC_CONFIG")
    if not path:
        if not Path("gensvc.yaml").exists():
            return {}
        path = "gensvc.yaml"
    try:
        data = parse_yaml(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist", hint="fix GENSVC_CONFIG") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must map service names to settings")
    return data


def read_credentials(service: str, token_file: str | None = None) -> Credentials:
    names = SECRETS[service]
    creds = Credentials(service)
    if token_file:
        creds.values[names[0]] = _read_token_file(Path(token_file))
        creds.source = f"token_file {token_file}"
    env = {n: os.environ.get(f"GENSVC_{service.upper()}_{n.upper()}") for n in names}
    for (svc, name), var in FOREIGN_ENV.items():
        if svc == service and name in names and not env.get(name):
            env[name] = os.environ.get(var)
    for name, value in env.items():
        if value and name not in creds.values:
            creds.values[name] = value
            creds.source = creds.source or "environment"
    file_values = _credentials_file().get(service) or {}
    for name in names:
        if name not in creds.values and file_values.get(name):
            creds.values[name] = str(file_values[name])
            creds.source = creds.source or "credentials file"
    for name, value in creds.values.items():
        if (service, name) not in NOT_SECRET:
            register_secret(value)
    return creds


def _read_token_file(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read token_file {path}: {exc.strerror}", hint="check the path in params") from None
    if not token:
        raise UsageError(f"token_file {path} is empty")
    return token


def credentials_path() -> Path:
    return Path(os.environ.get("GENSVC_CREDENTIALS") or Path.home() / ".config/gensvc/credentials.yaml")


def _credentials_file() -> dict:
    path = credentials_path()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if os.environ.get("GENSVC_CREDENTIALS"):
            raise UsageError(f"credentials file {path} does not exist", hint="fix GENSVC_CREDENTIALS") from None
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(
            f"credentials file {path} can be read by group or others (mode {stat.S_IMODE(mode):o})",
            hint=f"run: chmod 600 {path}",
        )
    try:
        data = parse_yaml(path.read_text()) or {}
    except yaml.YAMLError:
        # the parser's message may quote a secret
        raise UsageError(f"credentials file {path} is not valid YAML") from None
    if not isinstance(data, dict):
        raise UsageError(f"credentials file {path} must map service names to their secrets")
    return data
