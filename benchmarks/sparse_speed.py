"""Sparse encoding speed: omniembed's SparseEncoder against sentence-transformers', on one SPLADE folder.

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/sparse_speed.py [--texts 300] [--rounds 3] [--bias -4.0]

No real SPLADE model ships with the test data, so this builds one of real size: the all-MiniLM-L6-v2
encoder (real weights) under a ``BertForMaskedLM`` head whose decoder is tied to the word embeddings
(30,522 × 384, as in BERT) and whose transform layer is seeded random, then a SpladePooling (max,
relu). A random head makes about half the vocabulary active, far denser than a trained SPLADE model,
so the decoder bias is set to ``--bias`` everywhere to bring the active dimensions to a trained
model's order (the number is printed). The reference library saves the folder and both libraries
load it. The weights mean nothing; the speed and the agreement between the libraries are what is
measured. Inputs are the first ``--texts`` of the mixed corpus (``benchmarks/corpus.py``). Three
configurations run in interleaved rounds after a warm-up: the reference, omniembed (exact mode), and
omniembed with its fused forward pass switched off (transformers' forward pass, oneDNN linear layers).
Prints markdown: median seconds, texts/s, speed against the reference, whether the active dimensions
are equal, and the largest value difference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

from corpus import mixed_corpus
from encode_speed import machine_lines, markdown_table, model_folder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=300, help="texts of the mixed corpus (default 300)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per configuration (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="encode batch size (default 32)")
    parser.add_argument("--bias", type=float, default=-4.0, help="decoder bias of the head (default -4.0)")
    return parser.parse_args(argv)


def build_splade(target: Path, bias: float) -> Path:
    """Save a SPLADE folder (with the reference library) around the real MiniLM encoder weights."""
    import transformers
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import SpladePooling, Transformer

    source = model_folder(None)
    network = target / "network"
    torch.manual_seed(0)
    model = transformers.BertForMaskedLM.from_pretrained(str(source))
    with torch.no_grad():
        model.cls.predictions.bias.fill_(bias)
    model.save_pretrained(str(network))
    transformers.AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(network))
    transformer = Transformer(str(network), transformer_task="fill-mask")
    transformer.max_seq_length = 256  # all-MiniLM-L6-v2's own limit
    splade = SparseEncoder(modules=[transformer, SpladePooling("max", "relu")], device="cpu")  # type: ignore[list-item]
    splade.save(str(target / "splade"))
    return target / "splade"


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Build the folder, run the rounds and print the table."""
    args = parse_args(argv)
    from sentence_transformers import SparseEncoder as ReferenceSparseEncoder

    import omniembed as oe

    texts = mixed_corpus(args.texts)
    with tempfile.TemporaryDirectory() as folder:
        path = build_splade(Path(folder), args.bias)
        reference = ReferenceSparseEncoder(str(path), device="cpu")
        ours = oe.SparseEncoder(path, device="cpu")
    fused = ours[0].fast_forward

    def with_fused(enabled: bool) -> Callable[[Callable[[], Any]], Any]:
        def run(call: Callable[[], Any]) -> Any:
            ours[0].fast_forward = fused if enabled else None
            return call()

        return run

    configs: dict[str, tuple[Callable[[Callable[[], Any]], Any], Any]] = {
        "sentence-transformers SparseEncoder (reference)": (lambda call: call(), reference),
        "omniembed SparseEncoder": (with_fused(True), ours),
        "omniembed SparseEncoder, transformers forward pass": (with_fused(False), ours),
    }
    outputs: dict[str, torch.Tensor] = {}
    times: dict[str, list[float]] = {name: [] for name in configs}
    for name, (run, model) in configs.items():
        outputs[name] = run(lambda m=model: m.encode(texts, batch_size=args.batch_size)).to_dense()
    for _ in range(args.rounds):
        for name, (run, model) in configs.items():
            times[name].append(
                run(lambda m=model: timed(lambda: m.encode(texts, batch_size=args.batch_size)))
            )

    base_name = next(iter(configs))
    base, expected = statistics.median(times[base_name]), outputs[base_name]
    rows = []
    for name in configs:
        median = statistics.median(times[name])
        same_dims = bool(torch.equal(outputs[name] != 0, expected != 0))
        difference = float((outputs[name] - expected).abs().max())
        rows.append(
            [
                name,
                f"{median:.2f}",
                f"{len(texts) / median:.1f}",
                f"{base / median:.2f}×",
                "yes" if same_dims else "no",
                f"{difference:.1e}",
            ]
        )
    active = float((expected != 0).sum(dim=1).float().mean())
    header = ["Configuration", "Median s", "Texts/s", "Speed vs ref", "Same active dims", "Max value diff"]
    lines = [
        f"## Sparse encoding: {len(texts)} mixed-corpus texts, all-MiniLM-L6-v2 under a tied MLM head",
        "",
        *machine_lines("cpu"),
        f"Batch size {args.batch_size}, median of {args.rounds} interleaved round(s) after one warm-up; "
        f"decoder bias {args.bias}: {active:.0f} active dimensions per text on average.",
        "",
        *markdown_table(header, rows),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
