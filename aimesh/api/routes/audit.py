"""The audit log of the caller's tenant (admins only), filtered and paginated."""

from typing import Annotated

from fastapi import APIRouter, Query

from aimesh.api.deps import Admin, Offset, SessionDep
from aimesh.api.schemas import AuditEntryPublic, DateTime, Page
from aimesh.service.audit import AuditQuery
from aimesh.store.paging import page

router = APIRouter(prefix="/security/audit-logs", tags=["audit"])
Filter = Annotated[str | None, Query(max_length=64)]


@router.get("")
async def list_audit_logs(
    caller: Admin,
    session: SessionDep,
    user_id: Filter = None,
    key_id: Filter = None,
    resource_type: Filter = None,
    action: Filter = None,
    result: Filter = None,
    since: Annotated[DateTime | None, Query(description="At or after (UTC).")] = None,
    until: Annotated[DateTime | None, Query(description="Before (UTC).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Page[AuditEntryPublic]:
    """Audit entries, newest first: requests, agent/tool/model calls, retention sweeps."""
    query = AuditQuery(
        tenant=caller.tenant,
        user_id=user_id,
        key_id=key_id,
        resource_type=resource_type,
        action=action,
        result=result,
        since=since,
        until=until,
    )
    rows, total = await page(session, query.select(), limit, offset)
    items = [AuditEntryPublic.model_validate(e) for e in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)
