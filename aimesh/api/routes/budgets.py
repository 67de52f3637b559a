"""Budgets of the caller's tenant (admins only): create, list with current spend, delete."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from aimesh.api.deps import Admin, AuditDep, IdPath, Offset, SessionDep, owned
from aimesh.api.errors import NOT_FOUND, conflict
from aimesh.api.schemas import BudgetCreate, BudgetPublic, Page
from aimesh.billing import admin
from aimesh.store.paging import page
from aimesh.store.tables import Budget

router = APIRouter(prefix="/budgets", tags=["budget"])


def _public(usage: admin.BudgetUsage) -> BudgetPublic:
    b = usage.budget
    return BudgetPublic.model_validate(
        {
            **{k: getattr(b, k) for k in ("id", "scope", "scope_id", "period", "on_limit")},
            "limit_usd": b.limit_usd,
            "created_at": b.created_at,
            "window_start": usage.window_start,
            "spent_usd": usage.spent_usd,
            "reserved_usd": usage.reserved_usd,
        }
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        **conflict("The scope already has a budget for that period."),
        404: NOT_FOUND[404] | {"description": "scope_id is no record of the caller's tenant."},
    },
)
async def create_budget(
    body: BudgetCreate, caller: Admin, session: SessionDep, audit: AuditDep
) -> BudgetPublic:
    """Set a USD limit per UTC day or month on the tenant, one of its networks or keys.

    Raises:
        ScopeNotFoundError: ``scope_id`` is not the tenant, one of its networks or keys
            (answered 404).
        HTTPException: 409 when the scope has a budget for that period already.
    """
    budget = await admin.create_budget(
        session,
        caller.tenant,
        **body.model_dump(exclude={"limit_usd"}),
        limit_usd=body.limit_usd,
        created_by=caller.key_id,
    )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        existing = await session.scalar(
            select(Budget.id).where(
                Budget.tenant == caller.tenant,
                Budget.scope == body.scope,
                Budget.scope_id == body.scope_id,
                Budget.period == body.period,
            )
        )
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{body.scope} {body.scope_id} already has a {body.period} budget ({existing}); "
            "delete it first to set another limit",
        ) from None
    audit.resource_id = budget.id
    return _public((await admin.current_usage(session, [budget]))[0])


@router.get("")
async def list_budgets(
    caller: Admin,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Offset = 0,
) -> Page[BudgetPublic]:
    """The tenant's budgets, newest first, with their current windows' spend (USD).

    ``reserved_usd`` is what running tasks hold: their worst-case costs.
    """
    query = select(Budget).where(Budget.tenant == caller.tenant)
    rows, total = await page(
        session, query.order_by(Budget.created_at.desc(), Budget.id), limit, offset
    )
    items = [_public(u) for u in await admin.current_usage(session, rows)]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.delete("/{budget_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_budget(budget_id: IdPath, caller: Admin, session: SessionDep) -> Response:
    """Delete a budget with its windows; runs holding reservations in it are unaffected."""
    budget = await owned(session, Budget, budget_id, caller)
    await session.delete(budget)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
