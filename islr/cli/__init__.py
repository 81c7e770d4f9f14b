"""The ``islr`` command. Thin: each module in this package parses one group of arguments and
calls the library; nothing outside ``islr.cli`` imports it."""

from __future__ import annotations

import importlib

import typer

# Each module defines ``register(app)``; heavy imports happen inside the commands.
COMMAND_MODULES = ["cache", "datasets", "extract", "train", "deploy"]


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="islr",
        help="Indian Sign Language isolated-sign recognition: videos -> landmarks -> model -> app.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root() -> None:
        """Indian Sign Language isolated-sign recognition."""

    for name in COMMAND_MODULES:
        importlib.import_module(f"islr.cli.{name}").register(app)
    return app


def main() -> None:
    build_app()()
