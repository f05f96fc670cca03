"""How soon gensvc's poll sees a finished job, and at what cost in status requests, side by
side with fixed 10 s polling, for every service with jobs (OpenCRAVAT, CGI, CAVATICA,
OpenCGA) on jobs of 5 s to 30 min.

Each job is submitted through gensvc (in process, as a workflow's submit step would) to its
service's emulator, whose clock is scaled so a job of over 30 s takes 30 s; then, at once:
- gensvc: `<service> poll` with its default waits scaled alike (first_wait 1.8 s, max_wait
  60 s), its status requests counted from its own record (`checks`);
- the truth: a second `<service> poll` of the same job checking every 0.05 s (unscaled;
  5 ms at least), not counted, for when the job really ended;
- fixed 10 s polling, the anchor: checks at 10 s, 20 s, ... after the submission, so it sees
  the end at the first multiple of 10 s after it (worked out from the truth; a live poller
  would add only its requests' latency).
Goal (issue 15): delay <= max(2 s, 10 % of the job's length) for every length, and no more
requests than fixed 10 s polling for jobs of 2 min or longer. Figures are unscaled seconds.
The two halves cannot both hold at 2 min for a poller that does not know the job's length:
seeing every job of 5-20 s within 2 s takes checks at most 2 s apart up to 21 s (8), and every
longer one within 10 % takes checks at most 10 % of the age apart from there (19 more to pass
120 s): at least 27, where fixed 10 s polling makes 13. From about 8 min on, gensvc asks less.
Usage: python bench/poll.py [--services opencravat,cgi,cavatica,opencga] [--lengths 5,30,120,600,1800]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from gensvc.call import Call
from gensvc.emulators.server import start_emulator
from gensvc.runner import run
from table import record  # bench/table.py: a row of docs/performance.md

LENGTHS = [5, 30, 120, 600, 1800]  # seconds of job, unscaled
SERVICES = ["opencravat", "cgi", "cavatica", "opencga"]
FIRST_WAIT, MAX_WAIT = 1.8, 60.0  # the poll operations' defaults
VCF = ("##fileformat=VCFv4.2\n##contig=<ID=chr7>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
       "chr7\t140753336\t.\tA\tT\t.\tPASS\t.\n")
CREDENTIALS = {  # the emulators' documented defaults
    "cgi": {"GENSVC_CGI_EMAIL": "bench@example.org", "GENSVC_CGI_TOKEN": "cgi-demo-token"},
    "cavatica": {"GENSVC_CAVATICA_TOKEN": "cavatica-demo-token"},
    "opencga": {"GENSVC_OPENCGA_USER": "demouser", "GENSVC_OPENCGA_PASSWORD": "demouser"},
}


def scale_for(length: float) -> float:
    """A job of up to 30 s runs in real time, a longer one squeezed into 30 s: squeezed further,
    the bench's own milliseconds (a check, a thread's start) would count as seconds."""
    return min(1.0, 30.0 / length)


def emulator_settings(service: str, length: float) -> dict:
    if service == "cavatica":  # the emulator's default split: a sixth queued, the rest running;
        # the observer's checks would spend the platform's 1000 per 5 min (gensvc's make ~70)
        return {"queued_seconds": length / 6, "running_seconds": length * 5 / 6, "rate_limit": (1_000_000, 300)}
    return {"job_seconds": length}


def submit(service: str, work: Path) -> Path:
    """The job, submitted as a workflow's step would; returns its receipt."""
    vcf = work / "sample.vcf"
    vcf.write_text(VCF)
    receipt = work / "receipt.json"
    if service == "opencravat":
        run(Call(service, "submit", input={"files": [str(vcf)]}, output={"receipt": str(receipt)},
                 params={"annotators": [], "assembly": "hg38"}))
    elif service == "cgi":
        run(Call(service, "submit", input={"mutations": str(vcf)}, output={"receipt": str(receipt)},
                 params={"cancer_type": "BRCA", "reference": "hg38"}))
    elif service == "cavatica":
        manifest = work / "manifest.json"
        run(Call(service, "upload", input={"files": [str(vcf)]}, output={"manifest": str(manifest)},
                 params={"project": "gensvc-demo/demo-project", "overwrite": "if_different"}))
        run(Call(service, "run", input={"manifest": str(manifest)}, output={"receipt": str(receipt)},
                 params={"project": "gensvc-demo/demo-project", "app": "gensvc-demo/apps/vcf-score",
                         "inputs": {"input_vcf": {"manifest": True}}, "name": f"bench {work.name}"}))
    else:
        manifest = work / "manifest.json"
        run(Call(service, "upload", input={"files": [str(vcf)]}, output={"manifest": str(manifest)},
                 params={"study": "gensvc@demo:demo", "folder": f"bench/{work.name}"}))
        run(Call(service, "index", input={"manifest": str(manifest)}, output={"receipt": str(receipt)},
                 params={"study": "gensvc@demo:demo"}))
    return receipt


def poll(service: str, receipt: Path, status: Path, first: float, most: float, timeout: float,
         result: dict) -> None:
    record_ = run(Call(service, "poll", input={"receipt": str(receipt)}, output={"status": str(status)},
                       params={"first_wait": first, "max_wait": most, "timeout": timeout}))
    result.update(at=time.time(), checks=record_["details"]["checks"])


def measure(service: str, length: float, root: Path) -> dict:
    scale = scale_for(length)
    work = root / f"{service}-{length:g}"
    work.mkdir()
    with start_emulator(service, time_scale=scale, extra=emulator_settings(service, length)) as emulator:
        os.environ[f"GENSVC_{service.upper()}_URL"] = emulator.url
        receipt = submit(service, work)
        submitted = receipt.stat().st_mtime  # just after the job was made
        ours, truth = {}, {}
        observer = max(0.005, 0.05 * scale)
        threads = [
            threading.Thread(target=poll, args=(service, receipt, work / "status.json", FIRST_WAIT * scale,
                                                MAX_WAIT * scale, 10 * length * scale + 60, ours)),
            threading.Thread(target=poll, args=(service, receipt, work / "truth.json", observer, observer,
                                                10 * length * scale + 60, truth)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if "at" not in ours or "at" not in truth:
        raise SystemExit(f"{service}: a poll of the {length:g} s job failed (see above)")
    ended = (truth["at"] - submitted) / scale  # the job's length as its service ran it, unscaled
    fixed_seen = 10 * math.floor(ended / 10 + 1)
    return {"length": ended, "delay": max(0.0, ours["at"] - truth["at"]) / scale, "checks": ours["checks"],
            "fixed_delay": fixed_seen - ended, "fixed_checks": fixed_seen // 10}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", default=",".join(SERVICES))
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)), help="job lengths in seconds")
    args = parser.parse_args()
    services, lengths = args.services.split(","), [float(x) for x in args.lengths.split(",")]
    with tempfile.TemporaryDirectory(prefix="gensvc-bench-poll-") as scratch:
        os.environ.update(GENSVC_STATE_DIR=str(Path(scratch) / "state"), GENSVC_LOG_LEVEL="WARNING")
        for service in services:
            os.environ.update(CREDENTIALS.get(service, {}))
            os.environ[f"GENSVC_{service.upper()}_RATE_LIMIT"] = "off"  # the observer asks often
        results: dict[tuple[str, float], dict] = {}

        def service_runs(service: str) -> None:
            for length in lengths:
                results[service, length] = measure(service, length, Path(scratch))

        threads = [threading.Thread(target=service_runs, args=(s,)) for s in services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print(f"{'service':<11} {'job':>6} {'ran':>6} | {'detection delay (s)':^30} | {'status requests':^26}")
    print(f"{'':<11} {'':>6} {'':>6} | {'gensvc':>7} {'fixed 10s':>9} {'goal':>11} | {'gensvc':>6} {'fixed 10s':>9} "
          f"{'goal':>9}")
    for service in services:
        for length in lengths:
            r = results.get((service, length))
            if r is None:
                print(f"{service:<11} {length:>5g}s | failed")
                continue
            bound = max(2.0, 0.1 * length)
            delay_met = r["delay"] <= bound
            checks_met = r["checks"] <= r["fixed_checks"] if length >= 120 else None
            print(f"{service:<11} {length:>5g}s {r['length']:5.0f}s | {r['delay']:7.1f} {r['fixed_delay']:9.1f} {'<= ' + f'{bound:g}':>8} "
                  f"{'ok' if delay_met else 'NO':>2} | {r['checks']:6d} {r['fixed_checks']:9d} "
                  f"{'-' if checks_met is None else ('<= fixed ' + ('ok' if checks_met else 'NO')):>9}")
            what = f"poll {service}, {length:g} s job"
            # the ratio against the goal's bound: fixed polling's delay is luck (0 s when a
            # multiple of 10 s falls just after the end), so it is shown, not divided by
            record(f"{what}: detection delay", f"{r['delay']:.1f} s",
                   f"bound {bound:g} s (fixed 10 s: {r['fixed_delay']:.1f} s)", r["delay"] / bound,
                   f"<= max(2 s, 10 %) = {bound:g} s", delay_met)
            record(f"{what}: status requests", str(r["checks"]), f"fixed 10 s: {r['fixed_checks']}",
                   r["checks"] / r["fixed_checks"], "<= fixed 10 s" if length >= 120 else "", checks_met)
    return 0


if __name__ == "__main__":
    sys.exit(main())
