"""Shared CLI helpers: one console, progress bars, turning user errors into clean exits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)
out = Console()


def make_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
    )


def fail(message: str, code: int = 2) -> typer.Exit:
    from rich.markup import escape

    # escaped: "pip install 'islr[ray]'" or a path with brackets must print as written
    console.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's user-facing errors into one red line and exit code 2."""
    from islr.errors import USER_ERRORS

    try:
        yield
    except USER_ERRORS as e:
        raise fail(str(e)) from None
