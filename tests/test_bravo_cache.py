"""Bravo's answers kept on disk (frequencies' cache), against the emulator over HTTP: a
rerun asks nothing, another dataset is asked again, the cache keeps within its bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from gensvc.emulators.server import start_emulator
from helpers import BRAVO_TOKEN, isolated_env, read_json, read_tsv, reset_emulator, run_gensvc, stats
from test_bravo_operations import frequency_input, write_vcf

FREEZE8 = "/freeze8/hg38"
NO_VERSION = "/bravo"  # a server mounted where its URL names no dataset or version


@pytest.fixture(scope="module")
def server():
    with start_emulator("bravo", tokens=[BRAVO_TOKEN],
                        datasets={FREEZE8: "TOPMed freeze8 (gensvc emulator)", NO_VERSION: "a local copy"}) as emulator:
        yield emulator


@pytest.fixture
def bravo(server):
    reset_emulator(server)
    return server


@pytest.fixture
def vcf(tmp_path) -> Path:
    _, records = frequency_input(tmp_path)
    path = tmp_path / "in.vcf"
    write_vcf(path, records, chrom_prefix="chr")
    return path


def environment(tmp_path, bravo, prefix="/freeze5/hg38") -> dict:
    return isolated_env(tmp_path, GENSVC_BRAVO_URL=f"{bravo.root}{prefix}/api/v1/", GENSVC_BRAVO_TOKEN=BRAVO_TOKEN)


def frequencies(env, vcf, out, *extra) -> bytes:
    done = run_gensvc(["bravo", "frequencies", "--input", f"vcf={vcf}", "--output", f"table={out}", *extra], env)
    assert done.returncode == 0, done.stderr
    return Path(out).read_bytes()


def asked(bravo) -> int:
    """Requests since the last look, and the counters zeroed."""
    count = stats(bravo)["requests"]
    reset_emulator(bravo)
    return count


def cache_bytes(tmp_path) -> int:
    return sum(p.stat().st_size for p in (tmp_path / "state" / "cache" / "bravo").rglob("*.json.gz"))


def test_a_rerun_after_the_outputs_are_deleted_asks_bravo_nothing(tmp_path, bravo, vcf):
    env = environment(tmp_path, bravo)
    out = tmp_path / "freq.tsv"
    first = frequencies(env, vcf, out)
    assert asked(bravo) > 3
    out.unlink()
    Path(f"{out}.prov.json").unlink()
    assert frequencies(env, vcf, out) == first
    assert asked(bravo) == 0
    prov = read_json(f"{out}.prov.json")
    assert prov["requests"] == 0 and prov["details"]["cache"]["answered"] > 3


def test_with_the_cache_off_every_run_asks_bravo_and_nothing_is_kept(tmp_path, bravo, vcf):
    env = environment(tmp_path, bravo)
    out = tmp_path / "freq.tsv"
    first = frequencies(env, vcf, out, "--cache", "false")
    needed = asked(bravo)
    assert frequencies(env, vcf, out, "--cache", "false") == first
    assert asked(bravo) == needed > 3
    assert not (tmp_path / "state" / "cache").exists()


def test_another_dataset_on_the_same_server_is_asked_again_and_then_kept_apart(tmp_path, bravo, vcf):
    out = tmp_path / "freq.tsv"
    table = frequencies(environment(tmp_path, bravo), vcf, out)
    needed = asked(bravo)
    freeze8 = environment(tmp_path, bravo, FREEZE8)  # same server, same state dir, same query
    assert frequencies(freeze8, vcf, out) == table  # (the emulator serves one data set under both)
    assert asked(bravo) == needed
    assert stats(bravo)["requests"] == 0
    frequencies(freeze8, vcf, out)
    frequencies(environment(tmp_path, bravo), vcf, out)
    assert asked(bravo) == 0  # each version kept, neither overwrote the other


def test_where_the_url_names_no_version_bravo_is_asked_its_version_once_a_run(tmp_path, bravo, vcf):
    env = environment(tmp_path, bravo, NO_VERSION)
    out = tmp_path / "freq.tsv"
    table = frequencies(env, vcf, out)
    by_path = stats(bravo)["by_path"]
    assert by_path[f"{NO_VERSION}/api/v1/"] == 1 and asked(bravo) > 3
    assert frequencies(env, vcf, out) == table
    assert stats(bravo)["by_path"] == {f"{NO_VERSION}/api/v1/": 1}  # the version, then all from the cache


def test_the_cache_keeps_within_its_bound_the_answers_used_last(tmp_path, bravo, vcf):
    env = environment(tmp_path, bravo)
    out = tmp_path / "freq.tsv"
    bound = 0.01  # MB: fewer than the run's answers fit
    table = frequencies(env, vcf, out, "--cache-max-mb", str(bound))
    needed = asked(bravo)
    assert 0 < cache_bytes(tmp_path) <= bound * 1024 * 1024
    assert frequencies(env, vcf, out, "--cache-max-mb", str(bound)) == table
    again = asked(bravo)
    assert 0 < again < needed  # some answers were kept, not all
    assert 0 < cache_bytes(tmp_path) <= bound * 1024 * 1024
    assert len(read_tsv(out)) > 0


def test_a_lower_bound_than_the_cache_fills_is_kept_by_a_run_that_finds_every_answer_there(tmp_path, bravo, vcf):
    env = environment(tmp_path, bravo)
    out = tmp_path / "freq.tsv"
    table = frequencies(env, vcf, out)
    assert asked(bravo) > 3 and cache_bytes(tmp_path) > 0.01 * 1024 * 1024
    assert frequencies(env, vcf, out, "--cache-max-mb", "0.01") == table
    assert asked(bravo) == 0  # every answer found, none kept anew
    assert 0 < cache_bytes(tmp_path) <= 0.01 * 1024 * 1024
