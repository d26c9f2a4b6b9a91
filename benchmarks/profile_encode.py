"""Where an exact-mode encode spends its time on the CPU: attention, linear layers, layer norms, ...

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/profile_encode.py [--corpus long] [--limit 64] [--rounds 2]

Loads all-MiniLM-L6-v2 (or ``--model``) with omniembed's defaults (``dtype="float32"``), encodes a
corpus of ``corpus.py`` under ``torch.profiler`` and sorts every operator's own time into a few
groups (linear layers, attention, layer norm, residual adds, head copies, embeddings, pooling);
what no operator accounts for (tokenizing, batching, Python) is the rest of the wall time. Then it
splits what the profiler sees as one operator, at the shapes of one batch of the corpus: attention
into QK^T, softmax and AV (run as separate products), and the GELU fused into the feed-forward
product (the same product without it). It also counts the padding the batches carry and the
bytes and flops of each group per token. Shares are percentages of the total, so they hold on a
busy machine better than times do; the output is markdown.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from omniembed.runtime.fused_encoder import padded_rows
from omniembed.runtime.token_batches import TOKENS_PER_INPUT, pack_by_tokens

from corpus import CORPORA, build_corpus, token_lengths
from encode_speed import cpu_description, cpu_flag_line, model_folder

GROUPS = (
    ("attention (scaled dot-product)", ("scaled_dot_product", "flash_attention", "bmm", "softmax")),
    ("linear layers (q, k, v, output, feed-forward; GELU fused)", ("linear", "addmm", "mm")),
    ("layer norm", ("layer_norm",)),
    ("residual adds", ("add",)),
    ("head copies and padding rows (copy_, zero_, cat)", ("copy_", "zero_", "cat", "new_zeros")),
    ("embeddings (lookups)", ("embedding", "index_select")),
    ("pooling and normalize", ("sum", "div", "mul", "clamp", "norm", "argmax")),
)
"""Operator groups, by substrings of the operator name (the first group that matches wins)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", choices=CORPORA, default="long", help="corpus (default long)")
    parser.add_argument("--limit", type=int, default=64, help="texts (default 64)")
    parser.add_argument("--rounds", type=int, default=2, help="profiled encodes (default 2)")
    parser.add_argument("--batch-size", type=int, default=32, help="encode batch size (default 32)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--model", default=None, help="model folder (default: all-MiniLM-L6-v2)")
    return parser.parse_args(argv)


def group_of(name: str) -> str:
    """The group an operator belongs to, or ``other operators``."""
    short = name.split("::")[-1]
    for label, keys in GROUPS:
        if any(key in short for key in keys):
            return label
    return "other operators"


def profiled_shares(model: Any, texts: list[str], batch_size: int, rounds: int) -> dict[str, float]:
    """Seconds per group (operators' own CPU time) and the wall time, over ``rounds`` encodes."""
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(rounds):
            model.encode(texts, batch_size=batch_size, show_progress_bar=False)
        wall = time.perf_counter() - start
    seconds: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.self_cpu_time_total > 0:
            seconds[group_of(event.key)] += event.self_cpu_time_total / 1e6
    seconds["tokenizing, batching, Python (not in any operator)"] = max(wall - sum(seconds.values()), 0.0)
    seconds["total"] = wall
    return dict(seconds)


def median_seconds(call: Callable[[], object], repeats: int = 15) -> float:
    """Median wall time of ``call`` after one warm-up."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def attention_split(batch: int, heads: int, length: int, head_size: int) -> dict[str, float]:
    """Seconds of the fused attention and of its three steps run one by one, at one batch's shape."""
    query, key, value = (torch.randn(batch, heads, length, head_size) for _ in range(3))
    scale = head_size**-0.5
    scores = torch.matmul(query, key.transpose(-1, -2))
    weights = torch.softmax(scores, dim=-1)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    with torch.inference_mode():
        return {
            "fused": median_seconds(lambda: sdpa(query, key, value, scale=scale)),
            "QK^T": median_seconds(lambda: torch.matmul(query, key.transpose(-1, -2))),
            "softmax": median_seconds(lambda: torch.softmax(scores, dim=-1)),
            "AV": median_seconds(lambda: torch.matmul(weights, value)),
        }


def linear_split(rows: int, width: int, inner: int) -> dict[str, float]:
    """Seconds of each linear layer of one layer at ``rows`` token rows, and of the fused GELU."""
    hidden, wide = torch.randn(rows, width), torch.randn(rows, inner)
    ops = torch.ops.mkldnn
    weights = {
        "q/k/v/output (4 products)": (hidden, torch.randn(width, width), torch.randn(width), 4),
        "feed-forward in (with GELU)": (hidden, torch.randn(inner, width), torch.randn(inner), 1),
        "feed-forward out": (wide, torch.randn(width, inner), torch.randn(width), 1),
    }
    timings = {}
    with torch.inference_mode():
        for name, (source, weight, bias, count) in weights.items():
            packed = ops._reorder_linear_weight(weight, 16)
            post = "gelu" if "GELU" in name else "none"
            timings[name] = count * median_seconds(
                lambda s=source, p=packed, b=bias, o=post: ops._linear_pointwise(s, p, b, o, [], "none")
            )
        packed = ops._reorder_linear_weight(weights["feed-forward in (with GELU)"][1], 16)
        bias = weights["feed-forward in (with GELU)"][2]
        plain = median_seconds(lambda: ops._linear_pointwise(hidden, packed, bias, "none", [], "none"))
        timings["of which GELU"] = max(timings["feed-forward in (with GELU)"] - plain, 0.0)
    return timings


def padding_lines(lengths: list[int], batch_size: int) -> list[str]:
    """How many padded token rows and attention scores the token-budget batches compute."""
    real = sum(lengths)
    sizes = np.asarray(lengths)
    padded = attended = ideal = 0
    for batch in pack_by_tokens(sizes, batch_size * TOKENS_PER_INPUT):
        longest = int(sizes[batch].max())
        padded += padded_rows(len(batch) * longest)
        attended += len(batch) * longest * longest
        ideal += int((sizes[batch] ** 2).sum())
    return [
        f"- padding: {padded:,} token rows computed for {real:,} real tokens "
        f"({100 * (padded - real) / padded:.1f}% padding); attention scores {attended:,} for "
        f"{ideal:,} needed ({100 * (attended - ideal) / max(attended, 1):.1f}% padding)",
    ]


def traffic_lines(width: int, inner: int, length: int) -> list[str]:
    """Flops and bytes moved per token and layer, by group (float32, weights read once per batch)."""
    linear_flops = 2 * (4 * width * width + 2 * width * inner)
    attention_flops = 2 * 2 * length * width
    norm_bytes = 2 * 4 * width * 2  # two layer norms, each reads and writes a row
    add_bytes = 2 * 4 * width * 3  # two residual adds, in place: read two rows, write one
    copy_bytes = 4 * width * 2
    score_bytes = 4 * length * (width // 32) * 2  # one score row per head, written then read
    return [
        f"- per token and layer: linear layers {linear_flops / 1e6:.2f} MFLOP, attention at "
        f"{length} tokens {attention_flops / 1e6:.2f} MFLOP; layer norms move {norm_bytes / 1e3:.1f} kB, "
        f"residual adds {add_bytes / 1e3:.1f} kB, head copies {copy_bytes / 1e3:.1f} kB, "
        f"attention scores {score_bytes / 1e3:.1f} kB if materialized (32-wide heads)",
    ]


def percent_table(seconds: dict[str, float], total: float) -> list[str]:
    """A markdown table of each entry's share of ``total``, largest first."""
    lines = ["| part | share of total |", "| --- | ---: |"]
    for name, value in sorted(seconds.items(), key=lambda item: -item[1]):
        lines.append(f"| {name} | {100 * value / total:.1f}% |")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> None:
    """Profile one corpus and print markdown."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    from omniembed import SentenceTransformer

    logging.getLogger("omniembed").setLevel(logging.ERROR)
    model = SentenceTransformer(model_folder(args.model), device="cpu")
    texts = build_corpus(args.corpus, model.tokenizer, args.limit)
    lengths = token_lengths(texts, model.tokenizer, model.max_seq_length)
    model.encode(texts[:16], batch_size=args.batch_size, show_progress_bar=False)
    seconds = profiled_shares(model, texts, args.batch_size, args.rounds)
    total = seconds.pop("total")
    config = model.transformer.auto_model.config
    width, inner, heads = config.hidden_size, config.intermediate_size, config.num_attention_heads
    length = max(lengths)
    batch = max(1, args.batch_size * TOKENS_PER_INPUT // length)
    attention = attention_split(batch, heads, length, width // heads)
    linears = linear_split(padded_rows(batch * length), width, inner)
    linear_seconds = sum(value for name, value in linears.items() if name != "of which GELU")
    linear_flops = padded_rows(batch * length) * 2 * (4 * width * width + 2 * width * inner)
    cpu, flags = cpu_description()
    lines = [
        f"## Exact-mode encode profile: {args.corpus} corpus, {len(texts)} texts",
        "",
        f"- CPU: {cpu} ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)",
        cpu_flag_line(flags),
        f"- tokens per text after truncation: mean {statistics.fmean(lengths):.0f}, max {length}; "
        f"{args.rounds} profiled encode(s), batch size {args.batch_size}",
        *padding_lines(lengths, args.batch_size),
        *traffic_lines(width, inner, length),
        "",
        "### Operators' own time, by group (torch.profiler)",
        "",
        *percent_table(seconds, total),
        f"### Attention split, one batch ({batch} × {heads} heads × {length} tokens), run step by step",
        "",
        f"The fused kernel takes {100 * attention.pop('fused') / sum(attention.values()):.0f}% of the "
        "three steps run one by one.",
        "",
        *percent_table(attention, sum(attention.values())),
        f"### Linear layers of one layer ({padded_rows(batch * length)} token rows)",
        "",
        *percent_table(linears, linear_seconds),
        f"The products run at {linear_flops / linear_seconds / 1e9:.0f} GFLOP/s (float32, all threads; "
        "the machine's other load included).",
        "",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
