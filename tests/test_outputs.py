"""Where outputs go: regular files renamed into place, streams and links written through, and
an output that cannot be written refused before anything is sent."""

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers import add_fault, read_json, run_gensvc, stats
from gensvc.emulators.bravo_data import variants_in

REGION = ["bravo", "region", "--chrom", "22", "--start", "30000000", "--end", "30030000"]


def truth_ids():
    return [v["variant_id"] for v in variants_in("22", 30000000, 30030000)]


def ids_in(tsv_text: str) -> list[str]:
    lines = tsv_text.splitlines()
    column = lines[0].split("\t").index("variant_id")
    return [line.split("\t")[column] for line in lines[1:]]


def partial_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if "partial" in p.name)


# ---- written before anything is sent ------------------------------------------------------


def test_an_output_in_a_directory_that_takes_no_new_files_fails_before_any_request(tmp_path, env, bravo):
    # /proc takes no new files, even from root (a chmod would not stop root)
    done = run_gensvc([*REGION, "--output", "variants=/proc/gensvc-region.tsv"], env)
    assert done.returncode == 2, done.stderr
    assert stats(bravo)["requests"] == 0
    assert "/proc/gensvc-region.tsv" in done.stderr
    assert "partial" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_output_that_is_a_directory_fails_before_any_request(tmp_path, env, bravo):
    target = tmp_path / "results"
    target.mkdir()
    done = run_gensvc([*REGION, "--output", f"variants={target}"], env)
    assert done.returncode == 2, done.stderr
    assert stats(bravo)["requests"] == 0
    assert f"{target} is a directory" in done.stderr
    assert "partial" not in done.stderr
    assert partial_files(tmp_path) == []


def test_an_output_below_a_regular_file_fails_before_any_request(tmp_path, env, bravo):
    (tmp_path / "notes.txt").write_text("mine\n")
    done = run_gensvc([*REGION, "--output", f"variants={tmp_path / 'notes.txt' / 'r.tsv'}"], env)
    assert done.returncode == 2, done.stderr
    assert stats(bravo)["requests"] == 0
    assert str(tmp_path / "notes.txt" / "r.tsv") in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_the_second_of_two_outputs_unwritable_still_fails_before_any_request(tmp_path, env, bravo):
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n22\t30000100\t.\tA\tG\t.\t.\t.\n")
    done = run_gensvc(["merge", "annotations", "--input", f"vcf={vcf}", "--output", f"vcf={tmp_path / 'm.vcf.gz'}",
                       "--output", "tsv=/proc/gensvc-merge.tsv"], env)
    assert done.returncode == 2, done.stderr
    assert "/proc/gensvc-merge.tsv" in done.stderr
    assert not (tmp_path / "m.vcf.gz").exists()
    assert partial_files(tmp_path) == []


# ---- streams and links --------------------------------------------------------------------


def fifo_with_reader(fifo: Path):
    """A FIFO at ``fifo`` and a thread reading it to its end into ``received["text"]``."""
    os.mkfifo(fifo)
    received = {}

    def read():
        with open(fifo) as handle:
            received["text"] = handle.read()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return fifo, received, reader


def test_a_fifo_output_is_streamed_to_its_reader_and_stays_a_fifo(tmp_path, env, bravo):
    fifo, received, reader = fifo_with_reader(tmp_path / "variants.tsv")
    log = tmp_path / "region.log"
    done = run_gensvc([*REGION, "--output", f"variants={fifo}", "--log", log], env)
    reader.join(timeout=60)
    assert done.returncode == 0, done.stderr
    assert ids_in(received["text"]) == truth_ids()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert not Path(f"{fifo}.prov.json").exists()
    assert '"output": "variants"' in log.read_text()  # the provenance record went to the log
    assert partial_files(tmp_path) == []


def test_a_fifo_output_of_a_failed_run_gives_its_reader_nothing_but_end_of_file(tmp_path, env, bravo):
    fifo, received, reader = fifo_with_reader(tmp_path / "variants.tsv")
    add_fault(bravo, path="*/region", kind="status", status=400, body={"error": "invalid query parameters"}, count=5)
    done = run_gensvc([*REGION, "--output", f"variants={fifo}"], env)
    reader.join(timeout=60)
    assert done.returncode == 2
    assert received == {"text": ""}  # released, not left waiting for ever
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_dash_writes_the_output_to_standard_output(tmp_path, env, bravo):
    work = tmp_path / "work"
    work.mkdir()
    done = run_gensvc([*REGION, "--format", "tsv", "--output", "variants=-"], env, cwd=work)
    assert done.returncode == 0, done.stderr
    assert ids_in(done.stdout) == truth_ids()
    assert sorted(p.name for p in work.iterdir()) == []  # no file named -, no provenance file


def test_dash_without_a_format_names_dash_not_a_staged_file(tmp_path, env, bravo):
    done = run_gensvc([*REGION, "--output", "variants=-"], env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "format of -" in done.stderr
    assert "partial" not in done.stderr
    assert stats(bravo)["requests"] == 0


def test_a_link_to_the_process_standard_output_is_streamed_not_replaced(tmp_path, env, bravo):
    # like /dev/stdout, but a link of our own: a failure here cannot replace the real one
    link = tmp_path / "stdout.tsv"
    link.symlink_to("/proc/self/fd/1")
    done = run_gensvc([*REGION, "--output", f"variants={link}"], env)
    assert done.returncode == 0, done.stderr
    assert ids_in(done.stdout) == truth_ids()
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"


def test_a_character_device_output_is_written_through(tmp_path, env, bravo):
    device = tmp_path / "null"
    try:  # a private /dev/null: a failure here cannot replace the real one
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("cannot make a device node here")
    done = run_gensvc([*REGION, "--format", "tsv", "--output", f"variants={device}"], env)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_a_symlinked_output_keeps_its_link_and_its_target_gets_the_output(tmp_path, env, bravo):
    store = tmp_path / "store"
    store.mkdir()
    target = store / "region-data.tsv"
    target.write_text("old\n")
    work = tmp_path / "work"
    work.mkdir()
    link = work / "r.tsv"
    link.symlink_to(target)
    done = run_gensvc([*REGION, "--output", f"variants={link}"], env)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and link.resolve() == target
    assert ids_in(target.read_text()) == truth_ids()
    assert read_json(f"{target}.prov.json")["output"] == "variants"  # beside the link's target
    assert partial_files(store) == [] and partial_files(work) == []


def test_a_symlinked_output_of_a_failed_run_leaves_its_target_untouched(tmp_path, env, bravo):
    store = tmp_path / "store"
    store.mkdir()
    target = store / "region-data.tsv"
    target.write_text("old\n")
    link = tmp_path / "r.tsv"
    link.symlink_to(target)
    add_fault(bravo, path="*/region", kind="status", status=400, body={"error": "invalid query parameters"}, count=5)
    done = run_gensvc([*REGION, "--output", f"variants={link}"], env)
    assert done.returncode == 2
    assert link.is_symlink() and link.resolve() == target
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in store.iterdir()) == ["region-data.tsv"]


def test_a_dangling_symlinked_output_creates_its_target(tmp_path, env, bravo):
    store = tmp_path / "store"
    store.mkdir()
    link = tmp_path / "r.tsv"
    link.symlink_to(store / "new.tsv")
    done = run_gensvc([*REGION, "--output", f"variants={link}"], env)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink()
    assert ids_in((store / "new.tsv").read_text()) == truth_ids()


def test_a_log_that_cannot_be_written_fails_in_one_line_before_any_request(tmp_path, env, bravo):
    done = run_gensvc([*REGION, "--output", f"variants={tmp_path / 'r.tsv'}", "--log", "/proc/gensvc-region.log"], env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "/proc/gensvc-region.log" in line
    assert stats(bravo)["requests"] == 0
    assert not (tmp_path / "r.tsv").exists()


def test_dash_read_only_in_part_ends_in_one_line_saying_the_output_is_incomplete(tmp_path, env, bravo):
    process = subprocess.Popen([sys.executable, "-m", "gensvc.cli", *REGION, "--format", "tsv", "--output", "variants=-"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.read(100).startswith(b"variant_id")  # far less than the output (> a pipe's 64 KiB)
    process.stdout.close()  # as `| head` does
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 2
    [line] = stderr.strip().splitlines()
    assert "output variants -" in line and "incomplete" in line
