"""The ``aimesh`` command: ``ask``, ``serve``, ``keys``, ``portfolio``, ``train`` and ``eval``.

Errors print one clear line (or one JSON object with ``--json``) and exit with the error's
code; a traceback is shown only with ``AIMESH_DEBUG=1``.
"""

import asyncio
import json
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(
    help="aimesh: an AI agent mesh for Managed Service Providers.", no_args_is_help=True
)
err = Console(stderr=True)
out = Console()


def _emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")


def _run(as_json: bool, job: Callable[[], Any]) -> Any:
    """Run ``job``; turn every failure into a clear message and an exit code."""
    from aimesh.errors import AimeshError

    try:
        return job()
    except AimeshError as error:
        code, kind, message = error.exit_code, type(error).__name__, str(error)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as error:  # a bug: say so plainly, traceback on request
        if os.environ.get("AIMESH_DEBUG"):
            raise
        code, kind, message = 1, "internal error", f"{type(error).__name__}: {error}"
        message += " (set AIMESH_DEBUG=1 for the traceback)"
    if as_json:
        _emit_json({"error": {"type": kind, "message": message}})
    else:
        err.print(f"[red]error[/red] {kind}: {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


async def _ask(question: str, tenant: str, thread: str | None, as_json: bool) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from aimesh.config import get_settings
    from aimesh.console import RunProgress, print_answer
    from aimesh.context import Context
    from aimesh.graphs.coordinator import build_coordinator
    from aimesh.graphs.run import ask
    from aimesh.llm.chain import ProviderChain
    from aimesh.portfolio.books import opened_portfolios

    settings = get_settings()
    async with opened_portfolios(settings) as portfolios:
        with err.status(f"training the models of any new book version of {tenant}..."):
            await portfolios.train_pending(check_tenant(tenant))
        book = await portfolios.book(tenant)
    db = settings.home_dir / "threads.sqlite"
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        graph = build_coordinator(ProviderChain(), checkpointer=saver)
        run = partial(
            ask,
            graph,
            question,
            context=Context.from_settings(settings, book),
            thread_id=thread,
            max_chars=settings.max_question_chars,
        )
        if as_json:
            result = await run()
        else:
            with RunProgress(err) as progress:
                result = await run(on_event=progress.on_event)
            print_answer(out, result)
    return result.model_dump(mode="json")


@app.command("ask")
def ask_command(
    question: Annotated[str, typer.Argument(help="Your question in plain language.")],
    tenant: Annotated[str, typer.Option(help="Whose client book the agents read.")] = "local",
    thread: Annotated[str | None, typer.Option(help="Continue this conversation thread.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Ask the agents a question about your clients (a tenant's book, else the sample)."""
    result = _run(as_json, lambda: asyncio.run(_ask(question, tenant, thread, as_json)))
    if as_json:
        _emit_json(result)


@app.command("train")
def train_command(
    model: Annotated[str, typer.Argument(help="Model to train: churn.")],
    data: Annotated[Path, typer.Option(help="The CSV file to train and cross-validate on.")],
    target: Annotated[str, typer.Option(help="Target column of the CSV.")] = "churn",
    name: Annotated[
        str | None, typer.Option(help="Registry name churn-...; default from the file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train a churn model on any CSV, cross-validate it and store it in the registry.

    An evaluation of the file: agents answer from each tenant's client book (aimesh
    portfolio import), whose models train on import.
    """
    from aimesh.config import get_settings
    from aimesh.console import metrics_table
    from aimesh.errors import InvalidInputError
    from aimesh.ml.service import MLService

    def train() -> dict[str, Any]:
        if model != "churn":
            raise InvalidInputError("model", f"unknown model {model!r}", "churn")
        with err.status(f"training {model} on {data} (cross-validation)..."):
            card = MLService(get_settings()).train_churn_csv(data, target, name)
        return card.model_dump(mode="json")

    card = _run(as_json, train)
    summary = {k: card[k] for k in ("version", "data_sha256", "metrics")}
    if as_json:
        _emit_json({"model": card["name"], **summary})
    else:
        row = {"model": card["name"], "version": card["version"], "dataset": card["dataset"]}
        out.print(metrics_table("trained (cross-validated)", [{**row, "metrics": card["metrics"]}]))


@app.command("eval")
def eval_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Evaluate every model on its dataset and print the metrics table."""
    from aimesh.config import get_settings
    from aimesh.console import metrics_table
    from aimesh.ml.service import evaluate
    from aimesh.portfolio.sample import sample_book

    def run() -> list[dict[str, Any]]:
        settings = get_settings()
        with err.status("evaluating models (trains any that are missing)..."):
            sample = sample_book(settings)
            cards = [sample.churn().card, sample.anomaly().card]
            return [row.model_dump(mode="json") for row in evaluate(settings, cards)]

    rows = _run(as_json, run)
    if as_json:
        keys = ("model", "version", "dataset", "metrics")
        _emit_json({"models": [{k: row[k] for k in keys} for row in rows]})
    else:
        out.print(metrics_table("aimesh models", rows))


def check_tenant(tenant: str) -> str:
    """The tenant name, checked as API keys check it.

    Raises:
        InvalidInputError: Not 1-64 letters, digits, ``_``, ``.`` or ``-`` (first a letter
            or digit).
    """
    import re

    from aimesh.errors import InvalidInputError
    from aimesh.store.keys import TENANT_PATTERN

    if not re.match(TENANT_PATTERN, tenant):
        raise InvalidInputError("tenant", f"{tenant!r} is malformed", TENANT_PATTERN)
    return tenant


portfolio_app = typer.Typer(help="Client books: import a tenant's clients, show its versions.")
app.add_typer(portfolio_app, name="portfolio")


async def _import_book(path: Path, tenant: str, mapping: list[str], wait: bool) -> dict[str, Any]:
    from aimesh.config import get_settings
    from aimesh.errors import DataFileError
    from aimesh.portfolio.books import opened_portfolios
    from aimesh.portfolio.importer import parse_mapping
    from aimesh.portfolio.reader import read_table

    settings = get_settings()
    check_tenant(tenant)
    fields = parse_mapping(mapping)
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = f"cannot read {path} ({error.strerror})"
        raise DataFileError("file", reason, "a readable file") from None
    raw = read_table(data, path.name, max_rows=settings.max_book_rows)
    async with opened_portfolios(settings) as portfolios:
        info = await portfolios.import_book(tenant, raw, fields, path.name)
        if wait:
            with err.status(f"training the models of {tenant}'s book v{info.version}..."):
                info = await portfolios.trained(tenant, info.version)
    return info.model_dump(mode="json")


@portfolio_app.command("import")
def portfolio_import(
    file: Annotated[Path, typer.Argument(help="The client table: CSV (UTF-8) or Parquet.")],
    tenant: Annotated[str, typer.Option(help="Whose client book this is.")],
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=COLUMN (repeatable): client_id (required), name, churned, "
            "monthly_charges, tenure_months, total_charges.",
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="Train the new version's models before returning.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Import a new version of a tenant's client book (all rows or none).

    Without --wait its models train in `aimesh serve` (or before the tenant's next `aimesh
    ask`); the previous version answers until they are ready.
    """
    info = _run(as_json, lambda: asyncio.run(_import_book(file, tenant, map_ or [], wait)))
    if as_json:
        _emit_json(info)
    else:
        from aimesh.console import book_summary

        out.print(book_summary(info))


async def _show_book(tenant: str) -> dict[str, Any]:
    from aimesh.config import get_settings
    from aimesh.portfolio.books import opened_portfolios

    async with opened_portfolios(get_settings()) as portfolios:
        return (await portfolios.view(check_tenant(tenant))).model_dump(mode="json")


@portfolio_app.command("show")
def portfolio_show(
    tenant: Annotated[str, typer.Option(help="Whose client book to show.")] = "local",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a tenant's book versions, their models and which one answers."""
    view = _run(as_json, lambda: asyncio.run(_show_book(tenant)))
    if as_json:
        _emit_json(view)
        return
    from aimesh.console import book_summary

    if view["sample"]:
        out.print(f"{tenant} has no ready book of its own: the sample book answers")
    for version in view["versions"]:
        out.print(f"{version['status']} (imported {version['created_at']})")
        out.print(book_summary(version["info"]))


keys_app = typer.Typer(help="API keys: the first admin key is created here, never by default.")
app.add_typer(keys_app, name="keys")


async def _create_key(
    tenant: str, role: str, user: str, scopes: list[str] | None, expires_days: int | None
) -> dict[str, Any]:
    from datetime import timedelta

    from aimesh.config import get_settings
    from aimesh.store.database import Database
    from aimesh.store.keys import create_key, server_secret
    from aimesh.store.tables import utcnow

    settings = get_settings()
    db = Database(settings.database)
    try:
        await db.migrate()
        async with db.sessions.begin() as session:
            new = await create_key(
                session,
                server_secret(settings),
                tenant=tenant,
                user_id=user,
                role=role,  # type: ignore[arg-type]
                scopes=scopes,
                expires_at=utcnow() + timedelta(days=expires_days) if expires_days else None,
                name="created by aimesh keys create",
            )
        record = new.record
        return {
            "key_id": record.id,
            "api_key": new.api_key,
            "tenant": record.tenant,
            "role": record.role,
            "scopes": record.scopes,
            "user_id": record.user_id,
            "expires_at": record.expires_at,
        }
    finally:
        await db.close()


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant (MSP) the key belongs to.")],
    role: Annotated[str, typer.Option(help="user, service or admin.")] = "user",
    user: Annotated[str, typer.Option(help="User id recorded in the audit log.")] = "cli",
    scope: Annotated[
        list[str] | None, typer.Option(help="A scope (repeatable); default: all of the role's.")
    ] = None,
    expires_days: Annotated[int | None, typer.Option(min=1, help="Expire after N days.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create an API key; its secret is printed this once and stored only as an HMAC."""
    created = _run(
        as_json, lambda: asyncio.run(_create_key(tenant, role, user, scope, expires_days))
    )
    if as_json:
        _emit_json(created)
    else:
        out.print(f"key {created['key_id']} for tenant {created['tenant']} ({created['role']}):")
        out.print(created["api_key"], highlight=False, soft_wrap=True)
        err.print("store it now: it is not shown again")


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API processes.")] = 1,
) -> None:
    """Serve the REST API (with SSE) under /api/mesh; docs at /api/mesh/docs."""
    import uvicorn

    from aimesh.config import get_settings
    from aimesh.store.database import Database

    async def migrate() -> None:
        db = Database(get_settings().database)
        try:
            await db.migrate()
        finally:
            await db.close()

    _run(False, lambda: asyncio.run(migrate()))
    uvicorn.run(
        "aimesh.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


if __name__ == "__main__":
    app()
