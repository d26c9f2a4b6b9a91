"""GPU check: omniembed's parity and throughput against the reference, on a bare GPU machine.

Run from the repository root (nothing to download; about 2-4 minutes on one GPU)::

    PYTHONPATH=src python benchmarks/gpu_check.py [--device cuda] [--texts 2000] [--batch-sizes 32,256]

The script needs only torch, transformers and tokenizers (sentence-transformers optional), in
versions that may be older than this project's. It builds a random-weight BERT of
all-MiniLM-L6-v2's shape (6 layers, hidden 384, 12 heads, intermediate 1536, vocabulary 30,522,
512 positions) with a WordPiece tokenizer over a generated vocabulary, saves it as a
sentence-transformers folder (Transformer, mean Pooling, Normalize) and encodes generated texts of
mixed lengths (mostly short sentences, some documents past max_seq_length=256) with omniembed and
with the reference: sentence-transformers when it imports, else a plain transformers forward pass
with mean pooling over length-sorted batches.

Parity: every embedding's cosine with the reference's float32 one, at least 0.99999 in float32
and 0.999 in float16 and bfloat16. Throughput: texts per second at each batch size and dtype, ours
and the reference's, in interleaved rounds. It prints a compact report and exits 1 when a parity
check fails (2 when omniembed cannot run at all). ``--device cpu`` runs the same checks on the
CPU at small sizes (the test suite does that).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

SHAPE = {
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "max_position_embeddings": 512,
}
"""all-MiniLM-L6-v2's network shape."""
MAX_SEQ_LENGTH = 256
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CONSONANTS = "bcdfghjklmnprstvwz"
VOWELS = "aeiou"
THRESHOLDS = {"float32": 0.99999, "float16": 0.999, "bfloat16": 0.999}
"""The least cosine each dtype's embeddings must have with the reference's float32 ones."""
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; sizes default to the GPU run, or to small ones with ``--device cpu``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default=None, help="cuda (default when there is a GPU) or cpu")
    parser.add_argument("--texts", type=int, default=None, help="texts per encode (default 2000; cpu 64)")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default 32,256; cpu 16)")
    parser.add_argument("--dtypes", default=None, help="default float32,float16,bfloat16 (cpu: no fp16)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3; cpu 1)")
    parser.add_argument("--long-share", type=float, default=0.2, help="share of long texts (default 0.2)")
    parser.add_argument("--folder", default=None, help="build the model here (default: a temp folder)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = args.device.startswith("cuda")
    args.texts = args.texts or (2000 if gpu else 64)
    args.rounds = args.rounds or (3 if gpu else 1)
    sizes = args.batch_sizes or ("32,256" if gpu else "16")
    args.batch_sizes = [int(size) for size in sizes.split(",") if size.strip()]
    dtypes = args.dtypes or ("float32,float16,bfloat16" if gpu else "float32,bfloat16")
    args.dtypes = [name.strip() for name in dtypes.split(",") if name.strip()]
    unknown = [name for name in args.dtypes if name not in TORCH_DTYPES]
    if unknown or "float32" not in args.dtypes:
        parser.error(f"--dtypes {dtypes!r}: give float32 and any of float16, bfloat16")
    return args


# --- the model folder -------------------------------------------------------------------------


def generated_vocabulary() -> list[str]:
    """Special tokens, single characters, two-syllable words and ``##`` syllable pieces."""
    syllables = [c + v for c in CONSONANTS for v in VOWELS]
    characters = list(CONSONANTS + VOWELS + ".,")
    words = [a + b for a in syllables for b in syllables]
    pieces = ["##" + s for s in syllables] + ["##" + c for c in CONSONANTS + VOWELS]
    return [*SPECIAL_TOKENS, *characters, *syllables, *words, *pieces]


def build_tokenizer(vocabulary: list[str], folder: Path) -> None:
    """Save a lower-casing WordPiece tokenizer over ``vocabulary`` (``[CLS] text [SEP]``)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    ids = {token: index for index, token in enumerate(vocabulary)}
    tokenizer = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece()
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=MAX_SEQ_LENGTH,
    )
    wrapped.save_pretrained(str(folder))


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as indented JSON, making the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")


def build_model_folder(folder: Path) -> Path:
    """Write a random-weight all-MiniLM-L6-v2-shaped sentence-transformers folder; return it."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig(**SHAPE)).eval()
    try:
        model.save_pretrained(str(folder), safe_serialization=True)
    except TypeError:  # a transformers that always writes safetensors takes no such option
        model.save_pretrained(str(folder))
    build_tokenizer(generated_vocabulary(), folder)
    write_json(
        folder / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False}
    )
    pooling = {
        "word_embedding_dimension": SHAPE["hidden_size"],
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    write_json(folder / "1_Pooling" / "config.json", pooling)
    (folder / "2_Normalize").mkdir(exist_ok=True)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    write_json(folder / "modules.json", modules)
    return folder


def generated_texts(count: int, long_share: float, seed: int = 0) -> list[str]:
    """Texts of mixed lengths: sentences of 5-25 words and, ``long_share`` of them, documents of
    150-400 words (past max_seq_length); some words are unknown, so they split into pieces."""
    rng = random.Random(seed)
    syllables = [c + v for c in CONSONANTS for v in VOWELS]
    texts = []
    for _ in range(count):
        words = rng.randint(150, 400) if rng.random() < long_share else rng.randint(5, 25)
        parts = []
        for _ in range(words):
            word = "".join(rng.choice(syllables) for _ in range(rng.choice((2, 2, 2, 3))))
            parts.append(word.capitalize() if rng.random() < 0.1 else word)
        texts.append(" ".join(parts) + ".")
    return texts


# --- the encoders ----------------------------------------------------------------------------


class PlainReference:
    """Mean-pooled, normalized embeddings from a transformers forward pass: the reference when
    sentence-transformers does not import. Batches are sorted by length, as the reference's are."""

    def __init__(self, folder: Path, device: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder)).to(device).eval()
        self.device = device

    def to(self, dtype: torch.dtype) -> PlainReference:
        """Cast the network's weights to ``dtype``."""
        self.model.to(dtype)
        return self

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 32, **_: Any) -> np.ndarray:
        """Embed ``texts``; rows in input order."""
        order = np.argsort([-len(text) for text in texts], kind="stable")
        rows: list[Any] = [None] * len(texts)
        for start in range(0, len(texts), batch_size):
            indices = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in indices],
                padding=True,
                truncation=True,
                max_length=MAX_SEQ_LENGTH,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1).float() / mask.sum(1).float().clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=1).cpu()
            for index, row in zip(indices, pooled):  # noqa: B905 (no strict= before Python 3.10)
                rows[index] = row
        return torch.stack(rows).numpy()


def load_reference(folder: Path, device: str) -> tuple[Any, str]:
    """sentence-transformers on ``folder``, else ``PlainReference``; and a name for the report."""
    try:
        from importlib import metadata

        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(folder), device=device)
    except Exception as error:  # not installed, or broken against this torch/transformers
        first_line = (str(error).strip().splitlines() or [""])[0][:160]
        note = (
            f"plain transformers mean pooling (sentence-transformers: {type(error).__name__}: {first_line})"
        )
        return PlainReference(folder, device), note
    return model, f"sentence-transformers {metadata.version('sentence-transformers')}"


def reference_at(folder: Path, device: str, dtype: str) -> Any:
    """The reference at ``dtype``: float32 weights loaded, then cast, as its users do."""
    model, _ = load_reference(folder, device)
    return model.to(TORCH_DTYPES[dtype]) if dtype != "float32" else model


def ours_at(folder: Path, device: str, dtype: str) -> Any:
    """omniembed at ``dtype``: its own ``dtype=`` option where it has one, else a cast."""
    from omniembed import SentenceTransformer
    from omniembed.runtime.backends import DTYPES

    if dtype in DTYPES:
        return SentenceTransformer(str(folder), device=device, dtype=dtype)
    return SentenceTransformer(str(folder), device=device).to(TORCH_DTYPES[dtype])


def encode(model: Any, texts: list[str], batch_size: int) -> np.ndarray:
    """Embeddings as float32 numpy, the progress bar off."""
    output = model.encode(texts, batch_size=batch_size, show_progress_bar=False)
    if isinstance(output, torch.Tensor):
        output = output.float().cpu().numpy()
    return np.asarray(output, dtype=np.float32)


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work (nothing on the CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``a`` with the same row of ``b``."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    return (a64 * b64).sum(axis=1) / np.maximum(norms, 1e-12)


# --- the checks ------------------------------------------------------------------------------


def timed(model: Any, texts: list[str], batch_size: int, device: str) -> tuple[float, np.ndarray]:
    """Seconds to encode ``texts`` (GPU work included) and the embeddings."""
    synchronize(device)
    start = time.perf_counter()
    output = encode(model, texts, batch_size)
    synchronize(device)
    return time.perf_counter() - start, output


def run_dtype(
    args: argparse.Namespace, folder: Path, dtype: str, texts: list[str], baseline: np.ndarray
) -> dict[str, Any]:
    """Parity and throughput of ours and the reference at one dtype."""
    ours, reference = ours_at(folder, args.device, dtype), reference_at(folder, args.device, dtype)
    result: dict[str, Any] = {"dtype": dtype, "speed": [], "ours_min_cos": 1.0, "ref_min_cos": 1.0}
    for batch_size in args.batch_sizes:
        encode(ours, texts[: 4 * batch_size], batch_size)  # warm-up: kernels, allocator
        encode(reference, texts[: 4 * batch_size], batch_size)
        times: dict[str, list[float]] = {"ours": [], "ref": []}
        for _ in range(args.rounds):
            seconds, ours_output = timed(ours, texts, batch_size, args.device)
            times["ours"].append(seconds)
            seconds, ref_output = timed(reference, texts, batch_size, args.device)
            times["ref"].append(seconds)
        ours_rate = len(texts) / statistics.median(times["ours"])
        ref_rate = len(texts) / statistics.median(times["ref"])
        result["speed"].append({"batch_size": batch_size, "ours": ours_rate, "ref": ref_rate})
        for name, output in (("ours", ours_output), ("ref", ref_output)):
            cosine = float(row_cosines(output, baseline).min())
            result[f"{name}_min_cos"] = min(result[f"{name}_min_cos"], cosine)
    result["passed"] = result["ours_min_cos"] >= THRESHOLDS[dtype]
    del ours, reference
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return result


def environment_lines(args: argparse.Namespace, reference_name: str) -> list[str]:
    """Python, torch, transformers, the device and the reference, one line each."""
    import transformers

    device = args.device
    if device.startswith("cuda"):
        device += f" ({torch.cuda.get_device_name(torch.device(args.device))}, CUDA {torch.version.cuda})"
    return [
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}",
        f"device: {device}; reference: {reference_name}",
    ]


def report_lines(args: argparse.Namespace, results: list[dict[str, Any]], texts: list[str]) -> list[str]:
    """The compact report: parity per dtype, then texts per second per dtype and batch size."""
    lines = [f"texts: {len(texts)} (mixed lengths, {args.long_share:.0%} long), rounds: {args.rounds}"]
    lines += ["", "parity (min cosine with the reference's float32 embeddings, every batch size):"]
    for result in results:
        verdict = "ok" if result["passed"] else "FAIL"
        lines.append(
            f"  {result['dtype']:<9} ours {result['ours_min_cos']:.6f} (needs >= "
            f"{THRESHOLDS[result['dtype']]}) {verdict}; reference {result['ref_min_cos']:.6f}"
        )
    ref_fp16 = {s["batch_size"]: s["ref"] for r in results if r["dtype"] == "float16" for s in r["speed"]}
    lines += ["", "throughput (texts/s; ours / ref at the same dtype; ours / ref float16):"]
    for result in results:
        for speed in result["speed"]:
            size = speed["batch_size"]
            versus = f"{speed['ours'] / ref_fp16[size]:5.2f}x" if size in ref_fp16 else "    -"
            lines.append(
                f"  {result['dtype']:<9} batch {size:>4}: ours {speed['ours']:9.1f}  "
                f"ref {speed['ref']:9.1f}  {speed['ours'] / speed['ref']:5.2f}x  {versus}"
            )
    return lines


def exit_status(results: list[dict[str, Any]]) -> int:
    """1 when some dtype's parity check failed, else 0; prints which."""
    failed = [result["dtype"] for result in results if not result["passed"]]
    print(f"\nparity: {'FAILED for ' + ', '.join(failed) if failed else 'passed'}")
    return 1 if failed else 0


def quiet_libraries() -> None:
    """Keep the libraries' progress bars and truncation warnings out of the report."""
    import logging

    logging.getLogger("omniembed").setLevel(logging.ERROR)
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
    except (ImportError, AttributeError):  # an old transformers: the bars stay
        pass


def run_checks(args: argparse.Namespace, folder: Path) -> int:
    """Build, compare, time and print; return the exit status."""
    try:
        import omniembed  # noqa: F401
    except Exception:
        print("omniembed does not import here (run with PYTHONPATH=src):", file=sys.stderr)
        traceback.print_exc()
        return 2
    texts = generated_texts(args.texts, args.long_share)
    reference, reference_name = load_reference(folder, args.device)
    print("\n".join(environment_lines(args, reference_name)), flush=True)
    baseline = encode(reference, texts, args.batch_sizes[0])
    del reference
    results = []
    for dtype in args.dtypes:
        try:
            results.append(run_dtype(args, folder, dtype, texts, baseline))
        except Exception:
            print(f"{dtype}: omniembed or the reference failed:", file=sys.stderr)
            traceback.print_exc()
            return 2
        print(f"{dtype}: done", file=sys.stderr, flush=True)
    print("\n".join(report_lines(args, results, texts)))
    if args.json:
        write_json(Path(args.json), {"texts": len(texts), "results": results})
    return exit_status(results)


def main(argv: list[str] | None = None) -> int:
    """Entry point: the exit status (0 passed, 1 a parity failure, 2 omniembed could not run)."""
    args = parse_args(argv)
    quiet_libraries()
    start = time.perf_counter()
    if args.folder:
        status = run_checks(args, build_model_folder(Path(args.folder)))
    else:
        with tempfile.TemporaryDirectory() as temporary:
            status = run_checks(args, build_model_folder(Path(temporary)))
    print(f"wall time: {time.perf_counter() - start:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
