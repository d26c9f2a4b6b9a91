"""Throughput against batch size and against input length, plotted to ``encode_scaling.png``.

Run from the repository root (needs matplotlib: ``pip install 'omniembed[bench]'``)::

    HF_HUB_OFFLINE=1 python benchmarks/encode_scaling.py [--configs ref,ours,ours-onnx,ours-int8]

Inputs are real Cranfield text cut to an exact token count, so every input in a call has the
same length and no padding blurs the picture. Each point is the best of a few timed calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import cranfield_documents
from encode_speed import BY_KEY, cpu_model, load_models, markdown_table, model_folder

BATCH_SIZES = (1, 4, 16, 64, 256)
LENGTHS = (16, 32, 64, 128, 256)
FIXED_LENGTH = 64
FIXED_BATCH = 32
OUTPUT = Path(__file__).resolve().parent / "encode_scaling.png"


def texts_of_length(tokenizer: Any, count: int, length: int) -> list[str]:
    """``count`` real texts of exactly ``length`` tokens each (special tokens included)."""
    texts = []
    for document in cranfield_documents():
        ids = tokenizer(document, add_special_tokens=False)["input_ids"]
        if len(ids) >= length - 2:
            texts.append(tokenizer.decode(ids[: length - 2]))
        if len(texts) == count:
            return texts
    return (texts * (count // max(len(texts), 1) + 1))[:count]


def tokens_per_second(model: Any, texts: list[str], tokens: int, budget: float = 1.0) -> float:
    """Best throughput of repeated ``encode`` calls over about ``budget`` seconds."""
    model.encode(texts, batch_size=len(texts), show_progress_bar=False)
    best, spent = float("inf"), 0.0
    while spent < budget or best == float("inf"):
        start = time.perf_counter()
        model.encode(texts, batch_size=len(texts), show_progress_bar=False)
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
    return tokens / best


def main(argv: list[str] | None = None) -> None:
    """Measure, print markdown tables, write the PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--configs", default="ref,ours,ours-onnx,ours-int8", help="comma-separated config keys"
    )
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to write the plot")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing budget per point (default 1)")
    args = parser.parse_args(argv)
    keys = ["ref", *(key for key in args.configs.split(",") if key and key != "ref")]
    models, _ = load_models(keys, model_folder(None), None)
    tokenizer = models["ref"].tokenizer
    by_batch: dict[str, list[float]] = {key: [] for key in models}
    by_length: dict[str, list[float]] = {key: [] for key in models}
    for size in BATCH_SIZES:
        texts = texts_of_length(tokenizer, size, FIXED_LENGTH)
        for key, model in models.items():
            by_batch[key].append(tokens_per_second(model, texts, size * FIXED_LENGTH, args.seconds))
    for length in LENGTHS:
        texts = texts_of_length(tokenizer, FIXED_BATCH, length)
        for key, model in models.items():
            by_length[key].append(tokens_per_second(model, texts, FIXED_BATCH * length, args.seconds))
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key in models:
        left.plot(BATCH_SIZES, by_batch[key], marker="o", label=BY_KEY[key].name)
        right.plot(LENGTHS, by_length[key], marker="o", label=BY_KEY[key].name)
    left.set(xlabel=f"batch size (inputs of {FIXED_LENGTH} tokens)", ylabel="tokens/s")
    right.set(xlabel=f"tokens per input (batches of {FIXED_BATCH})", ylabel="tokens/s")
    for axis, points in ((left, BATCH_SIZES), (right, LENGTHS)):
        axis.set_xscale("log")
        axis.set_xticks(points, labels=[str(point) for point in points])
        axis.minorticks_off()  # log axes label minor ticks too, and they overlap the measured points'
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    handles, labels = left.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    figure.suptitle(f"all-MiniLM-L6-v2 encode throughput, {cpu_model()}, {torch.get_num_threads()} threads")
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    figure.savefig(args.output, dpi=110)
    names = [BY_KEY[key].name for key in models]
    lines = ["### Throughput (tokens/s) against batch size", ""]
    rows = [
        [str(size), *(f"{by_batch[key][i]:,.0f}" for key in models)] for i, size in enumerate(BATCH_SIZES)
    ]
    lines += markdown_table(["Batch size", *names], rows)
    lines += ["### Throughput (tokens/s) against tokens per input", ""]
    rows = [
        [str(length), *(f"{by_length[key][i]:,.0f}" for key in models)] for i, length in enumerate(LENGTHS)
    ]
    lines += markdown_table(["Tokens per input", *names], rows)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
