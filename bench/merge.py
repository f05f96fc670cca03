"""`gensvc merge annotations` against Debian's `bcftools annotate` and `vcfanno`, side by side in one run.

A synthetic sample VCF (default 1,000,000 records: SNVs, insertions, deletions, MNPs,
multiallelic sites, one sample column) and the three sources as the services write them
(Bravo frequencies TSV, OpenCRAVAT variant TSV report, CGI alterations.tsv) are generated
with a fixed seed. Then, in one run:

- gensvc: `python -m gensvc.cli merge annotations` with the VCF and the three sources,
  writing a bgzipped VCF, its tabix index and the per-ALT TSV;
- bcftools: the normal way to put three sources on a VCF with bcftools, three
  `bcftools annotate -a SOURCE -c COLUMNS -h HEADER` passes piped together (uncompressed
  BCF between them, bgzipped VCF out), then `bcftools index -t`. bcftools cannot read the
  services' own files (OpenCRAVAT and CGI write trimmed alleles with `-`, CGI keeps the input's
  columns, Bravo has a header row and empty cells), so each source is also written as a
  bcftools annotation table: VCF-spelled alleles, the same (escaped) values, bgzipped and
  tabix-indexed. Making those tables is NOT timed: bcftools gets that work for free.
- vcfanno: `vcfanno -p 2 CONFIG.toml` (Debian's 0.3.5, two cores as the machine has), its output
  bgzipped (`bgzip -c`) and indexed (`tabix -p vcf`). vcfanno reads its sources as bgzipped,
  indexed VCFs: each source's table above is also written as such a VCF (one record per ALT,
  the values as INFO fields of the same names), untimed, and a TOML config names their fields
  with the op `self` (Float fields declared String: vcfanno rounds a Float to 4 digits).

Printed: wall time and peak RSS of each (for bcftools the three annotate processes run at the
same time, so their peak RSS values are added; likewise vcfanno and bgzip), the time ratios,
and a spot check that the three outputs carry the same values on a sample of records (every
50th). Each figure is also recorded for docs/performance.md (`bench.table.record`).

Goals (issue 15): at most 1.0x bcftools' time and 0.6x vcfanno's, peak RSS of all of gensvc's
processes at most 200 MB.

Usage: python bench/merge.py [--variants 1000000] [--repeat 2] [--workdir DIR]
bcftools, vcfanno and bgzip/tabix (Debian's `tabix`): installed with `apt-get install -y PACKAGE`
if missing (as root), else the command is printed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from table import record  # noqa: E402  (bench/table.py: a row of docs/performance.md)
from gensvc.merge import CGI_DEFAULT  # noqa: E402  (bcftools gets the columns merge carries)

BASES = "ACGT"
CHROMS = [str(n) for n in range(1, 23)]
OC_BASE = ["note_variant", "coding", "hugo", "transcript", "so", "exonno", "cchange", "achange", "all_mappings", "gposend"]
OC_TAGS = ["numsample", "samples", "tags"]
OC_ORIGINAL = ["original_input.chrom", "original_input.pos", "original_input.ref_base", "original_input.alt_base"]
OC_VCFINFO = ["vcfinfo.phred", "vcfinfo.filter", "vcfinfo.zygosity", "vcfinfo.alt_reads", "vcfinfo.tot_reads",
              "vcfinfo.af", "vcfinfo.hap_block", "vcfinfo.hap_strand", "varmeta.zygosity"]
OC_ANNOTATORS = ["clinvar.sig", "clinvar.disease", "clinvar.rev_stat", "clinvar.id", "gnomad3.af", "sift.score",
                 "sift.prediction", "vest.score"]
OC_HEADER = ["uid", "chrom", "pos", "ref_base", "alt_base", *OC_BASE, *OC_TAGS, *OC_ORIGINAL, *OC_VCFINFO, *OC_ANNOTATORS]
CGI_HEADER = ["Input ID", "CHROMOSOME", "POSITION", "REF", "ALT", "#CHROM", "POS", "ID", "QUAL", "FILTER", "INFO",
              "FORMAT", "SAMPLE", "ALT_TYPE", "STRAND", "CGI-INFO", "CGI-Gene", "CGI-Protein Change",
              "CGI-Oncogenic Summary", "CGI-Oncogenic Prediction", "CGI-External oncogenic annotation", "CGI-Mutation",
              "CGI-Consequence", "CGI-Transcript", "CGI-STRAND", "CGI-Type", "CGI-HGVS", "CGI-HGVSc", "CGI-HGVSp"]
SIG = ["Pathogenic", "Likely pathogenic", "Uncertain significance", "Likely benign", "Benign"]
DISEASE = ["Hereditary cancer-predisposing syndrome", "not provided", "not specified", "Lynch syndrome"]
SUMMARY = ["oncogenic (predicted and annotated)", "oncogenic (annotated)", "oncogenic (predicted)", "non-oncogenic"]
PREDICTION = ["driver (oncodriveMUT)", "passenger (oncodriveMUT)", "driver (boostDM: non-tissue-specific model)"]
CONSEQUENCE = ["missense_variant", "synonymous_variant", "frameshift_variant", "inframe_deletion", "stop_gained",
               "intron_variant"]
FILTERS = ["PASS", "PASS", "PASS", "SVM", "DISC"]


# ---- data -----------------------------------------------------------------------------------


def oc_spelling(chrom, pos, ref, alt):
    while ref and alt and ref[0] == alt[0]:
        ref, alt, pos = ref[1:], alt[1:], pos + 1
    while ref and alt and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    return f"chr{chrom}", pos, ref or "-", alt or "-"


def cgi_spelling(ref, alt):
    while ref and alt and ref[0] == alt[0]:
        ref, alt = ref[1:], alt[1:]
    while ref and alt and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    return ref or "-", alt or "-"


def escape(value: str) -> str:
    for plain, coded in (("%", "%25"), (":", "%3A"), (";", "%3B"), ("=", "%3D"), (",", "%2C"), (" ", "%20")):
        value = value.replace(plain, coded)
    return value


def records(n: int, rng: random.Random):
    """(chrom, pos, ref, [alts]) sorted: 80% SNVs, 5% multiallelic, 7% deletions, 6% insertions, 2% MNPs."""
    per_chrom = n // len(CHROMS) + 1
    made = 0
    for chrom in CHROMS:
        pos = 10_000
        for _ in range(per_chrom):
            if made == n:
                return
            made += 1
            pos += rng.randint(1, 180)
            roll = rng.random()
            if roll < 0.80:
                ref = rng.choice(BASES)
                yield chrom, pos, ref, [rng.choice([b for b in BASES if b != ref])]
            elif roll < 0.85:
                ref = rng.choice(BASES)
                yield chrom, pos, ref, rng.sample([b for b in BASES if b != ref], rng.choice((2, 2, 3)))
            elif roll < 0.92:
                ref = "".join(rng.choice(BASES) for _ in range(rng.randint(2, 8)))
                yield chrom, pos, ref, [ref[0]]
            elif roll < 0.98:
                ref = rng.choice(BASES)
                yield chrom, pos, ref, [ref + "".join(rng.choice(BASES) for _ in range(rng.randint(1, 6)))]
            else:
                ref = "".join(rng.choice(BASES) for _ in range(rng.randint(2, 3)))
                alt = "".join(rng.choice([b for b in BASES if b != r]) for r in ref)
                yield chrom, pos, ref, [alt]


def generate(workdir: Path, n: int, seed: int = 5) -> dict:
    """Write the VCF (bgzipped and indexed), the three sources as the services write them, and the
    same values as bcftools annotation tables (plain; bgzip and tabix are part of bcftools' run)."""
    import pysam

    rng = random.Random(seed)
    paths = {name: workdir / name for name in (
        "sample.vcf", "bravo.tsv", "opencravat.tsv", "alterations.tsv", "bt_bravo.tsv", "bt_oc.tsv", "bt_cgi.tsv")}
    files = {name: open(path, "w") for name, path in paths.items()}
    vcf, bravo, oc, cgi = files["sample.vcf"], files["bravo.tsv"], files["opencravat.tsv"], files["alterations.tsv"]
    vcf.write("##fileformat=VCFv4.2\n##source=gensvc bench\n##reference=GRCh38\n")
    for chrom in CHROMS:
        vcf.write(f"##contig=<ID=chr{chrom}>\n")
    vcf.write('##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth">\n'
              '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
              '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">\n'
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tTUMOUR\n")
    bravo.write("chrom\tpos\tref\talt\tbravo_variant_id\tallele_freq\tallele_count\tallele_num\tfilter\tfound\n")
    oc.write("\t".join(OC_HEADER) + "\n")
    cgi.write("\t".join(CGI_HEADER) + "\n")
    files["bt_bravo.tsv"].write("#chrom\tpos\tref\talt\tid\taf\tac\tan\tfilter\n")
    files["bt_oc.tsv"].write("#chrom\tpos\tref\talt\t" + "\t".join(OC_BASE + OC_ANNOTATORS) + "\n")
    files["bt_cgi.tsv"].write("#chrom\tpos\tref\talt\t" + "\t".join(CGI_DEFAULT) + "\n")
    uid = 0
    n_records = n_alts = 0
    for chrom, pos, ref, alts in records(n, rng):
        n_records += 1
        depth = rng.randint(10, 99)
        info = f"DP={depth}"
        ad = ",".join(str(rng.randint(1, depth)) for _ in range(len(alts) + 1))
        vcf.write(f"chr{chrom}\t{pos}\t.\t{ref}\t{','.join(alts)}\t{rng.randint(20, 99)}\tPASS\t{info}\tGT:AD\t"
                  f"{'0/1' if len(alts) == 1 else '1/2'}:{ad}\n")
        for index, alt in enumerate(alts, 1):
            n_alts += 1
            # Bravo: ~70% known
            if rng.random() < 0.7:
                an = 125568
                ac = rng.randint(1, 5000)
                values = [f"{chrom}-{pos}-{ref}-{alt}", f"{ac / an:.6g}", str(ac), str(an), rng.choice(FILTERS)]
                bravo.write(f"chr{chrom}\t{pos}\t{ref}\t{alt}\t" + "\t".join(values) + "\ttrue\n")
                files["bt_bravo.tsv"].write(f"chr{chrom}\t{pos}\t{ref}\t{alt}\t" + "\t".join(values) + "\n")
            else:
                bravo.write(f"chr{chrom}\t{pos}\t{ref}\t{alt}\t\t\t\t\t\tfalse\n")
            # OpenCRAVAT: every ALT, its own spelling
            uid += 1
            oc_chrom, oc_pos, oc_ref, oc_alt = oc_spelling(chrom, pos, ref, alt)
            gene = f"GS{chrom}_{pos // 1_000_000}"
            coding = rng.random() < 0.3
            so = rng.choice(CONSEQUENCE) if coding else "intron_variant"
            achange = f"p.Ala{pos % 1000 + 1}{rng.choice(['Val', 'Thr', '='])}" if coding else ""
            cchange = f"c.{pos % 3000 + 1}{oc_ref}>{oc_alt}"
            base = ["", "Yes" if coding else "", gene, f"ENST{gene}.1", so, str(pos % 20 + 1), cchange, achange,
                    f"ENST{gene}.1:{gene}:P{gene}:{so}:{achange}:{cchange}", str(oc_pos + len(oc_ref) - 1)]
            clin = rng.random() < 0.1
            notes = [rng.choice(SIG) if clin else "", rng.choice(DISEASE) if clin else "",
                     "criteria provided, single submitter" if clin else "", str(rng.randint(1, 999999)) if clin else "",
                     f"{rng.random() / 10:.5f}" if rng.random() < 0.6 else "",
                     f"{rng.random():.3f}" if coding else "", rng.choice(["Tolerated", "Damaging"]) if coding else "",
                     f"{rng.random():.3f}" if coding else ""]
            row = [str(uid), oc_chrom, str(oc_pos), oc_ref, oc_alt, *base, "1", "TUMOUR", "",
                   f"chr{chrom}", str(pos), ref, alt, "50", "PASS", "het", "7", str(depth), "0.3", "", "", "het", *notes]
            oc.write("\t".join(row) + "\n")
            files["bt_oc.tsv"].write(f"chr{chrom}\t{pos}\t{ref}\t{alt}\t" + "\t".join(escape(v) or "." for v in base + notes) + "\n")
            # CGI: every ALT, the input's columns plus its own
            c_ref, c_alt = cgi_spelling(ref, alt)
            cgi_values = [gene, f"A{pos % 900}V" if coding else "", rng.choice(SUMMARY), rng.choice(PREDICTION),
                          "cgi,oncokb,clinvar:376127" if clin else "", f"chr{chrom}:{pos} {ref}>{alt}", so,
                          f"ENST{gene}.1", "+", "SNV" if len(ref) == len(alt) == 1 else "INDEL",
                          f"ENST{gene}.1:c.1A>T;p.(A1V)", f"ENST{gene}.1:c.1A>T", f"ENSP{gene}.1:p.Ala1Val" if coding else ""]
            cgi.write(f"input01_{n_records}\t{chrom}\t{pos}\t{c_ref}\t{c_alt}\tchr{chrom}\t{pos}\t.\t50\tPASS\t{info}\t"
                      f"GT:AD\t0/1:{ad}\tsnp\t+\tinput01\t" + "\t".join(cgi_values) + "\n")
            named = dict(zip(CGI_HEADER[16:], cgi_values))
            kept = [named[c] for c in CGI_DEFAULT]
            files["bt_cgi.tsv"].write(f"chr{chrom}\t{pos}\t{ref}\t{alt}\t" + "\t".join(escape(v) or "." for v in kept) + "\n")
    for handle in files.values():
        handle.close()
    pysam.tabix_compress(str(paths["sample.vcf"]), str(paths["sample.vcf"]) + ".gz", force=True)
    paths["sample.vcf"].unlink()
    paths["sample.vcf"] = Path(str(paths["sample.vcf"]) + ".gz")
    pysam.tabix_index(str(paths["sample.vcf"]), preset="vcf", force=True)
    return {"paths": paths, "records": n_records, "alts": n_alts}


# ---- the two runs ------------------------------------------------------------------------------


def oc_info_id(column: str) -> str:
    group, _, name = column.rpartition(".")
    return f"OC_{group or 'base'}__{name}"


def cgi_info_id(column: str) -> str:
    import re

    return "CGI_" + re.sub(r"[^0-9A-Za-z]+", "_", column.removeprefix("CGI-")).strip("_").upper()


OC_TYPES = {"exonno": "Integer", "gposend": "Integer", "clinvar.id": "Integer", "gnomad3.af": "Float",
            "sift.score": "Float", "vest.score": "Float"}


def bcftools_passes(workdir: Path, paths: dict) -> list[tuple[str, Path, list[str]]]:
    """(table, header file, INFO ids) for each of the three annotate passes."""
    passes = []
    specs = [
        ("bt_bravo.tsv", [("BRAVO_ID", "String"), ("BRAVO_AF", "Float"), ("BRAVO_AC", "Integer"),
                          ("BRAVO_AN", "Integer"), ("BRAVO_FILTER", "String")]),
        ("bt_oc.tsv", [(oc_info_id(c), OC_TYPES.get(c, "String")) for c in OC_BASE + OC_ANNOTATORS]),
        ("bt_cgi.tsv", [(cgi_info_id(c), "String") for c in CGI_DEFAULT]),
    ]
    for table, fields in specs:
        header = workdir / f"{table}.hdr"
        header.write_text("".join(f'##INFO=<ID={name},Number=A,Type={kind},Description="{name}">\n'
                                  for name, kind in fields))
        passes.append((str(paths[table]), header, [name for name, _ in fields]))
    return passes


class TreeMemory:
    """Peak of the summed RSS of a process and all its descendants, sampled every 100 ms."""

    def __init__(self, pids: list[int]):
        import threading

        self.roots = set(pids)
        self.peak = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _tree(self) -> set[int]:
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as handle:
                        parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass
        tree, grew = set(self.roots) & set(parents), True
        while grew:
            grew = False
            for pid, parent in parents.items():
                if parent in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
        return tree

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self.done.is_set():
            total = 0
            for pid in self._tree():
                try:
                    with open(f"/proc/{pid}/statm") as handle:
                        total += int(handle.read().split()[1]) * page
                except (OSError, IndexError, ValueError):
                    pass
            self.peak = max(self.peak, total)
            self.done.wait(0.1)

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return self.peak


def wait_all(processes) -> tuple[list[int], list[int]]:
    """Exit codes and peak RSS (KiB, each with its waited children) of processes, by wait4."""
    codes, peaks = [], []
    for process in processes:
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        codes.append(process.returncode)
        peaks.append(usage.ru_maxrss)
    return codes, peaks


def run_gensvc(workdir: Path, paths: dict, tsv: bool = False) -> dict:
    out = workdir / "out-gensvc"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    command = [sys.executable, "-m", "gensvc.cli", "merge", "annotations",
               "--input", f"vcf={paths['sample.vcf']}", "--input", f"opencravat={paths['opencravat.tsv']}",
               "--input", f"bravo={paths['bravo.tsv']}", "--input", f"cgi={paths['alterations.tsv']}",
               "--output", f"vcf={out / 'annotated.vcf.gz'}", "--output", f"tbi={out / 'annotated.vcf.gz.tbi'}"]
    if tsv:
        command += ["--output", f"tsv={out / 'annotated.tsv'}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENSVC_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    memory = TreeMemory([process.pid])
    codes, peaks = wait_all([process])
    seconds = time.perf_counter() - started
    peak = memory.stop()
    if codes[0] != 0:
        raise SystemExit(f"gensvc merge failed: {process.stderr.read().decode()[-2000:]}")
    return {"seconds": seconds, "tree_peak": max(peak, peaks[0] * 1024), "max_process": peaks[0] * 1024,
            "vcf": out / "annotated.vcf.gz"}


def prepare_tables(workdir: Path, paths: dict) -> tuple[dict, float]:
    """bgzip and tabix bcftools' three tables, as a user must before `bcftools annotate -a`."""
    import pysam

    started = time.perf_counter()
    ready = dict(paths)
    for name in ("bt_bravo.tsv", "bt_oc.tsv", "bt_cgi.tsv"):
        packed = workdir / "out-bcftools" / f"{name}.gz"
        pysam.tabix_compress(str(paths[name]), str(packed), force=True)
        pysam.tabix_index(str(packed), seq_col=0, start_col=1, end_col=1, force=True)
        ready[name] = packed
    return ready, time.perf_counter() - started


def run_bcftools(workdir: Path, paths: dict) -> dict:
    out = workdir / "out-bcftools"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    paths, prep_seconds = prepare_tables(workdir, paths)
    final = out / "annotated.vcf.gz"
    passes = bcftools_passes(workdir, paths)
    commands = []
    for n, (table, header, names) in enumerate(passes):
        command = ["bcftools", "annotate", "-a", table, "-h", str(header), "-c", ",".join(["CHROM", "POS", "REF", "ALT", *names])]
        command += [str(paths["sample.vcf"])] if n == 0 else ["-"]
        command += ["-Oz", "-o", str(final)] if n == len(passes) - 1 else ["-Ou"]
        commands.append(command)
    started = time.perf_counter()
    processes = []
    for command in commands:
        stdin = processes[-1].stdout if processes else None
        processes.append(subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE if command[-1] == "-Ou" else None))
        if stdin is not None:
            stdin.close()  # the next process holds it now
    memory = TreeMemory([p.pid for p in processes])
    codes, peaks = wait_all(processes)
    pipeline_peak = memory.stop()
    index = subprocess.Popen(["bcftools", "index", "-t", str(final)])
    memory = TreeMemory([index.pid])
    index_codes, index_peaks = wait_all([index])
    index_peak = memory.stop()
    seconds = time.perf_counter() - started
    if any(codes) or any(index_codes):
        raise SystemExit(f"bcftools failed: exit codes {codes} {index_codes}")
    # the three annotate processes run at once: their peaks add up (an upper bound, like the sampled sum)
    return {"seconds": seconds, "prep_seconds": prep_seconds,
            "tree_peak": max(pipeline_peak, sum(peaks) * 1024, index_peak, max(index_peaks) * 1024),
            "sum_of_peaks": sum(peaks) * 1024, "max_process": max(peaks + index_peaks) * 1024, "vcf": final,
            "commands": commands}


def _number(value: str):
    try:
        return float(value)
    except ValueError:
        return value


def added(info: str) -> dict:
    """The fields merge adds, numbers compared as numbers (bcftools rewrites 0.590 as 0.59)."""
    return {k: tuple(_number(x) for x in v.split(",")) for k, _, v in (f.partition("=") for f in info.split(";"))
            if k.startswith(("OC_", "BRAVO_", "CGI_"))}


def spot_check(outputs: dict[str, Path], every: int = 50) -> dict:
    """Every ``every``-th record of the outputs side by side: whether each tool's added INFO
    fields are those of gensvc's output. bcftools fills only one ALT of a multiallelic site from
    a tab file, so its multiallelic records are not compared; vcfanno's are."""
    import gzip

    def body(path):
        handle = gzip.open(path, "rt")
        return (line for line in handle if not line.startswith("#"))

    names = [name for name in outputs if name != "gensvc"]
    counts = {name: {"same": 0, "differ": 0, "skipped": 0, "first_difference": None} for name in names}
    looked = 0
    for n, lines in enumerate(zip(*(body(outputs[name]) for name in ["gensvc", *names]))):
        if n % every:
            continue
        looked += 1
        ours = lines[0].split("\t")
        for name, line in zip(names, lines[1:]):
            theirs = line.split("\t")
            tally = counts[name]
            if ours[:2] != theirs[:2] or ours[3:5] != theirs[3:5]:
                tally["differ"] += 1  # out of step: a record missing or added
                tally["first_difference"] = tally["first_difference"] or (lines[0][:200], line[:200])
            elif name == "bcftools" and "," in ours[4]:
                tally["skipped"] += 1
            elif added(ours[7]) == added(theirs[7]):
                tally["same"] += 1
            else:
                tally["differ"] += 1
                tally["first_difference"] = tally["first_difference"] or (ours[7][:300], theirs[7][:300])
    return {"looked": looked, **counts}


# ---- vcfanno ------------------------------------------------------------------------------------


def vcfanno_sources(workdir: Path, paths: dict, passes) -> Path:
    """Each bcftools table as the bgzipped, indexed VCF vcfanno reads (one record per ALT, the
    values as INFO fields of the same names), and the TOML config naming them.
    Not timed, as bcftools' tables are not: vcfanno cannot read the services' files either."""
    import pysam

    folder = workdir / "vcfanno"
    config = folder / "sources.toml"
    if config.exists():
        return config
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    blocks = []
    for table, header, names in passes:
        plain = folder / (Path(table).name.removesuffix(".tsv") + ".vcf")
        with open(plain, "w") as out, open(table) as rows:
            out.write("##fileformat=VCFv4.2\n")
            out.writelines(f"##contig=<ID=chr{chrom}>\n" for chrom in CHROMS)
            # Float as String: vcfanno writes a Float with 4 significant digits (0.02466 -> 0.0247)
            out.write(header.read_text().replace("Type=Float", "Type=String"))
            out.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
            next(rows)
            for row in rows:
                chrom, pos, ref, alt, *values = row.rstrip("\n").split("\t")
                info = ";".join(f"{k}={v}" for k, v in zip(names, values) if v != ".") or "."
                out.write(f"{chrom}\t{pos}\t.\t{ref}\t{alt}\t.\t.\t{info}\n")
        packed = str(plain) + ".gz"
        pysam.tabix_compress(str(plain), packed, force=True)
        pysam.tabix_index(packed, preset="vcf", force=True)
        plain.unlink()
        quoted = lambda items: "[" + ", ".join(f'"{x}"' for x in items) + "]"  # noqa: E731
        blocks.append(f'[[annotation]]\nfile="{packed}"\nfields={quoted(names)}\n'
                      f'ops={quoted(["self"] * len(names))}\nnames={quoted(names)}\n')
    config.write_text("\n".join(blocks))
    return config


def run_vcfanno(workdir: Path, paths: dict, config: Path) -> dict:
    """`vcfanno -p 2 CONFIG VCF | bgzip -c > OUT`, then `tabix -p vcf OUT`."""
    out = workdir / "out-vcfanno"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    final = out / "annotated.vcf.gz"
    command = ["vcfanno", "-p", "2", str(config), str(paths["sample.vcf"])]
    started = time.perf_counter()
    with open(final, "wb") as sink, open(out / "vcfanno.log", "wb") as log:
        annotate = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
        compress = subprocess.Popen(["bgzip", "-c"], stdin=annotate.stdout, stdout=sink)
        annotate.stdout.close()
        memory = TreeMemory([annotate.pid, compress.pid])
        codes, peaks = wait_all([annotate, compress])
        pipeline_peak = memory.stop()
    index = subprocess.Popen(["tabix", "-p", "vcf", str(final)])
    index_codes, index_peaks = wait_all([index])
    seconds = time.perf_counter() - started
    if any(codes) or any(index_codes):
        raise SystemExit(f"vcfanno failed: exit codes {codes} {index_codes}; see {out / 'vcfanno.log'}")
    return {"seconds": seconds, "tree_peak": max(pipeline_peak, sum(peaks) * 1024, max(index_peaks) * 1024),
            "max_process": max(peaks + index_peaks) * 1024, "vcf": final, "command": command}


def ensure_tool(tool: str, package: str | None = None) -> str:
    """The path of ``tool``, installing Debian's ``package`` (default: the tool's name) if missing."""
    found = shutil.which(tool)
    if found:
        return found
    command = f"apt-get install -y {package or tool}"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"{tool} is not installed; running: {command}", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(command.split(), env=env).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=False)
            subprocess.run(command.split(), env=env, check=False)
        found = shutil.which(tool)
        if found:
            return found
    raise SystemExit(f"{tool} is needed: install Debian's with `sudo apt-get update && sudo {command}`")


def mb(size: float) -> str:
    return f"{size / 1e6:.0f} MB"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=1_000_000, help="records in the generated VCF (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, alternated; ratios within a run, their median counted (default 2)")
    parser.add_argument("--workdir", type=Path, help="where the data go (kept; reused when made with the same --variants)")
    args = parser.parse_args(argv)
    bcftools = ensure_tool("bcftools")
    ensure_tool("vcfanno")
    ensure_tool("bgzip", "tabix")
    ensure_tool("tabix")
    version = subprocess.run([bcftools, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    banner = subprocess.run(["vcfanno"], capture_output=True, text=True).stderr  # "vcfanno version 0.3.5 [built ..."
    vcfanno_version = next((line.split(" [")[0].replace(" version", "") for line in banner.splitlines()
                            if line.startswith("vcfanno version")), "vcfanno")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gensvc-bench-merge-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stamp = workdir / f"generated-{args.variants}"
    names = ("sample.vcf", "bravo.tsv", "opencravat.tsv", "alterations.tsv", "bt_bravo.tsv", "bt_oc.tsv", "bt_cgi.tsv")
    try:
        if stamp.exists():
            paths = {name: workdir / line for name, line in zip(names, stamp.read_text().split())}
            print(f"reusing the data in {workdir}")
        else:
            started = time.perf_counter()
            shutil.rmtree(workdir / "vcfanno", ignore_errors=True)
            made = generate(workdir, args.variants)
            paths = made["paths"]
            stamp.write_text("\n".join(paths[name].name for name in names) + "\n")
            print(f"generated {made['records']:,} records ({made['alts']:,} ALTs) and three sources in "
                  f"{time.perf_counter() - started:.0f} s, in {workdir}")
        started = time.perf_counter()
        config = vcfanno_sources(workdir, paths, bcftools_passes(workdir, paths))
        print(f"vcfanno's sources as bgzipped VCFs and its config {config} ready in {time.perf_counter() - started:.0f} s "
              "(not timed)")
        sizes = ", ".join(f"{name} {mb(paths[name].stat().st_size)}" for name in names[:4])
        print(f"inputs: {sizes}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}", flush=True)
        ours, theirs, annos = [], [], []
        for n in range(args.repeat):  # alternated, so that all three meet the same machine
            ours.append(run_gensvc(workdir, paths))
            theirs.append(run_bcftools(workdir, paths))
            annos.append(run_vcfanno(workdir, paths, config))
            print(f"run {n + 1}: gensvc {ours[-1]['seconds']:.1f} s, bcftools {theirs[-1]['seconds']:.1f} s "
                  f"(+{theirs[-1]['prep_seconds']:.1f} s making its tables), vcfanno {annos[-1]['seconds']:.1f} s; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
        checked = spot_check({"gensvc": ours[-1]["vcf"], "bcftools": theirs[-1]["vcf"], "vcfanno": annos[-1]["vcf"]})
        with_tsv = run_gensvc(workdir, paths, tsv=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    best = min(ours, key=lambda r: r["seconds"])
    rival = min(theirs, key=lambda r: r["seconds"])
    anno = min(annos, key=lambda r: r["seconds"])
    peak = max(r["tree_peak"] for r in ours + [with_tsv])
    print()
    print("bcftools, the normal way with three sources: three `bcftools annotate -a TABLE.gz -h HEADER -c "
          "CHROM,POS,REF,ALT,...` passes piped (-Ou between them, -Oz out), then `bcftools index -t`. Its tables hold "
          "the same values in VCF spelling; writing them is not timed (bcftools cannot read the services' files), "
          "bgzip + tabix of them is shown apart. vcfanno: `vcfanno -p 2 CONFIG.toml VCF | bgzip -c`, then "
          "`tabix -p vcf`, its sources the same tables as bgzipped VCFs (made untimed).")
    print(f"{'':34s} {'wall time':>10s} {'peak RSS, all processes':>24s} {'largest process':>16s}")
    print(f"{'gensvc merge annotations, vcf+tbi':34s} {best['seconds']:9.1f}s {mb(best['tree_peak']):>24s} "
          f"{mb(best['max_process']):>16s}")
    print(f"{version + ' annotate x3 + index':34s} {rival['seconds']:9.1f}s {mb(rival['tree_peak']):>24s} "
          f"{mb(rival['max_process']):>16s}")
    print(f"{'  + bgzip and tabix of its tables':34s} {rival['prep_seconds']:9.1f}s")
    print(f"{vcfanno_version + ' -p 2 + bgzip, tabix':34s} {anno['seconds']:9.1f}s {mb(anno['tree_peak']):>24s} "
          f"{mb(anno['max_process']):>16s}")
    print(f"{'gensvc, vcf+tbi and the TSV':34s} {with_tsv['seconds']:9.1f}s {mb(with_tsv['tree_peak']):>24s} "
          f"{mb(with_tsv['max_process']):>16s}")
    # a ratio is taken within a run (the three met the same machine), then the median of the runs:
    # on a shared machine the load changes between runs, so the fastest of each may not be comparable
    ratio = median(g["seconds"] / b["seconds"] for g, b in zip(ours, theirs))
    whole = median(g["seconds"] / (b["seconds"] + b["prep_seconds"]) for g, b in zip(ours, theirs))
    anno_ratio = median(g["seconds"] / v["seconds"] for g, v in zip(ours, annos))
    print("per run, gensvc / bcftools: " + ", ".join(f"{g['seconds'] / b['seconds']:.2f}x" for g, b in zip(ours, theirs))
          + "; gensvc / vcfanno: " + ", ".join(f"{g['seconds'] / v['seconds']:.2f}x" for g, v in zip(ours, annos)))
    load = os.getloadavg()[0]
    print(f"time ratio gensvc / bcftools, median of the runs: {ratio:.2f}x for the same outputs (goal: at most 1.0x); "
          f"{whole:.2f}x counting bcftools' table preparation")
    print(f"time ratio gensvc / vcfanno -p 2, median of the runs: {anno_ratio:.2f}x (goal: at most 0.6x)")
    print(f"peak RSS: gensvc {mb(peak)} (goal: at most 200 MB), bcftools {mb(rival['tree_peak'])}, "
          f"vcfanno {mb(anno['tree_peak'])}; load average {load:.1f} on {os.cpu_count()} CPUs")
    for name in ("bcftools", "vcfanno"):
        tally = checked[name]
        note = " (multiallelic records not compared: bcftools fills one ALT of them from a tab file)" \
            if name == "bcftools" else ""
        print(f"spot check, every 50th record ({checked['looked']:,}): {tally['same']:,} carry the same values in "
              f"gensvc's and {name}'s outputs, {tally['differ']:,} differ{note}")
        if tally["first_difference"]:
            print(f"  first difference: gensvc {tally['first_difference'][0]!r}\n  {name} {tally['first_difference'][1]!r}")
    scale = f"{args.variants / 1e6:g} M records, three sources"
    ours_s, theirs_s, annos_s = (median(r["seconds"] for r in runs) for runs in (ours, theirs, annos))
    record(f"merge time vs bcftools annotate x3 (tables given), {scale}", f"{ours_s:.1f} s (median)",
           f"{theirs_s:.1f} s (median)", ratio, "<= 1.0x", ratio <= 1.0)
    record(f"merge time vs vcfanno -p 2, {scale}", f"{ours_s:.1f} s (median)", f"{annos_s:.1f} s (median)",
           anno_ratio, "<= 0.6x", anno_ratio <= 0.6)
    record(f"merge peak RSS, all processes, {scale}", mb(peak), "200 MB budget", peak / 200e6, "<= 200 MB",
           peak <= 200e6)
    agree = all(checked[name]["differ"] == 0 and checked[name]["same"] > 0 for name in ("bcftools", "vcfanno"))
    if not agree:
        print("the outputs differ: the figures above are not comparable")
    return 0 if agree and ratio <= 1.0 and anno_ratio <= 0.6 and peak <= 200e6 else 1


if __name__ == "__main__":
    sys.exit(main())
