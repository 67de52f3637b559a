"""Retention: days to keep each kind of data, per tenant, and the sweeper that enforces them.

The sweeper deletes finished tasks, their event logs and audit entries past their age,
and memory items past their TTL from the semantic index (Redis expires them itself), and
audits each sweep with what it removed. A memory item's TTL is fixed when it is written,
from the policy then in force.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from aimesh.memory.items import DEFAULT_TTL_DAYS, MEMORY_TYPES
from aimesh.service import audit
from aimesh.service.runner import TERMINAL
from aimesh.service.services import Services
from aimesh.store.tables import AuditEntry, Network, RetentionPolicy, Task, utcnow

logger = logging.getLogger(__name__)

DEFAULT_DAYS = {
    "tasks": 90,
    "events": 30,
    **{f"memory_{kind}": days for kind, days in DEFAULT_TTL_DAYS.items()},
    "audit": 365,
}
"""Days kept when a tenant has set no policy; memory items per type (``memory_fact`` ...)."""
MEMORY_KEYS = tuple(f"memory_{kind}" for kind in MEMORY_TYPES)


async def policy_days(session: AsyncSession, tenant: str) -> dict[str, int]:
    """The tenant's days per data type (defaults where unset)."""
    row = await session.get(RetentionPolicy, tenant)
    stored = row.days if row else {}
    return {name: int(stored.get(name, days)) for name, days in DEFAULT_DAYS.items()}


async def _finished_before(session: AsyncSession, tenant: str, cutoff: datetime) -> list[str]:
    query = select(Task.id).where(
        Task.tenant == tenant, Task.status.in_(TERMINAL), Task.finished_at < cutoff
    )
    return list(await session.scalars(query))


async def sweep_tenant(services: Services, tenant: str, now: datetime | None = None) -> dict:
    """Delete the tenant's expired data; audit and return what was removed.

    Returns:
        ``{"at": ISO time, "days": policy, "removed": {"tasks": n, "events": n,
        "memory": n, "audit": n}}``; ``events`` counts task event logs, ``memory`` expired
        items removed from the semantic index.
    """
    now = now or utcnow()
    async with services.db.sessions.begin() as session:
        days = await policy_days(session, tenant)
        old_tasks = await _finished_before(session, tenant, now - timedelta(days=days["tasks"]))
        old_logs = await _finished_before(session, tenant, now - timedelta(days=days["events"]))
        await session.execute(delete(Task).where(Task.id.in_(old_tasks)))
        audit_cutoff = now - timedelta(days=days["audit"])
        removed_audit = await session.execute(
            delete(AuditEntry).where(AuditEntry.tenant == tenant, AuditEntry.at < audit_cutoff)
        )
        logs = await services.events.delete(sorted(set(old_tasks) | set(old_logs)))
        semantic = await services.memory.semantic()
        memory = await semantic.purge_expired(tenant, now.timestamp())
        report: dict[str, Any] = {
            "at": now.isoformat(),
            "days": days,
            "removed": {
                "tasks": len(old_tasks),
                "events": logs,
                "memory": memory,
                "audit": removed_audit.rowcount,  # type: ignore[attr-defined]
            },
        }
        row = await session.get(RetentionPolicy, tenant)
        if row is not None:
            row.last_sweep = report
    actor = audit.Actor(tenant, user_id=audit.SYSTEM, role="system")
    await services.audit.record(
        actor, "retention.sweep", "retention", result="success", detail=report
    )
    return report


async def sweep(services: Services, now: datetime | None = None) -> dict[str, dict]:
    """Sweep every tenant with networks, tasks, audit entries or a policy; reports by tenant."""
    async with services.db.sessions() as session:
        tenants = await session.scalars(
            union(
                select(Task.tenant),
                select(Network.tenant),
                select(AuditEntry.tenant).where(AuditEntry.tenant.is_not(None)),
                select(RetentionPolicy.tenant),
            )
        )
        names = sorted(set(tenants))
    return {tenant: await sweep_tenant(services, tenant, now) for tenant in names}


@asynccontextmanager
async def sweeping(services: Services) -> AsyncIterator[None]:
    """Run :func:`sweep` every ``retention_sweep_s`` seconds while the block runs.

    Each round then releases the budget reservations of runs that died
    (:meth:`aimesh.billing.budgets.Budgets.release_expired`).
    """

    async def loop() -> None:
        while True:
            await asyncio.sleep(services.settings.retention_sweep_s)
            try:
                reports = await sweep(services)
                logger.info("retention sweep: %s", reports)
                released = await services.budgets.release_expired()
                logger.info("budget reservations of dead runs released: %d", released)
            except Exception:  # keep sweeping; the next round may succeed
                logger.exception("retention sweep failed")

    job = asyncio.create_task(loop())
    try:
        yield
    finally:
        job.cancel()
