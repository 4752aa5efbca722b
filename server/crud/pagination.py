"""Cursor pagination the way the API does it: `after`/`before` are object ids."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, bindparam, inspect, select
from sqlmodel import Session

from server.errors import bad_request
from server.protocol.common import ListPage


@dataclass(slots=True)
class ListParams:
    """limit / order / after / before, shared by every list endpoint (server/deps.py
    reads them from the query string)."""

    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


@functools.cache
def row_columns(model: Any) -> tuple[Any, ...]:
    """The table's columns labelled with the model's attribute names (`meta`, not
    `metadata`), so a Core row reads like the model instance for a `to_api` function.
    Built once per model: labelling every column again was a tenth of a list request."""
    return tuple(prop.columns[0].label(prop.key) for prop in inspect(model).column_attrs)


def _scoped(stmt: Select[Any], model: Any, keys: tuple[str, ...]) -> Select[Any]:
    """`stmt` where each attribute in `keys` equals the bound parameter of its name."""
    return stmt.where(*(getattr(model, key) == bindparam(key) for key in keys))


@functools.cache
def _page_statement(
    model: Any, keys: tuple[str, ...], asc: bool, backwards: bool, after: bool, before: bool
) -> Select[Any]:
    """One prebuilt statement per shape of list query (a few per model), with the scope
    and the cursors as bound parameters: building the expressions anew for every request
    cost more than running them (bench/api_crud.py)."""
    stmt = _scoped(select(*row_columns(model)), model, keys)
    seq = model.seq
    if after:  # past the cursor in the requested order
        stmt = stmt.where(seq > bindparam("after_seq") if asc else seq < bindparam("after_seq"))
    if before:  # short of the cursor in the requested order
        stmt = stmt.where(seq < bindparam("before_seq") if asc else seq > bindparam("before_seq"))
    forward_asc = asc != backwards
    return stmt.order_by(seq.asc() if forward_asc else seq.desc()).limit(bindparam("limit"))


@functools.cache
def _cursor_statement(model: Any, keys: tuple[str, ...]) -> Select[Any]:
    return _scoped(select(model.seq), model, keys).where(model.id == bindparam("cursor"))


def paginate(
    session: Session,
    model: Any,
    where: dict[str, Any],
    params: ListParams,
    to_api: Callable[[Any], Any],
    *,
    require_parent: Callable[[], None] | None = None,
) -> ListPage[Any]:
    """One page of `model` rows whose attributes equal `where`, ordered by insertion
    (`seq`).

    `before` alone walks backwards from the cursor: query in the opposite direction,
    then flip the page so it still reads in the requested order. Rows are read with
    Core, not as ORM instances: a page is read-only, and identity-map bookkeeping for
    up to 101 objects was the largest cost of a list request.

    `require_parent` (raises 404 when the scoping object, a thread say, is gone) is
    called only when no row answers: a row in scope proves its parent exists, since
    deleting a parent deletes its children in the same transaction. So a page with rows
    costs one statement, and a missing parent is still a 404 before any cursor error.
    """
    conn = session.connection()
    keys = tuple(where)
    values = dict(where)
    for param in ("after", "before"):
        cursor = getattr(params, param)
        if cursor:
            found = conn.execute(
                _cursor_statement(model, keys), {**where, "cursor": cursor}
            ).scalar()
            if found is None:
                if require_parent is not None:
                    require_parent()
                raise bad_request(
                    f"Invalid '{param}': no object found with id '{cursor}'.", param=param
                )
            values[f"{param}_seq"] = found
    backwards = bool(params.before and not params.after)
    asc = params.order == "asc"
    stmt = _page_statement(model, keys, asc, backwards, bool(params.after), bool(params.before))
    rows = list(conn.execute(stmt, {**values, "limit": params.limit + 1}))
    if not rows and require_parent is not None:
        require_parent()
    has_more = len(rows) > params.limit
    rows = rows[: params.limit]
    if backwards:
        rows.reverse()
    data = [to_api(row) for row in rows]
    return ListPage(
        data=data,
        first_id=rows[0].id if rows else None,
        last_id=rows[-1].id if rows else None,
        has_more=has_more,
    )
