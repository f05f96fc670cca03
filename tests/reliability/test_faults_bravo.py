"""The fault matrix for Bravo: each synchronous query kind × each fault, bounded and unbounded.

Bravo has no jobs, so "one job on the server" has no meaning here; a bounded cell's output
must be byte-identical to a clean run's, an unbounded one must end in one clear line with
nothing written, after at most max_attempts requests to the faulted path.
"""

from __future__ import annotations

import pytest

from helpers import BRAVO_TOKEN, isolated_env, write_vcf
from tests.reliability.conftest import cases
from tests.reliability.faults import (
    BOUNDED_COUNT,
    Emulated,
    assert_refused_cleanly,
    assert_requests_bounded,
    assert_same_outputs,
    assert_says_what_was_spent,
    cell_settings,
    files_under,
    inject,
    matrix,
    params,
    read_outputs,
    requests_to,
    run_cli,
    scratch_env,
)

# operation kind -> (its arguments, the path its requests go to)
QUERIES = {
    "variant": (["bravo", "variant", "--variant-id", "chr22-16389447-A-G"], "*/variant"),
    "region": (["bravo", "region", "--chrom", "chr22", "--start", "16387675", "--end", "16390908",
                "--limit", "20"], "*/region"),
    "gene": (["bravo", "gene", "--name", "ABCD1P4", "--limit", "20"], "*/gene"),
    # a VCF of a few scattered positions: /variant requests
    "frequencies": (["bravo", "frequencies"], "*/variant"),
}
# positions far apart: one /variant request each, none worth a /region
FREQUENCY_RECORDS = ["chr22\t16389447\t.\tA\tG\t.\tPASS\t.", "chr22\t30000000\t.\tC\tT\t.\tPASS\t.",
                     "chr22\t45000000\t.\tG\tA\t.\tPASS\t."]
OUTPUT = {"variant": "variants", "region": "variants", "gene": "variants", "frequencies": "table"}

CELLS = matrix("bravo", QUERIES)
XFAIL: dict[str, str] = {}


@pytest.fixture(scope="module")
def bravo():
    emulated = Emulated("bravo", tokens=[BRAVO_TOKEN])
    yield emulated
    emulated.close()


def command(tmp_path, operation: str, out):
    args, _ = QUERIES[operation]
    if operation == "frequencies":
        vcf = write_vcf(tmp_path / "in.vcf", *FREQUENCY_RECORDS)
        args = [*args, "--input", f"vcf={vcf}"]
    return [*args, "--output", f"{OUTPUT[operation]}={out}"]


def environment(tmp_path, bravo, cell) -> dict:
    # a 429 without a hint waits for the limiter's whole window: make it a second
    return isolated_env(tmp_path, GENSVC_BRAVO_URL=bravo.url, GENSVC_BRAVO_TOKEN=BRAVO_TOKEN,
                        GENSVC_BRAVO_RATE_LIMIT="1000/1", **cell_settings(cell), **scratch_env(tmp_path))


@pytest.fixture(scope="module")
def clean_outputs(bravo, tmp_path_factory):
    """Each query's output from a run without faults."""
    made = {}
    for operation in QUERIES:
        workdir = tmp_path_factory.mktemp(f"clean-{operation}")
        out = workdir / "out" / f"{operation}.tsv"
        env = isolated_env(workdir, GENSVC_BRAVO_URL=bravo.url, GENSVC_BRAVO_TOKEN=BRAVO_TOKEN)
        done = run_cli(command(workdir, operation, out), env)
        assert done.returncode == 0, done.stderr
        made[operation] = read_outputs([out])
    return made


@pytest.mark.parametrize("cell", cases(params(CELLS, XFAIL), fast=4))
def test_bravo_query_under_a_fault(tmp_path, bravo, clean_outputs, cell):
    bravo.reset()
    out = tmp_path / "out" / f"{cell.operation}.tsv"
    out.parent.mkdir()
    args, path = command(tmp_path, cell.operation, out), QUERIES[cell.operation][1]
    env = environment(tmp_path, bravo, cell)
    before = files_under([out.parent])
    undo = inject(bravo, cell, path, "GET")
    try:
        done = run_cli(args, env)
    finally:
        undo()
        if cell.lingers:
            bravo.settle()
    if cell.bounded:
        assert done.returncode == 0, done.stderr
        if cell.fault.how != "refused":
            assert bravo.fired(cell) == BOUNDED_COUNT
        assert_same_outputs([out], clean_outputs[cell.operation])
    else:
        line = assert_refused_cleanly(done, cell, [out], before, scratch=tmp_path / "scratch")
        assert_says_what_was_spent(line, cell, env)
        if cell.fault.how != "refused":
            assert_requests_bounded(cell, requests_to(bravo.stats(), path), env)
