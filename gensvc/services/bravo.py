"""Bravo (TOPMed freeze5) variant browser: client and operations.

Bravo is synchronous: every operation is a handful of paged GETs under the
shared limit of 180 requests per 15 minutes. Region and gene queries can take
thousands of pages: their records go page by page into a checkpoint under the
state dir (gensvc.core.checkpoint), so a rerun after a failure goes on from
there, and the output is written from it without holding every record.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterable
from urllib.parse import urljoin, urlsplit

from gensvc.alleles import minimal
from gensvc.core import progress
from gensvc.core.answers import unexpected_shape
from gensvc.core.auth import BearerToken
from gensvc.core.checkpoint import Checkpoint
from gensvc.core.client import ServiceClient
from gensvc.core.disk_sort import sorted_on_disk
from gensvc.core.errormap import ErrorMap, Rule, json_field
from gensvc.core.receipts import idempotency_key
from gensvc.core.response_cache import ResponseCache
from gensvc.errors import AuthError, RequestRejected, ServiceUnavailable, UsageError
from gensvc.genome_build import AUTO, choose_build
from gensvc.services.bravo_cover import MAX_REGION, expected_requests, walk
from gensvc.services.spellings import TABLE_COLUMNS

log = logging.getLogger("gensvc.bravo")

SERVED_BUILDS = {"GRCh38": "hg38"}
PAGE_SIZE = 1000
EXPECTED_DENSITY = 0.1  # records per bp, to plan pages before any is read (frequencies' default density)
FILTER_KEYS = ("allele_count", "allele_freq", "allele_num", "site_quality", "filter")
COLUMNS = ("variant_id", "chrom", "pos", "ref", "alt", "allele_count", "allele_num", "allele_freq", "filter", "site_quality")
CHROMOSOMES = [str(n) for n in range(1, 23)] + ["X", "Y", "M"]
CHROM_ORDER = {name: index for index, name in enumerate(CHROMOSOMES)}
FILTERS = {
    "PASS": "All filters passed",
    "CEN": "Variant located in centromeric region with inferred sequences",
    "SVM": "Variant failed SVM filter",
    "DISC": "Mendelian or duplicate genotype discordance is high (3/5% or more)",
    "CHRXHET": "Excess heterozygosity in chrX in males",
    "EXHET": "Excess heterozygosity with HWE p-value < 1e-6",
}


TOKEN_HINT = (
    "set GENSVC_BRAVO_TOKEN (or token_file) to a current token from `bravo print-access-token`; "
    "Bravo tokens are tied to the IP address they were made from"
)
ERRORS = ErrorMap("bravo", message=json_field("error"), auth_hint=TOKEN_HINT, rules=(
    Rule(400, AuthError, says="not authorized", what="bravo: not authorized"),  # Bravo's word for a bad token
    Rule(400, RequestRejected, what="bravo refused the query: {message}"),
    Rule(404, RequestRejected, what="bravo has no such endpoint", hint="check the base URL (GENSVC_BRAVO_URL or params url)"),
))


class BravoClient(ServiceClient):
    SERVICE = "bravo"
    ENDPOINTS = {"info": "", "variant": "variant", "region": "region", "gene": "gene"}
    ERRORS = ERRORS

    def __init__(self, step, cache: ResponseCache | None = None):
        token = step.settings.credentials.get("token")
        super().__init__(step.session, step.settings.url, auth=BearerToken(token) if token else None)
        self.cache = cache

    def get(self, name: str, params: dict | None = None) -> dict:
        if self.cache is not None:
            kept = self.cache.get(name, params)
            if isinstance(kept, dict):
                progress.current().advance()  # a request of the plan, answered without one
                return kept
        body = self._page(self.request("GET", name, params=params))
        if self.cache is not None:
            self.cache.put(name, params, body)
        return body

    def pages(self, path: str, params: dict, resume: dict | None = None, seen=()):
        """Every page of a paged query, following ``next`` until it is null, each with the
        cursor that goes on after it: None after the last page, or where going on later
        is not safe (``resumable_link``).

        ``resume``, a cursor yielded before (kept in a checkpoint), goes on from there;
        ``seen`` are the record keys read before it. A server whose links loop or never
        end is stopped (exit 5): a link that repeats, a page that brings no record not
        seen before, or more pages than the query can hold (``page_bound``).
        """
        limit = int(params.get("limit", PAGE_SIZE))
        links, records = set(), set(seen)
        if resume:
            link, count, span, bound = resume["next"], resume["pages"], resume["span"], resume["bound"]
        else:
            page, count = self.get(path, params), 1
            span = query_span(path, params, page)
            bound = page_bound(span, limit, page.get("total"))
            records |= set(map(_record_key, page.get("data") or ()))
            link = page.get("next")
            yield page, _cursor(path, link, count, span, bound)
        while link:
            link = self._same_origin(link)
            where = link.split("?")[0]
            if link in links:
                raise _endless(f"page {count} links to a page already read", where)
            if count >= bound:
                raise _endless(f"page {count} links to page {count + 1}, "
                    f"but {span} bp at {limit} records a page need at most {bound} pages", where)
            links.add(link)
            page = self._page(self.send("GET", link))
            count += 1
            new = set(map(_record_key, page.get("data") or ())) - records
            if not new and page.get("next"):
                raise _endless(f"page {count} repeats records already read, yet links to another", where)
            records |= new
            link = page.get("next")
            yield page, _cursor(path, link, count, span, bound)

    def _same_origin(self, link: str) -> str:
        # the token goes only to the server we were configured with
        parts = urlsplit(link)
        return urljoin(self.base, parts.path + (f"?{parts.query}" if parts.query else ""))

    def _page(self, response) -> dict:
        progress.current().advance()  # one request (its retries aside) of the operation's plan
        body = self.answer(response)
        where = response.url.split("?")[0]
        if not isinstance(body, dict) or not isinstance(body.get("data", []), (list, type(None))):
            raise unexpected_shape("bravo", "a page of records", body, where)
        for record in body.get("data") or ():
            if not isinstance(record, (dict, str)):  # a vcf=1 page holds lines
                raise unexpected_shape("bravo", "a record", record, where)
        return body


# Bounds on what one query can hold, to tell endless paging from a long answer.
# TOPMed freeze5 holds about 0.15 records per bp; 4 per bp on average is far above
# any stretch of it, and 1000 more leave room for one site with very many alleles.
RECORDS_PER_BP = 4
RECORDS_AT_ONE_SITE = 1000
LONGEST_GENE = 2_500_000  # bp; DMD, the longest human gene, spans about 2.2 Mb


def query_span(path: str, params: dict, first_page: dict) -> int:
    """How many positions a query covers: its window, its gene's extent, or one."""
    if "start" in params and "end" in params:
        return max(1, int(params["end"]) - int(params["start"]) + 1)
    extent = first_page.get("gene") or first_page.get("transcript")
    if isinstance(extent, dict) and isinstance(extent.get("start"), int) and isinstance(extent.get("stop"), int):
        return max(1, extent["stop"] - extent["start"] + 1)
    return 1 if path == "variant" else LONGEST_GENE


def page_bound(positions: int, limit: int, total=None) -> int:
    """Most pages a query over ``positions`` bp can need at ``limit`` records a page.

    A server that states its ``total`` bounds it further. Full pages, then one more
    (Bravo links to a last, empty page when the records fill the pages exactly).
    """
    records = positions * RECORDS_PER_BP + RECORDS_AT_ONE_SITE
    if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
        records = min(records, total)
    return records // max(1, limit) + 1


def resumable_link(path: str, link: str) -> bool:
    """Whether a ``next`` link can be followed in a later run: Bravo's own links repeat
    the query and add ``last``, a cursor naming the last record read (no state kept on
    the server), so the same link gives the same next page later."""
    parts = urlsplit(link)
    return parts.path.rstrip("/").endswith(f"/{path}") and any(
        field.startswith("last=") for field in parts.query.split("&"))


def _cursor(path: str, link: str | None, pages: int, span: int, bound: int) -> dict | None:
    if not link or not resumable_link(path, link):
        return None
    return {"next": link, "pages": pages, "span": span, "bound": bound}


def _record_key(record):
    if isinstance(record, dict):
        return record.get("variant_id") or json.dumps(record, sort_keys=True)
    return record  # vcf=1 pages hold lines


def _endless(what: str, where: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"bravo paging does not end: {what}", where=where,
        hint="the server's next links loop; try again later, or tell the service's operators",
    )


# ---- parameters --------------------------------------------------------------


def bravo_chrom(chrom: str) -> str | None:
    """``chr22``/``22`` -> ``22``; ``MT`` -> ``M``; None for names Bravo has no data for."""
    name = re.sub(r"^chr", "", str(chrom), flags=re.IGNORECASE)
    name = {"MT": "M", "x": "X", "y": "Y", "m": "M"}.get(name, name)
    return name if name in CHROM_ORDER else None


def _chrom_param(chrom: str) -> str:
    name = bravo_chrom(chrom)
    if name is None:
        raise UsageError(f"chromosome {chrom!r} is not one Bravo serves", hint="use 1-22, X, Y or M, with or without chr")
    return name


def filter_params(filters: dict) -> dict:
    """Filter params as Bravo takes them; a list repeats the key (both must hold)."""
    params = {}
    for key in FILTER_KEYS:
        value = filters.get(key)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        params[key] = [str(v) for v in values]
    return params


FILTER_TYPES = {"allele_count": int, "allele_num": int, "allele_freq": float, "site_quality": float, "filter": str}
COMPARE = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "lt": lambda a, b: a < b,
    "gte": lambda a, b: a >= b,
    "lte": lambda a, b: a <= b,
}


def parse_condition(key: str, text) -> tuple[str, object]:
    """``"gte:0.01"`` -> ("gte", 0.01); a quoted value is a literal eq, as Bravo reads it."""
    text = str(text)
    operator, value = "eq", text
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        value = text[1:-1]
    elif ":" in text:
        operator, _, value = text.partition(":")
        operator = operator.lower()
        if operator not in COMPARE or ":" in value:
            raise UsageError(f"filter {key}={text!r} is not VALUE or OP:VALUE", hint="OP is eq, ne, gt, lt, gte or lte")
    try:
        return operator, FILTER_TYPES[key](value)
    except ValueError:
        raise UsageError(f"filter {key}={text!r}: {value!r} is not a number") from None


def filter_conditions(filters: dict) -> list[tuple[str, str, object]]:
    return [(key, *parse_condition(key, text)) for key, texts in filter_params(filters).items() for text in texts]


def passes(variant: dict, conditions) -> bool:
    # Bravo keeps one value per operator and key (freeze5) or ORs repeats (later code):
    # either way its answer holds every match, and this check makes them all hold
    return all(COMPARE[op](variant.get(key), value) for key, op, value in conditions)


def region_windows(start: int, end: int, width: int = MAX_REGION):
    """Windows of at most ``width`` bp covering [start, end]; neighbours share their edge."""
    if start >= end:
        raise UsageError(f"region start {start} must be less than end {end}")
    while True:
        window_end = min(end, start + width)
        yield start, window_end
        if window_end >= end:
            return
        start = window_end


# ---- results -----------------------------------------------------------------


class Descending:
    """A sort key's value compared the other way round (strings too)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return self.value == other.value

    def __lt__(self, other):
        return other.value < self.value


def variant_order(sort: str | None):
    """The order windows are joined in, as one key of a record: the given keys, then
    position, then variant id (one key, so that runs sorted apart merge into it)."""
    keys = [({"variant-id": "variant_id"}.get(name, name), descending) for name, descending in _sort_keys(sort)]

    def key(v):
        where = (CHROM_ORDER.get(v["chrom"], 99), v["pos"])
        given = []
        for field, descending in keys:
            value = where if field == "pos" else v.get(field)
            given.append(Descending(value) if descending else value)
        return (*given, *where, v["variant_id"])

    return key


def vcf_order(v) -> tuple:
    return (CHROM_ORDER.get(v["chrom"], 99), v["pos"], v["ref"], v["alt"])


def _sort_keys(sort: str | None) -> list[tuple[str, bool]]:
    keys = []
    for part in (sort or "").split(","):
        if part.strip():
            key, _, direction = part.strip().partition(":")
            keys.append((key, direction.lower() in ("desc", "-1")))
    return keys


def write_variants(path: str, variants: Iterable[dict], fmt: str, extra: dict | None = None, chroms=()) -> None:
    """Stream ``variants`` into ``path``. For VCF they come in ``vcf_order`` and ``chroms``
    names their chromosomes (the header lists them before the first record)."""
    with open(path, "w", newline="") as handle:
        if fmt == "json":
            _write_json(handle, variants, extra or {})
        elif fmt == "tsv":
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(COLUMNS)
            for v in variants:
                writer.writerow([v.get(c, "") for c in COLUMNS])
        else:
            _write_vcf(handle, variants, chroms)


def _write_json(handle, variants: Iterable[dict], extra: dict) -> None:
    # the bytes of json.dump({**extra, "variants": [...]}, indent=1), one record at a time
    handle.write("{\n")
    for name, value in extra.items():
        handle.write(f" {json.dumps(name)}: {_indented(value, 1)},\n")
    handle.write(' "variants": [')
    count = 0
    for v in variants:
        handle.write(f"{',' if count else ''}\n  {_indented(v, 2)}")
        count += 1
    handle.write("\n ]\n}\n" if count else "]\n}\n")


def _indented(value, depth: int) -> str:
    return json.dumps(value, indent=1).replace("\n", "\n" + " " * depth)


def _write_vcf(handle, variants: Iterable[dict], chroms) -> None:
    handle.write("##fileformat=VCFv4.2\n##source=gensvc bravo (TOPMed freeze5)\n")
    for name, description in FILTERS.items():
        handle.write(f'##FILTER=<ID={name},Description="{description}">\n')
    handle.write(
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="Number of Alleles in Samples with Coverage">\n'
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="Alternate Allele Counts in Samples with Coverage">\n'
        '##INFO=<ID=AF,Number=A,Type=Float,Description="Alternate Allele Frequencies">\n'
    )
    for chrom in sorted(set(chroms), key=lambda c: CHROM_ORDER.get(c, 99)):
        handle.write(f"##contig=<ID={chrom}>\n")
    handle.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    for v in variants:
        info = f"AN={v['allele_num']};AC={v['allele_count']};AF={v['allele_freq']}"
        handle.write(
            f"{v['chrom']}\t{v['pos']}\t{v['variant_id']}\t{v['ref']}\t{v['alt']}\t"
            f"{v.get('site_quality', '.')}\t{v.get('filter') or '.'}\t{info}\n"
        )


def output_format(path: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    for suffix, name in ((".tsv", "tsv"), (".txt", "tsv"), (".json", "json"), (".vcf", "vcf")):
        if path.endswith(suffix):
            return name
    raise UsageError(f"cannot tell the format of {path}", hint="end it in .tsv, .json or .vcf, or set params format")


def _collect(client: BravoClient, path: str, params: dict) -> list[dict]:
    """All records of a small paged query (deduplicated by variant id), in memory."""
    seen, variants = set(), []
    for page, _ in client.pages(path, params):
        for variant in page["data"]:
            if variant["variant_id"] not in seen:
                seen.add(variant["variant_id"])
                variants.append(variant)
    return variants


# ---- long fetches: streamed to a checkpoint, resumed by a rerun ------------------


@contextmanager
def resumable(step, operation: str, params: dict, inputs: dict | None = None):
    """The checkpoint of this call (keyed like the submission journal), open and locked;
    discarded once the outputs are in place, kept for a rerun if the call fails."""
    request = {"service": "bravo", "url": step.url, "operation": operation, "params": params}
    key = idempotency_key("bravo", step.url, operation, params, inputs or {})
    checkpoint = Checkpoint(step.settings.state_dir, "bravo", key, request)
    with checkpoint:
        if checkpoint.position:
            position = checkpoint.position
            log.info("resuming from checkpoint %s: %d records kept, %s; delete it to start afresh",
                     checkpoint.directory, checkpoint.count, _done_so_far(position))
        try:
            yield checkpoint
        except BaseException:
            if checkpoint.position:
                log.info("the %d records read so far are kept in %s; a rerun of the same call goes on "
                            "from there", checkpoint.count, checkpoint.directory)
            raise
    step.committed.append(checkpoint.discard)


def _done_so_far(position: dict) -> str:
    if "queries" in position:  # fetch_into's
        return f"{position['query']} of {position['queries']} queries done" + (" and part of the next" if position["cursor"] else "")
    return f"chromosome {position['chrom'] + 1} of the walk begun, at site {position['site'] + 1}"  # walk_sites'


def fetch_into(checkpoint: Checkpoint, client: BravoClient, queries: list[tuple[str, dict]], conditions=(),
               finished=lambda index: None) -> dict:
    """Every record of every query, deduplicated by variant id and filtered by
    ``conditions``, appended to the checkpoint page by page, from where it stopped.

    Each query, and each page with a resumable next link, is committed with its
    position. Neighbouring queries share an edge, so a record can repeat only in the
    query after its own: the ids of two queries are in memory, not of all.
    ``finished(index)`` is called as each query ends. Returns the final position: the first page's extras and the chromosomes read.
    """
    position = checkpoint.position or {"query": 0, "cursor": None, "start": 0, "previous_start": 0,
                                       "extras": None, "chroms": []}
    index, cursor = position["query"], position["cursor"]
    extras, chroms = position["extras"], set(position["chroms"])
    # where the records of the query at ``index``, and of the one before it, begin
    start, previous_start = position["start"], position["previous_start"]
    previous = {v["variant_id"] for v in checkpoint.records(previous_start, start)} if index else set()
    current = {v["variant_id"] for v in checkpoint.records(start)}

    def place(**changes):
        return {**position, "queries": len(queries), "extras": extras, "chroms": sorted(chroms),
                "start": start, "previous_start": previous_start, **changes}

    while index < len(queries):
        path, params = queries[index]
        for page, cursor in client.pages(path, params, resume=cursor, seen=current):
            if extras is None:
                extras = {k: v for k, v in page.items() if k not in ("data", "next", "format", "header", "meta")}
            fresh = []
            for v in page["data"]:
                if v["variant_id"] not in current and v["variant_id"] not in previous and passes(v, conditions):
                    current.add(v["variant_id"])
                    chroms.add(v["chrom"])
                    fresh.append(v)
            checkpoint.append(fresh)
            if cursor:
                position = place(query=index, cursor=cursor)
                checkpoint.commit(position)
        index += 1
        previous, current = current, set()
        previous_start, start = start, checkpoint.size
        position = place(query=index, cursor=None)
        checkpoint.commit(position)
        finished(index - 1)
    return position


def write_fetched(checkpoint: Checkpoint, path: str, fmt: str, order=None, extra: dict | None = None) -> None:
    """The checkpoint's records into ``path``: in the order read, or by ``order`` (a key of
    a record); VCF by position, ties in that order. Reordering sorts on disk, so memory
    holds a bounded part of the records, never all."""
    def listed(item):  # (n, record): the n-th record read
        return (*order(item[1]), item[0]) if order else item[0]

    def by_position(item):
        return vcf_order(item[1]), listed(item)

    key = by_position if fmt == "vcf" else listed if order else None
    items = enumerate(checkpoint.records())
    ordered = sorted_on_disk(items, key, checkpoint.directory) if key else items
    write_variants(path, (v for _, v in ordered), fmt, extra, chroms=checkpoint.position["chroms"])


def _api_versions(url: str) -> dict:
    # the base URL names dataset and API version: no request needed
    match = re.search(r"/([^/]+)/([^/]+)/api/(v\d+)/?$", urlsplit(url).path)  # the path's, not the host's
    return {"dataset": f"{match.group(1)}/{match.group(2)}", "api_version": match.group(3)} if match else {}


# ---- operations ----------------------------------------------------------------


def info(step) -> dict:
    client = BravoClient(step)
    about = client.get("info")
    with open(step.output["info"], "w") as handle:
        json.dump(about, handle, indent=1)
        handle.write("\n")
    return {"versions": {k: about[k] for k in ("dataset", "api_version") if k in about}}


def variant(step, *, variant_id=None, chrom=None, pos=None, format=None) -> dict:
    path = step.output["variants"]
    fmt = output_format(path, format)
    if variant_id and (chrom or pos):
        raise UsageError("give variant_id, or chrom and pos, not both")
    if variant_id:
        parts = variant_id.split("-")
        if len(parts) != 4 or not parts[1].isdigit():
            raise UsageError(f"variant_id {variant_id!r} is not CHROM-POS-REF-ALT", hint="e.g. 22-16389447-A-G")
        params = {"variant_id": "-".join([_chrom_param(parts[0]), *parts[1:]])}
    elif chrom and pos:
        params = {"chrom": _chrom_param(chrom), "pos": int(pos)}
    else:
        raise UsageError("give variant_id, or chrom and pos")
    variants = _collect(BravoClient(step), "variant", params)
    ordered = sorted(variants, key=vcf_order) if fmt == "vcf" else variants
    write_variants(path, ordered, fmt, chroms={v["chrom"] for v in variants})
    return {"variants": len(variants), "versions": _api_versions(step.url)}


def region(step, *, chrom, start, end, sort=None, limit=PAGE_SIZE, format=None, **filters) -> dict:
    path = step.output["variants"]
    fmt = output_format(path, format)
    query = {"chrom": _chrom_param(chrom), **filter_params(filters), "limit": limit}
    conditions = filter_conditions(filters)
    if sort:
        query["sort"] = sort
    windows = list(region_windows(int(start), int(end)))
    queries = [("region", {**query, "start": window_start, "end": window_end}) for window_start, window_end in windows]
    # one window keeps Bravo's order; windows are joined in one order of their own
    order = variant_order(sort) if len(windows) > 1 else None
    expected = [expected_pages(s, e, EXPECTED_DENSITY, int(limit)) for s, e in windows]
    with resumable(step, "region", {**query, "start": int(start), "end": int(end)}) as checkpoint:
        first = checkpoint.position["query"] if checkpoint.position else 0  # windows done before
        with progress.report("bravo region", total=sum(expected[first:]), limiter=step.session.limiter) as reporter:
            left = len(windows) - first
            reporter.plan(f" ({left} window{'s' * (left > 1)} at about {EXPECTED_DENSITY:g} records per bp)")

            def finished(index):  # the rest of the plan, scaled by the pages the windows so far really took
                reporter.expect(round(reporter.done * sum(expected[first:]) / sum(expected[first:index + 1])))

            fetch_into(checkpoint, BravoClient(step), queries, conditions, finished)
        write_fetched(checkpoint, path, fmt, order)
    return {"variants": checkpoint.count, "windows": len(windows), "versions": _api_versions(step.url)}


def gene(step, *, name, sort=None, limit=PAGE_SIZE, format=None, **filters) -> dict:
    path = step.output["variants"]
    fmt = output_format(path, format)
    query = {"name": name, **filter_params(filters), "limit": limit}
    conditions = filter_conditions(filters)
    if sort:
        query["sort"] = sort
    with resumable(step, "gene", query) as checkpoint:
        with progress.report(f"bravo gene {name}", limiter=step.session.limiter):  # pages unknown: a count
            extras = fetch_into(checkpoint, BravoClient(step), [("gene", query)], conditions)["extras"] or {}
        write_fetched(checkpoint, path, fmt, extra={"gene": extras.get("gene")})
    return {"variants": checkpoint.count, "gene": extras.get("gene"), "versions": _api_versions(step.url)}


def expected_pages(start: int, end: int, density: float, page_size: int = PAGE_SIZE) -> int:
    """Pages a window should take at ``density`` records per bp."""
    return max(1, math.ceil((end - start + 1) * density / page_size))


# ---- frequencies ------------------------------------------------------------------


def read_sites(vcf_path: str) -> list[tuple[str, int, str, str]]:
    """(chrom as in the input, pos, ref, alt) for every ALT of every record, in file order."""
    from gensvc.vcfinput import vcf_records

    return [(record.chrom, record.pos, record.ref, alt)
            for record in vcf_records(vcf_path, "vcf input") for alt in record.alts or ()]


def query_positions(sites) -> dict[str, list[int]]:
    """Per Bravo chromosome, the sorted positions a matching Bravo record can sit at.

    An ALT matches a record spelled as in the input (at POS) or one whose trimmed
    spelling is the ALT's own, which can start after POS (``AT>AC`` is ``T>C`` at POS+1).
    """
    by_chrom: dict[str, set[int]] = defaultdict(set)
    for chrom, pos, ref, alt in sites:
        name = bravo_chrom(chrom)
        if name and not alt.startswith("<") and alt != "*":
            by_chrom[name].update((pos, minimal(pos, ref, alt)[0]))
    return {name: sorted(positions) for name, positions in by_chrom.items()}


def read_window(client: BravoClient, chrom: str, start: int, end: int, page_size: int, keep) -> int | None:
    """One query of the walk (bravo_cover.walk), a page of it: its records go to ``keep``;
    returns the position of the last record read when more may follow it, None when the
    window was read to its end. A page that ends where it began (more records at the site
    than a page holds) is followed by one /variant request for that site, which gives all
    of them; the walk goes on after it."""
    if start == end:
        keep(client.get("variant", {"chrom": chrom, "pos": start}).get("data") or [])
        return None
    page = client.get("region", {"chrom": chrom, "start": start, "end": end, "limit": page_size})
    data = page.get("data") or []
    keep(data)
    if not page.get("next") or not data:
        return None
    last = data[-1].get("pos") if isinstance(data[-1], dict) else None
    if not isinstance(last, int) or isinstance(last, bool) or not start <= last <= end:
        raise unexpected_shape("bravo", f"records from {start} to {end}", data[-1], "region")
    if last > start:
        return last
    keep(client.get("variant", {"chrom": chrom, "pos": start}).get("data") or [])
    return start + 1


def walk_sites(checkpoint: Checkpoint, client: BravoClient, by_chrom: dict[str, list[int]], page_size: int,
               finished=lambda chrom: None) -> None:
    """Every Bravo record at the sites' positions into the checkpoint, chromosome by
    chromosome, query by query (bravo_cover.walk); each query committed with where the
    walk goes on, so a rerun asks only for the rest. Records elsewhere in a page are not
    kept: they are most of it, and no site's."""
    chroms = sorted(by_chrom, key=CHROM_ORDER.get)
    position = checkpoint.position or {"chrom": 0, "site": 0}
    kept = {v["variant_id"] for v in checkpoint.records()}  # a page may repeat the last one's end
    for index in range(position["chrom"], len(chroms)):
        chrom, positions = chroms[index], by_chrom[chroms[index]]
        wanted = set(positions)

        def keep(records, chrom=chrom, wanted=wanted):
            fresh = [v for v in records if isinstance(v, dict) and v.get("chrom") == chrom and v.get("pos") in wanted
                     and v.get("variant_id") not in kept]
            kept.update(v.get("variant_id") for v in fresh)
            checkpoint.append(fresh)

        def read(start, end, chrom=chrom, keep=keep):
            return read_window(client, chrom, start, end, page_size, keep)

        first = position["site"] if index == position["chrom"] else 0
        for first in walk(positions, read, first):
            checkpoint.commit({"chrom": index, "site": first})
        checkpoint.commit({"chrom": index + 1, "site": 0})
        finished(chrom)


def response_cache(step, max_mb: float) -> ResponseCache:
    """Bravo's answers kept under the state dir, keyed by the server, the dataset and the API
    version: the base URL names the last two; where it does not, Bravo's own / says (one
    request), so that a new dataset behind the same URL is never answered from the old."""
    versions = _api_versions(step.url)
    if not versions:
        about = BravoClient(step).get("info")
        versions = {key: about.get(key) for key in ("dataset", "api_version")}
    parts = urlsplit(step.url)
    namespace = {"server": f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}", **versions}
    return ResponseCache(step.settings.state_dir / "cache" / "bravo", namespace, int(max_mb * 1024 * 1024))


def frequencies(step, *, density=0.1, page_size=PAGE_SIZE, assembly=AUTO, cache=True, cache_max_mb=1024) -> dict:
    vcfs, tables = _listed(step.input["vcf"]), _listed(step.output["table"])
    if len(vcfs) != len(tables):
        raise UsageError(f"{len(vcfs)} vcf inputs but {len(tables)} table outputs",
                         hint="give one table per vcf, in the same order")
    # freeze5 is hg38 only: another build's positions would match the wrong variants
    choose_build(vcfs, assembly, served=SERVED_BUILDS, fallback="hg38", param="assembly", service="Bravo freeze5")
    cohort = [read_sites(vcf) for vcf in vcfs]
    by_chrom = query_positions(site for sites in cohort for site in sites)  # one walk for all of them
    expected = {chrom: expected_requests(positions, density, page_size) for chrom, positions in by_chrom.items()}
    known: dict[tuple, dict] = {}
    # keyed by the inputs' digests too: other VCFs take other queries
    with resumable(step, "frequencies", {"page_size": page_size}, inputs={"vcf": vcfs}) as checkpoint:
        with progress.report("bravo frequencies", total=sum(expected.values()), limiter=step.session.limiter) as reporter:
            reporter.plan(f" for the sites of {len(vcfs)} VCFs" if len(vcfs) > 1 else "")
            left = dict(expected)

            def finished(chrom):  # the plan's rest, as estimated; what is done is counted
                del left[chrom]
                reporter.expect(reporter.done + sum(left.values()))

            kept = response_cache(step, cache_max_mb) if cache else None
            walk_sites(checkpoint, BravoClient(step, kept), by_chrom, int(page_size), finished)
        if kept is not None:
            if kept.hits:
                log.info("%d of the walk's queries answered from the cache %s", kept.hits, kept.directory)
            if not kept.stored and kept.size() > kept.max_bytes:  # the bound lowered since: trimmed now
                kept.trim()
        for v in checkpoint.records():  # the records of sites asked for: a few per site
            known[(v["chrom"], v["pos"], v["ref"], v["alt"])] = v
            known.setdefault((v["chrom"], *minimal(v["pos"], v["ref"], v["alt"])), v)
    found = [write_table(table, sites, known) for table, sites in zip(tables, cohort)]
    return {
        "sites": sum(map(len, cohort)),
        "found": sum(found),
        **({"per_input": [{"vcf": str(vcf), "sites": len(sites), "found": count}
                          for vcf, sites, count in zip(vcfs, cohort, found)]} if len(vcfs) > 1 else {}),
        "density": density,
        "cache": {"answered": kept.hits, "kept": kept.stored} if kept is not None else "off",
        "versions": _api_versions(step.url),
    }


def _listed(paths) -> list:
    return list(paths) if isinstance(paths, (list, tuple)) else [paths]


def write_table(path: str, sites, known: dict) -> int:
    """One row per ALT, in the input's order and spelling, with Bravo's record where one
    matches; returns how many matched."""
    found_count = 0
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(TABLE_COLUMNS)
        for chrom, pos, ref, alt in sites:
            name = bravo_chrom(chrom)
            match = known.get((name, pos, ref.upper(), alt.upper())) or known.get((name, *minimal(pos, ref, alt)))
            found_count += match is not None
            values = [match[k] for k in ("variant_id", "allele_freq", "allele_count", "allele_num", "filter")] if match else [""] * 5
            writer.writerow([chrom, pos, ref, alt, *values, "true" if match else "false"])
    return found_count


OPERATIONS = {"info": info, "variant": variant, "region": region, "gene": gene, "frequencies": frequencies}
