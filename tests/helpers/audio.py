"""Build a tiny, seeded, random CLAP model on disk, and generate test audio (and video) at test time.

The CLAP folder is a bare Hugging Face checkpoint with its processor (``plain``), or additionally the
reference library's module files (``v6``: a Transformer module with text and audio modalities).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import av
import numpy as np
import tokenizers
import torch
import transformers
from tokenizers import pre_tokenizers, trainers

from helpers import models as mf

CLAP_DIM = 16
CLAP_RATE = 48000
CLAP_SECONDS = 4
_V6_CLAP_CONFIG = {
    "transformer_task": "feature-extraction",
    "modality_config": {
        "text": {"method": "get_text_features", "method_output_name": "pooler_output"},
        "audio": {"method": "get_audio_features", "method_output_name": "pooler_output"},
    },
    "module_output_name": "sentence_embedding",
}


def roberta_tokenizer() -> transformers.RobertaTokenizer:
    """Train a small byte-level BPE vocabulary in RoBERTa's format (CLAP's text tower) on STS-B."""
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(mf.sts_dev_sentences(500), trainer=trainer)
    data = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in data["merges"]]
    return transformers.RobertaTokenizer(vocab=data["vocab"], merges=merges, model_max_length=64)


def build_clap(path: Path, *, layout: str = "plain", seed: int = 0) -> Path:
    """Write a tiny random CLAP: a 2-layer text tower 32 wide, a 4-stage Swin audio tower on a
    256x256 mel image (64 mel bins), 16-dim projections; 48 kHz audio, 4-second window.

    The feature extractor uses ``truncation="rand_trunc"``: the default ``"fusion"`` stacks four mel
    views, which a non-fusion model rejects.
    """
    tokenizer = roberta_tokenizer()
    ids = {name: getattr(tokenizer, name) for name in ("pad_token_id", "bos_token_id", "eos_token_id")}
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 66,  # RoBERTa positions start after the padding id
        **ids,
    }
    audio = {
        "spec_size": 256,
        "num_mel_bins": 64,
        "window_size": 8,
        "patch_embeds_hidden_size": 8,
        "hidden_size": 64,
        "depths": [1, 1, 1, 1],
        "num_attention_heads": [1, 1, 2, 2],
        "num_classes": 4,
    }
    config = transformers.ClapConfig(text_config=text, audio_config=audio, projection_dim=CLAP_DIM)
    torch.manual_seed(seed)
    model = transformers.ClapModel(config)
    extractor = transformers.ClapFeatureExtractor(
        truncation="rand_trunc", max_length_s=CLAP_SECONDS, sampling_rate=CLAP_RATE
    )
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    transformers.ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(str(path))
    if layout == "v6":
        mf.write_json(path / "sentence_bert_config.json", _V6_CLAP_CONFIG)
        types = "sentence_transformers.base.modules.transformer.Transformer"
        mf.write_json(path / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": types}])
        mf.write_json(
            path / "config_sentence_transformers.json", mf._st_config("6.2.0", {}, None, None, "v6")
        )
    return path


def sine_sweep(seconds: float, rate: int, start_hz: float = 200.0, end_hz: float = 4000.0) -> np.ndarray:
    """A linear chirp from ``start_hz`` to ``end_hz`` at amplitude 0.5, float32."""
    t = np.arange(round(seconds * rate)) / rate
    phase = 2 * np.pi * (start_hz * t + (end_hz - start_hz) * t**2 / (2 * seconds))
    return (0.5 * np.sin(phase)).astype(np.float32)


def noise_burst(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Band-limited noise (white noise, smoothed) under a half-sine envelope, float32."""
    rng = np.random.default_rng(seed)
    count = round(seconds * rate)
    noise = np.convolve(rng.standard_normal(count), np.ones(8) / 8, mode="same")
    envelope = np.sin(np.pi * np.arange(count) / count)
    return (0.4 * noise * envelope).astype(np.float32)


def spoken_digits(digits: str, folder: Path) -> Path | None:
    """Speak ``digits`` with espeak-ng into a wav file; ``None`` when espeak-ng is not installed."""
    program = shutil.which("espeak-ng")
    if program is None:
        return None
    target = Path(tempfile.mkstemp(suffix=".wav", dir=folder)[1])
    subprocess.run([program, "-w", str(target), " ".join(digits)], check=True, capture_output=True)
    return target


def write_video(path: Path, frames: np.ndarray, fps: int = 4) -> Path:
    """Encode (frames, H, W, 3) uint8 frames as an MPEG-4 file with PyAV."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
