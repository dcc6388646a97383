"""Parent / children-array bookkeeping shared by the node and the cluster hierarchies.

`parent` is the foreign key column, `children` the uuid[] PostgreSQL cannot check; these helpers are
the only code that changes either, so the two always agree. All of them use Core statements on rows
the caller has locked through the conversation lock.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import any_, func, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from graph.services.errors import ErrorCode, InvalidInput

NO_SYNC = {"synchronize_session": False}


def uuid_array(values: list[uuid.UUID]) -> Any:
    return literal(values, ARRAY(UUID(as_uuid=True)))


def among(column: Any, values: list[uuid.UUID]) -> Any:
    """`column = ANY(:values)`: one array parameter however long the list (an `IN` list takes
    one parameter per id, and a statement carries at most 32,767)."""
    return column == any_(uuid_array(values))


def has_member(column: Any, value: uuid.UUID) -> Any:
    """`column @> ARRAY[value]`: the form the GIN indexes on uuid[] columns serve."""
    return column.op("@>")(uuid_array([value]))


def in_listed_order(listed: list[Any] | None, actual: list[Any]) -> list[Any]:
    """`actual` (the rows that really are children) in the order of `listed` (a children array)
    where it lists them, the others after, in their own order."""
    belongs = set(actual)
    ordered = list(dict.fromkeys(item for item in listed or [] if item in belongs))
    placed = set(ordered)
    return ordered + [item for item in actual if item not in placed]


async def ancestors(
    session: AsyncSession, model: Any, parent: str, start: uuid.UUID
) -> list[uuid.UUID]:
    """`start` and every ancestor above it; UNION (not UNION ALL) ends even on a corrupt cycle."""
    table = model.__table__
    seed = select(table.c.id, table.c[parent]).where(table.c.id == start).cte(recursive=True)
    walk = seed.union(select(table.c.id, table.c[parent]).where(table.c.id == seed.c[parent]))
    return list((await session.execute(select(walk.c.id))).scalars())


async def refuse_cycle(
    session: AsyncSession,
    model: Any,
    parent: str,
    child_id: uuid.UUID,
    new_parent_id: uuid.UUID,
    field: str,
) -> None:
    if new_parent_id == child_id or child_id in await ancestors(
        session, model, parent, new_parent_id
    ):
        raise InvalidInput(
            "That parent is this object or one of its descendants: the hierarchy would loop.",
            field=field,
            code=ErrorCode.CYCLE,
        )


async def detach(session: AsyncSession, model: Any, children: str, child_id: uuid.UUID) -> None:
    """Removes `child_id` from every children array in the table (normally just its parent's)."""
    column = getattr(model, children)
    await session.execute(
        update(model)
        .where(has_member(column, child_id))
        .values({children: func.array_remove(column, child_id)}),
        execution_options=NO_SYNC,
    )


async def attach(
    session: AsyncSession,
    model: Any,
    children: str,
    parent_id: uuid.UUID,
    child_ids: list[uuid.UUID],
    *,
    after: uuid.UUID | None = None,
    replacing: uuid.UUID | None = None,
) -> None:
    """Adds children to a parent's array: at the end, right after `after`, or in place of
    `replacing` (which is removed)."""
    column = getattr(model, children)
    current = (
        await session.execute(select(column).where(model.id == parent_id))
    ).scalar_one_or_none() or []
    moving = set(child_ids)
    kept = [item for item in current if item not in moving]
    anchor = replacing or after
    if anchor is not None and anchor in kept:
        position = kept.index(anchor)
        if replacing is not None:
            kept = kept[:position] + child_ids + kept[position + 1 :]
        else:
            kept = kept[: position + 1] + child_ids + kept[position + 1 :]
    else:
        kept = [item for item in kept if item != replacing] + child_ids
    await session.execute(
        update(model).where(model.id == parent_id).values({children: kept}),
        execution_options=NO_SYNC,
    )
