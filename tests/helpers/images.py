"""Build tiny, seeded, random CLIP models (and CLIP pairings) on disk, and find the CIFAR-10 test images.

A CLIP folder comes in the three forms the reference library reads: ``plain`` (a bare Hugging Face
checkpoint with its processor), ``legacy`` (a ``modules.json`` naming the ``CLIPModel`` module, whose
folder ``0_CLIPModel`` holds ``vocab.json``/``merges.txt`` and a flat ``preprocessor_config.json``, as
clip-ViT-B-32 does) and ``v6`` (a Transformer module with text and image modalities).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import tokenizers
import torch
import transformers
from tokenizers import Regex, normalizers, pre_tokenizers, trainers

from helpers import models as mf

CIFAR_DIR = Path(__file__).resolve().parents[2] / "data" / "cifar10-test-500"
CLIP_DIM = 16
_CLIP_SPLIT = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"""
    r"""[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)
_V6_CLIP_CONFIG = {
    "transformer_task": "feature-extraction",
    "modality_config": {
        "text": {"method": "get_text_features", "method_output_name": "pooler_output"},
        "image": {"method": "get_image_features", "method_output_name": "pooler_output"},
    },
    "module_output_name": "sentence_embedding",
}


def cifar_images() -> list[tuple[Path, str]]:
    """Return the 500 CIFAR-10 test images as ``(path, label)`` pairs, in ``labels.csv`` order."""
    with (CIFAR_DIR / "labels.csv").open(encoding="utf-8", newline="") as handle:
        return [(CIFAR_DIR / row["path"], row["label"]) for row in csv.DictReader(handle)]


def clip_tokenizer() -> transformers.CLIPTokenizer:
    """Train a small BPE vocabulary in CLIP's format (``</w>`` word ends) on STS-B sentences."""
    model = tokenizers.models.BPE(end_of_word_suffix="</w>", continuing_subword_prefix="")
    tok = tokenizers.Tokenizer(model)
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<|startoftext|>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    tok.train_from_iterator(mf.sts_dev_sentences(500), trainer=trainer)
    data = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in data["merges"]]
    return transformers.CLIPTokenizer(vocab=data["vocab"], merges=merges, model_max_length=77)


def build_clip(path: Path, *, layout: str = "plain", seed: int = 0) -> Path:
    """Write a tiny random CLIP (text 32 wide, 24x24 images in 8x8 patches, 16-dim projections).

    The processor resizes the shortest side to 30 (bicubic) and centre-crops 24x24, so the 32x32
    CIFAR images go through every preprocessing step.

    Args:
        path: Target folder (created).
        layout: ``"plain"``, ``"legacy"`` or ``"v6"`` (see the module docstring).
        seed: ``torch.manual_seed`` value for the weights.

    Returns:
        ``path``.
    """
    tokenizer = clip_tokenizer()
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    text = {"vocab_size": len(tokenizer), "max_position_embeddings": 77, **ids}
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = transformers.CLIPConfig(
        text_config={**tower, **text, "pad_token_id": tokenizer.pad_token_id},
        vision_config={**tower, "image_size": 24, "patch_size": 8},
        projection_dim=CLIP_DIM,
    )
    torch.manual_seed(seed)
    model = transformers.CLIPModel(config)
    processor_config = {
        "size": {"shortest_edge": 30},
        "crop_size": {"height": 24, "width": 24},
    }
    image_processor = transformers.CLIPImageProcessorPil(**processor_config)
    folder = path / "0_CLIPModel" if layout == "legacy" else path
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    if layout == "legacy":
        _write_legacy_clip_files(path, folder, tokenizer, image_processor)
        return path
    processor = transformers.CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    processor.save_pretrained(str(path))
    if layout == "v6":
        mf.write_json(path / "sentence_bert_config.json", _V6_CLIP_CONFIG)
        types = "sentence_transformers.base.modules.transformer.Transformer"
        mf.write_json(path / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": types}])
        st_config = mf._st_config("6.2.0", {}, None, None, "v6")
        mf.write_json(path / "config_sentence_transformers.json", st_config)
    return path


def _write_legacy_clip_files(path: Path, folder: Path, tokenizer: object, image_processor: object) -> None:
    tokenizer.backend_tokenizer.model.save(str(folder))  # type: ignore[attr-defined]
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    tokenizer_config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, **special}
    mf.write_json(folder / "tokenizer_config.json", {**tokenizer_config, "pad_token": "<|endoftext|>"})
    processor = {**image_processor.to_dict(), "feature_extractor_type": "CLIPFeatureExtractor"}  # type: ignore[attr-defined]
    processor["image_processor_type"] = "CLIPImageProcessor"
    mf.write_json(folder / "preprocessor_config.json", processor)
    module = {"idx": 0, "name": "0", "path": "0_CLIPModel", "type": "sentence_transformers.models.CLIPModel"}
    mf.write_json(path / "modules.json", [module])


def build_multilingual_text(path: Path, *, seed: int = 1) -> Path:
    """Write the text half of a multilingual CLIP pairing: DistilBERT + mean + Dense(32->16), no Normalize.

    That is the shape of clip-ViT-B-32-multilingual-v1 (768 -> 512 there), with the Dense output width
    equal to the tiny CLIP's projection width.
    """
    identity = "torch.nn.modules.linear.Identity"
    return mf.build_bert(
        path, arch="distilbert", dense=(32, CLIP_DIM), dense_activation=identity, dense_bias=False, seed=seed
    )


_VL_SPECIALS = [
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# A Qwen-style chat template: typed content parts, images as vision_start + image_pad + vision_end,
# videos as vision_start + video_pad + vision_end (the processor widens both).
VL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif part['type'] == 'video' %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Qwen3-VL's video processor settings, scaled to the tiny model: 8x8 patches, 2 frames per temporal
# patch, 2 frames sampled per second (4 to 16 of them), each frame between 32x32 and 64x64 pixels.
# Written as JSON: the class needs torchvision, which the main environment does not have.
VL_VIDEO_PROCESSOR = {
    "video_processor_type": "Qwen3VLVideoProcessor",
    "patch_size": 8,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "size": {"shortest_edge": 2 * 32 * 32, "longest_edge": 16 * 64 * 64},
    "fps": 2,
    "min_frames": 4,
    "max_frames": 16,
    "do_sample_frames": True,
    "cap_pixels_per_frame": False,
}
VL_PROMPTS = {
    "query": "Retrieve images or text relevant to the user's query.",
    "document": "Represent the user's input.",
}


def vl_tokenizer() -> transformers.PreTrainedTokenizerFast:
    """The Qwen3 test BPE with Qwen-VL's chat and vision special tokens and a chat template."""
    tok = mf.train_bpe_tokenizer()
    tok.add_special_tokens(_VL_SPECIALS)
    tok.post_processor = tokenizers.processors.TemplateProcessing(single="$A:0", pair="$A:0 $B:1")
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=mf.EOS,
        pad_token=mf.EOS,
        model_max_length=512,
        padding_side="right",
    )
    tokenizer.chat_template = VL_CHAT_TEMPLATE
    return tokenizer


def build_qwen3_vl(path: Path, *, seed: int = 0) -> Path:
    """Write a tiny random Qwen3-VL embedder: Transformer + last-token Pooling + Normalize (v6 layout).

    Images are cut into 8x8 patches, 2x2 patches merge into one token, and the processor keeps each
    image between 32x32 and 64x64 pixels, so a 32x32 CIFAR image takes 4 tokens.
    """
    tokenizer = vl_tokenizer()
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in _VL_SPECIALS}
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "max_position_embeddings": 512,
        "rope_scaling": {"rope_type": "default", "mrope_section": [1, 1, 2], "mrope_interleaved": True},
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    vision = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "patch_size": 8,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": 32,
        "num_position_embeddings": 64,
        "deepstack_visual_indexes": [0],
    }
    config = transformers.Qwen3VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    transformers.Qwen3VLForConditionalGeneration(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    image_processor = transformers.Qwen2VLImageProcessorPil(
        min_pixels=32 * 32, max_pixels=64 * 64, patch_size=8, merge_size=2, temporal_patch_size=2
    )
    image_processor.save_pretrained(str(path))
    mf.write_json(path / "video_preprocessor_config.json", VL_VIDEO_PROCESSOR)
    kinds = ["transformer", "pooling", "normalize"]
    folders = dict(zip(kinds, mf.write_modules_json(path, kinds, "v6"), strict=True))
    forward = {"method": "forward", "method_output_name": "last_hidden_state"}
    modalities = {
        "text": forward,
        "image": forward,
        "video": forward,
        "message": {**forward, "format": "structured"},
    }
    sbert = {"transformer_task": "feature-extraction", "modality_config": modalities}
    mf.write_json(path / "sentence_bert_config.json", {**sbert, "module_output_name": "token_embeddings"})
    mf.write_json(folders["pooling"] / "config.json", mf.pooling_config(["lasttoken"], 32, True, "v6"))
    mf.write_json(folders["normalize"] / "config.json", mf._EMBEDDING_IO)
    st_config = mf._st_config("6.2.0", dict(VL_PROMPTS), "document", "cosine", "v6")
    mf.write_json(path / "config_sentence_transformers.json", st_config)
    return path


def build_colpali(
    path: Path, *, layout: str = "plain", keep_only_images: bool = False, seed: int = 0
) -> Path:
    """Write a tiny random ``ColPaliForRetrieval`` (tiny Gemma + tiny SigLIP) with its processor.

    Images are resized to 28x28 and cut into 14x14 patches, so a page takes 4 image tokens.
    ``layout="v6"`` adds the reference library's multi-vector files (Transformer at the root plus a
    ``MultiVectorMask``); ``keep_only_images`` makes that mask keep only image-token rows on documents.
    """
    tok = mf.train_bpe_tokenizer()
    tok.add_special_tokens(["<pad>", "<bos>", "<eos>"])
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        model_max_length=512,
        padding_side="right",
    )
    image_processor = transformers.SiglipImageProcessorPil(size={"height": 28, "width": 28})
    image_processor.image_seq_length = 4  # (28 / 14) ** 2 patches
    processor = transformers.ColPaliProcessor(image_processor=image_processor, tokenizer=tokenizer)
    tk = processor.tokenizer  # the processor adds <image> and PaliGemma's location tokens
    ids = {"pad_token_id": tk.pad_token_id, "bos_token_id": tk.bos_token_id, "eos_token_id": tk.eos_token_id}
    text = {
        "model_type": "gemma",
        "vocab_size": len(tk),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 8,
        "max_position_embeddings": 512,
        **ids,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 28,
        "patch_size": 14,
        "projection_dim": 32,
    }
    vlm = transformers.PaliGemmaConfig(
        text_config=text,
        vision_config=vision,
        image_token_index=processor.image_token_id,
        projection_dim=32,
        hidden_size=32,
        vocab_size=len(tk),
    )
    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    transformers.ColPaliForRetrieval(
        transformers.ColPaliConfig(vlm_config=vlm, embedding_dim=16)
    ).save_pretrained(str(path))
    processor.save_pretrained(str(path))
    if layout == "v6":
        _write_v6_retrieval_files(path, [processor.image_token_id] if keep_only_images else None)
    return path


def _write_v6_retrieval_files(path: Path, keep_only_token_ids: list[int] | None) -> None:
    """The files the reference library writes when it saves a ``*ForRetrieval`` multi-vector model."""
    package = "sentence_transformers"
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": f"{package}.base.modules.transformer.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_MultiVectorMask",
            "type": f"{package}.multi_vector_encoder.modules.multi_vector_mask.MultiVectorMask",
        },
    ]
    mf.write_json(path / "modules.json", modules)
    forward = {"method": "forward", "method_output_name": "embeddings"}
    sbert = {
        "transformer_task": "retrieval",
        "modality_config": {"text": forward, "image": forward},
        "module_output_name": "token_embeddings",
    }
    mf.write_json(path / "sentence_bert_config.json", sbert)
    mask = {"skiplist_words": [], "skiplist_tasks": ["document"], "keep_only_token_ids": keep_only_token_ids}
    mf.write_json(path / "1_MultiVectorMask" / "config.json", mask)
    st = {
        "__version__": {"sentence_transformers": "6.2.0"},
        "model_type": "MultiVectorEncoder",
        "prompts": {"query": "", "document": ""},
        "default_prompt_name": None,
        "similarity_fn_name": None,
    }
    mf.write_json(path / "config_sentence_transformers.json", st)


def build_colqwen2(path: Path, *, seed: int = 0) -> Path:
    """Write a tiny random ``ColQwen2ForRetrieval`` (tiny Qwen2-VL) with its Pillow-backend processor.

    Images are kept between 32x32 and 64x64 pixels in 8x8 patches, 2x2 patches merging into one token.
    """
    tokenizer = vl_tokenizer()
    tokenizer.chat_template = None  # ColQwen2's processor writes its own prompts
    image_processor = transformers.Qwen2VLImageProcessorPil(
        min_pixels=32 * 32, max_pixels=64 * 64, patch_size=8, merge_size=2, temporal_patch_size=2
    )
    processor = transformers.ColQwen2Processor(image_processor=image_processor, tokenizer=tokenizer)
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in _VL_SPECIALS}
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "rope_scaling": {"rope_type": "default", "mrope_section": [1, 1, 2]},
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.eos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    vision = {
        "depth": 2,
        "embed_dim": 32,
        "hidden_size": 32,
        "num_heads": 2,
        "mlp_ratio": 2,
        "patch_size": 8,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }
    vlm = transformers.Qwen2VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    config = transformers.ColQwen2Config(vlm_config=vlm, embedding_dim=16)
    transformers.ColQwen2ForRetrieval(config).save_pretrained(str(path))
    processor.save_pretrained(str(path))
    return path


def build_colmodernvbert(path: Path, *, seed: int = 0) -> Path:
    """Write a tiny random ``ColModernVBertForRetrieval`` (tiny ModernBERT + tiny SigLIP).

    Pages are resized to 56x56 without splitting, cut into 14x14 patches and pixel-shuffled by 2,
    so a page takes 4 ``<image>`` tokens.
    """
    tok = mf.train_bpe_tokenizer()
    grid = [f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)]
    tok.add_special_tokens(["<|begin_of_text|>", "<pad>", "<global-img>", *grid])
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token=mf.EOS,
        pad_token="<pad>",
        model_max_length=512,
        padding_side="left",
    )
    image_processor = transformers.Idefics3ImageProcessorPil(
        do_image_splitting=False, size={"longest_edge": 56}, max_image_size={"longest_edge": 56}
    )
    processor = transformers.ColModernVBertProcessor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4
    )
    tk = processor.tokenizer
    text = {
        "vocab_size": len(tk),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 512,
        "pad_token_id": tk.pad_token_id,
        "bos_token_id": tk.bos_token_id,
        "eos_token_id": tk.eos_token_id,
        "cls_token_id": tk.bos_token_id,
        "sep_token_id": tk.eos_token_id,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 56,
        "patch_size": 14,
    }
    vlm = transformers.ModernVBertConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=processor.image_token_id,
        pixel_shuffle_factor=2,
        vocab_size=len(tk),
    )
    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    config = transformers.ColModernVBertConfig(vlm_config=vlm, embedding_dim=16)
    transformers.ColModernVBertForRetrieval(config).save_pretrained(str(path))
    processor.save_pretrained(str(path))
    return path
