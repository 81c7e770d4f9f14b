"""The ``islr`` command. Thin: each module in this package parses one group of arguments and
calls the library; nothing outside ``islr.cli`` imports it."""

from __future__ import annotations

import importlib
import os

import typer

# Each module defines ``register(app)``; heavy imports happen inside the commands.
COMMAND_MODULES = ["cache", "datasets", "extract", "train", "deploy", "vocab", "web"]


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


def use_sleeping_openmp_threads() -> None:
    """Make idle OpenMP threads sleep, unless the environment says otherwise.

    Threads that spin while waiting make torch 2-15x slower as soon as another process wants a
    core (measured on 2 cores: 17 s vs 1.1 s per demo epoch). For the owner of a process (the
    ``islr`` command, the test session), called before torch is first imported.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> None:
    use_sleeping_openmp_threads()  # commands import torch lazily, after this
    from islr.errors import MissingExtraError

    try:
        build_app()()
    except MissingExtraError as e:
        # a missing optional dependency ends any command the same way: one line, exit code 2
        from islr.cli.common import fail

        raise SystemExit(fail(str(e)).exit_code) from None
