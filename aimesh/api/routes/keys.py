"""API keys of the caller's tenant (admins only): create, list, revoke."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy import select

from aimesh.api.deps import Admin, AuditDep, Offset, ServicesDep, SessionDep, owned
from aimesh.api.errors import NOT_FOUND
from aimesh.api.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, Page
from aimesh.store.keys import create_key
from aimesh.store.paging import page
from aimesh.store.tables import ApiKey, utcnow

router = APIRouter(prefix="/security/api-keys", tags=["api_key"])
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="Key id: 16 hex digits.")]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyCreate, caller: Admin, session: SessionDep, services: ServicesDep, audit: AuditDep
) -> ApiKeyCreated:
    """Create a key in the caller's tenant; ``api_key`` is shown this once, never again."""
    new = await create_key(
        session,
        services.secret,
        tenant=caller.tenant,
        user_id=body.user_id,
        role=body.role,
        scopes=list(body.scopes) if body.scopes is not None else None,
        expires_at=body.expires_at,
        name=body.name,
        created_by=caller.key_id,
    )
    await session.commit()
    audit.resource_id = new.record.id
    public = ApiKeyPublic.model_validate(new.record)
    return ApiKeyCreated(**public.model_dump(), api_key=new.api_key)


@router.get("")
async def list_api_keys(
    caller: Admin,
    session: SessionDep,
    user_id: Annotated[str | None, Query(max_length=64)] = None,
    include_revoked: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Offset = 0,
) -> Page[ApiKeyPublic]:
    """The tenant's keys (never their secrets), newest first."""
    query = select(ApiKey).where(ApiKey.tenant == caller.tenant)
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    rows, total = await page(session, query.order_by(ApiKey.created_at.desc()), limit, offset)
    items = [ApiKeyPublic.model_validate(k) for k in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def revoke_api_key(
    key_id: KeyId, caller: Admin, session: SessionDep, services: ServicesDep
) -> Response:
    """Revoke a key: refused at once by every API process (its cache entry is evicted)."""
    key = await owned(session, ApiKey, key_id, caller)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.commit()
    await services.keys.revoked(key.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
