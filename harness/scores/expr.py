"""`--where` expressions over score columns: a small, safe subset of Python's expression syntax.

    heuristics_pass                       a boolean column
    not gopher_pass
    compression_ratio > 0.3 and fasttext_hq_prob >= 0.5
    heuristics_reason == "c4:too_few_sentences" or minhash_cluster is None

Names are columns; constants are numbers, strings, True/False/None; operators are comparisons (chains too),
`and`, `or`, `not`, `is None` / `is not None`. Evaluated with numpy over whole columns; a null never satisfies
a comparison. Nothing else parses (no calls, no attributes), so an expression can never run code.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from harness.errors import UsageError, unknown_name

_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
}  # fmt: skip


def parse(expr: str) -> ast.expr:
    try:
        return ast.parse(expr.strip(), mode="eval").body
    except SyntaxError as exc:
        raise UsageError(f"--where {expr!r}: not an expression ({exc.msg})") from exc


def names(expr: str) -> set[str]:
    """The column names an expression reads."""
    return {n.id for n in ast.walk(parse(expr)) if isinstance(n, ast.Name)}


def evaluate(expr: str, columns: Mapping[str, Any], n_rows: int) -> np.ndarray:
    """A boolean mask over the rows. `columns`: name -> pyarrow ChunkedArray (or anything with to_numpy)."""
    value = _eval(parse(expr), expr, columns, n_rows)
    if not isinstance(value, np.ndarray) or value.dtype != bool:
        raise UsageError(f"--where {expr!r} is not a condition; compare it, e.g. `{expr} > 0.5`")
    return value


class _Column:
    """A column's values and its null mask."""

    def __init__(self, values: np.ndarray, null: np.ndarray) -> None:
        self.values, self.null = values, null


def _eval(node: ast.expr, expr: str, columns: Mapping[str, Any], n: int) -> Any:
    if isinstance(node, ast.Name):
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        if node.id not in columns:
            raise unknown_name("score column in --where", node.id, columns)
        col = _column(columns[node.id])
        if col.values.dtype == bool:
            return col.values & ~col.null
        return col
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, int | float | str | bool)):
        return node.value
    if isinstance(node, ast.BoolOp):
        parts = [_mask(_eval(v, expr, columns, n), expr, n) for v in node.values]
        return np.logical_and.reduce(parts) if isinstance(node.op, ast.And) else np.logical_or.reduce(parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ~_mask(_eval(node.operand, expr, columns, n), expr, n)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _eval(node.operand, expr, columns, n)
        if isinstance(value, int | float):
            return -value
    if isinstance(node, ast.Compare):
        out = np.ones(n, bool)
        left = _eval(node.left, expr, columns, n)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, expr, columns, n)
            out &= _compare(op, left, right, expr, n)
            left = right
        return out
    raise UsageError(
        f"--where {expr!r}: {ast.unparse(node)!r} is not allowed; use column names, constants, comparisons, "
        "and/or/not and `is None`"
    )


def _column(data: Any) -> _Column:
    import pyarrow as pa

    arr = data.combine_chunks() if isinstance(data, pa.ChunkedArray) else data
    null = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), bool)
    values = (
        arr.fill_null(
            False
            if pa.types.is_boolean(arr.type)
            else (0 if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) else "")
        )
        if arr.null_count
        else arr
    )
    return _Column(np.asarray(values.to_numpy(zero_copy_only=False)), null)


def _mask(value: Any, expr: str, n: int) -> np.ndarray:
    if isinstance(value, np.ndarray) and value.dtype == bool:
        return value
    if isinstance(value, bool):
        return np.full(n, value)
    raise UsageError(f"--where {expr!r}: and/or/not need conditions (boolean columns or comparisons)")


def _compare(op: ast.cmpop, left: Any, right: Any, expr: str, n: int) -> np.ndarray:
    if isinstance(op, ast.Is | ast.IsNot):
        col = left if isinstance(left, _Column) else right
        if not isinstance(col, _Column) or (left is not None and right is not None):
            raise UsageError(f"--where {expr!r}: `is` only tests a column against None")
        return col.null.copy() if isinstance(op, ast.Is) else ~col.null
    if type(op) not in _COMPARE:
        raise UsageError(f"--where {expr!r}: `in` is not supported; combine comparisons with `or`")
    null = np.zeros(n, bool)
    values = []
    for side in (left, right):
        if isinstance(side, _Column):
            null |= side.null
            values.append(side.values)
        elif isinstance(side, np.ndarray):
            values.append(side)
        elif side is None:
            raise UsageError(f"--where {expr!r}: compare with None using `is None` / `is not None`")
        else:
            values.append(side)
    try:
        result = np.asarray(_COMPARE[type(op)](values[0], values[1]), bool)
    except TypeError as exc:
        raise UsageError(f"--where {expr!r}: cannot compare these values ({exc})") from exc
    return np.broadcast_to(result, (n,)) & ~null
