"""``gensvc demo``: the reference workflow on .test/ against embedded emulators.

Starts every emulator the workflow needs on free loopback ports, points the
workflow at them with demo credentials, runs Snakemake, stops the emulators and
says where the results are. A development tool: it needs this checkout.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import yaml

from gensvc.schema import SCHEMA_DIR

# service -> emulator settings: CGI's minute-long jobs and OpenCRAVAT's few seconds, shortened
DEMO_SERVICES = {"bravo": {}, "opencravat": {"time_scale": 0.5}, "cgi": {"time_scale": 0.05},
                 "opencga": {"time_scale": 0.05}, "cavatica": {"time_scale": 0.05}}
# the emulators' documented default credentials, given as a credentials file (as on a cluster:
# a cluster executor copies the environment into every job, so the workflow refuses secrets there)
DEMO_CREDENTIALS = {
    "bravo": {"token": "bravo-demo-token"},
    "cgi": {"email": "demo@example.org", "token": "cgi-demo-token"},
    "opencga": {"user": "demouser", "password": "demouser"},
    "cavatica": {"token": "cavatica-demo-token"},
}
# your own credentials stay out of the demo (they would win over the demo's file)
CREDENTIAL_VARIABLES = re.compile(r"GENSVC_[A-Z]+_(TOKEN|PASSWORD|EMAIL|USER)|SB_AUTH_TOKEN")


def checkout() -> Path:
    return SCHEMA_DIR.resolve().parent


def write_credentials(state: Path) -> Path:
    """The demo's credentials file, mode 0600 from its first byte, renamed into place."""
    state.mkdir(parents=True, exist_ok=True)
    path = state / "demo-credentials.yaml"
    descriptor, temporary = tempfile.mkstemp(dir=state, prefix=".demo-credentials.")  # mkstemp makes it 0600
    with os.fdopen(descriptor, "w") as handle:
        yaml.safe_dump(DEMO_CREDENTIALS, handle)
    os.replace(temporary, path)
    return path


def parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="gensvc demo",
        usage="gensvc demo [-h] [--profile DIR] [SNAKEMAKE OPTION ...]",
        description=(
            "Run the reference workflow (workflow/Snakefile) on the samples in .test/ against local emulators of "
            f"{', '.join(DEMO_SERVICES)}, each started on a free loopback port with demo credentials. Writes "
            "results/<sample>.annotated.vcf.gz (+ .tbi, .tsv) and results/report.html, stops the emulators and "
            "prints where the results are. Needs a gensvc checkout; the demo's values are synthetic."
        ),
        epilog=(
            "Any other option goes to Snakemake, e.g. `gensvc demo -n` (dry run), `gensvc demo --forceall`, or "
            "`gensvc demo --profile workflow/profiles/slurm` to run it through a Snakemake profile (there: merge and "
            "report as SLURM jobs; workflow/profiles/local runs everything here). The demo's credentials go to the "
            "workflow in a 0600 credentials file (.gensvc/demo-credentials.yaml), never in the environment."
        ),
        allow_abbrev=False,
    )


def main(argv: list[str]) -> int:
    argv = parser().parse_known_args(argv)[1]  # -h prints the demo's help; the rest is Snakemake's
    from gensvc.emulators.server import start_emulator  # the demo is the one caller outside tests

    root = checkout()
    if not (root / "workflow" / "Snakefile").is_file():
        print(f"gensvc demo: no workflow/Snakefile under {root}; run it from a gensvc checkout", file=sys.stderr)
        return 2
    state = root / ".gensvc"
    env = {name: value for name, value in os.environ.items() if not CREDENTIAL_VARIABLES.fullmatch(name)}
    env.update(GENSVC_STATE_DIR=str(state), GENSVC_CREDENTIALS=str(write_credentials(state)))
    with ExitStack() as stack:
        for service, settings in DEMO_SERVICES.items():
            emulator = stack.enter_context(start_emulator(service, **settings))
            env[f"GENSVC_{service.upper()}_URL"] = emulator.url
            print(f"emulator {service}: {emulator.url}", flush=True)
        workflow = [
            sys.executable, "-m", "snakemake",
            "--snakefile", str(root / "workflow" / "Snakefile"),
            "--configfile", str(root / ".test" / "config.yaml"),
            "--directory", str(root),
        ]
        run = [*workflow, "--cores", "2", "--resources", *(f"{s}_api=1" for s in DEMO_SERVICES), *argv]
        finished = subprocess.run(run, env=env, cwd=root)
        if finished.returncode == 0:
            finished = subprocess.run([*workflow, "--report", str(root / "results" / "report.html")], env=env, cwd=root)
    if finished.returncode != 0:
        print(f"gensvc demo: the workflow failed (exit {finished.returncode}); see the logs under {root / 'logs'}", file=sys.stderr)
        return finished.returncode
    print(f"\nDemo finished. Results are in {root / 'results'}:")
    for path in sorted((root / "results").glob("*")):
        if path.is_file() and not path.name.endswith(".prov.json"):
            print(f"  {path.relative_to(root)}")
    print(f"Each service's own outputs are under results/<service>/; the report is {root / 'results' / 'report.html'}")
    return 0
