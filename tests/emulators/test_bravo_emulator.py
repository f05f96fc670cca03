"""The Bravo emulator against the freeze5 contract: the help page's examples answer exactly
as printed, and errors, filters, sort, paging, VCF and the rate limit behave as the
2018-01 server did. Real HTTP on loopback."""

import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from gensvc.emulators import bravo_data, start_emulator
from gensvc.emulators.bravo import BASE_PATH, DEFAULT_TOKENS, VCF_META

from .conftest import TOKEN

INVALID = {"error": "invalid query parameters"}


def record(pos, ref, alt, allele_count, allele_freq, filter_, site_quality):
    return {
        "allele_count": allele_count, "allele_freq": allele_freq, "allele_num": 125568,
        "alt": alt, "chrom": "22", "filter": filter_, "pos": pos, "ref": ref,
        "site_quality": site_quality, "variant_id": f"22-{pos}-{ref}-{alt}",
    }


# Copied from the Bravo help page (the seed), field for field.
SEED_VARIANT = record(16389447, "A", "G", 6261, 0.0498614, "PASS", 255.0)
SEED_POS_16390137 = [
    record(16390137, "T", "A", 2, 1.59276e-05, "PASS", 255.0),
    record(16390137, "T", "C", 1, 7.96381e-06, "PASS", 255.0),
]
SEED_POS_16387678 = [
    record(16387678, "C", "G", 2, 1.59276e-05, "PASS", 255.0),
    record(16387678, "C", "T", 1, 7.96381e-06, "PASS", 157.0),
]
SEED_REGION_PAGE = [
    record(16390907, "T", "C", 3392, 0.0270133, "SVM;DISC;EXHET", 143.0),
    record(16390901, "A", "C", 2610, 0.0207856, "SVM;DISC;EXHET", 117.0),
    record(16389436, "G", "C", 150, 0.00119457, "SVM;DISC", 27.0),
    record(16390735, "A", "AAGCAGCGGCTGG", 21, 0.00016724, "SVM", 147.0),
    record(16390780, "C", "A", 11, 8.76019e-05, "SVM", 255.0),
]
SEED_GENE_PAGE = [
    record(16387844, "G", "C", 1, 7.96381e-06, "SVM", 50.0),
    record(16388018, "C", "T", 1, 7.96381e-06, "SVM", 44.0),
    record(16388182, "C", "A", 1, 7.96381e-06, "SVM", 32.0),
    record(16388371, "T", "C", 1, 7.96381e-06, "SVM", 255.0),
    record(16388398, "G", "T", 1, 7.96381e-06, "SVM", 255.0),
]
SEED_GENE = {"chrom": "22", "id": "ENSG00000225293", "name": "ABCD1P4",
             "start": 16387695, "stop": 16390888, "strand": "+"}
SEED_VCF = {
    "data": [
        "22\t16387678\t22-16387678-C-G\tC\tG\t255.0\tPASS\tAN=125568;AC=2;AF=1.59276e-05",
        "22\t16387678\t22-16387678-C-T\tC\tT\t157.0\tPASS\tAN=125568;AC=1;AF=7.96381e-06",
    ],
    "format": "vcf",
    "header": "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    "meta": [
        "##fileformat=VCFv4.2",
        '##FILTER=<ID=PASS,Description="All filters passed">',
        '##FILTER=<ID=CEN,Description="Variant located in centromeric region with inferred sequences">',
        '##FILTER=<ID=SVM,Description="Variant failed SVM filter">',
        '##FILTER=<ID=DISC,Description="Mendelian or duplicate genotype discordance is high (3/5% or more)">',
        '##FILTER=<ID=CHRXHET,Description="Excess heterozygosity in chrX in males">',
        '##FILTER=<ID=EXHET,Description="Excess heterozygosity with HWE p-value < 1e-6">',
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="Number of Alleles in Samples with Coverage">',
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="Alternate Allele Counts in Samples with Coverage">',
        '##INFO=<ID=AF,Number=A,Type=Float,Description="Alternate Allele Frequencies"',
    ],
    "next": None,
}


def follow_all(api, path, params):
    """Every record of a paged query, following `next` to the end."""
    rows, pages = [], 0
    response = api(path, params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body["data"])
        pages += 1
        if body["next"] is None:
            return rows, pages
        response = api(body["next"])


def truth(chrom, start, end):
    return bravo_data.variants_in(chrom, start, end)


# --- the help page's examples -------------------------------------------------------------


def test_root_names_the_dataset(api):
    response = api("")
    assert response.status_code == 200
    assert set(response.json()) == {"dataset", "api_version"}
    assert response.json()["api_version"] == "v1"


def test_seed_variant_by_id(api):
    response = api("variant?variant_id=chr22-16389447-A-G")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"data": [SEED_VARIANT], "format": "json", "next": None}


def test_seed_variants_by_position(api):
    response = api("variant?chrom=chr22&pos=16390137")
    assert response.json() == {"data": SEED_POS_16390137, "format": "json", "next": None}
    response = api("variant", {"chrom": "22", "pos": "16387678"})
    assert response.json() == {"data": SEED_POS_16387678, "format": "json", "next": None}


def test_seed_vcf_example(api):
    for flag in ("1", "True", "true"):
        response = api("variant", {"chrom": "22", "pos": "16387678", "vcf": flag})
        assert response.json() == SEED_VCF
    assert VCF_META == SEED_VCF["meta"]


def test_seed_region_example(api, bravo):
    response = api("region?chrom=chr22&end=16390908&start=16387675&filter=ne:PASS"
                   "&sort=allele_freq:desc&limit=5")
    body = response.json()
    assert response.status_code == 200
    assert body["data"] == SEED_REGION_PAGE
    assert body["format"] == "json"
    # Built like Bravo's: the client's URL, the original args unencoded, then last=<id>:<value>
    nxt = body["next"]
    assert nxt.startswith(bravo.url + "region?chrom=chr22&end=16390908&start=16387675"
                          "&filter=ne:PASS&sort=allele_freq:desc&limit=5&last=")
    object_id, value = nxt.rsplit("&last=", 1)[1].split(":")
    assert len(object_id) == 24 and int(object_id, 16) >= 0
    assert value == "8.76019e-05"


def test_seed_gene_example(api, bravo):
    response = api("gene?name=ABCD1P4&filter=ne:PASS&sort=allele_freq:asc&limit=5")
    body = response.json()
    assert body["data"] == SEED_GENE_PAGE
    assert body["gene"] == SEED_GENE
    assert body["next"].startswith(bravo.url + "gene?name=ABCD1P4&filter=ne:PASS"
                                   "&sort=allele_freq:asc&limit=5&last=")
    assert body["next"].endswith(":7.96381e-06")
    # the rest of the gene's non-PASS records, in the same order
    rest = api(body["next"]).json()
    assert [r["variant_id"] for r in rest["data"]] == [
        "22-16390780-C-A", "22-16390735-A-AAGCAGCGGCTGG", "22-16389436-G-C"]
    assert rest["next"] is None


def test_seed_records_in_ground_truth():
    rows = truth("22", 16387000, 16391000)
    non_pass = [r for r in rows if r["filter"] != "PASS"]
    assert sorted(non_pass, key=lambda r: r["pos"]) == sorted(
        SEED_REGION_PAGE + SEED_GENE_PAGE, key=lambda r: r["pos"])
    for seed in [SEED_VARIANT, *SEED_POS_16390137, *SEED_POS_16387678]:
        assert seed in rows
    assert len(rows) > 200  # dense around the seeds too


# --- authorisation ---------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": ""},
    {"Authorization": TOKEN},
    {"Authorization": f"Token {TOKEN}"},
    {"Authorization": "Bearer not-a-known-token"},
    {"Authorization": f"Bearer {TOKEN} extra"},
])
def test_authorisation_failures_are_400(bravo, headers):
    for path in ("", "variant?variant_id=22-16389447-A-G", "region?chrom=22&start=1&end=2"):
        response = requests.get(bravo.url + path, headers=headers, timeout=10)
        assert response.status_code == 400
        assert response.json() == {"error": "not authorized"}


@pytest.mark.parametrize("value", [f"bearer {TOKEN}", f"BEARER   {TOKEN}", "Bearer second-token"])
def test_bearer_scheme_any_case_and_every_token(bravo, value):
    response = requests.get(bravo.url, headers={"Authorization": value}, timeout=10)
    assert response.status_code == 200


def test_default_token_set():
    assert DEFAULT_TOKENS == ["bravo-demo-token"]
    with start_emulator("bravo") as emulator:
        ok = requests.get(emulator.url, headers={"Authorization": "Bearer bravo-demo-token"})
        assert ok.status_code == 200
        assert emulator.url.endswith(BASE_PATH)


def test_auth_is_checked_before_parameters(bravo):
    response = requests.get(bravo.url + "region?chrom=22&start=9&end=1", timeout=10)
    assert response.json() == {"error": "not authorized"}


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("params, error", [
    ({"chrom": "22", "start": "100", "end": "100"}, "Start position must be less than end position."),
    ({"chrom": "22", "start": "200", "end": "100"}, "Start position must be less than end position."),
    ({"chrom": "22", "start": "1", "end": "250002"}, "Regions larger than 250000 base-pairs are not allowed."),
    ({"chrom": "chr23", "start": "1", "end": "100"}, "Invalid chromosome name."),
    ({"chrom": "x", "start": "1", "end": "100"}, "Invalid chromosome name."),
    ({"start": "1", "end": "100"}, INVALID["error"]),
    ({"chrom": "22", "end": "100"}, INVALID["error"]),
    ({"chrom": "22", "start": "1"}, INVALID["error"]),
    ({"chrom": "", "start": "1", "end": "100"}, INVALID["error"]),
    ({"chrom": "22", "start": "a", "end": "100"}, INVALID["error"]),
    ({"chrom": "22", "start": "1.5", "end": "100"}, INVALID["error"]),
    ({"chrom": "22", "start": "-1", "end": "100"}, INVALID["error"]),
    ({"chrom": "22", "start": "0", "end": "0"}, INVALID["error"]),
    ({"chrom": "22", "start": "1", "end": "100", "vcf": "yes"}, INVALID["error"]),
    # parsing errors win over the checks made after parsing, as with webargs
    ({"chrom": "22", "start": "5", "end": "1", "limit": "0"}, INVALID["error"]),
])
def test_region_errors(api, params, error):
    response = api("region", params)
    assert response.status_code == 400
    assert response.json() == {"error": error}


def test_region_limit_edge_is_allowed(api):
    response = api("region", {"chrom": "chrX", "start": "154835788", "end": str(154835788 + 250000),
                              "limit": "3"})
    assert response.status_code == 200
    assert len(response.json()["data"]) == 3


@pytest.mark.parametrize("query, error", [
    ("variant", "Invalid query parameters."),
    ("variant?chrom=22", "Invalid query parameters."),
    ("variant?pos=5", "Invalid query parameters."),
    ("variant?variant_id=22-16389447-A", "Invalid variant name format."),
    ("variant?variant_id=22-pos-A-G", "Invalid variant name format."),
    ("variant?variant_id=chrZ-16389447-A-G", "Invalid chromosome name."),
    ("variant?chrom=chr99&pos=5", "Invalid chromosome name."),
    ("variant?chrom=22&pos=abc", INVALID["error"]),
    ("variant?chrom=22&pos=-5", INVALID["error"]),
    ("variant?variant_id=", INVALID["error"]),
])
def test_variant_errors(api, query, error):
    response = api(query)
    assert response.status_code == 400
    assert response.json() == {"error": error}


def test_variant_absent_is_empty(api):
    assert api("variant?variant_id=22-16389447-A-T").json() == {"data": [], "format": "json", "next": None}
    assert api("variant?chrom=Y&pos=1000").json()["data"] == []


def test_gene_lookup(api):
    by_symbol = api("gene", {"name": "TP53", "limit": "1"}).json()
    by_id = api("gene", {"name": "ENSG00000141510", "limit": "1"}).json()
    by_other = api("gene", {"name": "LFS1", "limit": "1"}).json()
    for body in (by_symbol, by_id, by_other):
        body.pop("next")
    assert by_symbol == by_id == by_other
    assert by_symbol["gene"]["chrom"] == "17"
    response = api("gene", {"name": "NOSUCHGENE"})
    assert response.status_code == 400
    assert response.json() == {"error": "Gene with name or identifier equal to NOSUCHGENE was not found."}
    assert api("gene", {"name": ""}).json() == INVALID


def test_gene_longer_than_the_region_limit(api):
    long_genes = [g for g in bravo_data.GENES if g.stop - g.start > 250_000]
    assert long_genes
    gene = long_genes[0]
    body = api("gene", {"name": gene.name, "sort": "pos:desc", "limit": "2"}).json()
    expected = truth(gene.chrom, gene.start, gene.stop)[-2:][::-1]
    assert body["data"] == expected
    assert body["next"] is not None
    # paging backwards through the whole gene
    rows, pages = follow_all(api, "gene", {"name": gene.id, "allele_count": "gte:40",
                                           "sort": "pos:desc", "limit": "60"})
    expected = [r for r in truth(gene.chrom, gene.start, gene.stop) if r["allele_count"] >= 40]
    assert pages > 3
    assert rows == sorted_truth(expected, [("pos", False)])


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "abc", ""])
def test_limit_out_of_range(api, limit):
    response = api("region", {"chrom": "22", "start": "16387675", "end": "16390908", "limit": limit})
    assert response.status_code == 400
    assert response.json() == INVALID


def test_limit_default_and_maximum(api):
    params = {"chrom": "1", "start": "55000000", "end": "55020000"}
    default = api("region", params).json()
    assert len(default["data"]) == 1000
    assert default["next"] is not None
    maximum = api("region", {**params, "limit": "1000"}).json()
    assert maximum["data"] == default["data"]


def test_region_bounds_are_inclusive(api):
    body = api("region", {"chrom": "22", "start": "16389447", "end": "16390137"}).json()
    positions = [r["pos"] for r in body["data"]]
    assert positions[0] == 16389447 and positions[-1] == 16390137
    assert body["data"] == truth("22", 16389447, 16390137)


# --- filters ---------------------------------------------------------------------------------

WINDOW = {"chrom": "chr1", "start": "55040000", "end": "55060000"}


def window_truth():
    return truth("1", 55040000, 55060000)


@pytest.mark.parametrize("value, keep", [
    ("3", lambda ac: ac == 3),
    ("eq:3", lambda ac: ac == 3),
    ("EQ:3", lambda ac: ac == 3),
    ("ne:1", lambda ac: ac != 1),
    ("gt:10", lambda ac: ac > 10),
    ("gte:10", lambda ac: ac >= 10),
    ("lt:3", lambda ac: ac < 3),
    ("Lte:3", lambda ac: ac <= 3),
])
def test_allele_count_filter_operators(api, value, keep):
    rows, _ = follow_all(api, "region", {**WINDOW, "allele_count": value})
    expected = [r for r in window_truth() if keep(r["allele_count"])]
    assert rows == expected and expected


def test_float_filters(api):
    rows, _ = follow_all(api, "region", {**WINDOW, "allele_freq": "gte:0.01"})
    assert rows == [r for r in window_truth() if r["allele_freq"] >= 0.01] and rows
    rows, _ = follow_all(api, "region", {**WINDOW, "site_quality": "lt:100"})
    assert rows == [r for r in window_truth() if r["site_quality"] < 100] and rows
    rows, _ = follow_all(api, "region", {**WINDOW, "allele_num": "125568"})
    assert rows == window_truth()


def test_filter_on_status_text(api):
    rows, _ = follow_all(api, "region", {**WINDOW, "filter": "PASS"})
    assert rows == [r for r in window_truth() if r["filter"] == "PASS"]
    rows, _ = follow_all(api, "region", {**WINDOW, "filter": "ne:PASS"})
    assert rows == [r for r in window_truth() if r["filter"] != "PASS"] and rows
    rows, _ = follow_all(api, "region", {**WINDOW, "filter": "SVM;DISC"})
    assert rows == [r for r in window_truth() if r["filter"] == "SVM;DISC"]


def test_quoted_filter_is_literal(api):
    # filter="ne:" searches the text ne: (nothing has it), not "not equal to empty"
    body = api("region", {**WINDOW, "filter": '"ne:"'}).json()
    assert body["data"] == [] and body["next"] is None
    first = api("region", {**WINDOW, "filter": "'PASS'", "limit": "10"}).json()
    assert "&filter='PASS'&" in first["next"]  # not re-encoded, like Bravo
    rows, _ = follow_all(api, "region", {**WINDOW, "filter": "'PASS'"})
    assert rows == [r for r in window_truth() if r["filter"] == "PASS"]
    rows, _ = follow_all(api, "region", {**WINDOW, "filter": 'ne:"PASS"'})
    assert rows == [r for r in window_truth() if r["filter"] != "PASS"]


@pytest.mark.parametrize("params", [
    {"allele_count": "gt:1:2"},
    {"allele_count": "abc"},
    {"allele_count": "gt:1.5"},
    {"allele_freq": "gt:x"},
    {"allele_count": "between:1"},
    {"allele_count": ""},
    {"filter": "   "},
])
def test_bad_filters_are_invalid(api, params):
    response = api("region", {**WINDOW, **params})
    assert response.status_code == 400
    assert response.json() == INVALID


def test_repeated_filter_key_is_anded(api):
    rows, _ = follow_all(api, "region", [*WINDOW.items(), ("allele_count", "gte:2"),
                                         ("allele_count", "lt:5")])
    assert rows == [r for r in window_truth() if 2 <= r["allele_count"] < 5] and rows


# --- sort and paging -------------------------------------------------------------------------


def sorted_truth(rows, keys):
    """Stable multi-key sort with the object-id tie-break (stored order is object-id order)."""
    ordered = list(rows)
    for key, ascending in reversed(keys):
        ordered.sort(key=lambda r: r[key] if key != "pos" else r["pos"], reverse=not ascending)
    return ordered


def test_multi_key_sort(api):
    rows, _ = follow_all(api, "region", {**WINDOW, "sort": "filter:asc,allele_count:desc,pos"})
    assert rows == sorted_truth(window_truth(), [("filter", True), ("allele_count", False),
                                                 ("pos", True)])
    rows, _ = follow_all(api, "region", {**WINDOW, "sort": "variant-id:-1"})
    assert rows == sorted_truth(window_truth(), [("variant_id", False)])


@pytest.mark.parametrize("sort", ["chrom", "pos:up", "pos:asc:1", "", "allele_freq,xpos"])
def test_bad_sort_is_invalid(api, sort):
    response = api("region", {**WINDOW, "sort": sort})
    assert response.status_code == 400
    assert response.json() == INVALID


def test_following_next_yields_the_sorted_filtered_truth(api):
    params = {"chrom": "chr17", "start": "7600000", "end": "7700000",
              "filter": "ne:PASS", "sort": "allele_freq:desc,site_quality:asc", "limit": "29"}
    rows, pages = follow_all(api, "region", params)
    expected = sorted_truth([r for r in truth("17", 7600000, 7700000) if r["filter"] != "PASS"],
                            [("allele_freq", False), ("site_quality", True)])
    assert pages > 5
    assert rows == expected
    assert len({r["variant_id"] for r in rows}) == len(rows)


def test_default_sort_pages_by_position(api):
    params = {"chrom": "22", "start": "16387675", "end": "16390908", "limit": "100"}
    first = api("region", params).json()
    query = dict(parse_qsl(urlsplit(first["next"]).query))
    assert query["sort"] == "pos:asc"
    object_id, xpos = query["last"].split(":")
    assert int(xpos) == 22_000_000_000 + first["data"][-1]["pos"]
    rows, pages = follow_all(api, "region", params)
    assert rows == truth("22", 16387675, 16390908)
    assert pages == len(rows) // 100 + 1


def test_vcf_pages(api):
    params = {"chrom": "22", "start": "16387675", "end": "16390908", "vcf": "1", "limit": "50"}
    body = api("region", params).json()
    assert set(body) == {"data", "format", "header", "meta", "next"}
    assert body["format"] == "vcf" and body["header"] == SEED_VCF["header"]
    assert body["meta"] == SEED_VCF["meta"]
    rows, _ = follow_all(api, "region", params)
    expected = truth("22", 16387675, 16390908)
    assert rows == [
        f"22\t{r['pos']}\t{r['variant_id']}\t{r['ref']}\t{r['alt']}\t{r['site_quality']}\t"
        f"{r['filter']}\tAN={r['allele_num']};AC={r['allele_count']};AF={r['allele_freq']}"
        for r in expected]
    assert api("region", {**params, "vcf": "0"}).json()["format"] == "json"


@pytest.mark.parametrize("last", [
    "nothex",
    "59a8c9b31600fa1a7c00000g:0.1",
    "59a8c9b31600fa1a7c000000",
    "59a8c9b31600fa1a7c000000:0.1:2",
    "59a8c9b31600fa1a7c000000:abc",
])
def test_bad_cursor_is_invalid(api, last):
    response = api("region", {**WINDOW, "sort": "allele_freq:desc", "last": last})
    assert response.status_code == 400
    assert response.json() == INVALID


def test_cursor_without_sort_is_invalid(api):
    response = api("region", {**WINDOW, "last": "59a8c9b31600fa1a7c000000:1"})
    assert response.json() == INVALID


def test_multiallelic_indels_and_filters_exist():
    rows = truth("2", 21_000_000, 21_100_000)
    by_pos = {}
    for r in rows:
        by_pos.setdefault(r["pos"], []).append(r)
    assert any(len(alleles) > 1 for alleles in by_pos.values())
    assert any(len(r["ref"]) > 1 for r in rows) and any(len(r["alt"]) > 1 for r in rows)
    filters = {r["filter"] for r in rows}
    assert {"PASS", "SVM", "SVM;DISC;EXHET"} <= filters
    singletons = sum(r["allele_count"] == 1 for r in rows) / len(rows)
    assert 0.3 < singletons < 0.7
    assert 8_000 < len(rows) < 14_000  # about one site per 10 bp
    x_filters = {r["filter"] for r in truth("X", 154_835_788, 154_935_788)}
    assert "CHRXHET" in x_filters


def test_data_is_deterministic_and_block_independent():
    whole = truth("17", 43_044_295, 43_125_483)
    pieces = truth("17", 43_044_295, 43_080_000) + truth("17", 43_080_001, 43_125_483)
    assert whole == pieces
    for r in whole[:50]:
        assert r["allele_freq"] == float(f"{r['allele_count'] / 125568:.6g}")


def test_full_size_region_is_quick(api):
    started = time.monotonic()
    body = api("region", {"chrom": "2", "start": "100000000", "end": "100250000"}).json()
    assert len(body["data"]) == 1000
    assert time.monotonic() - started < 2.0


# --- rate limit ------------------------------------------------------------------------------


def test_rate_limit_fixed_window():
    window = 1.5  # 900 s scaled down
    with start_emulator("bravo", rate_limit=(5, 900), time_scale=window / 900) as emulator:
        headers = {"Authorization": "Bearer bravo-demo-token"}
        started = time.monotonic()
        codes = [requests.get(emulator.url, headers=headers).status_code for _ in range(3)]
        # failed requests count too: a 400 (bad auth) and a 400 (bad params)
        codes.append(requests.get(emulator.url).status_code)
        codes.append(requests.get(emulator.url + "region", headers=headers).status_code)
        assert codes == [200, 200, 200, 400, 400]
        over = requests.get(emulator.url + "variant?chrom=22&pos=16390137", headers=headers)
        assert time.monotonic() - started < window
        assert over.status_code == 429
        assert over.json() == {"error": "too many requests"}
        assert "Retry-After" not in over.headers
        assert not any(name.lower().startswith("x-ratelimit") for name in over.headers)
        time.sleep(max(0.0, started + window + 0.1 - time.monotonic()))
        assert requests.get(emulator.url, headers=headers).status_code == 200
        # resetting the stats resets the window too
        for _ in range(5):
            requests.get(emulator.url, headers=headers)
        assert requests.get(emulator.url, headers=headers).status_code == 429
        requests.delete(emulator.root + "/_emulator/stats")
        assert requests.get(emulator.url, headers=headers).status_code == 200


def test_default_rate_limit_window_scales():
    from gensvc.emulators.bravo import rate_limit_of
    from gensvc.emulators.framework import EmulatorConfig

    assert rate_limit_of(EmulatorConfig()) == (180, 900)
    assert rate_limit_of(EmulatorConfig(extra={"rate_limit": "10/60"})) == (10, 60)
    with start_emulator("bravo", time_scale=0.01) as emulator:
        headers = {"Authorization": "Bearer bravo-demo-token"}
        codes = [requests.get(emulator.url, headers=headers).status_code for _ in range(181)]
        assert codes[:180] == [200] * 180 and codes[180] == 429
