"""The OpenCRAVAT emulator's installed modules and what its annotators compute.

Annotators are a fixed catalogue (`ANNOTATORS`), each value a
hash of (module, chrom, pos, ref, alt) -- or of the gene for gene-level modules -- so a job's
report and `/submit/annotate` agree for the same variant. `gensvcdemo` repeats the test
peer's deterministic annotator exactly.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from .opencravat_mapper import map_variant


@dataclass(frozen=True)
class Column:
    name: str
    title: str
    type: str = "string"  # string | int | float
    desc: str = ""


@dataclass(frozen=True)
class Module:
    name: str
    title: str
    version: str
    kind: str  # annotator | reporter | postaggregator | converter | mapper
    level: str = "variant"
    columns: tuple[Column, ...] = ()
    description: str = ""
    output_filename_schema: tuple[str, ...] = ()


def _h(*parts: Any) -> bytes:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()


def _unit(digest: bytes, offset: int) -> float:
    """A number in [0, 1) from four bytes of a digest."""
    return int.from_bytes(digest[offset:offset + 4], "big") / 2**32


CLINVAR_SIG = ("Pathogenic", "Likely pathogenic", "Uncertain significance", "Likely benign",
               "Benign", "Conflicting interpretations of pathogenicity")
CLINVAR_REV = ("criteria provided, single submitter",
               "criteria provided, multiple submitters, no conflicts",
               "reviewed by expert panel", "no assertion criteria provided")
CLINVAR_DISEASE = ("Hereditary cancer-predisposing syndrome", "not provided", "not specified",
                   "Inborn genetic diseases", "Cardiovascular phenotype")


def _annotate_clinvar(v: dict) -> dict | None:
    d = _h("clinvar", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    if d[0] % 10 >= 3:
        return None
    return {
        "sig": CLINVAR_SIG[d[1] % len(CLINVAR_SIG)],
        "disease_refs": "MedGen:C%07d" % (int.from_bytes(d[2:6], "big") % 10**7),
        "disease_names": CLINVAR_DISEASE[d[6] % len(CLINVAR_DISEASE)],
        "rev_stat": CLINVAR_REV[d[7] % len(CLINVAR_REV)],
        "id": str(int.from_bytes(d[8:12], "big") % 2_000_000 + 10_000),
    }


def _annotate_dbsnp(v: dict) -> dict | None:
    d = _h("dbsnp", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    if d[0] % 10 >= 7:
        return None
    return {"snp": "rs%d" % (int.from_bytes(d[1:5], "big") % 1_500_000_000 + 1000)}


def _annotate_gnomad3(v: dict) -> dict | None:
    d = _h("gnomad3", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    if d[0] % 10 >= 8:
        return None
    return {"af": round(_unit(d, 1) ** 3, 6), "af_afr": round(_unit(d, 5) ** 3, 6),
            "af_nfe": round(_unit(d, 9) ** 3, 6)}


def _annotate_thousandgenomes(v: dict) -> dict | None:
    d = _h("thousandgenomes", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    if d[0] % 10 >= 5:
        return None
    return {"af": round(_unit(d, 1) ** 2, 4)}


def _annotate_sift(v: dict) -> dict | None:
    if v.get("so") != "missense_variant":
        return None
    d = _h("sift", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    score = round(_unit(d, 1), 3)
    return {"prediction": "Damaging" if score < 0.05 else "Tolerated", "score": score}


def _annotate_vest(v: dict) -> dict | None:
    if v.get("so") != "missense_variant":
        return None
    d = _h("vest", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    score = round(_unit(d, 1), 3)
    return {"transcript": v.get("transcript") or None, "score": score,
            "pval": round((1 - score) ** 2 / 2, 5)}


def _annotate_cosmic(v: dict) -> dict | None:
    d = _h("cosmic", v["chrom"], v["pos"], v["ref_base"], v["alt_base"])
    if d[0] % 10 != 0:
        return None
    return {"cosmic_id": "COSV%08d" % (int.from_bytes(d[1:5], "big") % 10**8),
            "variant_count": d[5] % 200 + 1}


def _annotate_cgl(v: dict) -> dict | None:
    hugo = v.get("hugo")
    if not hugo:
        return None
    d = _h("cgl", hugo)
    if d[0] % 5 == 0:
        return {"class": "Oncogene"}
    if d[0] % 5 == 1:
        return {"class": "TSG"}
    return None


def _annotate_gensvcdemo(v: dict) -> dict | None:
    ref, alt = v["ref_base"], v["alt_base"]
    return {
        "score": ((int(v["pos"]) * 31 + len(ref) * 7 + len(alt) * 13) % 1000) / 1000,
        "allele": "%s:%s:%s>%s" % (v["chrom"], v["pos"], ref, alt),
        "gc": sum(ref.count(b) + alt.count(b) for b in "GC"),
    }


ANNOTATORS: "OrderedDict[str, Module]" = OrderedDict((m.name, m) for m in [
    Module("cgl", "Cancer Gene Landscape", "1.0.4", "annotator", "gene",
           (Column("class", "Class"),), "Oncogene / tumour suppressor class of the gene"),
    Module("clinvar", "ClinVar", "2024.05.01", "annotator", "variant",
           (Column("sig", "Clinical Significance"), Column("disease_refs", "Disease Ref Nums"),
            Column("disease_names", "Disease Names"), Column("rev_stat", "Review Status"),
            Column("id", "ClinVar ID")), "Clinical significance of variants"),
    Module("cosmic", "COSMIC", "92.0.0", "annotator", "variant",
           (Column("cosmic_id", "ID"), Column("variant_count", "Variant Count", "int")),
           "Somatic mutations in cancer"),
    Module("dbsnp", "dbSNP", "1.0.2", "annotator", "variant", (Column("snp", "rsID"),),
           "dbSNP identifiers"),
    Module("gensvcdemo", "gensvc demo annotator", "1.0.0", "annotator", "variant",
           (Column("score", "Demo score", "float",
                   "((pos*31 + len(ref)*7 + len(alt)*13) % 1000) / 1000"),
            Column("allele", "Allele key", "string", "chrom:pos:ref>alt as OpenCRAVAT normalised it"),
            Column("gc", "GC count", "int", "G and C letters in ref and alt")),
           "Deterministic annotator (same formulas as the test peer's)"),
    Module("gnomad3", "gnomAD3", "3.1.2", "annotator", "variant",
           (Column("af", "Global AF", "float"), Column("af_afr", "African AF", "float"),
            Column("af_nfe", "Non-Fin Eur AF", "float")), "gnomAD v3 allele frequencies"),
    Module("sift", "SIFT", "1.1.4", "annotator", "variant",
           (Column("prediction", "Prediction"), Column("score", "Score", "float")),
           "SIFT missense predictions"),
    Module("thousandgenomes", "1000 Genomes", "3.0.5", "annotator", "variant",
           (Column("af", "AF", "float"),), "1000 Genomes allele frequency"),
    Module("vest", "VEST4", "4.4.3", "annotator", "variant",
           (Column("transcript", "Score Transcript"), Column("score", "Score", "float"),
            Column("pval", "P-value", "float")), "VEST missense scores"),
])

_ANNOTATE: dict[str, Callable[[dict], dict | None]] = {
    "cgl": _annotate_cgl, "clinvar": _annotate_clinvar, "cosmic": _annotate_cosmic,
    "dbsnp": _annotate_dbsnp, "gensvcdemo": _annotate_gensvcdemo, "gnomad3": _annotate_gnomad3,
    "sift": _annotate_sift, "thousandgenomes": _annotate_thousandgenomes, "vest": _annotate_vest,
}

def annotate(module_name: str, variant: dict) -> dict | None:
    """One module's values for a variant (normalised chrom/pos/ref_base/alt_base + mapping)."""
    return _ANNOTATE[module_name](variant)


def live_annotation(chrom: str, pos: int, ref: str, alt: str, uid: str,
                    annotators: list[str] | None) -> dict:
    """`/submit/annotate`: {module: values or None, ..., "crx": mapping}, as live_annotate."""
    mapped = map_variant(chrom, pos, ref, alt)
    # The mapper's own output, unnormalised input: the seed's keys (note included) plus
    # the ones the 3.2.4 server's mapper adds (exonno, cchange, gposend).
    crx = {"uid": uid, "chrom": chrom, "pos": pos, "ref_base": ref, "alt_base": alt,
           "note": "", "coding": mapped["coding"], "hugo": mapped["hugo"],
           "transcript": mapped["transcript"], "so": mapped["so"], "exonno": mapped["exonno"],
           "cchange": mapped["cchange"], "achange": mapped["achange"],
           "all_mappings": mapped["all_mappings"], "gposend": mapped["gposend"]}
    variant = dict(crx)
    response: dict[str, Any] = {}
    for name in ANNOTATORS:
        if annotators is not None and name not in annotators:
            continue
        response[name] = _clean_annot_dict(annotate(name, variant))
    response["crx"] = crx
    return response


def _clean_annot_dict(d: dict | None) -> dict | None:
    # websubmit.clean_annot_dict: '' and {} become None; a dict of Nones becomes None.
    if d is None or d == {} or d == "":
        return None
    cleaned = {k: (None if v == "" or v == {} else v) for k, v in d.items()}
    return None if all(v is None for v in cleaned.values()) else cleaned
