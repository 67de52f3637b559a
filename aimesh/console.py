"""Terminal rendering for the CLI: live progress of a run, answers and metric tables."""

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from aimesh.events import EventName
from aimesh.graphs.events import Event
from aimesh.graphs.run import AskResult


class RunProgress:
    """Live view of a run: agents and tools as they start and finish, elapsed time, draft.

    Use as a context manager and pass :meth:`on_event` as the run's event sink.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.steps: list[str] = []
        self.draft = ""
        self.t0 = time.perf_counter()
        self.live = Live(self._view(), console=console, refresh_per_second=8, transient=True)

    def __enter__(self) -> "RunProgress":
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)
        for step in self.steps:
            self.console.print(step, highlight=False)

    def _stamp(self) -> str:
        return f"[dim]{time.perf_counter() - self.t0:6.1f}s[/dim]"

    def _view(self) -> Group:
        elapsed = Text(f"working... {time.perf_counter() - self.t0:.1f}s", style="cyan")
        parts: list[Any] = [*map(Text.from_markup, self.steps[-12:]), elapsed]
        if self.draft:
            parts.append(Panel(self.draft[-600:], title="draft", border_style="dim"))
        return Group(*parts)

    def on_event(self, event: Event) -> None:
        """Record one event and refresh the view."""
        status = event.data.get("status")
        if event.event == EventName.AGENT and status == "started":
            self.steps.append(
                f"{self._stamp()} [bold]{event.agent}[/bold] <- {event.data['request']}"
            )
            self.draft = ""
        elif event.event == EventName.AGENT and status in ("finished", "error"):
            self.steps.append(
                f"{self._stamp()} [bold]{event.agent}[/bold] {status} ({event.data['elapsed_s']}s)"
            )
        elif event.event == EventName.TOOL and status == "started":
            args = ", ".join(f"{k}={v}" for k, v in event.data["args"].items())
            self.steps.append(
                f"{self._stamp()}   {event.agent}: [green]{event.tool}[/green]({args})"
            )
        elif event.event == EventName.TOOL and status == "error":
            self.steps.append(
                f"{self._stamp()}   [red]{event.tool} error[/red]: {event.data['result']}"
            )
        elif event.event == EventName.MODEL_FALLBACK:
            self.steps.append(f"{self._stamp()} [yellow]model fallback[/yellow]: {event.data}")
            if event.data.get("discard_partial"):  # the next model restarts the answer
                self.draft = ""
        elif event.event == EventName.TOKEN and event.agent == "coordinator":
            self.draft += event.data["text"]
        self.live.update(self._view())


def print_answer(console: Console, result: AskResult) -> None:
    """Print the answer and a footer with the book, agents, model, tokens, cost and thread."""
    console.print(Panel(Markdown(result.answer), title="answer", border_style="green"))
    cost = "unknown" if result.cost_usd is None else f"${result.cost_usd:.4f}"
    book = result.book
    source = "sample data" if book.sample else f"{book.tenant}'s book v{book.version}"
    console.print(
        f"[dim]book: {source} | agents: {', '.join(result.agents) or 'none'} | "
        f"model: {result.model} | "
        f"tokens: {result.tokens.input} in, {result.tokens.output} out | cost: {cost} | "
        f'follow up with: aimesh ask --thread {result.thread_id} "..."[/dim]'
    )


def _figure(value: float) -> str:
    """A metric as shown: whole numbers in full, others to 4 significant digits."""
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def metrics_table(title: str, rows: list[dict[str, Any]]) -> Table:
    """A table with one line per metric of each model (values to 4 significant digits).

    Args:
        title: Table title.
        rows: Dicts with ``model``, ``version``, ``dataset``, ``metrics`` and optionally
            ``evaluation`` (how the metrics were computed).
    """
    table = Table(title=title, show_lines=True)
    for column in ("model / version", "dataset", "metric", "value"):
        table.add_column(column, overflow="fold")
    for r in rows:
        names = "\n".join(r["metrics"])
        values = "\n".join(map(_figure, r["metrics"].values()))
        label = f"[bold]{r['model']}[/bold]\n[dim]{r['version']}[/dim]"
        if r.get("evaluation"):
            label += f"\n[dim]{r['evaluation']}[/dim]"
        table.add_row(label, r["dataset"], names, values)
    return table


def book_summary(info: dict[str, Any]) -> Table:
    """A book version as a table: its columns (type, mapped field), label and models.

    Args:
        info: A :class:`~aimesh.portfolio.book.BookInfo` as JSON.
    """
    label = info["label"]
    balance = f"{label['positives']} churned / {label['negatives']} stayed" if label else "none"
    title = f"{info['tenant']} book v{info['version']}: {info['rows']} clients, outcomes: {balance}"
    table = Table(title=title)
    for column in ("column", "type", "field"):
        table.add_column(column)
    for column in info["columns"]:
        table.add_row(column["name"], column["type"], column["field"] or "")
    for model in info["models"]:
        metrics = ", ".join(
            f"{k} {_figure(v)}" for k, v in model["metrics"].items() if k in SHOWN_METRICS
        )
        detail = model["detail"] or metrics
        table.caption = (table.caption or "") + f"{model['model']}: {model['status']} {detail}\n"
    return table


SHOWN_METRICS = ("roc_auc", "average_precision", "share_above_0_5")
"""Model metrics a book summary shows (the card has them all)."""
