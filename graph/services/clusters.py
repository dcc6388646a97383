"""Clusters: a hierarchy of their own (`parent_cluster_id` / `child_cluster_ids`) over node sets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Cluster, Conversation
from graph.services import edits, hierarchy
from graph.services.common import (
    Actor,
    check_text,
    check_unit_interval,
    check_version,
    lock_conversation,
    lock_conversation_of,
    lock_rows,
    refuse_cleared,
    snapshot,
)
from graph.services.errors import ErrorCode, InvalidInput
from graph.services.fields import UNSET, Fields, Unset
from graph.services.hierarchy import NO_SYNC
from graph.services.nodes import lock_nodes


@dataclass(frozen=True)
class ClusterFields(Fields):
    """A cluster's writable columns (see `graph.services.fields`); its members and parent are
    changed by their own commands."""

    cluster_name: str | Unset | None = UNSET
    level: int | Unset | None = UNSET
    summary: str | Unset | None = UNSET
    key_themes: list[str] | Unset | None = UNSET
    auto_generated: bool | Unset | None = UNSET
    clustering_algorithm: str | Unset | None = UNSET
    clustering_confidence: float | Unset | None = UNSET
    color: str | Unset | None = UNSET
    icon: str | Unset | None = UNSET


@dataclass(frozen=True)
class CreateCluster:
    conversation_id: uuid.UUID
    fields: ClusterFields
    node_ids: tuple[uuid.UUID, ...] = ()
    parent_cluster_id: uuid.UUID | None = None


@dataclass(frozen=True)
class UpdateCluster:
    """Changes the fields sent; `parent_cluster_id` moves the cluster (None: to the roots),
    UNSET: it stays."""

    id: uuid.UUID
    expected_updated_at: datetime | None
    fields: ClusterFields
    parent_cluster_id: uuid.UUID | Unset | None = UNSET


@dataclass(frozen=True)
class ChangeMembership:
    cluster_id: uuid.UUID
    add_node_ids: tuple[uuid.UUID, ...] = ()
    remove_node_ids: tuple[uuid.UUID, ...] = ()


def check_cluster_values(values: dict[str, Any], prefix: str = "") -> None:
    if "cluster_name" in values:
        check_text(values["cluster_name"], prefix + "clusterName", required=True)
    for name in ("summary", "color", "icon"):
        if name in values:
            check_text(values[name], prefix + name)
    if "level" in values and (values["level"] is None or values["level"] < 0):
        raise InvalidInput(
            "level must be 0 or more.", field=prefix + "level", code=ErrorCode.OUT_OF_RANGE
        )
    check_unit_interval(values.get("clustering_confidence"), prefix + "clusteringConfidence")


async def _check_members(
    session: AsyncSession, conversation: Conversation, node_ids: list[uuid.UUID], field: str
) -> None:
    if len(set(node_ids)) != len(node_ids):
        raise InvalidInput("A node is listed twice.", field=field, code=ErrorCode.DUPLICATE)
    await lock_nodes(session, conversation, node_ids, field + "[{index}]")


async def lock_clusters(
    session: AsyncSession, conversation: Conversation, ids: list[uuid.UUID], field: str
) -> dict[uuid.UUID, Cluster]:
    """The clusters, locked, once each is a cluster of the (locked) conversation: see
    `lock_rows`."""
    return await lock_rows(session, Cluster, conversation, ids, field, "cluster")


async def _reload(session: AsyncSession, cluster_id: uuid.UUID) -> Cluster:
    return (
        await session.execute(
            select(Cluster)
            .where(Cluster.id == cluster_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()


async def create_cluster(
    session: AsyncSession, actor: Actor, command: CreateCluster, *, log: bool = True
) -> Cluster:
    node_ids, parent_cluster_id = list(command.node_ids), command.parent_cluster_id
    values = command.fields.provided()
    refuse_cleared(values, Cluster)
    values = {"auto_generated": False, "level": 0, **values}
    check_cluster_values(values)
    conversation = await lock_conversation(session, command.conversation_id, actor.user_id)
    await _check_members(session, conversation, node_ids, "nodeIds")
    if parent_cluster_id is not None:
        await lock_clusters(session, conversation, [parent_cluster_id], "parentClusterId")
    cluster = Cluster(
        id=uuid.uuid4(),
        conversation_id=conversation.id,
        node_ids=node_ids,
        child_cluster_ids=[],
        parent_cluster_id=parent_cluster_id,
        **values,
    )
    session.add(cluster)
    await session.flush()
    if parent_cluster_id is not None:
        await hierarchy.attach(
            session, Cluster, "child_cluster_ids", parent_cluster_id, [cluster.id]
        )
    cluster = await _reload(session, cluster.id)
    if log:
        edits.record(
            session,
            actor,
            conversation_id=conversation.id,
            target_type="cluster",
            target_id=cluster.id,
            field_name="cluster",
            old=None,
            new=snapshot(cluster),
            edit_type="addition",
        )
    return cluster


async def _lock(
    session: AsyncSession, actor: Actor, cluster_id: uuid.UUID, field: str = "id"
) -> tuple[Conversation, Cluster]:
    conversation = await lock_conversation_of(
        session, Cluster, cluster_id, actor.user_id, field=field, missing="No such cluster."
    )
    cluster = (await lock_clusters(session, conversation, [cluster_id], field))[cluster_id]
    return conversation, cluster


async def update_cluster(session: AsyncSession, actor: Actor, command: UpdateCluster) -> Cluster:
    values = command.fields.provided()
    refuse_cleared(values, Cluster)
    check_cluster_values(values)
    conversation, cluster = await _lock(session, actor, command.id)
    check_version(cluster, command.expected_updated_at, "cluster")
    changes: dict[str, tuple[Any, Any]] = {}
    parent_cluster_id = command.parent_cluster_id
    if not isinstance(parent_cluster_id, Unset) and parent_cluster_id != cluster.parent_cluster_id:
        if parent_cluster_id is not None:
            await lock_clusters(session, conversation, [parent_cluster_id], "parentClusterId")
            await hierarchy.refuse_cycle(
                session,
                Cluster,
                "parent_cluster_id",
                cluster.id,
                parent_cluster_id,
                "parentClusterId",
            )
        changes["parent_cluster_id"] = (cluster.parent_cluster_id, parent_cluster_id)
        await hierarchy.detach(session, Cluster, "child_cluster_ids", cluster.id)
        if parent_cluster_id is not None:
            await hierarchy.attach(
                session, Cluster, "child_cluster_ids", parent_cluster_id, [cluster.id]
            )
        cluster.parent_cluster_id = parent_cluster_id
    for key, value in values.items():
        if getattr(cluster, key) != value:
            changes[key] = (getattr(cluster, key), value)
            setattr(cluster, key, value)
    edits.record_changes(
        session,
        actor,
        conversation_id=conversation.id,
        target_type="cluster",
        target_id=cluster.id,
        changes=changes,
    )
    await session.flush()
    return await _reload(session, cluster.id)


async def change_membership(
    session: AsyncSession, actor: Actor, command: ChangeMembership
) -> Cluster:
    """Adds and removes member nodes. Set operations commute, so no version is needed: two
    editors adding different nodes both keep their change."""
    add, remove = list(command.add_node_ids), list(command.remove_node_ids)
    conversation, cluster = await _lock(session, actor, command.cluster_id, "clusterId")
    overlap = set(add) & set(remove)
    if overlap:
        raise InvalidInput("A node is both added and removed.", field="removeNodeIds")
    await _check_members(session, conversation, add, "addNodeIds")
    if len(set(remove)) != len(remove):
        raise InvalidInput(
            "A node is listed twice.", field="removeNodeIds", code=ErrorCode.DUPLICATE
        )
    old = list(cluster.node_ids or [])
    new = members_after(old, add, remove)
    if new != old:
        cluster.node_ids = new
        edits.record(
            session,
            actor,
            conversation_id=conversation.id,
            target_type="cluster",
            target_id=cluster.id,
            field_name="node_ids",
            old=old,
            new=new,
        )
    await session.flush()
    return await _reload(session, cluster.id)


def members_after(
    old: list[uuid.UUID], add: list[uuid.UUID], remove: list[uuid.UUID]
) -> list[uuid.UUID]:
    """The members once `remove` are taken out and `add` appended (those not members yet)."""
    removed, members = set(remove), set(old)
    return [item for item in old if item not in removed] + [
        item for item in add if item not in members
    ]


async def delete_cluster(session: AsyncSession, actor: Actor, cluster_id: uuid.UUID) -> uuid.UUID:
    """Deletes the cluster; its child clusters move up to its parent (nodes are untouched)."""
    conversation, cluster = await _lock(session, actor, cluster_id)
    edits.record(
        session,
        actor,
        conversation_id=conversation.id,
        target_type="cluster",
        target_id=cluster.id,
        field_name="cluster",
        old=snapshot(cluster),
        new=None,
        edit_type="deletion",
    )
    children = list(
        (
            await session.execute(select(Cluster.id).where(Cluster.parent_cluster_id == cluster.id))
        ).scalars()
    )
    ordered = hierarchy.in_listed_order(cluster.child_cluster_ids, children)
    if ordered:
        await session.execute(
            update(Cluster)
            .where(hierarchy.among(Cluster.id, ordered))
            .values(parent_cluster_id=cluster.parent_cluster_id),
            execution_options=NO_SYNC,
        )
    if cluster.parent_cluster_id is not None:
        await hierarchy.attach(
            session,
            Cluster,
            "child_cluster_ids",
            cluster.parent_cluster_id,
            ordered,
            replacing=cluster.id,
        )
    await hierarchy.detach(session, Cluster, "child_cluster_ids", cluster.id)
    await session.execute(
        delete(Cluster).where(Cluster.id == cluster.id), execution_options=NO_SYNC
    )
    session.expunge(cluster)
    await session.flush()
    return cluster_id
