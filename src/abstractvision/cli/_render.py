"""Everything the CLI draws: progress, tables and JSON.

rich is imported here, inside functions, so that commands which print nothing fancy (and
``--help``) never pay for it. Progress goes to stderr and results to stdout, so that
``abstractvision t2i ... --json | jq`` gets clean JSON.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import click

from ..types import ProgressEvent


class ProgressDisplay:
    """Draws progress events: a spinner with elapsed time until the run reports steps (a remote
    call usually never does), then a bar with steps and ETA (local engines).

    Use as a context manager; the object itself is the ``on_progress`` callback. Each ``start``
    event begins a new item, so a batch shows ``item 2/3``.
    """

    def __init__(self, label: str, total_items: int = 1, console: Any = None):
        self.label = label
        self.total_items = total_items
        self._console = console
        self._lock = threading.Lock()
        self._progress: Any = None
        self._task_id: Any = None
        self._bar = False
        self._item = 0

    def __enter__(self) -> ProgressDisplay:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        if self._console.is_terminal:  # a log file or a pipe gets no animation
            self._show(bar=False, total=None)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None

    def _description(self) -> str:
        if self.total_items > 1:
            return f"{self.label} {max(self._item, 1)}/{self.total_items}"
        return self.label

    def _show(self, *, bar: bool, total: int | None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        if self._progress is not None:
            self._progress.stop()
        columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
        if bar:
            columns += [BarColumn(), MofNCompleteColumn(), TextColumn("steps"), TimeRemainingColumn()]
        columns.append(TimeElapsedColumn())
        self._progress = Progress(*columns, console=self._console, transient=True)
        self._task_id = self._progress.add_task(self._description(), total=total)
        self._bar = bar
        self._progress.start()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if self._progress is None:
                return
            if event.phase == "start":
                self._item += 1
                self._show(bar=bool(event.total_steps), total=event.total_steps)
            elif event.phase == "step" and event.total_steps:
                if not self._bar:
                    self._show(bar=True, total=event.total_steps)
                self._progress.update(
                    self._task_id, completed=event.step or 0, total=event.total_steps, description=self._description()
                )  # the description drops any "loading ..." message once steps run
            elif event.phase in ("load", "download") and event.message:
                self._progress.update(self._task_id, description=f"{self._description()}: {event.message}")
            elif event.phase == "end" and self._bar:
                total = self._progress.tasks[0].total
                self._progress.update(self._task_id, completed=total)


def progress_callback(label: str, *, quiet: bool, total_items: int = 1) -> Any:
    """A context manager yielding the ``on_progress`` callback (``None`` when quiet)."""
    import contextlib

    if quiet:
        return contextlib.nullcontext(None)
    return ProgressDisplay(label, total_items)


def print_json(document: Any) -> None:
    """Plain ``json.dumps`` on stdout: parseable, whatever the terminal."""
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, overflow="fold", no_wrap=index == 0)  # ids stay copyable
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    Console(soft_wrap=False).print(table)


__all__ = ["ProgressDisplay", "print_json", "print_table", "progress_callback"]
