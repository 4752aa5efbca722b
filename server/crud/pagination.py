"""Cursor pagination the way the API does it: `after`/`before` are object ids."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import inspect
from sqlmodel import Session, select

from server.deps import ListParams
from server.errors import bad_request
from server.protocol.common import ListPage

Row = TypeVar("Row")


def _cursor_seq(session: Session, model: Any, scope: list[Any], cursor: str, param: str) -> int:
    seq = session.exec(select(model.seq).where(*scope, model.id == cursor)).first()
    if seq is None:
        raise bad_request(f"Invalid '{param}': no object found with id '{cursor}'.", param=param)
    return seq


@functools.cache
def row_columns(model: Any) -> tuple[Any, ...]:
    """The table's columns labelled with the model's attribute names (`meta`, not
    `metadata`), so a Core row reads like the model instance for a `to_api` function.
    Built once per model: labelling every column again was a tenth of a list request."""
    return tuple(prop.columns[0].label(prop.key) for prop in inspect(model).column_attrs)


def paginate(
    session: Session,
    model: Any,
    scope: list[Any],
    params: ListParams,
    to_api: Callable[[Any], Any],
) -> ListPage[Any]:
    """One page of `model` rows matching `scope`, ordered by insertion (`seq`).

    `before` alone walks backwards from the cursor: query in the opposite direction,
    then flip the page so it still reads in the requested order. Rows are read with
    Core, not as ORM instances: a page is read-only, and identity-map bookkeeping for
    up to 101 objects was the largest cost of a list request.
    """
    asc = params.order == "asc"
    conditions = list(scope)
    if params.after:
        seq = _cursor_seq(session, model, scope, params.after, "after")
        conditions.append(model.seq > seq if asc else model.seq < seq)
    if params.before:
        seq = _cursor_seq(session, model, scope, params.before, "before")
        conditions.append(model.seq < seq if asc else model.seq > seq)
    backwards = bool(params.before and not params.after)
    forward_asc = asc != backwards
    stmt = (
        select(*row_columns(model))
        .where(*conditions)
        .order_by(model.seq.asc() if forward_asc else model.seq.desc())
        .limit(params.limit + 1)
    )
    rows = list(session.connection().execute(stmt))
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
