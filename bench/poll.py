"""How soon a finished OpenCRAVAT job is noticed, and at what cost in status
requests: gensvc's backoff polling (first 1 s, x1.5, cap 60 s, jitter) side by
side with fixed 10 s polling, on the same jobs of 5 s to 30 min.

The emulator is time-scaled (default 0.01: 30 min take 18 s); both pollers'
waits are scaled alike and every figure is printed in unscaled seconds.
Usage: python bench/poll.py [--scale 0.01]
"""

from __future__ import annotations

import argparse
import io
import sys
import threading
import time

import requests

from gensvc.core.poll import JobState, PollPolicy, wait_for_job
from gensvc.emulators.server import start_emulator

DURATIONS = [5, 30, 120, 600, 1800]  # seconds of job, unscaled
VCF = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t1000\t.\tA\tG\t.\t.\t.\n"


def submit(url: str, note: str) -> str:
    options = '{"annotators": [], "reports": [], "assembly": "hg38", "note": "%s"}' % note
    answer = requests.post(f"{url}submit/submit", files={"file_0": ("in.vcf", io.BytesIO(VCF.encode()))},
                           data={"options": options}, timeout=10)
    answer.raise_for_status()
    return answer.json()["id"]


def poll_until_done(url: str, job_id: str, policy: PollPolicy, result: dict) -> None:
    def check() -> JobState:
        result["requests"] = result.get("requests", 0) + 1
        status = (requests.get(f"{url}submit/jobs/{job_id}/status", timeout=10).json() or {}).get("status")
        return JobState(str(status), finished=status in ("Finished", "Error"))

    wait_for_job(check, policy, what=job_id, where=url)
    result["noticed_at"] = time.monotonic()


def finish_time(url: str, job_id: str, scale: float) -> float:
    """When the job really finished: watched by a fast observer that is not counted."""
    while (requests.get(f"{url}submit/jobs/{job_id}/status", timeout=10).json() or {}).get("status") != "Finished":
        time.sleep(scale * 0.2)
    return time.monotonic()


def run(duration: float, scale: float) -> dict:
    with start_emulator("opencravat", time_scale=scale, job_seconds=duration) as oc:
        ours, fixed, truth = {}, {}, {}
        backoff = PollPolicy(first=1 * scale, factor=1.5, cap=60 * scale, timeout=4 * duration * scale + 30)
        every10 = PollPolicy(first=10 * scale, factor=1.0, cap=10 * scale, jitter=0.0, timeout=4 * duration * scale + 30)
        job_a, job_b = submit(oc.url, "a"), submit(oc.url, "b")
        threads = [threading.Thread(target=poll_until_done, args=(oc.url, job_a, backoff, ours)),
                   threading.Thread(target=poll_until_done, args=(oc.url, job_b, every10, fixed)),
                   threading.Thread(target=lambda: truth.update(at=finish_time(oc.url, job_a, scale)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return {
        "ours_delay": max(0.0, ours["noticed_at"] - truth["at"]) / scale,
        "fixed_delay": max(0.0, fixed["noticed_at"] - truth["at"]) / scale,
        "ours_requests": ours["requests"],
        "fixed_requests": fixed["requests"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.01)
    args = parser.parse_args()
    print(f"{'job':>7} | {'detection delay (s)':^27} | {'status requests':^25}")
    print(f"{'':>7} | {'backoff':>8} {'fixed 10s':>9} {'ratio':>7} | {'backoff':>7} {'fixed 10s':>9} {'ratio':>6}")
    for duration in DURATIONS:
        r = run(duration, args.scale)
        delay_ratio = r["ours_delay"] / r["fixed_delay"] if r["fixed_delay"] else float("nan")
        print(f"{duration:>6}s | {r['ours_delay']:8.1f} {r['fixed_delay']:9.1f} {delay_ratio:7.2f} | "
              f"{r['ours_requests']:7d} {r['fixed_requests']:9d} {r['ours_requests'] / r['fixed_requests']:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
