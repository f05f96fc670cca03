"""Bravo's query-string language for /region and /gene, as the 2018-01 (freeze5) server reads it.

- Filters: `key=value` (same as `eq:value`) or `key=op:value`, op one of eq, ne, gt, lt,
  gte, lte in any case. A value wrapped in single or double quotes is an eq on the literal
  text. More than one `:` or a value that does not convert to the key's type is a parsing
  error. Repeating a key merges the operators into one condition per key, as the 2018-01
  code's dict did: different operators are AND-ed (`gte:` + `lt:` is a range) and a
  repeated operator keeps its last value.
- Sort: `key[:dir][,key[:dir]...]`, dir asc/1/empty or desc/-1; `pos` means xpos. A key
  given twice keeps its first place and its last direction. Ties go to the object id.
- Cursor: `last=<24-hex object id>:<v1>:<v2>...`, one value per sort key; the next page
  holds the rows strictly after it in (sort keys..., object id) order.

Every parsing error answers 400 `{"error": "invalid query parameters"}`, as webargs did.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any, Callable

from werkzeug.datastructures import MultiDict

from .bravo_data import VariantRow

INVALID_QUERY = "invalid query parameters"
PAGE_SIZE = 1000

FILTER_TYPES: dict[str, type] = {
    "allele_count": int,
    "allele_freq": float,
    "allele_num": int,
    "site_quality": float,
    "filter": str,
}

SORT_TYPES: dict[str, type] = {
    "pos": int,
    "allele_count": int,
    "allele_freq": float,
    "allele_num": int,
    "site_quality": float,
    "filter": str,
    "variant_id": str,
}
SORT_ALIASES = {"variant-id": "variant_id"}  # the 2018-01 spelling

# Which stored field a query key reads; `pos` sorts and pages by xpos.
ROW_FIELD = {"pos": "xpos"}

_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_FLOAT = re.compile(r"\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)\s*",
                    re.IGNORECASE)
_OPERATORS = ("eq", "ne", "gt", "lt", "gte", "lte")

# Webargs' Bool (marshmallow 2) accepted exactly these spellings.
_TRUTHY = {"t", "T", "true", "True", "TRUE", "1"}
_FALSY = {"f", "F", "false", "False", "FALSE", "0"}


class QueryError(Exception):
    """A client error Bravo answers with HTTP 400 and `{"error": message}`."""

    def __init__(self, message: str = INVALID_QUERY):
        super().__init__(message)
        self.message = message


def parse_int(text: str) -> int:
    # Python 2's int() (what Bravo ran) accepted no underscores; Python 3's does.
    if not _INTEGER.fullmatch(text):
        raise QueryError()
    return int(text)


def parse_float(text: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise QueryError()
    return float(text)


def parse_bool(text: str) -> bool:
    if text in _TRUTHY:
        return True
    if text in _FALSY:
        return False
    raise QueryError()


def _convert(text: str, value_type: type) -> Any:
    if value_type is int:
        return parse_int(text)
    if value_type is float:
        return parse_float(text)
    return text


def _is_quoted(text: str) -> bool:
    return len(text) > 1 and text[0] == text[-1] and text[0] in "\"'"


def parse_filter_value(raw: str, value_type: type) -> tuple[str, Any]:
    """One `key=...` value -> (operator, typed value)."""
    value = raw.strip()
    if not value:
        raise QueryError()
    if _is_quoted(value):
        # Taken literally, never converted: a quoted number never equals a stored number.
        return "eq", value[1:-1]
    elements = value.split(":")
    if len(elements) == 1:
        operator, operand = "eq", elements[0]
    elif len(elements) == 2:
        operator, operand = elements[0].lower(), elements[1]
        if operator not in _OPERATORS:
            raise QueryError()
    else:
        raise QueryError()
    if value_type is str and _is_quoted(operand):
        operand = operand[1:-1]
    return operator, _convert(operand, value_type)


def parse_filters(args: MultiDict) -> dict[str, dict[str, Any]]:
    """All filter keys of a request -> {key: {operator: value}} (operators AND-ed)."""
    filters: dict[str, dict[str, Any]] = {}
    for key, value_type in FILTER_TYPES.items():
        values = args.getlist(key)
        if values:
            conditions: dict[str, Any] = {}
            for raw in values:
                operator, value = parse_filter_value(raw, value_type)
                conditions[operator] = value
            filters[key] = conditions
    return filters


SortSpec = list[tuple[str, bool]]  # (key, ascending)


def parse_sort(raw: str) -> SortSpec:
    order: dict[str, bool] = {}
    for part in raw.strip().split(","):
        key_direction = part.strip().split(":")
        if len(key_direction) > 2:
            raise QueryError()
        key = key_direction[0].lower()
        key = SORT_ALIASES.get(key, key)
        if key not in SORT_TYPES:
            raise QueryError()
        direction = key_direction[1].lower() if len(key_direction) > 1 else ""
        if direction in ("", "asc", "1"):
            order[key] = True
        elif direction in ("desc", "-1"):
            order[key] = False
        else:
            raise QueryError()
    return list(order.items())


@dataclass(frozen=True)
class Cursor:
    object_id: str
    values: tuple


def parse_last(raw: str, sort: SortSpec | None) -> Cursor:
    elements = raw.strip().split(":")
    object_id = elements[0].lower()
    if len(object_id) != 24 or any(c not in string.hexdigits for c in object_id):
        raise QueryError()
    if sort is None or len(elements) - 1 != len(sort):
        raise QueryError()
    values = tuple(_convert(text, SORT_TYPES[key]) for text, (key, _) in zip(elements[1:], sort))
    return Cursor(object_id, values)


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return PAGE_SIZE
    limit = parse_int(raw)
    # The help page promises 1..1,000 per page; enforce it rather than serve more.
    if not 1 <= limit <= PAGE_SIZE:
        raise QueryError()
    return limit


def _field(key: str) -> str:
    return ROW_FIELD.get(key, key)


def _condition(operator: str, expected: Any) -> Callable[[Any], bool]:
    # Mongo compares only values of one type: a str never equals or orders against a number.
    def same_type(value: Any) -> bool:
        return isinstance(value, str) == isinstance(expected, str)

    if operator == "eq":
        return lambda value: same_type(value) and value == expected
    if operator == "ne":
        return lambda value: not (same_type(value) and value == expected)
    if operator == "gt":
        return lambda value: same_type(value) and value > expected
    if operator == "lt":
        return lambda value: same_type(value) and value < expected
    if operator == "gte":
        return lambda value: same_type(value) and value >= expected
    return lambda value: same_type(value) and value <= expected


def apply_filters(rows: list[VariantRow], filters: dict[str, dict[str, Any]]) -> list[VariantRow]:
    checks = [(_field(key), _condition(operator, expected))
              for key, conditions in filters.items()
              for operator, expected in conditions.items()]
    if not checks:
        return rows
    return [row for row in rows if all(check(getattr(row, name)) for name, check in checks)]


def sort_rows(rows: list[VariantRow], sort: SortSpec) -> list[VariantRow]:
    ordered = sorted(rows, key=lambda row: row.object_id)
    # Stable sorts from the last key to the first give the multi-key order.
    for key, ascending in reversed(sort):
        name = _field(key)
        ordered.sort(key=lambda row: getattr(row, name), reverse=not ascending)
    return ordered


def is_after(row: VariantRow, sort: SortSpec, cursor: Cursor) -> bool:
    for (key, ascending), last_value in zip(sort, cursor.values):
        value = getattr(row, _field(key))
        if value != last_value:
            return value > last_value if ascending else value < last_value
    return row.object_id > cursor.object_id


def select_page(rows: list[VariantRow], filters: dict, sort: SortSpec,
                cursor: Cursor | None, limit: int) -> list[VariantRow]:
    ordered = sort_rows(apply_filters(rows, filters), sort)
    if cursor is not None:
        ordered = [row for row in ordered if is_after(row, sort, cursor)]
    return ordered[:limit]


def cursor_text(row: VariantRow, sort: SortSpec) -> str:
    """`<object id>:<v1>:...`, the 2018-01 `last` format (pos as the xpos integer)."""
    return ":".join([row.object_id] + [str(getattr(row, _field(key))) for key, _ in sort])


def next_link(base_url: str, args: MultiDict, sort_given: bool, sort: SortSpec,
              last_row: VariantRow) -> str:
    """The `next` URL the way Bravo built it: original args except `last`, not re-encoded."""
    query = "&".join(f"{key}={value}" for key, value in args.items(multi=True) if key != "last")
    link = f"{base_url}?{query}"
    if not sort_given:
        link += "&sort=" + ",".join(f"{key}:{'asc' if asc else 'desc'}" for key, asc in sort)
    return f"{link}&last={cursor_text(last_row, sort)}"
