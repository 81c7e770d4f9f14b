"""``islr predict``, ``islr export``, ``islr serve``: using a trained model."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from islr.cli.common import console, fail, out, user_errors

MODEL_HELP = (
    "A shipped model's name (include50), a training run folder (RUN_DIR with best.pt), "
    "a .pt checkpoint, or an .onnx model."
)


def predict(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    inputs: list[Path] = typer.Argument(
        ..., help="Videos, cached landmark .npz files, .pose files or INCLUDE .json files."
    ),
    top_k: int = typer.Option(5, "--top-k", "-k", min=1, help="How many signs to list."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of tables."),
    threads: int = typer.Option(0, "--threads", help="Classifier threads (0 = default)."),
) -> None:
    """Predict the sign of each input. A bad input is reported and skipped, the others are
    predicted (exit code 1 when any failed, with the list of those that did)."""
    from islr.datasets.inputs import load_input
    from islr.inference import Engine
    from islr.inference.gate import is_signing

    with user_errors():
        engine = Engine.load(model, threads=threads or None)
    from islr.errors import USER_ERRORS, MissingExtraError

    failed: list[Path] = []
    for path in inputs:
        try:
            seq = load_input(path, engine.layout)
            top = engine.predict(seq, top_k=top_k)
            # the classifier names a sign for anything; no hand in view is no sign
            signing = is_signing(seq)
        except MissingExtraError:
            raise  # no input can be read without it: stop with its one line
        except Exception as e:
            # one bad file (even one that trips a reader: nesting, a huge number) stops nothing
            failed.append(path)
            message = str(e) if isinstance(e, USER_ERRORS) else _unexpected(path, e)
            if as_json:
                _print_json_line({"input": str(path), "error": message})
            else:
                console.print(f"[bold red]error:[/] {escape(message)}")
            continue
        if as_json:
            record = {
                "input": str(path),
                "n_frames": seq.n_frames,
                "signing": signing,
                "top": [{"label": label, "prob": prob} for label, prob in top],
            }
            _print_json_line(record)
        else:
            note = "" if signing else ": [bold yellow]no sign[/] (hardly a hand in view)"
            table = Table(
                "#", "sign", "probability",
                title=f"{escape(str(path))} ({seq.n_frames} frames){note}",
            )  # fmt: skip
            for rank, (label, prob) in enumerate(top, 1):
                table.add_row(str(rank), escape(label), f"{prob:.1%}")
            out.print(table)
    if failed:
        names = ", ".join(str(p) for p in failed[:10]) + (", ..." if len(failed) > 10 else "")
        console.print(
            f"[bold red]{len(failed)} of {len(inputs)} inputs failed[/] (the others were "
            f"predicted): {escape(names)}",
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _unexpected(path: Path, error: Exception) -> str:
    """A reader's own exception (not one of islr's user errors) as one line naming the file."""
    detail = str(error).splitlines()[0][:200] if str(error) else ""
    message = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    return message if str(path) in message else f"{path}: cannot read it ({message})"


def _print_json_line(record: dict) -> None:
    out.print(json.dumps(record), soft_wrap=True, highlight=False, markup=False)


def export(
    run_dir: Path = typer.Argument(
        ..., help="A training run folder, a .pt checkpoint, or a shipped model's name (include50)."
    ),
    out_path: Path = typer.Option(..., "--out", "-o", help="The .onnx file to write."),
    int8: bool = typer.Option(False, "--int8", help="Dynamic int8 quantisation of the weights."),
    check: bool = typer.Option(
        True, "--check/--no-check", help="Compare ONNX Runtime with PyTorch on random input."
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="The model's training data (a landmark cache): stores its known signs' mean "
        "embeddings in the file, so that a new sign too close to one of them is flagged.",
    ),
    data_splits: str = typer.Option(
        "train", "--data-splits", help="The splits of --data the model was trained on."
    ),
    device: str = typer.Option(
        "cpu", "--device", help="Where --data is embedded: cpu, auto, cuda, cuda:N or mps."
    ),
) -> None:
    """Export a checkpoint to ONNX (opset 17, dynamic batch, input pipeline in the metadata;
    outputs "logits" and the sign embedding "embedding")."""
    from islr.errors import require
    from islr.export import export_onnx
    from islr.pretrained import resolve_model

    require("torch", "islr export")
    require("onnx", "islr export")

    with user_errors():
        run_dir = resolve_model(run_dir, kind="pt")
        reference = None
        if data is not None:
            from islr.inference import Engine
            from islr.inference.enroll import reference_from_cache

            splits = tuple(x.strip() for x in data_splits.split(",") if x.strip())
            engine = Engine.load(run_dir, vocabulary=False, device=device)
            reference = reference_from_cache(engine, data, splits)
        result = export_onnx(run_dir, out_path, int8=int8, reference=reference)
    meta = result.metadata
    table = Table(title="islr export", show_header=False)
    table.add_row("file", escape(str(result.path)))
    table.add_row("size", f"{result.bytes / 1e6:.2f} MB" + (" (int8)" if int8 else " (fp32)"))
    table.add_row("model", f"{meta.get('model')}, {len(meta['labels'])} signs")
    table.add_row(
        "input 'landmarks'",
        escape(
            f"[batch, {meta['seq_len']}, {meta['n_points']}, {meta['n_coords']}] "
            f"({meta['layout']['name']})"
        ),
    )
    embedding = meta.get("embedding", {})
    table.add_row(
        "output 'embedding'",
        f"{embedding.get('dim')}-d; known signs' prototypes: "
        + ("stored" if embedding.get("known_prototypes") else "none (give --data to store them)"),
    )
    if check:
        table.add_row("max |logit diff| vs PyTorch", f"{_parity(run_dir, result.path):.2e}")
    out.print(table)


def _parity(checkpoint: Path, onnx_path: Path) -> float:
    import numpy as np

    from islr.inference import Engine

    torch_engine, onnx_engine = Engine.load(checkpoint), Engine.load(onnx_path)
    rng = np.random.default_rng(0)
    shape = (4, torch_engine.seq_len, torch_engine.n_points, torch_engine.n_coords)
    batch = rng.random(shape, dtype=np.float32)
    batch[0, :, : shape[2] // 3] = np.nan  # some points never detected
    batch[1, ::3] = np.nan  # some frames missing
    diff = torch_engine.logits_batch(batch) - onnx_engine.logits_batch(batch)
    return float(np.abs(diff).max())


def serve(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    max_upload_mb: float = typer.Option(50.0, "--max-upload-mb", help="Largest video upload."),
    max_frames: int = typer.Option(1000, "--max-frames", help="Most frames per /v1/predict."),
    threads: int = typer.Option(0, "--threads", help="Classifier threads (0 = default)."),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        help="Smallest probability of a reported sign in WS /v1/stream and the page (default: "
        "the model's stream settings); a segment under it is 'unknown'.",
    ),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="Log requests."),
    allow_enroll: bool = typer.Option(
        False,
        "--allow-enroll",
        help="Let clients (the page's 'Add a sign') add, rename and remove signs through "
        "/v1/vocabulary; the changes are written to the vocabulary file.",
    ),
    vocab: Path | None = typer.Option(
        None,
        "--vocab",
        help="The vocabulary file of added signs (default: beside the model, X.vocab.json; "
        "for a shipped model ./NAME.vocab.json).",
    ),
    max_takes: int = typer.Option(20, "--max-takes", min=1, help="Most takes per request."),
    max_take_frames: int = typer.Option(
        300, "--max-take-frames", min=1, help="Most frames per take."
    ),
    max_json_mb: float = typer.Option(
        16.0, "--max-json-mb", help="Largest JSON body of POST /v1/predict."
    ),
    max_video_seconds: float = typer.Option(
        60.0, "--max-video-seconds", help="Longest uploaded video (POST /v1/predict/video)."
    ),
    allow_origin: list[str] = typer.Option(
        [],
        "--allow-origin",
        help="Another web origin (e.g. https://app.example.org) whose pages may write and "
        "stream; repeatable. The server's own page always may.",
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="ISLR_SERVE_TOKEN",
        help="The write token that writes to the vocabulary must send (Authorization: Bearer "
        "TOKEN); default: a new random one, printed at startup.",
    ),
    max_connections: int = typer.Option(
        256, "--max-connections", min=1, help="Open connections beyond this get 503."
    ),
    header_timeout: float = typer.Option(
        10.0,
        "--header-timeout",
        min=0.1,
        help="Seconds a connection has to send a request's line and headers.",
    ),
) -> None:
    """Serve the model: HTTP API, WebSocket stream and the web page (docs at /docs).

    Only the server's own page (or a client that is no web page: curl, scripts) may write and
    stream, and writes to the vocabulary need the write token printed at startup.
    """
    import gc

    import uvicorn

    from islr.serving.app import WEB_ASSETS_HELP, ServeConfig, create_app, missing_web_assets
    from islr.serving.guard import normalise_origin

    if max_upload_mb <= 0 or max_frames < 1 or max_json_mb <= 0 or max_video_seconds <= 0:
        raise fail(
            "--max-upload-mb, --max-frames, --max-json-mb and --max-video-seconds must be positive"
        )
    for origin in allow_origin:
        if not normalise_origin(origin).split("://", 1)[-1] or "://" not in origin:
            raise fail(f"--allow-origin {origin!r}: give an origin like https://app.example.org")
    if token is not None and len(token) < 16:
        raise fail("--token: use at least 16 characters")
    config = ServeConfig(
        max_upload_mb=max_upload_mb,
        max_frames=max_frames,
        max_json_mb=max_json_mb,
        max_video_seconds=max_video_seconds,
        allow_origins=tuple(allow_origin),
        allow_hosts=(host,),
        token=token,
        threads=threads or None,
        stream_overrides={} if threshold is None else {"threshold": threshold},
        allow_enroll=allow_enroll,
        vocabulary=vocab,
        max_takes=max_takes,
        max_take_frames=max_take_frames,
    )
    with user_errors():
        app = create_app(model, config)
    engine = app.state.islr.engine
    added = len(engine.labels) - len(engine.known_labels)
    console.print(
        f"serving {escape(str(model))} ({engine.backend}, {len(engine.labels)} signs"
        f"{f', {added} added' if added else ''}) on http://{host}:{port}/  (API docs: /docs)"
    )
    if allow_enroll:
        console.print(
            f"signs can be added; they are written to {escape(str(engine.vocabulary_file))}"
        )
        # the one place API clients learn the token (the page gets it in its HTML)
        print(f"write token: {app.state.islr.write_token}", flush=True)
    missing = missing_web_assets()
    if missing:
        console.print(
            f"[bold yellow]warning:[/] the web page's assets are not installed ({len(missing)} "
            f"files missing, e.g. static/{escape(missing[0])}): / shows how to get them and the "
            f"API works without them. To get them, {escape(WEB_ASSETS_HELP)}.",
            soft_wrap=True,
        )
    # What exists now (the model, the app) lives as long as the server: keep it out of the
    # garbage collector's full passes, whose pauses would otherwise show in the latency's tail.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        log_config=_log_config(),
        access_log=access_log,
        timeout_keep_alive=5,  # an idle keep-alive connection is closed after 5 s
        limit_concurrency=max_connections,
        http=_http_protocol(header_timeout),
        ws_max_size=config.max_stream_message_bytes,
        h11_max_incomplete_event_size=64 * 1024,  # request line and headers
    )


def _http_protocol(header_timeout: float) -> type | str:
    """uvicorn's httptools protocol with a timeout on the request headers (or its default
    where httptools is absent: h11 has no such hook)."""
    try:
        from islr.serving.limits import http_protocol_with_header_timeout

        return http_protocol_with_header_timeout(header_timeout)
    except ImportError:
        return "auto"


def _log_config() -> dict:
    """uvicorn's logging, plus the server's own one-line messages (refusals, disconnects)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["islr.serving"] = {"handlers": ["default"], "level": "INFO"}
    return config


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
    app.command("export")(export)
    app.command("serve")(serve)
