"""Bravo operations through the CLI against the emulator, checked against its ground truth."""

import json

import pysam
import pytest

from helpers import read_json, read_tsv, run_gensvc, stats
from gensvc.emulators.bravo_data import reference_bases, variants_in

SEED_REGION = ["--chrom", "chr22", "--start", "16387675", "--end", "16390908"]


def test_info(tmp_path, env, bravo):
    out = tmp_path / "info.json"
    done = run_gensvc(["bravo", "info", "--output", f"info={out}"], env)
    assert done.returncode == 0, done.stderr
    assert set(read_json(out)) == {"dataset", "api_version"}
    prov = read_json(f"{out}.prov.json")
    assert prov["service"] == "bravo" and prov["requests"] == 1
    assert prov["versions"]["api_version"] == "v1"


def test_variant_by_id_is_the_seed_example(tmp_path, env):
    out = tmp_path / "v.json"
    done = run_gensvc(["bravo", "variant", "--variant-id", "chr22-16389447-A-G", "--output", f"variants={out}"], env)
    assert done.returncode == 0, done.stderr
    [record] = read_json(out)["variants"]
    assert record == {
        "allele_count": 6261, "allele_freq": 0.0498614, "allele_num": 125568, "alt": "G", "chrom": "22",
        "filter": "PASS", "pos": 16389447, "ref": "A", "site_quality": 255.0, "variant_id": "22-16389447-A-G",
    }


def test_variant_by_position_returns_every_allele(tmp_path, env):
    out = tmp_path / "v.tsv"
    done = run_gensvc(["bravo", "variant", "--chrom", "chr22", "--pos", "16390137", "--output", f"variants={out}"], env)
    assert done.returncode == 0, done.stderr
    assert [r["variant_id"] for r in read_tsv(out)] == ["22-16390137-T-A", "22-16390137-T-C"]


def test_region_seed_example_filter_and_sort(tmp_path, env):
    out = tmp_path / "r.tsv"
    done = run_gensvc(
        ["bravo", "region", *SEED_REGION, "--filter", "ne:PASS", "--sort", "allele_freq:desc", "--output", f"variants={out}"],
        env,
    )
    assert done.returncode == 0, done.stderr
    rows = read_tsv(out)
    truth = [v for v in variants_in("22", 16387675, 16390908) if v["filter"] != "PASS"]
    assert len(rows) == len(truth) >= 10
    freqs = [float(r["allele_freq"]) for r in rows]
    assert freqs == sorted(freqs, reverse=True)
    assert [r["variant_id"] for r in rows[:5]] == [
        "22-16390907-T-C", "22-16390901-A-C", "22-16389436-G-C", "22-16390735-A-AAGCAGCGGCTGG", "22-16390780-C-A",
    ]


def test_region_pages_are_all_followed(tmp_path, env, bravo):
    out = tmp_path / "r.json"
    done = run_gensvc(["bravo", "region", *SEED_REGION, "--limit", "7", "--output", f"variants={out}"], env)
    assert done.returncode == 0, done.stderr
    truth = variants_in("22", 16387675, 16390908)
    got = read_json(out)["variants"]
    assert [v["variant_id"] for v in got] == [v["variant_id"] for v in truth]
    pages = -(-len(truth) // 7) + (len(truth) % 7 == 0)
    assert stats(bravo)["requests"] == pages


def test_region_of_600kb_equals_ground_truth(tmp_path, env, bravo):
    out = tmp_path / "big.tsv"
    start, end = 30_000_000, 30_600_000
    done = run_gensvc(["bravo", "region", "--chrom", "22", "--start", start, "--end", end, "--output", f"variants={out}"], env)
    assert done.returncode == 0, done.stderr
    truth = variants_in("22", start, end)
    rows = read_tsv(out)
    assert [r["variant_id"] for r in rows] == [v["variant_id"] for v in truth]
    assert len({r["variant_id"] for r in rows}) == len(rows)  # no boundary duplicates
    assert len(truth) > 40_000
    by_path = stats(bravo)["by_path"]
    assert sum(n for p, n in by_path.items() if p.endswith("/region")) == sum(
        -(-len(variants_in("22", a, b)) // 1000) or 1 for a, b in [(start, start + 250_000), (start + 250_000, start + 500_000), (start + 500_000, end)]
    )


def test_region_filters_combine(tmp_path, env):
    out = tmp_path / "r.tsv"
    done = run_gensvc(
        ["bravo", "region", "--chrom", "22", "--start", "30000000", "--end", "30100000",
         "--allele-freq", "gte:0.001", "--allele-freq", "lt:0.01", "--filter", "PASS", "--sort", "allele_count:desc,pos",
         "--output", f"variants={out}"],
        env,
    )
    assert done.returncode == 0, done.stderr
    truth = [
        v for v in variants_in("22", 30000000, 30100000)
        if 0.001 <= v["allele_freq"] < 0.01 and v["filter"] == "PASS"
    ]
    truth.sort(key=lambda v: (-v["allele_count"], v["pos"]))
    rows = read_tsv(out)
    assert truth and [r["variant_id"] for r in rows] == [v["variant_id"] for v in truth]


def test_gene_seed_example(tmp_path, env):
    out = tmp_path / "g.json"
    done = run_gensvc(
        ["bravo", "gene", "--name", "ABCD1P4", "--filter", "ne:PASS", "--sort", "allele_freq:asc", "--output", f"variants={out}"],
        env,
    )
    assert done.returncode == 0, done.stderr
    result = read_json(out)
    assert result["gene"] == {"chrom": "22", "id": "ENSG00000225293", "name": "ABCD1P4", "start": 16387695, "stop": 16390888, "strand": "+"}
    assert [v["pos"] for v in result["variants"][:5]] == [16387844, 16388018, 16388182, 16388371, 16388398]


def test_vcf_output_parses_with_pysam(tmp_path, env):
    out = tmp_path / "r.vcf"
    done = run_gensvc(["bravo", "region", *SEED_REGION, "--output", f"variants={out}"], env)
    assert done.returncode == 0, done.stderr
    truth = variants_in("22", 16387675, 16390908)
    with pysam.VariantFile(str(out)) as vcf:
        records = list(vcf)
        assert "AF" in vcf.header.info
    assert len(records) == len(truth)
    first = next(r for r in records if r.id == "22-16389447-A-G")
    assert first.info["AF"] == pytest.approx((0.0498614,))
    assert first.info["AN"] == 125568


def test_server_refusal_fails_at_once_with_its_message(tmp_path, env, bravo):
    out = tmp_path / "g.tsv"
    done = run_gensvc(["bravo", "gene", "--name", "NOSUCHGENE1", "--output", f"variants={out}"], env)
    assert done.returncode == 2
    assert "Gene with name or identifier equal to NOSUCHGENE1 was not found." in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert stats(bravo)["requests"] == 1  # a 400 is never retried
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--chrom", "chr22", "--start", "-5", "--end", "10"],
        ["--chrom", "chr99", "--start", "1", "--end", "10"],
        ["--chrom", "22", "--start", "1", "--end", "10", "--limit", "5000"],
        ["--chrom", "22", "--start", "1", "--end", "10", "--sort", "bogus:desc"],
        ["--chrom", "22", "--start", "10", "--end", "10"],
        ["--chrom", "22", "--start", "1"],
    ],
)
def test_invalid_params_are_refused_before_any_request(tmp_path, env, bravo, args):
    out = tmp_path / "r.tsv"
    done = run_gensvc(["bravo", "region", *args, "--output", f"variants={out}"], env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert stats(bravo)["requests"] == 0
    assert not out.exists()


def write_vcf(path, records, chrom_prefix=""):
    lines = ["##fileformat=VCFv4.2", '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">']
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    for chrom, pos, ref, alts in records:
        lines.append(f"{chrom_prefix}{chrom}\t{pos}\t.\t{ref}\t{','.join(alts)}\t50\tPASS\tDP=10")
    path.write_text("\n".join(lines) + "\n")


def frequency_input(tmp_path):
    """Known variants (some multiallelic, some indels), a few absent ones, chr-prefixed names."""
    dense = variants_in("22", 30_000_000, 30_020_000)[::7]
    sparse = [variants_in("22", p, p + 5000)[0] for p in range(31_000_000, 36_000_000, 400_000)]
    seed = [v for v in variants_in("22", 16387000, 16391000) if v["pos"] in (16390137, 16390735)]
    known = sorted(dense + sparse + seed, key=lambda v: (v["pos"], v["alt"]))
    records, by_site = [], {}
    for v in known:
        by_site.setdefault((v["chrom"], v["pos"], v["ref"]), []).append(v["alt"])
    records = [(c, p, r, alts) for (c, p, r), alts in by_site.items()]
    records.append(("22", 30_000_001, "A", ["ACGTACGTAAAA"]))  # not in Bravo
    records.append(("22", 40_000_003, "G", ["T"]))
    records.sort(key=lambda r: r[1])
    return known, records


def test_frequencies_match_ground_truth(tmp_path, env, bravo):
    known, records = frequency_input(tmp_path)
    vcf = tmp_path / "in.vcf"
    write_vcf(vcf, records, chrom_prefix="chr")
    out = tmp_path / "freq.tsv"
    done = run_gensvc(["bravo", "frequencies", "--input", f"vcf={vcf}", "--output", f"table={out}"], env)
    assert done.returncode == 0, done.stderr
    rows = read_tsv(out)
    assert len(rows) == sum(len(r[3]) for r in records)
    truth = {v["variant_id"]: v for v in known}
    for row in rows:
        assert row["chrom"] == "chr22"
        key = f"22-{row['pos']}-{row['ref']}-{row['alt']}"
        if key in truth:
            assert row["found"] == "true"
            assert row["bravo_variant_id"] == key
            assert float(row["allele_freq"]) == truth[key]["allele_freq"]
            assert int(row["allele_count"]) == truth[key]["allele_count"]
            assert row["filter"] == truth[key]["filter"]
        else:
            assert row["found"] == "false" and row["allele_freq"] == ""
    requests_made = stats(bravo)["requests"]
    assert requests_made < len(rows) / 3  # planned, not one per variant
    assert read_json(f"{out}.prov.json")["requests"] == requests_made


def test_frequencies_reads_bgzipped_input(tmp_path, env):
    known, records = frequency_input(tmp_path)
    plain = tmp_path / "in.vcf"
    write_vcf(plain, records)
    gz = tmp_path / "in.vcf.gz"
    pysam.tabix_compress(str(plain), str(gz))
    out = tmp_path / "freq.tsv"
    done = run_gensvc(["bravo", "frequencies", "--input", f"vcf={gz}", "--output", f"table={out}"], env)
    assert done.returncode == 0, done.stderr
    assert sum(r["found"] == "true" for r in read_tsv(out)) == len(known)


def test_frequencies_refuses_malformed_vcf_before_any_request(tmp_path, env, bravo):
    bad = tmp_path / "bad.vcf"
    bad.write_text("this is not a vcf\n")
    out = tmp_path / "freq.tsv"
    done = run_gensvc(["bravo", "frequencies", "--input", f"vcf={bad}", "--output", f"table={out}"], env)
    assert done.returncode == 2
    assert "bad.vcf" in done.stderr and "Traceback" not in done.stderr
    assert stats(bravo)["requests"] == 0


def test_frequencies_missing_input(tmp_path, env, bravo):
    out = tmp_path / "freq.tsv"
    done = run_gensvc(["bravo", "frequencies", "--input", f"vcf={tmp_path / 'absent.vcf'}", "--output", f"table={out}"], env)
    assert done.returncode == 2
    assert "does not exist" in done.stderr
    assert stats(bravo)["requests"] == 0


def frequency_rows(tmp_path, env, records):
    vcf = tmp_path / "in.vcf"
    write_vcf(vcf, records, chrom_prefix="chr")
    out = tmp_path / "freq.tsv"
    done = run_gensvc(["bravo", "frequencies", "--input", f"vcf={vcf}", "--output", f"table={out}"], env)
    assert done.returncode == 0, done.stderr
    return {(row["chrom"], row["pos"], row["ref"], row["alt"]): row for row in read_tsv(out)}


def anchored(v):
    """A Bravo SNV spelled from the base before it, so its trimmed spelling starts after POS."""
    before = reference_bases(v["chrom"], v["pos"] - 1, 1)
    return (v["chrom"], v["pos"] - 1, before + v["ref"], [before + v["alt"]])


def test_frequencies_find_alts_whose_trimmed_spelling_starts_after_pos(tmp_path, env):
    stretch = variants_in("22", 30_000_000, 30_020_000)[::7]
    last = next(v for v in variants_in("22", 30_020_100, 30_030_000) if len(v["ref"]) == len(v["alt"]) == 1)
    records = [
        ("22", 16390924, "AT", ["AC"]),  # lone: Bravo has 22-16390925-T-C
        ("1", 55051039, "CGACTTACCA", ["CG"]),  # lone: Bravo has 1-55051040-GACTTACCA-G
        ("17", 7681923, "CA", ["GG", "GA", "CG"]),  # ALT 3 is 17-7681924-A-G
        *[(v["chrom"], v["pos"], v["ref"], [v["alt"]]) for v in stretch],
        anchored(last),  # the last record of a planned stretch
    ]
    _, last_pos, last_ref, [last_alt] = anchored(last)
    rows = frequency_rows(tmp_path, env, records)
    expected = {
        ("chr22", "16390924", "AT", "AC"): "22-16390925-T-C",
        ("chr1", "55051039", "CGACTTACCA", "CG"): "1-55051040-GACTTACCA-G",
        ("chr17", "7681923", "CA", "GA"): "17-7681923-C-G",
        ("chr17", "7681923", "CA", "CG"): "17-7681924-A-G",
        ("chr22", str(last_pos), last_ref, last_alt): last["variant_id"],
    }
    truth = {v["variant_id"]: v for c, a, b in [("22", 16390925, 16390925), ("1", 55051040, 55051040), ("17", 7681923, 7681924)]
             for v in variants_in(c, a, b)} | {last["variant_id"]: last}
    for key, variant_id in expected.items():
        assert rows[key]["found"] == "true", key
        assert rows[key]["bravo_variant_id"] == variant_id
        assert float(rows[key]["allele_freq"]) == truth[variant_id]["allele_freq"]
    assert rows[("chr17", "7681923", "CA", "GG")]["found"] == "false"  # an MNV Bravo does not have
    assert all(rows[("chr22", str(v["pos"]), v["ref"], v["alt"])]["found"] == "true" for v in stretch)


def test_frequencies_read_lowercase_alleles_as_bases(tmp_path, env):
    records = [("22", 16389447, "a", ["g"]), ("22", 16390137, "t", ["c", "A"]), ("22", 16390735, "a", ["aAGCAGCGGctgg"])]
    rows = frequency_rows(tmp_path, env, records)
    assert {key: row["bravo_variant_id"] for key, row in rows.items()} == {
        ("chr22", "16389447", "a", "g"): "22-16389447-A-G",
        ("chr22", "16390137", "t", "c"): "22-16390137-T-C",
        ("chr22", "16390137", "t", "A"): "22-16390137-T-A",
        ("chr22", "16390735", "a", "aAGCAGCGGctgg"): "22-16390735-A-AAGCAGCGGCTGG",
    }
    assert all(row["found"] == "true" and row["allele_freq"] for row in rows.values())


def cohort_input():
    """Three samples of one population: common sites all carry, rare ones each its own; one
    sample spells its ALTs from the base before (trimmed, they start after POS)."""
    population = variants_in("22", 30_000_000, 30_040_000)
    common = population[::11]
    samples = [common + population[3 + n::29] for n in range(3)]
    samples[2] = samples[2][:40] + [v for v in samples[2][40:] if len(v["ref"]) == len(v["alt"]) == 1]
    records = []
    for n, variants in enumerate(samples):
        by_site = {}
        for v in sorted(variants, key=lambda v: (v["pos"], v["alt"])):
            if n == 2 and len(v["ref"]) == len(v["alt"]) == 1 and v["pos"] > 30_020_000:
                by_site.setdefault(anchored(v)[:3], []).extend(anchored(v)[3])
            else:
                by_site.setdefault((v["chrom"], v["pos"], v["ref"]), []).append(v["alt"])
        by_site[("22", 30_000_003 + n, "G")] = ["T"]  # novel to Bravo, one each
        records.append(sorted(((c, p, r, alts) for (c, p, r), alts in by_site.items()), key=lambda r: r[1]))
    return records


def test_a_cohort_is_asked_for_once_and_gets_each_samples_own_table_as_a_run_of_its_own_would(tmp_path, env, bravo):
    records = cohort_input()
    vcfs = [tmp_path / f"s{n}.vcf" for n in range(len(records))]
    for vcf, sample in zip(vcfs, records):
        write_vcf(vcf, sample, chrom_prefix="chr")
    alone, separate = [], 0
    for n, vcf in enumerate(vcfs):
        out = tmp_path / "alone" / f"s{n}.tsv"
        bravo.reset()
        done = run_gensvc(["bravo", "frequencies", "--input", f"vcf={vcf}", "--output", f"table={out}"], env)
        assert done.returncode == 0, done.stderr
        alone.append(out.read_bytes())
        separate += stats(bravo)["requests"]
    bravo.reset()
    tables = [tmp_path / "cohort" / f"s{n}.tsv" for n in range(len(vcfs))]
    done = run_gensvc(["bravo", "frequencies", *[a for vcf in vcfs for a in ("--input", f"vcf={vcf}")],
                       *[a for table in tables for a in ("--output", f"table={table}")]], env)
    assert done.returncode == 0, done.stderr
    assert [table.read_bytes() for table in tables] == alone  # each sample's rows, in its order and spelling
    joint = stats(bravo)["requests"]
    assert joint < separate / 2  # the shared sites were asked for once
    for table, sample in zip(tables, records):
        rows = read_tsv(table)
        assert len(rows) == sum(len(alts) for *_, alts in sample)
        assert sum(row["found"] == "true" for row in rows) == len(rows) - 1  # all but the novel one
        prov = read_json(f"{table}.prov.json")
        assert prov["requests"] == joint and prov["output"] == "table"


def test_a_cohort_with_fewer_tables_than_vcfs_is_refused_before_any_request(tmp_path, env, bravo):
    vcfs = [tmp_path / f"s{n}.vcf" for n in range(2)]
    for vcf in vcfs:
        write_vcf(vcf, [("22", 16389447, "A", ["G"])])
    done = run_gensvc(["bravo", "frequencies", "--input", f"vcf={vcfs[0]}", "--input", f"vcf={vcfs[1]}",
                       "--output", f"table={tmp_path / 'only.tsv'}"], env)
    assert done.returncode == 2
    assert "2 vcf inputs but 1 table outputs" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert stats(bravo)["requests"] == 0 and not (tmp_path / "only.tsv").exists()
