"""API-key authentication and scope checks; every route declares the scope it needs.

A key travels in ``X-API-Key`` or ``Authorization: Bearer``. Missing or bad key: 401;
key without the route's scope: 403; over its rate limit: 429 with ``Retry-After``.
"""

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from aimesh.api.ratelimit import retry_after
from aimesh.service.audit import Actor

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An aimesh API key (amk_...)."
)
bearer = HTTPBearer(auto_error=False, description="The same API key as a bearer token.")


@dataclass(frozen=True)
class Principal:
    """The caller: its key, tenant, user, role and scopes."""

    key_id: str
    tenant: str
    user_id: str
    role: str
    scopes: frozenset[str]

    @property
    def actor(self) -> Actor:
        """The caller as the audit log names it."""
        return Actor(self.tenant, self.key_id, self.user_id, self.role)


@dataclass
class AuditInfo:
    """What the audit middleware records about this request (filled while it runs)."""

    action: str
    resource_type: str
    resource_id: str | None
    client_ip: str | None
    actor: Actor = field(default_factory=lambda: Actor(None))


def _audit_info(request: Request) -> AuditInfo:
    route = request.scope.get("route")
    params = request.path_params
    info = AuditInfo(
        action=getattr(route, "name", request.url.path),
        resource_type=(getattr(route, "tags", None) or ["api"])[0],
        resource_id=str(next(reversed(params.values()))) if params else None,
        client_ip=request.client.host if request.client else None,
    )
    request.state.audit = info
    return info


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
    )


async def authenticate(
    request: Request,
    security_scopes: SecurityScopes,
    x_api_key: Annotated[str | None, Security(api_key_header)] = None,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
) -> Principal:
    """The caller of this request, checked against the route's scopes.

    Raises:
        HTTPException: 401 (no, unknown, revoked or expired key), 403 (missing scope),
            429 (rate limit; ``Retry-After`` set).
    """
    info = _audit_info(request)
    services = request.app.state.services
    token = x_api_key or (credentials.credentials if credentials else None)
    if not token:
        raise _unauthorized("missing API key: send X-API-Key or Authorization: Bearer <key>")
    record = await services.keys.verify(token)
    if record is None:
        raise _unauthorized("invalid, revoked or expired API key")
    principal = Principal(record.key_id, record.tenant, record.user_id, record.role, record.scopes)
    info.actor = principal.actor
    wait = await request.app.state.rate_limit.hit(principal.key_id)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit {services.settings.rate_limit} exceeded for key {principal.key_id}",
            headers={"Retry-After": retry_after(wait)},
        )
    missing = sorted(set(security_scopes.scopes) - principal.scopes)
    if missing:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this key (role {principal.role}) lacks scope {', '.join(missing)}",
        )
    return principal
