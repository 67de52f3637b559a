"""The tenant's retention policy (admins only): days per data type; sweep on demand."""

from fastapi import APIRouter

from aimesh.api.deps import Admin, ServicesDep, SessionDep
from aimesh.api.schemas import RetentionPolicyCreate, RetentionPolicyPublic
from aimesh.service.retention import DEFAULT_DAYS, MEMORY_KEYS, policy_days, sweep_tenant
from aimesh.store.tables import RetentionPolicy, utcnow

router = APIRouter(prefix="/security/retention-policy", tags=["retention"])


async def _public(session: SessionDep, tenant: str) -> RetentionPolicyPublic:
    row = await session.get(RetentionPolicy, tenant)
    return RetentionPolicyPublic(
        **await policy_days(session, tenant),
        updated_at=row.updated_at if row else None,
        last_sweep=row.last_sweep if row else None,
    )


@router.get("")
async def get_retention_policy(caller: Admin, session: SessionDep) -> RetentionPolicyPublic:
    """Days kept per data type (defaults where unset) and the last sweep's report."""
    return await _public(session, caller.tenant)


@router.post("")
async def set_retention_policy(
    body: RetentionPolicyCreate, caller: Admin, session: SessionDep
) -> RetentionPolicyPublic:
    """Set days per data type; named types override ``retention_days`` and ``memory``.

    ``retention_days`` sets every type, ``memory`` every memory type.
    """
    base = {name: body.retention_days for name in DEFAULT_DAYS} if body.retention_days else {}
    memory = {name: body.memory for name in MEMORY_KEYS} if body.memory else {}
    named = body.model_dump(exclude={"retention_days", "memory"}, exclude_none=True)
    days = {**await policy_days(session, caller.tenant), **base, **memory, **named}
    row = await session.get(RetentionPolicy, caller.tenant)
    if row is None:
        row = RetentionPolicy(tenant=caller.tenant, days=days)
        session.add(row)
    row.days, row.updated_at, row.updated_by = days, utcnow(), caller.key_id
    await session.commit()
    return await _public(session, caller.tenant)


@router.post("/sweep")
async def run_retention_sweep(caller: Admin, services: ServicesDep) -> dict:
    """Sweep the tenant's expired data now; returns what was removed (also audited)."""
    return await sweep_tenant(services, caller.tenant)
