"""FastAPI dependencies as ``Annotated`` aliases: services, sessions, callers by scope."""

from collections.abc import AsyncIterator
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Path, Query, Request, Security, status
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.interfaces import ORMOption

from aimesh.api.auth import AuditInfo, Principal, authenticate
from aimesh.portfolio.book import ClientBook
from aimesh.service.services import Services
from aimesh.store.tables import Base

R = TypeVar("R", bound=Base)


async def get_services(request: Request) -> Services:
    """The process's open services (set by the app's lifespan).

    Async, as every dependency here: FastAPI runs a plain ``def`` in a thread pool.
    """
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    """One database session per request; routes commit what they change."""
    async with services.db.sessions() as session:
        yield session


async def get_audit(request: Request) -> AuditInfo:
    """This request's audit record, so a route can name the resource it created."""
    return request.state.audit


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
"""Closed when the route function returns, before the response (and any stream) starts."""
IdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Record id: 32 hex digits.")]
MAX_OFFSET = 1_000_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]
AuditDep = Annotated[AuditInfo, Depends(get_audit)]
Reader = Annotated[Principal, Security(authenticate, scopes=["read"])]
Writer = Annotated[Principal, Security(authenticate, scopes=["write"])]
Creator = Annotated[Principal, Security(authenticate, scopes=["create"])]
Deleter = Annotated[Principal, Security(authenticate, scopes=["delete"])]
Admin = Annotated[Principal, Security(authenticate, scopes=["admin"])]


async def get_book(caller: Reader, services: ServicesDep) -> ClientBook:
    """The caller's tenant's current client book (the sample when it has none).

    Raises:
        BookNotFoundError: No book and the sample turned off (answered 404).
    """
    return await services.portfolios.book(caller.tenant)


BookDep = Annotated[ClientBook, Depends(get_book)]
ClientIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The client's id in the tenant's book (1-64 printable characters).",
    ),
]


async def owned(
    session: AsyncSession, model: type[R], id_: str, caller: Principal, *options: ORMOption
) -> R:
    """The caller's tenant's record ``id_``; 404 for a missing one or another tenant's.

    Args:
        session: Database session.
        model: Table class.
        id_: Record id.
        caller: Whose tenant the record must belong to.
        *options: Loader options, e.g. ``selectinload(Network.agents)``.

    Raises:
        HTTPException: 404, worded the same whether the record is missing or not the caller's.
    """
    row = await session.get(model, id_, options=options)
    if row is None or getattr(row, "tenant", None) != caller.tenant:
        kind = model.__tablename__.removesuffix("s")
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{kind} {id_} not found")
    return row
