"""The audit log: who did what, when, from where, with what result and cost. Append-only.

Entries are only ever inserted (the migration adds a trigger refusing UPDATE); the
retention sweeper is the one thing that deletes them, and it audits that deletion.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from aimesh.store.batch import GroupCommit
from aimesh.store.tables import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who acts: the API key, its tenant, user and role (None fields: unauthenticated)."""

    tenant: str | None
    key_id: str | None = None
    user_id: str | None = None
    role: str | None = None


SYSTEM = "system"
"""``user_id`` of entries written by aimesh itself (retention sweeps)."""


def _fit(column: str, value: str | None) -> str | None:
    """``value`` cut to the length of its column (a client's path can carry a longer id)."""
    length = getattr(AuditEntry.__table__.c[column].type, "length", None)
    return value[:length] if value and length else value


class AuditLog:
    """Appends audit entries durably, with group commit.

    Each :meth:`record` returns once its entry is committed; entries recorded while a
    commit is running are written together in the next transaction
    (:class:`~aimesh.store.batch.GroupCommit`).

    Args:
        engine: The database.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._entries: GroupCommit[dict[str, Any], None] = GroupCommit(engine, _insert)

    async def record(
        self,
        actor: Actor,
        action: str,
        resource_type: str,
        *,
        result: str,
        resource_id: str | None = None,
        client_ip: str | None = None,
        status_code: int | None = None,
        cost_usd: Decimal | None = None,
        task_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry; returns when it is committed.

        Args:
            actor: Who acted.
            action: What was done, e.g. ``create_network``, ``model.call``.
            resource_type: Kind of resource, e.g. ``network``, ``task``.
            result: ``success``, ``denied``, ``not_found``, ``invalid``, ``rate_limited``,
                ``error``.
            resource_id: The resource's id, when there is one.
            client_ip: Where the request came from.
            status_code: HTTP status of the response, for requests.
            cost_usd: What the action cost (model calls), USD; None when unknown.
            task_id: The task the action was done for.
            detail: Anything else worth keeping (JSON object).

        Raises:
            SQLAlchemyError: The entry could not be written.
        """
        entry = dict(
            tenant=actor.tenant,
            key_id=actor.key_id,
            user_id=actor.user_id,
            role=actor.role,
            action=_fit("action", action),
            resource_type=_fit("resource_type", resource_type),
            resource_id=_fit("resource_id", resource_id),
            client_ip=_fit("client_ip", client_ip),
            result=result,
            status_code=status_code,
            cost_usd=cost_usd,
            task_id=task_id,
            detail=detail or {},
        )
        await self._entries.submit(entry)


async def _insert(connection: AsyncConnection, entries: Sequence[dict[str, Any]]) -> list[None]:
    await connection.execute(insert(AuditEntry), list(entries))
    return [None] * len(entries)


@dataclass(frozen=True)
class AuditQuery:
    """Filters of an audit-log query; None = any."""

    tenant: str
    user_id: str | None = None
    key_id: str | None = None
    resource_type: str | None = None
    action: str | None = None
    result: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def select(self) -> Select[AuditEntry]:
        """The matching entries, newest first."""
        query = select(AuditEntry).where(AuditEntry.tenant == self.tenant)
        for column, value in (
            (AuditEntry.user_id, self.user_id),
            (AuditEntry.key_id, self.key_id),
            (AuditEntry.resource_type, self.resource_type),
            (AuditEntry.action, self.action),
            (AuditEntry.result, self.result),
        ):
            if value is not None:
                query = query.where(column == value)
        if self.since is not None:
            query = query.where(AuditEntry.at >= self.since)
        if self.until is not None:
            query = query.where(AuditEntry.at < self.until)
        return query.order_by(AuditEntry.id.desc())
