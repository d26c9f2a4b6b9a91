"""Bulk encoding on Ray against in-process encoding, on this machine.

Run from the repository root::

    HF_HUB_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0 python benchmarks/ray_embed.py [--limit 20000]
        [--batch-size 256] [--model FOLDER]

Encodes the mixed-length corpus (``corpus.py``: STS-B sentences and Cranfield documents) with
all-MiniLM-L6-v2 (or ``--model``) four ways: in-process (``encode``, torch's default threads) in one
call and in calls of ``--batch-size`` texts (what an actor gets: the part of the overhead that is
batching, not Ray), on a local Ray with one actor using every core, and with one single-thread actor
per core. For each Ray
run it splits the wall time into Ray's start, the time to the first batch (actors starting and
loading the model, plus one batch) and the steady part, and compares the steady rows/s with
in-process encoding (Ray's overhead). Prints markdown.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from corpus import mixed_corpus
from encode_speed import machine_lines, markdown_table, model_folder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=20_000, help="texts from the mixed corpus")
    parser.add_argument("--batch-size", type=int, default=256, help="rows per Ray batch")
    parser.add_argument("--model", default=None, help="a model folder (default: all-MiniLM-L6-v2)")
    return parser.parse_args(argv)


def in_process(folder: Path, texts: list[str], chunk: int | None = None) -> tuple[float, np.ndarray]:
    """Seconds to encode ``texts`` in this process (model loaded and warmed up first): in one call,
    or in calls of ``chunk`` texts, as a Ray actor gets them (each call sorts only its own texts by
    length, so its batches pad more)."""
    import omniembed as oe

    model = oe.SentenceTransformer(folder, device="cpu")
    model.encode(texts[:64])
    size = chunk or len(texts)
    started = time.perf_counter()
    parts = [model.encode(texts[i : i + size], batch_size=32) for i in range(0, len(texts), size)]
    return time.perf_counter() - started, np.concatenate(parts)


def on_ray(folder: Path, texts: list[str], actors: int, batch_size: int) -> dict[str, Any]:
    """One Ray run: a fresh local Ray, ``actors`` actors sharing the cores; the timings of its parts."""
    import ray

    import omniembed as oe

    cores = os.cpu_count() or 1
    temp_dir = tempfile.mkdtemp(prefix="oe-ray-bench-", dir="/tmp")
    started = time.perf_counter()
    ray.init(
        address="local",
        num_cpus=cores,
        include_dashboard=False,
        _temp_dir=temp_dir,
        log_to_driver=False,
        object_store_memory=300 * 2**20,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    ready = time.perf_counter()
    ds = ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(texts)])
    embedded = oe.distributed.embed(
        ds, folder, batch_size=batch_size, concurrency=actors, num_cpus=cores // actors
    )
    ids, vectors, first, first_rows = [], [], 0.0, 0
    submitted = time.perf_counter()
    for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
        if not first:
            first, first_rows = time.perf_counter(), len(batch["id"])
        ids.extend(batch["id"].tolist())
        vectors.extend(batch["embedding"])
    done = time.perf_counter()
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
    order = np.argsort(ids)
    return {
        "ray_start": ready - started,
        "first_batch": first - submitted,
        "steady": done - first,
        "steady_rows": len(ids) - first_rows,
        "total": done - started,
        "embeddings": np.stack(vectors)[order],
        "count": len(ids),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the three configurations once each and print the table."""
    args = parse_args(argv)
    folder = model_folder(args.model)
    texts = mixed_corpus(args.limit)
    seconds, reference = in_process(folder, texts)
    local_rate = len(texts) / seconds
    rows = [
        ["in-process encode", f"{seconds:.1f}", "-", "-", f"{seconds:.1f}", f"{local_rate:.0f}", "-", "-"]
    ]
    chunked, _ = in_process(folder, texts, args.batch_size)
    rate = len(texts) / chunked
    rows.append(
        [
            f"in-process, {args.batch_size} texts a call",
            f"{chunked:.1f}",
            "-",
            "-",
            f"{chunked:.1f}",
            f"{rate:.0f}",
            f"{local_rate / rate - 1:+.0%}",
            "-",
        ]
    )
    cores = os.cpu_count() or 1
    for actors in (1, cores):
        run = on_ray(folder, texts, actors, args.batch_size)
        assert run["count"] == len(texts)
        rate = run["steady_rows"] / run["steady"]
        cosine = (run["embeddings"] * reference).sum(1) / (
            np.linalg.norm(run["embeddings"], axis=1) * np.linalg.norm(reference, axis=1)
        )
        rows.append(
            [
                f"Ray, {actors} actor(s) x {cores // actors} thread(s)",
                f"{run['total']:.1f}",
                f"{run['ray_start']:.1f}",
                f"{run['first_batch']:.1f}",
                f"{run['steady']:.1f}",
                f"{rate:.0f}",
                f"{local_rate / rate - 1:+.0%}",
                f"{cosine.min():.6f}",
            ]
        )
    header = [
        "run",
        "wall s",
        "Ray start s",
        "to first batch s",
        "steady s",
        "steady rows/s",
        "overhead vs in-process",
        "min cosine",
    ]
    name = args.model or "all-MiniLM-L6-v2"
    lines = [f"## Ray bulk encoding: {len(texts)} mixed texts, {name}", ""]
    lines += markdown_table(header, rows) + machine_lines("cpu")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
