"""A wrapper's start-up: from the process's start to its first request arriving at the
service, for each service's main operation, by the CLI and by a Snakemake `wrapper:` rule,
against the goal of 0.3 s (issue 15).

The service is a stand-in HTTP server on loopback that notes when the first request arrives
(and answers 503, so nothing more happens); the process is killed then. CLI: the start is
just before the bench starts `python -m gensvc.cli <service> <operation> ...`. Wrapper: a
one-rule Snakefile runs the operation's wrapper; Snakemake starts the wrapper's script as a
process of its own, whose start time the bench reads from /proc (clock ticks, 10 ms) -
Snakemake's own start-up is not the wrapper's. Each figure is the median of --repeat runs;
beside it, the CPU time the process had used by then (from /proc), which a busy machine
inflates far less than the wall time.
`python -X importtime -m gensvc.cli <service> <operation> --help` says where the time goes.
Usage: python bench/startup.py [--repeat 5] [--services bravo,opencravat,cgi,cavatica,opencga]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from table import record  # bench/table.py: a row of docs/performance.md

REPO = Path(__file__).resolve().parents[1]
GOAL = 0.3
VCF = ("##fileformat=VCFv4.2\n##contig=<ID=chr7>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
       "chr7\t140753336\t.\tA\tT\t.\tPASS\t.\n")
# service -> (operation, inputs, outputs, params): each service's main operation
OPERATIONS = {
    "bravo": ("frequencies", {"vcf": "sample.vcf"}, {"table": "out.tsv"}, {}),
    "opencravat": ("submit", {"files": "sample.vcf"}, {"receipt": "receipt.json"}, {"assembly": "hg38"}),
    "cgi": ("submit", {"mutations": "sample.vcf"}, {"receipt": "receipt.json"},
            {"cancer_type": "BRCA", "reference": "hg38"}),
    "cavatica": ("upload", {"files": "sample.vcf"}, {"manifest": "manifest.json"},
                 {"project": "gensvc-demo/demo-project"}),
    "opencga": ("query", {}, {"variants": "variants.tsv"}, {"study": "gensvc@demo:demo"}),
}
CREDENTIALS = {"GENSVC_BRAVO_TOKEN": "bench-token", "GENSVC_CGI_EMAIL": "bench@example.org",
               "GENSVC_CGI_TOKEN": "bench-token", "GENSVC_CAVATICA_TOKEN": "bench-token",
               "GENSVC_OPENCGA_TOKEN": "bench-token"}


class StandIn:
    """Notes when each request arrives; answers 503 (the process is killed before it retries)."""

    def __init__(self) -> None:
        arrivals = self.arrivals = []

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                arrivals.append(time.time())
                body = b'{"error": "stand-in"}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = do_PUT = answer

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # a client killed mid-answer: expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/"

    def first_after(self, since: float, timeout: float = 60.0) -> float | None:
        until = time.time() + timeout
        while time.time() < until:
            later = [t for t in self.arrivals if t >= since]
            if later:
                return min(later)
            time.sleep(0.002)
        return None


def environment(work: Path, url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENSVC_")}
    env.update(CREDENTIALS, PYTHONPATH=str(REPO), GENSVC_STATE_DIR=str(work / "state"),
               XDG_STATE_HOME=str(work / "xdg"), GENSVC_LOG_LEVEL="WARNING")
    for service in OPERATIONS:
        env[f"GENSVC_{service.upper()}_URL"] = url
    return env


def cli_command(service: str, work: Path) -> list[str]:
    operation, inputs, outputs, params = OPERATIONS[service]
    command = [sys.executable, "-m", "gensvc.cli", service, operation]
    for name, path in inputs.items():
        command += ["--input", f"{name}={work / path}"]
    for name, path in outputs.items():
        command += ["--output", f"{name}={work / 'cli' / path}"]
    for name, value in params.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    return command


def snakefile(service: str, work: Path) -> Path:
    operation, inputs, outputs, params = OPERATIONS[service]
    path = work / f"{service}.smk"

    def named(files: dict, under: Path) -> str:
        return ", ".join(f"{name}={str(under / value)!r}" for name, value in files.items())

    lines = [f"rule {service}_{operation}:"]
    if inputs:
        lines.append(f"    input: {named(inputs, work)}")
    lines.append(f"    output: {named(outputs, work / 'smk' / service)}")
    if params:
        lines.append("    params: " + ", ".join(f"{name}={value!r}" for name, value in params.items()))
    lines.append(f"    wrapper: {(REPO / 'wrappers' / service / operation).as_uri() !r}")
    path.write_text("\n".join(lines) + "\n")
    return path


def process_starts(pattern: str) -> dict[int, float]:
    """Start times (epoch seconds) of the processes whose command line holds ``pattern``."""
    ticks = os.sysconf("SC_CLK_TCK")
    boot = next(float(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if pattern not in cmdline or "snakemake" in cmdline.split(" ")[1:3]:
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
            found[int(entry)] = boot + int(stat.rsplit(")", 1)[1].split()[19]) / ticks
        except OSError:
            continue
    return found


def kill(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far: what a busy machine does not inflate."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_cli(service: str, work: Path, stand_in: StandIn, env: dict) -> tuple[float, float] | None:
    """(wall seconds, CPU seconds) from the process's start to its first request."""
    started = time.time()
    process = subprocess.Popen(cli_command(service, work), env=env, cwd=work, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    arrived = stand_in.first_after(started)
    cpu = cpu_seconds(process.pid) if arrived is not None and process.poll() is None else float("nan")
    kill(process)
    return None if arrived is None else (arrived - started, cpu)


def time_wrapper(service: str, work: Path, stand_in: StandIn, env: dict) -> float | None:
    operation = OPERATIONS[service][0]
    started = time.time()
    process = subprocess.Popen([sys.executable, "-m", "snakemake", "--snakefile", str(snakefile(service, work)),
                                "--cores", "1", "--forceall", "--nolock", "--rerun-incomplete", "--directory", str(work)],
                               env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    script, starts = f"{service}/{operation}", {}
    arrived = None
    until = time.time() + 120
    while time.time() < until and arrived is None:
        # the wrapper's script, wherever Snakemake put it (a copy under .snakemake/scripts/)
        starts.update({pid: t for pid, t in process_starts("wrapper.py").items() if t >= started - 0.02})
        later = [t for t in stand_in.arrivals if t >= started]
        arrived = min(later) if later else None
        time.sleep(0.003)
    if arrived is not None:  # the script is still up (retrying the 503): seen now if missed before
        starts.update({pid: t for pid, t in process_starts("wrapper.py").items() if t >= started - 0.02})
    before = {pid: t for pid, t in starts.items() if arrived is not None and t <= arrived}
    pid = max(before, key=before.get) if before else None
    try:
        cpu = cpu_seconds(pid) if pid is not None else float("nan")
    except OSError:
        cpu = float("nan")
    os.killpg(process.pid, 9)
    process.wait()
    if pid is None:
        print(f"  {script}: no wrapper process or no request seen", file=sys.stderr)
        return None
    return arrived - before[pid], cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--services", default=",".join(OPERATIONS))
    parser.add_argument("--no-wrapper", action="store_true", help="the CLI path only (no Snakemake)")
    args = parser.parse_args()
    stand_in = StandIn()
    print(f"start to first request, median of {args.repeat} (goal <= {GOAL} s; load {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="gensvc-bench-startup-") as scratch:
        work = Path(scratch)
        (work / "sample.vcf").write_text(VCF)
        env = environment(work, stand_in.url)
        for service in args.services.split(","):
            operation = OPERATIONS[service][0]
            paths = [("CLI", time_cli)] + ([] if args.no_wrapper else [("wrapper", time_wrapper)])
            for path, timer in paths:
                runs = [r for r in (timer(service, work, stand_in, env) for _ in range(args.repeat)) if r is not None]
                if not runs:
                    print(f"  {service} {operation} ({path}): no request arrived")
                    record(f"start-up to first request: {service} {operation} ({path})", "no request arrived",
                           f"goal {GOAL} s", None, f"<= {GOAL} s", False)
                    continue
                times = [wall for wall, _ in runs]
                median = statistics.median(times)
                cpu = statistics.median(c for _, c in runs)
                cpu_text = "" if cpu != cpu else f", CPU {cpu:.2f} s"  # nan: the process was gone
                print(f"  {service:<10} {operation:<12} {path:<8} {median:6.3f} s  (min {min(times):.3f}, "
                      f"max {max(times):.3f}{cpu_text})  {'met' if median <= GOAL else 'NOT MET'}")
                record(f"start-up to first request: {service} {operation} ({path})", f"{median:.3f} s{cpu_text}",
                       f"goal {GOAL} s", median / GOAL, f"<= {GOAL} s", median <= GOAL)
    stand_in.server.shutdown()
    # the floor under every figure: the interpreter with the libraries a call needs before it sends
    floor = statistics.median(import_time() for _ in range(args.repeat))
    print(f"  floor: python -c 'import requests, jsonschema, yaml, filelock' {floor:.3f} s")
    record("start-up floor: the interpreter importing requests, jsonschema, yaml, filelock", f"{floor:.3f} s",
           f"goal {GOAL} s", floor / GOAL, "", None)
    return 0


def import_time() -> float:
    started = time.time()
    subprocess.run([sys.executable, "-c", "import requests, jsonschema, yaml, filelock"], check=True)
    return time.time() - started


if __name__ == "__main__":
    sys.exit(main())
