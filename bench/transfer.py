"""Upload and download of a large file (default 1 GiB) by `gensvc cavatica upload` /
`download`, side by side with curl doing the same transfer, against the CAVATICA emulator
on loopback; then the bytes sent again when a transfer is killed half way and rerun.

The emulator runs in a process of its own (`python -m gensvc.emulators cavatica`), so
neither client's figures hold the server's work. The file is a VCF padded with header
lines, so the download can be a real task output: vcf-score run on the uploaded file
gives back a file of about the same size.

- gensvc: the whole command, from process start to exit (hashing the file, API calls,
  parts, the emulator joining them; download: the final MD5 check and the move).
- curl, the same transfer: the bench makes the same API calls (upload init, a part URL
  per part, a report per part, complete; download_info) and one curl process PUTs the
  same parts to the same presigned part URLs, one at a time (`-H Expect:`: else curl
  waits a second per part for a `100 Continue`), and GETs the download URL in one
  stream. Also curl with `--parallel` streams: what the emulator itself takes.
- gensvc's phases, from the times in its DEBUG log: before its first request, up to the
  last part, after it; and how often its threads met the rate limiter's file lock taken.
- Peak RSS: the gensvc process's own (wait4's ru_maxrss), beside a `cavatica projects`
  run's (the floor: interpreter, imports).
- Resume: gensvc's transfer is SIGKILLed once half the file went through, then run
  again; the bytes that crossed the wire on storage connections over both runs (bodies
  and their HTTP headers), counted by a TCP relay in front of the emulator, minus the
  file's size.
Everything lives in one temporary directory, removed at the end.
Usage: python bench/transfer.py [--size-mb 1024] [--part-mb 8] [--parallel 4]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import requests

from table import record  # bench/table.py: a row of docs/performance.md

HERE = Path(__file__).resolve().parents[1]
TOKEN = "bench-cavatica-token"
PROJECT = "gensvc-demo/demo-project"
APP = "gensvc-demo/apps/vcf-score"
# Time-scaled: the emulator's 1000 requests per 5 min become 1000 per 3 s, and the task
# runs in half a second; presigned URLs do not expire sooner (their life is not scaled).
SCALE = 0.01
RATE_LIMIT = "1000/3"  # the client's own limiter kept on, at the emulator's scaled budget
MiB = 1 << 20
LINE = MiB  # padding header lines of the VCF
CHUNK = 256 * 1024  # the relay's reads


# The file.
def write_vcf(path: Path, size: int) -> None:
    """A VCF of exactly `size` bytes: header lines of random text, one record."""
    head = b"##fileformat=VCFv4.2\n"
    tail = b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t1000\t.\tA\tG\t.\tPASS\t.\n"
    room = size - len(head) - len(tail)
    lines = [LINE] * (room // LINE) + ([room % LINE] if room % LINE else [])
    if len(lines) > 1 and lines[-1] < 32:  # every line long enough for its "##padding=" key
        lines[-2] -= 32 - lines[-1]
        lines[-1] = 32
    with open(path, "wb") as out:
        out.write(head)
        for length in lines:
            text = base64.b64encode(os.urandom(length * 3 // 4 + 3))[: length - 11]
            out.write(b"##padding=" + text + b"\n")
        out.write(tail)


def cut_parts(path: Path, part_size: int, directory: Path) -> list[Path]:
    """The file cut into part files, for curl (it cannot PUT a byte range of a file)."""
    directory.mkdir()
    parts = []
    with open(path, "rb") as source:
        while block := source.read(part_size):
            parts.append(directory / f"part-{len(parts) + 1:05d}")
            parts[-1].write_bytes(block)
    return parts or [directory / "part-00001"]


def hashing_seconds(path: Path, sha256: bool) -> float:
    """One pass of MD5 (and SHA-256) over the file, as gensvc makes, timed here apart."""
    started = time.monotonic()
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MiB), b""):
            md5.update(block)
            if sha256:
                sha.update(block)
    return time.monotonic() - started


def md5_of(path: Path) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MiB), b""):
            md5.update(block)
    return md5.hexdigest()


# The emulator, the relay, the API.
class EmulatorProcess:
    """`python -m gensvc.emulators cavatica` in a process of its own; its storage under `scratch`."""

    def __init__(self, scratch: Path):
        env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": str(HERE)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gensvc.emulators", "cavatica", "--port", "0", "--time-scale", str(SCALE),
             "--tokens", TOKEN], stdout=subprocess.PIPE, text=True, env=env, cwd=scratch)
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the CAVATICA emulator did not start (exit {self.process.wait()})")
        self.url = json.loads(line)["url"]  # http://127.0.0.1:PORT/v2
        self.root = self.url.rsplit("/v2", 1)[0]
        self.port = int(self.root.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class CountingRelay:
    """A TCP relay in front of the emulator that counts the bytes delivered each way on
    storage connections (those whose first request is to /storage/: the clients keep a
    session of their own for presigned URLs). The emulator builds its URLs from the Host
    header, so a client given the relay's URL sends everything through it."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.up = self.down = 0  # bytes to the emulator, bytes from it
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    def reset(self) -> None:
        with self.lock:
            self.up = self.down = 0

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        try:
            first = client.recv(CHUNK)
            storage = b" /storage/" in first.split(b"\r\n", 1)[0]  # the request line
            upstream.sendall(first)
            self._count(storage, "up", len(first))
            back = threading.Thread(target=self._pump, args=(upstream, client, storage, "down"), daemon=True)
            back.start()
            self._pump(client, upstream, storage, "up")
            back.join()
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def _pump(self, source: socket.socket, target: socket.socket, storage: bool, direction: str) -> None:
        try:
            while data := source.recv(CHUNK):
                target.sendall(data)
                self._count(storage, direction, len(data))
        except OSError:
            pass
        finally:  # one side gone (a killed client): the other learns it at once
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _count(self, storage: bool, direction: str, count: int) -> None:
        if storage:
            with self.lock:
                if direction == "up":
                    self.up += count
                else:
                    self.down += count


class Api:
    def __init__(self, emulator: EmulatorProcess):
        self.emulator = emulator
        self.session = requests.Session()
        self.session.headers["X-SBG-Auth-Token"] = TOKEN

    def __call__(self, method: str, path: str, **kwargs) -> dict:
        response = self.session.request(method, f"{self.emulator.url}/{path}", timeout=300, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else {}

    def storage_requests(self) -> dict[str, int]:
        stats = requests.get(f"{self.emulator.root}/_emulator/stats", timeout=10).json()
        return {path: n for path, n in stats["by_path"].items() if path.startswith("/storage/")}

    def reset_stats(self) -> None:
        requests.delete(f"{self.emulator.root}/_emulator/stats", timeout=10).raise_for_status()


# Running a client.
def waited(process: subprocess.Popen, started: float, kill_when=None) -> dict:
    """Wait for a process (SIGKILL it once `kill_when()` is true); its time and own peak RSS."""
    killed = False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG if kill_when else 0)
        if pid:
            break
        if kill_when():
            os.kill(process.pid, signal.SIGKILL)
            killed = True
            _, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.005)
    process.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": time.monotonic() - started, "rc": process.returncode, "peak_mb": usage.ru_maxrss / 1024,
            "killed": killed}


class Gensvc:
    """The gensvc CLI in fresh processes, with its state, home and logs under the scratch dir."""

    def __init__(self, scratch: Path, url: str):
        self.scratch = scratch
        self.runs = 0
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("GENSVC_", "SB_"))}
        (scratch / "home").mkdir(exist_ok=True)
        self.env = {**clean, "PYTHONPATH": str(HERE), "HOME": str(scratch / "home"), "TMPDIR": str(scratch),
                    "XDG_STATE_HOME": str(scratch / "xdg"), "GENSVC_STATE_DIR": str(scratch / "state"),
                    "GENSVC_CAVATICA_URL": url, "GENSVC_CAVATICA_TOKEN": TOKEN,
                    "GENSVC_CAVATICA_RATE_LIMIT": RATE_LIMIT, "GENSVC_CAVATICA_BACKOFF": "0.2",
                    # DEBUG: a line per request, with its time, for the phases of each run
                    "GENSVC_LOG_LEVEL": "DEBUG"}

    def run(self, *args, url: str | None = None, kill_when=None) -> dict:
        env = {**self.env, **({"GENSVC_CAVATICA_URL": url} if url else {})}
        self.runs += 1
        log_path = self.scratch / f"gensvc-{self.runs}.log"
        with open(log_path, "w") as log:
            started, wall = time.monotonic(), time.time()
            # cwd elsewhere: `python -m` puts the working directory before PYTHONPATH
            process = subprocess.Popen([sys.executable, "-m", "gensvc.cli", *map(str, args)], env=env,
                                       cwd=self.scratch, stdout=log, stderr=log)
            result = waited(process, started, kill_when)
        text = log_path.read_text(errors="replace")
        if not result["killed"] and result["rc"] != 0:
            tail = "\n".join(text.splitlines()[-15:])
            raise SystemExit(f"gensvc {args[0]} {args[1]} failed (exit {result['rc']}):\n{tail}")
        return {**result, "log": text, "wall": (wall, wall + result["seconds"])}

    def upload(self, path: Path, manifest: Path, part_size: int, parallel: int, **kwargs) -> dict:
        return self.run("cavatica", "upload", "--project", PROJECT, "--input", f"files={path}",
                        "--output", f"manifest={manifest}", "--part-size", part_size, "--parallel", parallel,
                        **kwargs)

    def download(self, receipt: Path, out: Path, manifest: Path, part_size: int, parallel: int, **kwargs) -> dict:
        return self.run("cavatica", "download", "--input", f"receipt={receipt}", "--output", f"file={out}",
                        "--output", f"manifest={manifest}", "--part-size", part_size, "--parallel", parallel,
                        **kwargs)


def run_curl(arguments: list[str], scratch: Path, name: str) -> tuple[dict, list[str]]:
    """curl in a process of its own; its -w lines come back through a file (no pipe to fill)."""
    written = scratch / f"{name}.out"
    with open(written, "w") as out, open(scratch / f"{name}.err", "w") as err:
        started = time.monotonic()
        process = subprocess.Popen(["curl", "--silent", "--show-error", *arguments], stdout=out, stderr=err)
        result = waited(process, started)
    if result["rc"] != 0:
        raise SystemExit(f"curl failed (exit {result['rc']}): {(scratch / f'{name}.err').read_text()[-2000:]}")
    lines = written.read_text().splitlines()
    written.unlink()
    (scratch / f"{name}.err").unlink()
    return result, lines


def curl_upload(api: Api, parts: list[Path], name: str, size: int, part_size: int, scratch: Path,
                streams: int = 1) -> dict:
    """The multipart upload gensvc makes, with curl PUTting the parts: init, part URLs,
    PUTs, a report per part, complete."""
    started = time.monotonic()
    upload = api("POST", "upload/multipart", json={"project": PROJECT, "name": name, "size": size,
                                                   "part_size": part_size})
    if upload["part_size"] != part_size:
        raise SystemExit(f"the emulator raised the part size to {upload['part_size']}; give --part-mb >= 5")
    upload_id = upload["upload_id"]
    urls = [api("GET", f"upload/multipart/{upload_id}/part/{n}")["url"] for n in range(1, len(parts) + 1)]
    arguments = ["-H", "Expect:", "-w", "%{http_code} %header{etag}\\n"]
    if streams > 1:
        arguments += ["--parallel", "--parallel-max", str(streams)]
    for part, url in zip(parts, urls):
        arguments += ["-T", str(part), "-o", "/dev/null", url]
    puts, lines = run_curl(arguments, scratch, "curl-upload")
    answers = [line.split(" ", 1) for line in lines]
    if len(answers) != len(parts) or any(code != "200" or not etag.strip('"') for code, etag in answers):
        raise SystemExit(f"curl's PUTs were not all answered 200 with an ETag: {lines[:5]}...")
    # --parallel finishes parts in any order: only the sequential run's ETags pair with the
    # parts by position, so the parallel one (a ceiling, not a transfer) is dropped unreported
    if streams > 1:
        api("DELETE", f"upload/multipart/{upload_id}")
        return {**puts, "puts_seconds": puts["seconds"], "seconds": None}
    for number, (_, etag) in enumerate(answers, start=1):
        api("POST", f"upload/multipart/{upload_id}/part",
            json={"part_number": number, "response": {"headers": {"ETag": etag}}})
    record = api("POST", f"upload/multipart/{upload_id}/complete")
    seconds = time.monotonic() - started
    if record.get("size") != size:
        raise SystemExit(f"curl's upload completed as {record.get('size')} bytes, not {size}")
    api("DELETE", f"files/{record['id']}")
    return {**puts, "puts_seconds": puts["seconds"], "seconds": seconds}


def curl_download(api: Api, file_id: str, size: int, md5: str, part_size: int, scratch: Path,
                  streams: int = 1) -> dict:
    """download_info, then curl GETs the URL: one stream into one file, or `streams`
    parallel Range parts into part files (a ceiling)."""
    started = time.monotonic()
    url = api("GET", f"files/{file_id}/download_info")["url"]
    each = ["-w", "%{http_code} %{size_download}\\n"]
    if streams == 1:
        targets = [scratch / "curl-download"]
        arguments = [*each, "-o", str(targets[0]), url]
    else:  # a range is not a per-URL option: one --next group per part
        targets, arguments = [], ["--parallel", "--parallel-max", str(streams)]
        for start in range(0, size, part_size):
            targets.append(scratch / f"curl-range-{start}")
            arguments += [*(["--next", "--silent", "--show-error"] if start else []), *each,
                          "-r", f"{start}-{min(start + part_size, size) - 1}", "-o", str(targets[-1]), url]
    got, lines = run_curl(arguments, scratch, "curl-download")
    seconds = time.monotonic() - started
    try:
        received = sum(t.stat().st_size for t in targets)
        wanted = "200" if streams == 1 else "206"
        if received != size or any(line.split(" ")[0] != wanted for line in lines):
            raise SystemExit(f"curl received {received} bytes of {size} ({lines[:3]}...)")
        if streams == 1 and md5_of(targets[0]) != md5:
            raise SystemExit("curl's download differs from gensvc's (MD5)")
    finally:
        for target in targets:
            target.unlink(missing_ok=True)
    return {**got, "get_seconds": got["seconds"], "seconds": seconds}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def parts_sent(manifest: Path, key: str) -> int | None:
    """The part counter gensvc writes in its provenance, beside the output."""
    try:
        return read_json(Path(f"{manifest}.prov.json"))["details"][key]
    except (OSError, KeyError, ValueError):
        return None


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \w+ (\S+): (.*)$")


def phases(run: dict, side: str) -> dict:
    """Where a gensvc run's time went, from its DEBUG log's times: before its first request
    (start, imports; upload: hashing the file), from there to the last part's answer
    (upload: its report), after it (upload: complete, the emulator joining the parts, and
    the runner's SHA-256 of the input for the provenance; download: the MD5 check, the
    move); and how often a thread found the shared rate
    limiter's file lock taken (filelock then sleeps 50 ms before trying again)."""
    start, end = run["wall"]
    lines = []
    for line in run["log"].splitlines():
        if match := LOG_LINE.match(line):
            moment = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S").timestamp() + int(match[2]) / 1000
            lines.append((moment, match[3], match[4]))
    answers = [(moment, text) for moment, name, text in lines if name == "gensvc.http" and " -> " in text]
    if side == "up":
        parts = [moment for moment, text in answers if text.startswith("POST ") and re.search(r"/part/? -> ", text)]
    else:
        parts = [moment for moment, text in answers if "/storage/" in text]
    first = min(moment for moment, name, _ in lines if name == "gensvc.http")
    waits = sum(1 for _, name, text in lines if name == "filelock" and "ratelimit" in text and "not acquired" in text)
    completed = [float(found[1]) for _, text in answers
                 if (found := re.search(r"/complete -> \d+ in ([\d.]+) s", text))]
    return {"before": first - start, "parts": max(parts) - first, "after": end - max(parts), "lock_waits": waits,
            "complete": sum(completed)}


# The measurements.
def measure(args, scratch: Path) -> dict:
    size, part_size, parallel = args.size_mb * MiB, args.part_mb * MiB, args.parallel
    figures: dict = {"size": size, "part_size": part_size, "parallel": parallel, "load": [os.getloadavg()[0]]}
    vcf = scratch / "bench-transfer.vcf"
    write_vcf(vcf, size)
    figures["hash_up"] = hashing_seconds(vcf, sha256=True)
    emulator = EmulatorProcess(scratch)
    relay = None
    try:
        api = Api(emulator)
        gensvc = Gensvc(scratch, emulator.url)

        # what a gensvc process takes before any transfer: the floor under its peak RSS
        figures["floor"] = gensvc.run("cavatica", "projects", "--output", f"table={scratch / 'projects.tsv'}")

        # upload: gensvc, then curl on one stream and on `parallel`
        manifest = scratch / "upload.json"
        figures["up_gensvc"] = gensvc.upload(vcf, manifest, part_size, parallel)
        uploaded = read_json(manifest)["files"][0]
        parts = cut_parts(vcf, part_size, scratch / "parts")
        figures["up_curl"] = curl_upload(api, parts, "curl-" + vcf.name, size, part_size, scratch)
        figures["up_curl_parallel"] = curl_upload(api, parts, "curl-par-" + vcf.name, size, part_size, scratch,
                                                  streams=parallel)
        shutil.rmtree(scratch / "parts")

        # the download's file: vcf-score's output of the uploaded file
        receipt, status = scratch / "receipt.json", scratch / "status.json"
        gensvc.run("cavatica", "run", "--project", PROJECT, "--app", APP, "--inputs",
                   json.dumps({"input_vcf": {"id": uploaded["id"]}}), "--output", f"receipt={receipt}")
        gensvc.run("cavatica", "poll", "--input", f"receipt={receipt}", "--first-wait", "0.2", "--max-wait", "1",
                   "--timeout", "900", "--output", f"status={status}")
        api("DELETE", f"files/{uploaded['id']}")  # the task has read it: room on the disk

        # download: gensvc, then curl on one stream and on `parallel`
        out, down_manifest = scratch / "downloaded.vcf", scratch / "download.json"
        figures["down_gensvc"] = gensvc.download(receipt, out, down_manifest, part_size, parallel)
        output = read_json(down_manifest)["files"][0]
        figures["down_size"] = output["size"]
        if out.stat().st_size != output["size"]:
            raise SystemExit(f"gensvc's download is {out.stat().st_size} bytes, not {output['size']}")
        figures["hash_down"] = hashing_seconds(out, sha256=False)
        out.unlink()
        figures["down_curl"] = curl_download(api, output["id"], output["size"], output["md5"], part_size, scratch)
        figures["down_curl_parallel"] = curl_download(api, output["id"], output["size"], output["md5"], part_size,
                                                      scratch, streams=parallel)

        # resume: each transfer through the counting relay, SIGKILLed half way, run again
        relay = CountingRelay(emulator.port)
        again = scratch / ("resume-" + vcf.name)  # another name, else the first upload is reused
        os.link(vcf, again)
        figures["up_resume"] = resume(
            api, relay, "up", size, part_size,
            lambda kill: gensvc.upload(again, scratch / "resume-upload.json", part_size, parallel, url=relay.url,
                                       kill_when=kill),
            scratch / "resume-upload.json", "parts_sent")
        resumed = read_json(scratch / "resume-upload.json")["files"][0]
        if resumed["size"] != size or resumed["md5"] != uploaded["md5"]:
            raise SystemExit("the resumed upload does not hold the file")
        api("DELETE", f"files/{resumed['id']}")
        again.unlink()
        vcf.unlink()

        relayed = scratch / "receipt-relayed.json"  # the same task, reached through the relay
        relayed.write_text(json.dumps({**read_json(receipt), "base_url": relay.url}))
        out2 = scratch / "resumed.vcf"
        figures["down_resume"] = resume(
            api, relay, "down", output["size"], part_size,
            lambda kill: gensvc.download(relayed, out2, scratch / "resume-download.json", part_size, parallel,
                                         kill_when=kill),
            scratch / "resume-download.json", "parts_fetched")
        if read_json(scratch / "resume-download.json")["files"][0]["md5"] != output["md5"] \
                or out2.stat().st_size != output["size"]:
            raise SystemExit("the resumed download is not the file")
        out2.unlink()
    finally:
        if relay is not None:
            relay.close()
        emulator.stop()
    figures["load"].append(os.getloadavg()[0])
    return figures


def resume(api: Api, relay: CountingRelay, direction: str, size: int, part_size: int, transfer,
           manifest: Path, counter: str) -> dict:
    """A transfer SIGKILLed once half the file crossed the relay, then run again to its end."""
    api.reset_stats()
    relay.reset()

    def crossed() -> int:
        return relay.up if direction == "up" else relay.down

    first = transfer(lambda: crossed() >= size // 2)
    at_kill = crossed()
    if not first["killed"]:
        raise SystemExit(f"the {direction}load ended before it was half way ({first['seconds']:.1f} s); "
                         "give a larger --size-mb")
    time.sleep(0.5)  # the emulator reads the rest of what was in flight
    second = transfer(None)
    total = crossed()
    requests_made = api.storage_requests()
    said = [line.split(": ", 1)[-1] for line in second["log"].splitlines() if " INFO " in line and "resuming" in line]
    return {"killed_at": at_kill, "total": total, "resent": total - size, "first": first, "second": second,
            "parts": -(-size // part_size), "second_parts": parts_sent(manifest, counter),
            "storage_requests": sum(requests_made.values()), "resumed_said": said[-1] if said else None}


# Printing.
def rate(size: int, seconds: float | None) -> float | None:
    return size / MiB / seconds if seconds else None


def goal(met: bool) -> str:
    return "met" if met else "NOT MET"


def report(f: dict) -> None:
    size, part, n = f["size"], f["part_size"], f["parallel"]
    print(f"CAVATICA transfer bench: {size / MiB:.0f} MiB file, parts of {part / MiB:.0f} MiB, {n} in parallel; "
          "emulator on loopback in its own process")
    print(f"  (load average {f['load'][0]:.1f} at the start, {f['load'][1]:.1f} at the end, on {os.cpu_count()} cores: "
          "every client and the emulator share them)")
    for side, verb in (("up", "upload"), ("down", "download")):
        ours, curl, ceiling = f[f"{side}_gensvc"], f[f"{side}_curl"], f[f"{side}_curl_parallel"]
        moved = size if side == "up" else f["down_size"]
        bytes_key = "puts_seconds" if side == "up" else "get_seconds"
        ours_rate, curl_rate = rate(moved, ours["seconds"]), rate(moved, curl["seconds"])
        print(f"{verb} ({moved / MiB:.1f} MiB):")
        print(f"  gensvc cavatica {verb:<8}  {ours['seconds']:6.2f} s  {ours_rate:7.1f} MiB/s  "
              "(whole command, process start to exit)")
        print(f"  curl, 1 stream            {curl['seconds']:6.2f} s  {curl_rate:7.1f} MiB/s  "
              f"(with the same API calls; curl's own {curl[bytes_key]:.2f} s = "
              f"{rate(moved, curl[bytes_key]):.1f} MiB/s)")
        print(f"  curl, {n} streams           {ceiling[bytes_key]:6.2f} s  "
              f"{rate(moved, ceiling[bytes_key]):7.1f} MiB/s  (curl's transfer only: what the emulator takes)")
        split = phases(ours, side)
        hashed = f["hash_up"] if side == "up" else f["hash_down"]
        before = "start, imports, MD5+SHA-256 of the file" if side == "up" else "start, imports"
        after = (f"of which complete {split['complete']:.2f} s (the emulator joins the parts), the rest the runner's "
                 "SHA-256 of the input for the provenance, exit" if side == "up" else "the MD5 check, move, exit")
        print(f"  gensvc's phases: {before} {split['before']:.2f} s | requests to the last part "
              f"{split['parts']:.2f} s ({rate(moved, split['parts']):.1f} MiB/s) | after it {split['after']:.2f} s "
              f"({after})")
        what = "MD5+SHA-256" if side == "up" else "MD5"
        print(f"    one {what} pass over the file, timed apart: {hashed:.2f} s; the rate limiter's file lock found "
              f"taken {split['lock_waits']} times (50 ms sleep each, spread over {n} threads)")
        ratio = ours_rate / curl_rate
        print(f"  rate ratio gensvc / curl:  {ratio:.2f}x        goal >= 1x      {goal(ratio >= 1)}")
        peak = max(ours["peak_mb"], f[f"{side}_resume"]["first"]["peak_mb"], f[f"{side}_resume"]["second"]["peak_mb"])
        print(f"  peak RSS of gensvc:        {peak:.1f} MB       goal <= 100 MB  {goal(peak <= 100)}  "
              f"(this run {ours['peak_mb']:.1f} MB; `gensvc cavatica projects` {f['floor']['peak_mb']:.1f} MB; "
              f"curl {curl['peak_mb']:.1f} MB)")
        r = f[f"{side}_resume"]
        sent = "received" if side == "up" else "sent"
        print(f"  resume: SIGKILL after {r['killed_at'] / MiB:.1f} MiB, rerun {r['second']['seconds']:.2f} s "
              f"({r['second_parts']} of {r['parts']} parts; {r['resumed_said'] or 'no resume logged'})")
        print(f"    the storage {sent} {r['total'] / MiB:.2f} MiB over both runs in {r['storage_requests']} "
              f"requests, for a {moved / MiB:.2f} MiB file")
        print(f"  resume re-sent:            {r['resent'] / MiB:.2f} MiB = {r['resent'] / part:.2f} parts   "
              f"goal <= 1 part  {goal(r['resent'] <= part)}")
        what = f"cavatica {verb}, {moved / MiB:.0f} MiB in {part / MiB:.0f} MiB parts"
        record(f"{what}: rate", f"{ours_rate:.1f} MiB/s", f"curl, 1 stream: {curl_rate:.1f} MiB/s", ratio, ">= 1x",
               ratio >= 1)
        record(f"{what}: peak RSS", f"{peak:.1f} MB", "100 MB", peak / 100, "<= 100 MB", peak <= 100)
        record(f"{what}: re-sent after a SIGKILL half way", f"{r['resent'] / MiB:.2f} MiB",
               f"1 part = {part / MiB:.0f} MiB", r["resent"] / part, "<= 1 part", r["resent"] <= part)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument("--part-mb", type=int, default=8, help="part size in MiB, as gensvc's default (8)")
    parser.add_argument("--parallel", type=int, default=4, help="parts at a time, as gensvc's default (4)")
    args = parser.parse_args()
    if args.size_mb < 4 * args.part_mb or args.part_mb < 5:
        parser.error("give --part-mb >= 5 (the emulator's minimum) and --size-mb >= 4 parts")
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed (apt-get install -y curl)")
    scratch = Path(tempfile.mkdtemp(prefix="gensvc-bench-transfer-"))
    try:
        figures = measure(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report(figures)


if __name__ == "__main__":
    main()
