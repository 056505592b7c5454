"""What a probe shows a person: a live progress bar with the running tally, then the summary table.

On a terminal `rich` redraws the bar in place (stderr); elsewhere (a pipe, CI) it prints
nothing until the summary, which goes to stdout either way.
"""

from __future__ import annotations

from collections import Counter
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from turnout.probe.results import ProbeResult, Summary


class ProgressView:
    """`with ProgressView(total) as view: view.add(result)`."""

    def __init__(self, total: int, *, console: Console | None = None) -> None:
        self._tally: Counter[str] = Counter()
        self._progress = Progress(
            TextColumn("[bold]probing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[tally]}"),
            console=console or Console(stderr=True, emoji=False), transient=False,
        )
        self._task = self._progress.add_task("probe", total=total, tally="")

    def add(self, result: ProbeResult) -> None:
        self._tally["ok" if result.ok else (f"skipped: {result.skipped}" if result.skipped else result.kind or "?")] += 1
        self._progress.update(self._task, advance=1, tally=tally_text(self._tally))

    def __enter__(self) -> ProgressView:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()


def tally_text(tally: Counter[str]) -> str:
    ok = tally.get("ok", 0)
    rest = " ".join(f"{escape(kind)} {n}" for kind, n in tally.most_common() if kind != "ok")
    return f"[green]ok {ok}[/green] [red]{rest}[/red]" if rest else f"[green]ok {ok}[/green]"


def summary_table(summary: Summary, *, interrupted: bool) -> Table:
    title = "Probe summary (interrupted: partial)" if interrupted else "Probe summary"
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    rate = "-" if summary.success_rate is None else f"{summary.success_rate:.1%}"
    average = "-" if summary.average_latency_s is None else f"{summary.average_latency_s:.2f} s"
    table.add_row("models tested", str(summary.tested))
    table.add_row("succeeded", str(summary.succeeded))
    table.add_row("failed", str(summary.failed))
    for kind, n in summary.failed_by_reason.items():
        table.add_row(f"  {escape(kind)}", str(n))
    for reason, n in summary.skipped_by_reason.items():
        table.add_row(f"skipped ({reason})", str(n))
    table.add_row("success rate", rate)
    table.add_row("average latency", average)
    table.add_row("total time", f"{summary.total_time_s:.1f} s")
    for rank, (model, seconds) in enumerate(summary.fastest, start=1):
        table.add_row("fastest" if rank == 1 else "", f"{rank}. {escape(model)}  {seconds:.2f} s")
    return table
