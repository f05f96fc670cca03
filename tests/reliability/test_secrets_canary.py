"""Canary secrets through the whole reference workflow at DEBUG: none of them, in any form, lands anywhere.

Each service's emulator accepts only a canary secret of its own; the workflow runs with every service
the test config turns on, once with the secrets in the environment and once in a 0600 credentials
file. Afterwards every file the run could write (working directory with .snakemake/, logs, results and
provenance; the state dir; the XDG state dir) and the run's stdout/stderr are searched for each secret,
its base64 and URL-quoted forms, and the secrets derived from them on the wire: OpenCRAVAT's Basic
credentials and session cookies, OpenCGA's issued JWTs.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import yaml

from helpers import REPO

pytestmark = [pytest.mark.slow, pytest.mark.reliability("leaks")]

# distinct per service; '+', '/', '=' and '%' make the quoted and base64 forms differ from the raw one
BRAVO_TOKEN = "cnry-bravo-Zq8+w/K3=a7%1"
CGI_EMAIL, CGI_TOKEN = "canary@example.org", "cnry-cgi-Xp2+r/T9=b4%2"
OPENCRAVAT_USER, OPENCRAVAT_PASSWORD = "canaryoc", "cnry-oc-Lm5+q/W1=c8%3"
OPENCGA_USER, OPENCGA_PASSWORD = "canarycga", "cnry-cga-Hd7+s/V6=d2%4"
CAVATICA_TOKEN = "cnry-cav-Rt3+u/Y5=e9%5"
ENVIRONMENT = {"GENSVC_BRAVO_TOKEN": BRAVO_TOKEN, "GENSVC_CGI_EMAIL": CGI_EMAIL, "GENSVC_CGI_TOKEN": CGI_TOKEN,
               "GENSVC_OPENCRAVAT_USER": OPENCRAVAT_USER, "GENSVC_OPENCRAVAT_PASSWORD": OPENCRAVAT_PASSWORD,
               "GENSVC_OPENCGA_USER": OPENCGA_USER, "GENSVC_OPENCGA_PASSWORD": OPENCGA_PASSWORD,
               "GENSVC_CAVATICA_TOKEN": CAVATICA_TOKEN}
CREDENTIALS = {"bravo": {"token": BRAVO_TOKEN}, "cgi": {"email": CGI_EMAIL, "token": CGI_TOKEN},
               "opencravat": {"user": OPENCRAVAT_USER, "password": OPENCRAVAT_PASSWORD},
               "opencga": {"user": OPENCGA_USER, "password": OPENCGA_PASSWORD},
               "cavatica": {"token": CAVATICA_TOKEN}}
EMULATED = {"bravo": ({}, [BRAVO_TOKEN]), "opencravat": ({"time_scale": 0.5}, [f"{OPENCRAVAT_USER}:{OPENCRAVAT_PASSWORD}"]),
            "cgi": ({"time_scale": 0.05}, [CGI_TOKEN]), "opencga": ({"time_scale": 0.02}, [f"{OPENCGA_USER}:{OPENCGA_PASSWORD}"]),
            "cavatica": ({"time_scale": 0.02}, [CAVATICA_TOKEN])}
# an OpenCGA JWT: its fixed header, a body and a signature (any one issued is a secret)
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}")


def forms(secret: str) -> set[str]:
    """The secret as it could be written: raw, URL-quoted, base64 (standard and URL-safe, padded or not)."""
    raw = secret.encode()
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1],
            *encoded, *(e.rstrip("=") for e in encoded)}


def canaries() -> dict[str, str]:
    """form -> what it is, for the given secrets and OpenCRAVAT's Basic credentials."""
    found = {}
    for name, secret in (("bravo token", BRAVO_TOKEN), ("cgi token", CGI_TOKEN),
                         ("opencravat password", OPENCRAVAT_PASSWORD), ("opencga password", OPENCGA_PASSWORD),
                         ("cavatica token", CAVATICA_TOKEN),
                         ("opencravat basic credentials", f"{OPENCRAVAT_USER}:{OPENCRAVAT_PASSWORD}"),
                         ("cgi authorization", f"{CGI_EMAIL} {CGI_TOKEN}")):
        found.update({form: name for form in forms(secret)})
    return found


def sessions(emulator) -> list[str]:
    """The OpenCRAVAT emulator's session cookies handed out so far."""
    return list(emulator.app.service_app.extensions["opencravat"].sessions)


def leaks(places: list[Path], texts: dict[str, str], secrets: dict[str, str]) -> list[str]:
    """'where: what' for every secret form found in a file under places or in a text."""
    blobs = dict(texts)
    for place in places:
        for path in [place] if place.is_file() else place.rglob("*"):
            if path.is_file() and not path.is_symlink():
                blobs[str(path)] = path.read_bytes()
    found = []
    for where, blob in blobs.items():
        data = blob if isinstance(blob, bytes) else blob.encode()
        found += [f"{where}: {name}" for form, name in secrets.items() if form.encode() in data]
        found += [f"{where}: an OpenCGA JWT" for _ in JWT.finditer(data)][:1]
    return found


@pytest.fixture(scope="module")
def emulators():
    from gensvc.emulators.server import start_emulator

    with ExitStack() as stack:
        yield {s: stack.enter_context(start_emulator(s, tokens=tokens, **settings))
               for s, (settings, tokens) in EMULATED.items()}


def run_workflow(tmp_path: Path, emulators: dict, secrets_in: str) -> tuple[subprocess.CompletedProcess, list[Path]]:
    """The reference workflow at DEBUG in tmp_path/work; the places it may write."""
    work, state, xdg, private = (tmp_path / n for n in ("work", "state", "xdg-state", "private"))
    for directory in (work, xdg, private):
        directory.mkdir()
    config = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())
    for service in config["services"].values():
        service["enabled"] = True
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    (work / ".test").mkdir()
    (work / ".test" / "data").symlink_to(REPO / ".test" / "data")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GENSVC_", "SB_", "XDG_"))}
    env = {**clean, "HOME": str(work), "XDG_STATE_HOME": str(xdg), "GENSVC_LOG_LEVEL": "DEBUG",
           **{f"GENSVC_{s.upper()}_URL": e.url for s, e in emulators.items()}}
    if secrets_in == "environment":
        env.update(ENVIRONMENT)  # and no GENSVC_STATE_DIR: the limiter's state goes to XDG_STATE_HOME
    else:
        credentials = private / "credentials.yaml"  # outside every place searched: it holds the secrets
        credentials.touch(mode=0o600)
        credentials.write_text(yaml.safe_dump(CREDENTIALS))
        env.update(GENSVC_CREDENTIALS=str(credentials), GENSVC_STATE_DIR=str(state))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
               "--configfile", str(work / "config.yaml"), "--directory", str(work), "--cores", "2",
               "--resources", *(f"{s}_api=1" for s in EMULATED)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    report = subprocess.run([*command, "--report", str(work / "results" / "report.html")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-4000:]
    done.stdout += report.stdout
    done.stderr += report.stderr
    return done, [work, state, xdg]


@pytest.mark.parametrize("secrets_in", ["environment", "credentials-file"])
def test_no_canary_secret_in_any_form_is_written_anywhere_by_a_debug_run(tmp_path, emulators, secrets_in):
    done, places = run_workflow(tmp_path, emulators, secrets_in)
    work = places[0]
    # the run did what it should, so there was something to leak: every service was called and logged at DEBUG
    for service in EMULATED:
        assert emulators[service].stats()["requests"] > 0, service
        assert any("DEBUG" in p.read_text() for p in (work / "logs" / service).rglob("*.log")), service
    assert (work / "results" / "tumour.annotated.vcf.gz").is_file() and (work / ".snakemake" / "metadata").is_dir()
    assert sessions(emulators["opencravat"]), "OpenCRAVAT never logged in"
    limiter_state = places[2] if secrets_in == "environment" else places[1]
    assert any(p.is_file() for p in limiter_state.rglob("*")), limiter_state  # searched where it was written
    secrets = canaries()
    for cookie in sessions(emulators["opencravat"]):
        secrets.update({form: "opencravat session cookie" for form in forms(cookie)})
    found = leaks(places, {"stdout": done.stdout, "stderr": done.stderr}, secrets)
    assert found == [], "\n".join(found)
