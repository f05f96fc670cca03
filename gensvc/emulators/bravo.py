"""Emulator of the Bravo variant browser API, TOPMed freeze5 on hg38 (the 2018-01 server).

Base URL: `http://HOST:PORT/freeze5/hg38/api/v1/`. Only GET. Endpoints: `` (dataset
metadata), `variant`, `region`, `gene`; responses are pretty-printed JSON like Flask's
`jsonify` of that time. The data is deterministic (see `bravo_data`): the help page's
example queries answer exactly as the help page shows.

Every request goes through, in the server's order:
1. the rate limit: a fixed window of 180 requests per 15 minutes (× time scale) per client
   IP, the window starting at the first request after the last one expired; beyond it,
   HTTP 429 `{"error": "too many requests"}` with no Retry-After and no X-RateLimit-*
   headers. Requests answered 400 count too. `EmulatorConfig.extra["rate_limit"]` =
   (requests, seconds) or "requests/seconds" changes it (the seconds are time-scaled too);
2. authorisation: `Authorization: Bearer <token>` (two whitespace-separated parts, scheme
   `bearer` in any case), the token one of `EmulatorConfig.tokens`, by default
   `DEFAULT_TOKENS` = ["bravo-demo-token"]. Anything else: HTTP 400 (not 401)
   `{"error": "not authorized"}`;
3. the query parameters: 400 `{"error": "invalid query parameters"}` when webargs would
   have rejected them, or 400 with Bravo's own message for the checks made after parsing.

Faithful to the help page where the 2018-01 code disagrees with it: `limit` above 1000 is
rejected, and the VCF `meta` list is the help page's text (its last line lacks the `>`).
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from flask import Blueprint, Flask, current_app, jsonify, request

from . import bravo_data
from .bravo_query import (
    INVALID_QUERY,
    Cursor,
    QueryError,
    SortSpec,
    next_link,
    parse_bool,
    parse_filters,
    parse_int,
    parse_last,
    parse_limit,
    parse_sort,
    select_page,
)
from .framework import EmulatorConfig

BASE_PATH = "/freeze5/hg38/api/v1/"
DEFAULT_TOKENS = ["bravo-demo-token"]
DATASET_NAME = "TOPMed freeze5 (gensvc emulator)"
API_VERSION = "v1"
# The server mounts its API at URL_PREFIX + "/api/" + API_VERSION and names the dataset
# API_DATASET_NAME, both from its config. `EmulatorConfig.extra["datasets"]` maps more
# prefixes to names (one server, several datasets: freeze5 beside freeze8, say), all
# serving this data.
DATASETS = {"/freeze5/hg38": DATASET_NAME}

RATE_LIMIT = (180, 900)  # requests per seconds: "180/15 minute" in the 2018-01 server
MAX_REGION = 250_000

# Service-specific fault kinds: none; Bravo is synchronous.
FAULT_KINDS: frozenset[str] = frozenset()

VCF_HEADER = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
# Exactly as the help page prints it, including the last line's missing ">".
VCF_META = [
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
]


class FixedWindowLimiter:
    """Flask-Limiter's fixed window with in-memory storage, keyed by client IP."""

    def __init__(self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window_seconds = window_seconds
        self.clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window end, hits)
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        """Count one request; False once the window's limit is exceeded."""
        now = self.clock()
        with self._lock:
            window_end, hits = self._windows.get(key, (0.0, 0))
            if now >= window_end:
                window_end, hits = now + self.window_seconds, 0
            hits += 1
            self._windows[key] = (window_end, hits)
            return hits <= self.limit

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()


def rate_limit_of(config: EmulatorConfig) -> tuple[int, float]:
    return config.rate_limit("bravo", RATE_LIMIT)


def _error(message: str, status: int = 400):
    response = jsonify({"error": message})
    response.status_code = status
    return response


def _vcf_line(row: bravo_data.VariantRow) -> str:
    return (f"{row.chrom}\t{row.pos}\t{row.variant_id}\t{row.ref}\t{row.alt}\t{row.site_quality}"
            f"\t{row.filter}\tAN={row.allele_num};AC={row.allele_count};AF={row.allele_freq}")


def _format_rows(response: dict, rows: list[bravo_data.VariantRow], vcf: bool) -> None:
    if vcf:
        response.update(format="vcf", header=VCF_HEADER, meta=VCF_META,
                        data=[_vcf_line(row) for row in rows])
    else:
        response.update(format="json", data=[row.to_json() for row in rows])


def _required_str(name: str) -> str:
    value = request.args.get(name)
    if value is None or len(value) == 0:
        raise QueryError()
    return value


def _optional_vcf() -> bool:
    raw = request.args.get("vcf")
    return False if raw is None else parse_bool(raw)


class PagedQuery:
    """The arguments /region and /gene share, parsed as webargs did (all or nothing)."""

    def __init__(self) -> None:
        args = request.args
        self.filters = parse_filters(args)
        self.sort_given = "sort" in args
        self.sort: SortSpec = parse_sort(args["sort"]) if self.sort_given else [("pos", True)]
        self.vcf = _optional_vcf()
        self.limit = parse_limit(args.get("limit"))
        raw_last = args.get("last")
        self.cursor: Cursor | None = (
            parse_last(raw_last, self.sort if self.sort_given else None)
            if raw_last is not None else None
        )

    def respond(self, rows: list[bravo_data.VariantRow], extra: dict | None = None):
        page = select_page(rows, self.filters, self.sort, self.cursor, self.limit)
        response: dict[str, Any] = dict(extra or {})
        _format_rows(response, page, self.vcf)
        response["next"] = (
            next_link(request.base_url, request.args, self.sort_given, self.sort, page[-1])
            if page and len(page) == self.limit else None
        )
        return jsonify(response)


@dataclass
class BravoState:
    """What one Bravo app keeps between requests, in `current_app.extensions["bravo"]`."""

    tokens: frozenset[str]
    limiter: FixedWindowLimiter
    datasets: dict[str, str]  # blueprint name -> the dataset name its URL prefix serves


def state() -> BravoState:
    return current_app.extensions["bravo"]


api = Blueprint("bravo", __name__)


@api.before_request
def enforce_rate_limit():
    # Runs before the view, like Flask-Limiter: failed requests count as well.
    if not state().limiter.hit(request.remote_addr or ""):
        return _error("too many requests", 429)
    return None


@api.errorhandler(QueryError)
def handle_query_error(error: QueryError):
    return _error(error.message)


def require_authorization(view: Callable) -> Callable:
    @functools.wraps(view)
    def authorized_view(*args: Any, **kwargs: Any):
        parts = request.headers.get("Authorization", "").split()
        if len(parts) != 2 or parts[0].lower() != "bearer" or parts[1] not in state().tokens:
            return _error("not authorized")
        return view(*args, **kwargs)

    return authorized_view


@api.route("/", methods=["GET"])
@require_authorization
def get_name():
    return jsonify({"dataset": state().datasets[request.blueprint], "api_version": API_VERSION})


@api.route("/variant", methods=["GET"])
@require_authorization
def get_variant():
    variant_id = request.args.get("variant_id")
    chrom = request.args.get("chrom")
    raw_pos = request.args.get("pos")
    if variant_id == "" or chrom == "":
        raise QueryError()
    pos = parse_int(raw_pos) if raw_pos is not None else None
    if pos is not None and pos < 0:
        raise QueryError()
    vcf = _optional_vcf()
    if variant_id is not None:
        rows = _rows_named(variant_id)
    elif chrom is not None and pos is not None:
        rows = bravo_data.rows_at(_chrom(chrom), pos)
    else:
        # The 2018-01 server's own wording here (not webargs' "invalid query parameters").
        raise QueryError("Invalid query parameters.")
    response: dict[str, Any] = {"next": None}
    _format_rows(response, rows, vcf)
    return jsonify(response)


def _rows_named(variant_id: str) -> list[bravo_data.VariantRow]:
    """The rows of `variant_id=CHROM-POS-REF-ALT`."""
    parts = variant_id.split("-")
    if len(parts) != 4:
        raise QueryError("Invalid variant name format.")
    chrom_text, pos_text, ref, alt = parts
    try:
        pos = parse_int(pos_text)
    except QueryError:
        raise QueryError("Invalid variant name format.") from None
    return [row for row in bravo_data.rows_at(_chrom(chrom_text), pos) if row.ref == ref and row.alt == alt]


def _chrom(text: str) -> str:
    name = bravo_data.normalise_chrom(text)
    if name is None:
        raise QueryError("Invalid chromosome name.")
    return name


@api.route("/region", methods=["GET"])
@require_authorization
def get_region():
    chrom = _required_str("chrom")
    start = parse_int(_required_str("start"))
    end = parse_int(_required_str("end"))
    if start < 0 or end <= 0:
        raise QueryError()
    query = PagedQuery()
    if start >= end:
        raise QueryError("Start position must be less than end position.")
    if end - start > MAX_REGION:
        raise QueryError(f"Regions larger than {MAX_REGION} base-pairs are not allowed.")
    return query.respond(bravo_data.rows_in(_chrom(chrom), start, end))


@api.route("/gene", methods=["GET"])
@require_authorization
def get_gene():
    gene_name = _required_str("name")
    query = PagedQuery()
    gene = bravo_data.find_gene(gene_name)
    if gene is None:
        raise QueryError(f"Gene with name or identifier equal to {gene_name} was not found.")
    rows = bravo_data.rows_in(gene.chrom, gene.start, gene.stop)
    return query.respond(rows, {"gene": gene.to_json()})


def create_app(config: EmulatorConfig | None = None) -> Flask:
    config = config or EmulatorConfig()
    limit, window = rate_limit_of(config)
    datasets = {**DATASETS, **dict(config.extra.get("datasets") or {})}
    names = {prefix: "bravo" if index == 0 else f"bravo_{index}" for index, prefix in enumerate(datasets)}
    bravo = BravoState(frozenset(config.tokens if config.tokens is not None else DEFAULT_TOKENS),
                       FixedWindowLimiter(limit, config.scaled(window)),
                       {names[prefix]: name for prefix, name in datasets.items()})
    app = Flask("gensvc.emulators.bravo")
    app.json.compact = False  # Flask 0.12's jsonify pretty-printed, as Bravo's answers show
    app.extensions["bravo"] = bravo
    app.reset_state = bravo.limiter.reset  # called by DELETE /_emulator/stats
    for prefix in datasets:
        app.register_blueprint(api, url_prefix=f"{prefix.rstrip('/')}/api/{API_VERSION}", name=names[prefix])
    return app


__all__ = ["BASE_PATH", "DEFAULT_TOKENS", "FAULT_KINDS", "INVALID_QUERY", "create_app",
           "FixedWindowLimiter"]
