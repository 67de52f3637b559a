"""The tenant's client book: import a version, show versions and models, browse, delete.

An import is a CSV or Parquet upload (``multipart/form-data``: a ``file`` and one ``map``
field ``FIELD=COLUMN`` per mapped field) or JSON rows (``{"mapping": {...}, "rows":
[...]}``). Every row is checked before anything is stored (a 422 names the column or
row); the new version's models then train in the background, and the previous version
keeps answering until they are ready.
"""

import asyncio
import math
from typing import Annotated, Any, cast

import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import ValidationError
from sqlalchemy import select

from aimesh.api.deps import (
    AuditDep,
    BookDep,
    ClientIdPath,
    Creator,
    Deleter,
    Offset,
    Reader,
    ServicesDep,
    SessionDep,
)
from aimesh.api.errors import error_response
from aimesh.api.schemas import BookClient, BookClients, BookModelCard, BookRows, FilterQuery
from aimesh.memory.items import MemoryScope
from aimesh.portfolio.book import ClientBook, FieldName
from aimesh.portfolio.books import PortfolioView
from aimesh.portfolio.filters import apply_filters, check_filters, parse_filters
from aimesh.portfolio.importer import check_mapping, parse_mapping
from aimesh.portfolio.reader import read_table, rows_table
from aimesh.portfolio.store import BookVersion
from aimesh.store.tables import Network

router = APIRouter(
    prefix="/portfolio",
    tags=["portfolio"],
    responses={404: error_response("No such client in the book, no book, or none to delete.")},
)

IMPORT_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "map"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "map": {"type": "array", "items": {"type": "string"}, "maxItems": 6},
                },
            }
        },
        "application/json": {"schema": {"$ref": "#/components/schemas/BookRows"}},
    },
}


@router.post(
    "/imports",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={"requestBody": IMPORT_BODY},
    responses={
        415: {"description": "Neither multipart/form-data nor application/json."},
        422: {
            "description": "A bad file, mapping, id, label or value; ``loc`` names it.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
            },
        },
    },
)
async def import_book(
    request: Request, caller: Creator, services: ServicesDep, audit: AuditDep
) -> BookVersion:
    """Import a new version of the tenant's client book (all rows or none).

    The answer is the stored version, ``training``; ``GET /portfolio`` shows when its
    models are ready and it answers.

    Raises:
        InvalidInputError: A bad file, mapping, id, label or value (422 naming it).
        HTTPException: 415 for another content type.
    """
    raw, mapping, source = await _upload(request, services.settings.max_book_rows)
    info = await services.portfolios.import_book(
        caller.tenant, raw, mapping, source, created_by=caller.key_id
    )
    services.book_training.wake()
    audit.resource_id = f"v{info.version}"
    version = await services.portfolios.version(caller.tenant, info.version)
    assert version is not None  # just stored; only its tenant deletes it
    return version


async def _upload(
    request: Request, max_rows: int
) -> tuple[pd.DataFrame, dict[FieldName, str], str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise HTTPException(422, [_missing("file", "a CSV or Parquet file")])
            mapping = parse_mapping([str(item) for item in form.getlist("map")])
            data = await upload.read()
            name = upload.filename or "upload"
        raw = await asyncio.to_thread(read_table, data, name, max_rows=max_rows)
        return raw, mapping, name
    if kind == "application/json":
        try:
            body = await asyncio.to_thread(BookRows.model_validate_json, await request.body())
        except ValidationError as error:
            raise HTTPException(
                422, error.errors(include_url=False, include_context=False)
            ) from None
        raw = await asyncio.to_thread(rows_table, body.rows, max_rows=max_rows)
        return raw, check_mapping(body.mapping), "json"
    raise HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        "send multipart/form-data (file, map) or application/json (mapping, rows)",
    )


def _missing(field: str, allowed: str) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": f"missing; send {allowed}", "type": "missing"}


@router.get("")
async def show_portfolio(caller: Reader, services: ServicesDep) -> PortfolioView:
    """The tenant's book versions and which one answers now (0: the sample book).

    Each version with its rows, columns and types, label balance, models with their status
    and metrics, and any training error.
    """
    return await services.portfolios.view(caller.tenant)


@router.get("/models")
async def list_models(caller: Reader, services: ServicesDep) -> list[BookModelCard]:
    """Every model of every version, newest version first, with its card once trained.

    A card says what the model was trained on, its features, parameters and metrics.
    """
    portfolios = services.portfolios
    return [
        BookModelCard(book_version=v.info.version, model=m, card=portfolios.card(caller.tenant, m))
        for v in await portfolios.store.versions(caller.tenant)
        for m in v.info.models
    ]


@router.get("/clients")
async def list_clients(
    book: BookDep,
    filter_: FilterQuery = [],  # noqa: B006 (FastAPI copies the default)
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> BookClients:
    """The clients of the current book in book order, filtered (``filter=column=value``)."""
    conditions = check_filters(parse_filters(filter_), book.info)
    frame = await asyncio.to_thread(book.frame)
    matched = frame[apply_filters(frame, conditions)]
    rows = matched.iloc[offset : offset + limit]
    return BookClients(
        book_version=book.version,
        sample=book.sample,
        total=len(matched),
        limit=limit,
        offset=offset,
        clients=[_client(book, str(cid), row) for cid, row in rows.iterrows()],
    )


@router.get("/clients/{client_id}")
async def get_client(client_id: ClientIdPath, book: BookDep) -> BookClient:
    """One client of the current book, every column."""
    key = await asyncio.to_thread(book.lookup, client_id)
    return _client(book, key, cast(pd.Series, book.frame().loc[key]))


def _client(book: ClientBook, client_id: str, row: pd.Series) -> BookClient:
    values = {str(k): None if _missing_value(v) else v for k, v in row.items()}
    return BookClient(
        book_version=book.version, sample=book.sample, client_id=client_id, values=values
    )


def _missing_value(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
async def delete_portfolio(caller: Deleter, services: ServicesDep, session: SessionDep) -> Response:
    """Delete the tenant's book: every version, its models and what the agents remembered.

    The agents' memory items in every network of the tenant go too (people's stay); the
    audit log records the deletion. The sample book answers afterwards (when turned on).
    """
    networks = (
        await session.scalars(select(Network.id).where(Network.tenant == caller.tenant))
    ).all()
    await session.commit()
    for network_id in networks:  # first, so that a retry after a failure forgets them too
        await services.memory.forget_agent_items(MemoryScope(caller.tenant, network_id))
    if not await services.portfolios.delete(caller.tenant):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the tenant has imported no client book")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
