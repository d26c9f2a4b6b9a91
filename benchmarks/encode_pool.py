"""Multi-process encoding: one process using every core against a pool of single-thread workers.

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/encode_pool.py [--limit 5000] [--rounds 3] [--workers 2]
        [--chunk-sizes default,250] [--reference]

Loads all-MiniLM-L6-v2 (or ``--model``), encodes the mixed-length corpus (``corpus.py``) in-process
with torch's default threads, and on a pool of ``--workers`` CPU workers (each limited to its share
of the cores: one thread each with 2 workers on 2 cores), once per chunk size, in interleaved rounds
after a warm-up. ``--reference`` adds sentence-transformers in-process and with its own pool on the
same devices. Prints markdown: median seconds, texts/s, speed against our in-process run, and the
largest difference to our in-process embeddings.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from corpus import mixed_corpus
from encode_speed import machine_lines, markdown_table, model_folder

WARMUP_TEXTS = 64


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=5000, help="texts in the corpus (default 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per configuration (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="encode batch size (default 32)")
    parser.add_argument("--workers", type=int, default=2, help="CPU pool workers (default 2)")
    parser.add_argument(
        "--chunk-sizes", default="default", help="comma-separated chunk sizes; 'default' is ours (default)"
    )
    parser.add_argument("--model", default=None, help="model folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--reference", action="store_true", help="also time sentence-transformers")
    return parser.parse_args(argv)


def chunk_sizes(text: str) -> list[int | None]:
    """``"default,250"`` -> ``[None, 250]``."""
    return [None if part == "default" else int(part) for part in text.split(",") if part]


def run(args: argparse.Namespace) -> None:
    """Time every configuration and print the markdown report."""
    from omniembed import SentenceTransformer

    logging.getLogger("omniembed").setLevel(logging.ERROR)  # no truncation warnings in the output
    folder = model_folder(args.model)
    texts = mixed_corpus(args.limit)
    devices = ["cpu"] * args.workers
    ours = SentenceTransformer(folder, device="cpu")
    started = time.perf_counter()
    pool = ours.start_multi_process_pool(devices)
    start_seconds = time.perf_counter() - started
    encoders: dict[str, Callable[[list[str]], Any]] = {"omniembed in-process": lambda x: encode(ours, x)}
    for size in chunk_sizes(args.chunk_sizes):
        label = f"omniembed pool {args.workers} × {pool.threads} thread(s), chunk_size={size or 'default'}"
        encoders[label] = lambda x, size=size: encode(ours, x, pool=pool, chunk_size=size)
    reference_pool = None
    if args.reference:
        from sentence_transformers import SentenceTransformer as Reference

        theirs = Reference(str(folder), device="cpu")
        reference_pool = theirs.start_multi_process_pool(devices)
        encoders["sentence-transformers in-process"] = lambda x: encode(theirs, x)
        encoders[f"sentence-transformers pool {args.workers} workers"] = lambda x: encode(
            theirs, x, pool=reference_pool
        )
    try:
        times, outputs = time_rounds(encoders, texts, args.batch_size, args.rounds)
    finally:
        ours.stop_multi_process_pool(pool)
        if reference_pool is not None:
            theirs.stop_multi_process_pool(reference_pool)
    print_report(args, texts, times, outputs, start_seconds)


def encode(model: Any, texts: list[str], batch_size: int = 32, **kwargs: Any) -> np.ndarray:
    """Encode with the progress bar off, as numpy."""
    return np.asarray(model.encode(texts, batch_size=batch_size, show_progress_bar=False, **kwargs))


def time_rounds(
    encoders: dict[str, Callable[[list[str]], Any]], texts: list[str], batch_size: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, np.ndarray]]:
    """Warm up each configuration, then time interleaved rounds; also keep each one's output."""
    for function in encoders.values():
        function(texts[:WARMUP_TEXTS])
    times: dict[str, list[float]] = {name: [] for name in encoders}
    outputs: dict[str, np.ndarray] = {}
    for index in range(rounds):
        for name, function in encoders.items():
            start = time.perf_counter()
            outputs[name] = function(texts)
            times[name].append(time.perf_counter() - start)
            print(f"round {index + 1}/{rounds} {name}: {times[name][-1]:.2f} s", file=sys.stderr)
    return times, outputs


def print_report(
    args: argparse.Namespace,
    texts: list[str],
    times: dict[str, list[float]],
    outputs: dict[str, np.ndarray],
    start_seconds: float,
) -> None:
    """Print the machine, the settings and one table row per configuration."""
    base_name = "omniembed in-process"
    base = statistics.median(times[base_name])
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        difference = float(np.abs(outputs[name] - outputs[base_name]).max())
        rounds = ", ".join(f"{value:.2f}" for value in values)
        row = [name, f"{median:.2f}", rounds, f"{len(texts) / median:.1f}", f"{base / median:.2f}×"]
        rows.append([*row, f"{difference:.1e}"])
    header = ["Configuration", "Median s", "Rounds s", "Texts/s", "Speed vs in-process", "Max abs diff"]
    lines = [f"## Multi-process encoding: {args.limit} mixed texts, {args.workers} CPU workers", ""]
    lines += machine_lines("cpu")
    lines += [
        f"Batch size {args.batch_size}; median of {args.rounds} interleaved rounds after a warm-up; "
        f"starting our pool took {start_seconds:.1f} s (not timed in the rounds).",
        "",
        *markdown_table(header, rows),
    ]
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    run(parse_args(argv))


if __name__ == "__main__":
    main()
