"""Requests made by `bravo frequencies` on an exome-like VCF, side by side with
the lower bound (the cheapest plan knowing every record Bravo holds) and with one
request per variant; then a cohort of exome-like samples drawn from one population of
sites: the requests of a plan per sample, of one joint plan, its lower bound, and of a
rerun after the tables were deleted (the response cache).

Usage: python bench/frequencies.py [--variants 5000] [--genes 200] [--samples 20]
"""

from __future__ import annotations

import argparse
import bisect
import functools
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

import requests

from gensvc.alleles import minimal
from gensvc.emulators.bravo_data import BLOCK_SIZE, SYNTHETIC_CHROMOSOME_LENGTHS, rows_in, variants_in
from gensvc.emulators.server import start_emulator
from gensvc.services.bravo_cover import walk
from table import record  # bench/table.py: a row of docs/performance.md

TOKEN = "bench-token-0000"
PAGE = 1000
MAX_REGION = 250_000


def exome_like(n_variants: int, n_genes: int, seed: int = 7) -> list[tuple[str, int, str, str]]:
    """Variants in exons of random genes: most known to Bravo, some novel."""
    rng = random.Random(seed)
    chroms = [c for c in SYNTHETIC_CHROMOSOME_LENGTHS if c not in ("Y", "M")]
    records = []
    per_gene = n_variants // n_genes
    for _ in range(n_genes):
        chrom = rng.choice(chroms)
        start = rng.randrange(1_000_000, SYNTHETIC_CHROMOSOME_LENGTHS[chrom] - 200_000)
        length = rng.randrange(5_000, 120_000)
        exons = sorted(rng.sample(range(start, start + length, 200), 9))
        known = [v for e in exons for v in variants_in(chrom, e, e + 150)]
        for v in rng.sample(known, min(len(known), int(per_gene * 0.85))):
            records.append((chrom, v["pos"], v["ref"], v["alt"]))
        while len(records) % per_gene:
            pos = rng.choice(exons) + rng.randrange(150)
            records.append((chrom, pos, "A", "T"))  # novel: not in Bravo
    return records


def write_vcf(path: Path, records) -> None:
    order = {c: i for i, c in enumerate(SYNTHETIC_CHROMOSOME_LENGTHS)}
    records = sorted(set(records), key=lambda r: (order[r[0]], r[1], r[2], r[3]))
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += [f"chr{c}\t{p}\t.\t{r}\t{a}\t.\tPASS\t." for c, p, r, a in records]
    path.write_text("\n".join(lines) + "\n")


def lower_bound(records) -> int:
    """Fewest requests any plan reading pages in position order could use, knowing every
    record Bravo holds: per chromosome, each query starts at the first site not yet
    answered and takes the first PAGE records from there (or its whole window); a site is
    answered once every record at its positions was in one page. The first site is in some
    query of any plan, and no query holding it reaches further than one starting at it, so
    this greedy cover is the least (bravo_cover says the same of the walk itself, which
    learns where a page ends only from the page)."""
    by_chrom: dict[str, set[int]] = {}
    for site in records:
        by_chrom.setdefault(site[0], set()).update(site_positions(site))
    return sum(oracle_cover(chrom, sorted(positions)) for chrom, positions in by_chrom.items())


def site_positions(site) -> set[int]:
    """Where a matching Bravo record can sit: at POS, or where the trimmed ALT starts."""
    _, pos, ref, alt = site
    return {pos, minimal(pos, ref, alt)[0]}


def oracle_cover(chrom: str, positions: list[int]) -> int:
    count, first = 0, 0
    while first < len(positions):
        start = positions[first]
        last = bisect.bisect_right(positions, start + MAX_REGION - 1) - 1
        held = record_positions(chrom, start, positions[last], PAGE + 1)
        count += 1
        if last == first or len(held) <= PAGE:  # one /variant, or the whole window in one page
            first = last + 1
            continue
        page_end, after = held[PAGE - 1], held[PAGE]
        answered_to = page_end + 1 if after > page_end else page_end  # sites before this are answered
        first = bisect.bisect_left(positions, answered_to, first, last + 1)
    return count


def record_positions(chrom: str, start: int, end: int, wanted: int) -> list[int]:
    """Positions of Bravo's first ``wanted`` records in [start, end] (fewer if it holds fewer)."""
    block = (start - 1) // BLOCK_SIZE
    here = block_positions(chrom, block)
    found = list(here[bisect.bisect_left(here, start):])
    while len(found) < wanted and (block + 1) * BLOCK_SIZE < end:
        block += 1
        found += block_positions(chrom, block)
    found = found[:wanted]
    return found[:bisect.bisect_right(found, end)]


@functools.lru_cache(maxsize=None)
def block_positions(chrom: str, block: int) -> array:
    """Positions of the records of one of the emulator's 10 kb blocks, kept small: every
    sample's walk reads the same genes again."""
    return array("l", (row.pos for row in rows_in(chrom, block * BLOCK_SIZE + 1, (block + 1) * BLOCK_SIZE)))


def partition_bound(records) -> int:
    """The bound of plans that split the sites into groups and read each group's window
    to its end (Bravo's next links, a last empty page when the records fill the pages):
    what the planner before the walk could at best reach."""
    total = 0
    by_chrom: dict[str, list[int]] = {}
    for chrom, pos, _, _ in records:
        by_chrom.setdefault(chrom, []).append(pos)
    for chrom, all_positions in by_chrom.items():
        for positions in stretches(sorted(set(all_positions))):
            total += cheapest_partition(chrom, positions)
    return total


def stretches(positions: list[int]):
    """Runs of positions no query could join across (gaps over the region limit)."""
    run = [positions[0]]
    for pos in positions[1:]:
        if pos - run[-1] > MAX_REGION:
            yield run
            run = []
        run.append(pos)
    yield run


def cheapest_partition(chrom: str, positions: list[int]) -> int:
    truth = [v["pos"] for v in variants_in(chrom, positions[0], positions[-1])]
    best = [0] * (len(positions) + 1)
    for j in range(len(positions)):
        best[j + 1] = best[j] + 1
        i = j
        while i > 0 and positions[j] - positions[i - 1] <= MAX_REGION:
            i -= 1
            held = bisect.bisect_right(truth, positions[j]) - bisect.bisect_left(truth, positions[i])
            best[j + 1] = min(best[j + 1], best[i] + max(1, math.ceil((held + 1) / PAGE)))
    return best[-1]


def cohort(n_samples: int, n_genes: int, seed: int = 11) -> list[list[tuple[str, int, str, str]]]:
    """Exome-like samples drawn from one population of sites: in each gene's exons a few
    common variants every sample carries, and rare ones (Bravo's, or novel) each sample draws
    for itself, so two samples share a rare one only by chance."""
    rng = random.Random(seed)
    chroms = [c for c in SYNTHETIC_CHROMOSOME_LENGTHS if c not in ("Y", "M")]
    samples: list[list] = [[] for _ in range(n_samples)]
    for _ in range(n_genes):
        chrom = rng.choice(chroms)
        start = rng.randrange(1_000_000, SYNTHETIC_CHROMOSOME_LENGTHS[chrom] - 200_000)
        exons = sorted(rng.sample(range(start, start + rng.randrange(5_000, 120_000), 200), 9))
        known = [(chrom, v["pos"], v["ref"], v["alt"]) for e in exons for v in variants_in(chrom, e, e + 150)]
        rng.shuffle(known)
        common, rare = known[:10], known[10:]
        for sample in samples:
            sample += common
            sample += rng.sample(rare, min(len(rare), 12))
            sample += [(chrom, rng.choice(exons) + rng.randrange(150), "A", "T") for _ in range(3)]  # novel
    return samples


def walk_requests(records) -> int:
    """Requests `bravo frequencies` makes for these sites, by its own walk (bravo_cover)
    against the emulator's data in process: what a run over HTTP counts, without the run."""
    by_chrom: dict[str, set[int]] = {}
    for site in records:
        by_chrom.setdefault(site[0], set()).update(site_positions(site))
    count = 0

    def read(chrom, start, end):
        nonlocal count
        count += 1
        if start == end:
            return None
        held = record_positions(chrom, start, end, PAGE)
        if len(held) < PAGE:  # a full page links to the next, so only a short one is the last
            return None
        if held[-1] > start:
            return held[-1]
        count += 1  # a /variant for all the records at the site
        return start + 1

    for chrom, positions in by_chrom.items():
        for _ in walk(sorted(positions), lambda start, end, chrom=chrom: read(chrom, start, end)):
            pass
    return count


def run_frequencies(bravo, env: dict, vcfs: list[Path], tables: list[Path], *extra: str) -> tuple[int, float]:
    """One `bravo frequencies` over HTTP: the requests the emulator counted, and the seconds."""
    requests.delete(f"{bravo.root}/_emulator/stats", timeout=5).raise_for_status()
    command = [sys.executable, "-m", "gensvc.cli", "bravo", "frequencies", *extra,
               *[a for vcf in vcfs for a in ("--input", f"vcf={vcf}")],
               *[a for table in tables for a in ("--output", f"table={table}")]]
    started = time.monotonic()
    subprocess.run(command, env=env, check=True)
    seconds = time.monotonic() - started
    return requests.get(f"{bravo.root}/_emulator/stats", timeout=5).json()["requests"], seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=5000)
    parser.add_argument("--genes", type=int, default=200)
    parser.add_argument("--samples", type=int, default=20, help="exome-like samples of the cohort")
    args = parser.parse_args()
    records = exome_like(args.variants, args.genes)
    samples = cohort(args.samples, args.genes)
    # only the count of requests matters here, so neither side limits the rate
    with tempfile.TemporaryDirectory() as tmp, start_emulator("bravo", tokens=[TOKEN], rate_limit=(10**6, 900)) as bravo:
        tmp = Path(tmp)
        env = dict(os.environ, GENSVC_BRAVO_URL=bravo.url, GENSVC_BRAVO_TOKEN=TOKEN,
                   GENSVC_BRAVO_RATE_LIMIT="off", GENSVC_STATE_DIR=str(tmp / "state"))
        vcf = tmp / "exome.vcf"
        write_vcf(vcf, records)
        # no cache: each figure counts what Bravo is asked, not what an earlier run kept
        made, seconds = run_frequencies(bravo, env, [vcf], [tmp / "table.tsv"], "--cache", "false")
        vcfs = [tmp / f"sample{n}.vcf" for n in range(len(samples))]
        for path, sample in zip(vcfs, samples):
            write_vcf(path, sample)
        tables = [tmp / "cohort" / f"sample{n}.tsv" for n in range(len(samples))]
        joint, joint_seconds = run_frequencies(bravo, env, vcfs, tables)  # the cache on, as users run it
        for table in tables:
            table.unlink()
        rerun, _ = run_frequencies(bravo, env, vcfs, tables)
    sites = len(set(records))
    bound = lower_bound(records)
    partition = partition_bound(records)
    print(f"exome-like VCF: {sites} variants in {args.genes} genes")
    print(f"requests made by frequencies: {made} (in {seconds:.1f} s against the unlimited emulator)")
    print(f"lower bound (oracle plan):     {bound}    made / bound        = {made / bound:.2f}")
    print(f"bound of plans reading whole windows: {partition} (the planner before the walk made 803 on the default VCF)")
    print(f"one request per variant:      {sites}    made / per-variant  = {made / sites:.3f}")
    record(f"bravo frequencies, exome-like VCF ({sites} variants, {args.genes} genes): requests / lower bound",
           f"{made} requests", f"lower bound {bound}", made / bound, "<= 1.02x", made / bound <= 1.02)
    print(f"at Bravo's 180 per 15 min: {made / 180 * 15:.0f} min, against {sites / 180 * 15:.0f} min one per variant")

    union = sorted({site for sample in samples for site in sample})
    separate = sum(walk_requests(sample) for sample in samples)
    joint_bound = lower_bound(union)
    simulated = walk_requests(union)
    per_sample = sum(len(set(sample)) for sample in samples) / len(samples)
    print(f"\ncohort: {len(samples)} exome-like samples of {per_sample:.0f} variants each, {len(union)} distinct, "
          f"in {args.genes} genes")
    print(f"{len(samples)} separate plans:        {separate} requests (each sample's own walk, counted in process)")
    print(f"joint plan (one run, all VCFs): {joint} requests (in {joint_seconds:.1f} s; the same walk in process: {simulated})")
    print(f"joint lower bound:            {joint_bound}    joint / bound    = {joint / joint_bound:.3f}")
    print(f"                                     joint / separate = {joint / separate:.3f}")
    print(f"rerun after deleting the tables: {rerun} requests (answers from the cache)")
    record(f"bravo frequencies, cohort of {len(samples)} exome-like samples: joint plan / its lower bound",
           f"{joint} requests", f"lower bound {joint_bound}", joint / joint_bound, "<= 1.05x", joint / joint_bound <= 1.05)
    record(f"bravo frequencies, cohort of {len(samples)} exome-like samples: joint plan / {len(samples)} separate plans",
           f"{joint} requests", f"{separate} requests", joint / separate, "<= 0.25x", joint / separate <= 0.25)
    record(f"bravo frequencies, cohort of {len(samples)}: rerun after deleting the outputs (response cache)",
           f"{rerun} requests", f"first run {joint} requests", rerun / joint, "0 requests", rerun == 0)
    if simulated != joint:
        print(f"warning: the walk in process ({simulated}) and the run ({joint}) disagree", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
