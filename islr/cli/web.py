"""``islr web build``: the web page and a model as a static site (islr.serving.site)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from islr.cli.common import console, user_errors
from islr.cli.deploy import MODEL_HELP

web_app = typer.Typer(
    help="The web page as a static, installable web app that needs no islr server.",
    no_args_is_help=True,
)


@web_app.command("build")
def build(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="The site's folder (new, empty or a build)."),
    vocab: Path | None = typer.Option(
        None,
        "--vocab",
        help="The vocabulary of added signs to ship (default: beside the model, X.vocab.json; "
        "for a shipped model ./NAME.vocab.json, when it exists).",
    ),
    pose: str = typer.Option(
        "full",
        "--pose",
        help="MediaPipe's pose model: full (as islr extract; the default) or lite (faster, "
        "lighter; its landmarks differ a little from the ones the model was trained on).",
    ),
) -> None:
    """Write a static site: any HTTPS host (or `python -m http.server` in it) runs the page."""
    from islr.serving.site import build_site

    with user_errors():
        manifest = build_site(model, out, vocab=vocab, pose=pose)
    size = manifest["bytes"] / 1e6
    console.print(
        f"wrote {escape(str(out))}: {len(manifest['files'])} files, {size:.1f} MB, build "
        f"{manifest['build']}. Try it: cd {escape(str(out))} && python -m http.server "
        "(then http://localhost:8000/); host it on any HTTPS server for phones (docs/web-app.md)"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(web_app, name="web")
