"""``omniembed serve``: load a model (and a database) and run the HTTP server with uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from omniembed.inputs import policy as input_policy

logger = logging.getLogger("omniembed.cli")


def serve_command(
    model: Annotated[str | None, typer.Option(help="the embedding model (a folder or a hub id)")] = None,
    db: Annotated[Path | None, typer.Option(help="a database folder to serve collections from")] = None,
    reranker: Annotated[str | None, typer.Option(help="a cross-encoder for /v1/rerank")] = None,
    host: Annotated[str, typer.Option(help="the address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8080,
    api_key: Annotated[list[str] | None, typer.Option(help="an accepted Bearer key (repeatable)")] = None,
    model_name: Annotated[str | None, typer.Option(help="the model name reported to clients")] = None,
    max_body_mb: Annotated[float, typer.Option(min=0.001, help="the largest request body")] = 16.0,
    max_inputs: Annotated[int, typer.Option(min=1, help="inputs per request")] = 2048,
    max_tokens_per_input: Annotated[int, typer.Option(min=1)] = 8192,
    max_input_chars: Annotated[
        int | None,
        typer.Option(
            min=1, help="characters per text input, refused before tokenizing (default: 32 per token)"
        ),
    ] = None,
    max_wait_ms: Annotated[
        float, typer.Option(min=0, help="how long batching waits for more requests")
    ] = 0.0,
    cors_origin: Annotated[list[str] | None, typer.Option(help="an origin allowed by CORS")] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="a Host header to answer, e.g. api.example.com or '*' (repeatable; default: loopback)"
        ),
    ] = None,
    allow_local_files: Annotated[
        Path | None,
        typer.Option(help="a folder whose files remote callers may name as media (default: none)"),
    ] = None,
    allow_url_host: Annotated[
        list[str] | None, typer.Option(help="a host whose image URLs remote callers may name (repeatable)")
    ] = None,
    url_timeout: Annotated[float, typer.Option(min=0.1, help="seconds to wait for an allowed URL")] = 5.0,
    max_image_pixels: Annotated[
        int, typer.Option(min=1, help="pixels in one decoded image or video frame")
    ] = input_policy.REMOTE_IMAGE_PIXELS,
    max_request_pixels: Annotated[
        int, typer.Option(min=1, help="pixels decoded for one request")
    ] = input_policy.REMOTE_REQUEST_PIXELS,
    max_audio_seconds: Annotated[
        float, typer.Option(min=0.1, help="seconds in one audio input")
    ] = input_policy.REMOTE_AUDIO_SECONDS,
    max_video_frames: Annotated[
        int, typer.Option(min=1, help="frames in one video input")
    ] = input_policy.REMOTE_VIDEO_FRAMES,
    max_pdf_pages: Annotated[
        int, typer.Option(min=1, help="pages in one uploaded PDF (each also held to --max-image-pixels)")
    ] = 500,
    public_metrics: Annotated[bool, typer.Option(help="with --api-key, leave /metrics open")] = False,
    public_docs: Annotated[
        bool, typer.Option(help="with --api-key, leave /docs, /redoc and /openapi.json open")
    ] = False,
    threads: Annotated[
        int | None, typer.Option(min=1, help="CPU threads per forward pass (default: every core)")
    ] = None,
) -> None:
    """Serve embeddings (OpenAI-compatible), collections and the search page over HTTP."""
    import uvicorn

    from omniembed.server import ServerSettings, create_app

    # The model runs in the batcher's thread while the event loop's thread waits. With OpenMP's
    # default active waiting, the idle threads spin on the cores the forward pass needs (the cost:
    # BENCHMARKS.md, "Figures behind the runtime choices"). Read by OpenMP when torch first runs a
    # parallel region, so it is set here, before the model loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # oneDNN caches a compiled primitive per input shape (up to 1024 by default). Merged batches
    # have ever-new (batch, length) shapes, so the default cache only grows. A small cache bounds
    # it; none at all would rebuild the linear layers' kernels (runtime/onednn.py) on every call
    # (both measured in BENCHMARKS.md, "Figures behind the runtime choices").
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
    if threads is not None:  # the whole process serves, so torch's process-wide setting is the right one
        import torch

        torch.set_num_threads(threads)
    loaded, database, cross = _load(model, db, reranker)
    settings = ServerSettings(
        model_name=model_name or (Path(model).name if model else "omniembed"),
        api_keys=tuple(api_key or ()),
        max_body_bytes=int(max_body_mb * 2**20),
        max_inputs=max_inputs,
        max_tokens_per_input=max_tokens_per_input,
        max_input_chars=max_input_chars,
        max_wait_ms=max_wait_ms,
        cors_origins=tuple(cors_origin or ()),
        allowed_hosts=allowed_hosts(host, allowed_host),
        allow_local_files=str(allow_local_files) if allow_local_files is not None else None,
        allow_url_hosts=tuple(allow_url_host or ()),
        url_timeout_s=url_timeout,
        max_image_pixels=max_image_pixels,
        max_request_pixels=max_request_pixels,
        max_audio_seconds=max_audio_seconds,
        max_video_frames=max_video_frames,
        max_pdf_pages=max_pdf_pages,
        public_metrics=public_metrics,
        public_docs=public_docs,
    )
    # The app closes the database in its shutdown: after SIGTERM uvicorn re-raises the signal, so
    # nothing after uvicorn.run would run and the HNSW graphs would never be saved.
    app = create_app(model=loaded, db=database, settings=settings, reranker=cross, close_db=True)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    typer.echo(f"omniembed is serving on http://{shown}:{port}/  (search page at /, API docs at /docs)")
    uvicorn.run(app, host=host, port=port, log_level="info")


def allowed_hosts(host: str, given: list[str] | None) -> tuple[str, ...]:
    """The Host headers to answer: those given; the loopback names for a loopback address; else any.

    A server on a public address is reached by names this machine cannot know, so without
    ``--allowed-host`` it answers any Host header, and says so.
    """
    from omniembed.server.settings import LOOPBACK_HOSTS

    if given:
        return tuple(given)
    if _is_loopback(host):
        return LOOPBACK_HOSTS
    logger.warning(
        "listening on %s with no --allowed-host: answering any Host header; name the hosts clients use "
        "with --allowed-host to refuse the rest",
        host,
    )
    return ("*",)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _load(model: str | None, db: Path | None, reranker: str | None) -> tuple[Any, Any, Any]:
    if model is None and db is None and reranker is None:
        raise ValueError("give --model, --db or --reranker: there is nothing to serve")
    loaded: Any = None
    cross = database = None
    if model is not None:
        from omniembed import SentenceTransformer, SparseEncoder
        from omniembed.modules.folder import ModelFamilyError

        logger.info("loading model %s", model)
        try:
            loaded = SentenceTransformer(model)
        except ModelFamilyError as error:
            if error.family != "sparse":
                raise
            loaded = SparseEncoder(model)  # served as {indices, values} vectors
    if reranker is not None:
        from importlib import import_module

        logger.info("loading reranker %s", reranker)
        cross = import_module("omniembed.rerank.cross_encoder").CrossEncoder(reranker)
    if db is not None:
        import omniembed as oe

        database = oe.connect(db)
    return loaded, database, cross
