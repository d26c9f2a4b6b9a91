"""Reranking speed: omniembed's CrossEncoder against sentence-transformers', on one model folder.

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/rerank_speed.py [--queries 50] [--documents 10] [--rounds 3]

No real cross-encoder ships with the test data, so this builds one of real size: the
all-MiniLM-L6-v2 encoder (real weights) under a ``BertForSequenceClassification`` head with a
seeded random pooler and classifier, written once to a temporary folder that both libraries load.
The scores mean nothing; the speed and the agreement between the libraries are what is measured.
Pairs are Cranfield queries, each with ``--documents`` Cranfield documents. Three configurations
run in interleaved rounds after a warm-up: the reference, omniembed, and omniembed with its fused
forward pass switched off (the transformers forward pass), to show what that part contributes.
Prints markdown: median seconds, pairs/s, speed against the reference, largest score difference,
and the p50 of one short pair.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

from corpus import DATA_DIR, cranfield_documents
from encode_speed import machine_lines, markdown_table, model_folder

SHORT_PAIR = ("what is the boundary layer thickness", "the thickness of the laminar boundary layer")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=50, help="Cranfield queries (default 50)")
    parser.add_argument("--documents", type=int, default=10, help="documents per query (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per configuration (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="predict batch size (default 32)")
    parser.add_argument("--calls", type=int, default=200, help="single-pair calls (default 200)")
    return parser.parse_args(argv)


def build_cross_encoder(target: Path) -> Path:
    """Write a ``BertForSequenceClassification`` folder around the real MiniLM encoder weights."""
    import transformers

    source = model_folder(None)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification.from_pretrained(str(source), num_labels=1)
    model.save_pretrained(str(target))
    transformers.AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(target))
    return target


def pairs(queries: int, documents: int) -> list[tuple[str, str]]:
    """Cranfield queries, each with ``documents`` documents drawn with a fixed seed."""
    with (DATA_DIR / "cranfield" / "beir" / "queries.jsonl").open(encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle][:queries]
    corpus = cranfield_documents()
    generator = random.Random(0)
    return [(query, document) for query in texts for document in generator.sample(corpus, documents)]


def timed(predict: Callable[[], Any]) -> float:
    start = time.perf_counter()
    predict()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Build the model folder, run the rounds and print the tables."""
    args = parse_args(argv)
    from sentence_transformers import CrossEncoder as ReferenceCrossEncoder

    import omniembed as oe

    inputs = pairs(args.queries, args.documents)
    with tempfile.TemporaryDirectory() as folder:
        path = build_cross_encoder(Path(folder))
        reference = ReferenceCrossEncoder(str(path), device="cpu")
        ours = oe.CrossEncoder(path, device="cpu")
    fused = ours.scorer.fast_forward

    def with_fused(enabled: bool) -> Callable[[Callable[[], Any]], Any]:
        def run(call: Callable[[], Any]) -> Any:
            ours.scorer.fast_forward = fused if enabled else None
            return call()

        return run

    configs: dict[str, tuple[Callable[[Callable[[], Any]], Any], Any]] = {
        "sentence-transformers CrossEncoder (reference)": (lambda call: call(), reference),
        "omniembed CrossEncoder": (with_fused(True), ours),
        "omniembed CrossEncoder, transformers forward pass": (with_fused(False), ours),
    }
    scores: dict[str, np.ndarray] = {}
    times: dict[str, list[float]] = {name: [] for name in configs}
    for name, (run, model) in configs.items():
        scores[name] = np.asarray(run(lambda m=model: m.predict(inputs, batch_size=args.batch_size)))
    for _ in range(args.rounds):
        for name, (run, model) in configs.items():
            times[name].append(
                run(lambda m=model: timed(lambda: m.predict(inputs, batch_size=args.batch_size)))
            )
    latencies: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.calls):
        for name, (run, model) in configs.items():
            latencies[name].append(run(lambda m=model: timed(lambda: m.predict([SHORT_PAIR]))) * 1000)

    base_name = next(iter(configs))
    base = statistics.median(times[base_name])
    base_p50 = float(np.percentile(latencies[base_name], 50))
    rows = []
    for name in configs:
        median = statistics.median(times[name])
        p50 = float(np.percentile(latencies[name], 50))
        difference = float(np.abs(scores[name] - scores[base_name]).max())
        rows.append(
            [
                name,
                f"{median:.2f}",
                f"{len(inputs) / median:.1f}",
                f"{base / median:.2f}×",
                f"{difference:.1e}",
                f"{p50:.2f}",
                f"{p50 / base_p50:.2f}",
            ]
        )
    header = [
        "Configuration",
        "Median s",
        "Pairs/s",
        "Speed vs ref",
        "Max score diff",
        "Pair p50 ms",
        "p50 vs ref's",
    ]
    lines = [
        f"## Reranking: {len(inputs)} Cranfield pairs, all-MiniLM-L6-v2 encoder under a classifier head",
        "",
        *machine_lines("cpu"),
        f"Batch size {args.batch_size}, median of {args.rounds} interleaved round(s) after one warm-up; "
        f"{args.calls} single-pair calls.",
        "",
        *markdown_table(header, rows),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
