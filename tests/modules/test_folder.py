"""Broken or unusual model folders fail with errors that name the file and the fix."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from omniembed import ModelFormatError, SentenceTransformer
from omniembed.modules import Pooling, Transformer


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "model"))


def test_unknown_module_type_is_refused_not_imported(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert"), tmp_path)
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["type"] = "os.system"
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelFormatError, match=r"module type 'os\.system' in modules\.json is not supported"):
        SentenceTransformer(folder)


def test_unsupported_reference_module(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert"), tmp_path)
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["type"] = "sentence_transformers.models.LSTM"
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelFormatError, match="LSTM"):
        SentenceTransformer(folder)


def test_corrupt_safetensors_names_the_file(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert"), tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}" + b"\x00" * 64)
    with pytest.raises(ModelFormatError, match=r"model\.safetensors is corrupt"):
        SentenceTransformer(folder)


def test_corrupt_dense_weights_name_the_file(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert", dense=(32, 8)), tmp_path)
    (folder / "2_Dense" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelFormatError, match=r"2_Dense/model\.safetensors is corrupt"):
        SentenceTransformer(folder)


def test_missing_weights(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert"), tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelFormatError, match=r"model\.safetensors"):
        SentenceTransformer(folder)


def test_missing_tokenizer_names_the_files(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert"), tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(ModelFormatError, match=r"no tokenizer in .*tokenizer\.json"):
        SentenceTransformer(folder)


def test_missing_config_json(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert"), tmp_path)
    (folder / "config.json").unlink()
    with pytest.raises(ModelFormatError, match=r"config\.json is missing"):
        SentenceTransformer(folder)


def test_bad_json_names_the_file(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert"), tmp_path)
    (folder / "1_Pooling" / "config.json").write_text("{oops")
    with pytest.raises(ModelFormatError, match=r"1_Pooling/config\.json is not valid JSON"):
        SentenceTransformer(folder)


def test_pickle_weights_need_an_explicit_opt_in(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert", dense=(32, 8)), tmp_path)
    dense = folder / "2_Dense"
    from safetensors.torch import load_file

    torch.save(load_file(dense / "model.safetensors"), dense / "pytorch_model.bin")
    (dense / "model.safetensors").unlink()
    with pytest.raises(ModelFormatError, match="pickle-based weights"):
        SentenceTransformer(folder)
    model = SentenceTransformer(folder, model_kwargs={"use_safetensors": False})
    assert model.encode("works").shape == (8,)


def test_activation_outside_the_allow_list(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert", dense=(32, 8)), tmp_path)
    config_path = folder / "2_Dense" / "config.json"
    config = json.loads(config_path.read_text())
    config["activation_function"] = "subprocess.Popen"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match=r"activation_function 'subprocess\.Popen'"):
        SentenceTransformer(folder)


def test_unknown_pooling_mode(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert", layout="v6"), tmp_path)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"embedding_dimension": 32, "pooling_mode": "sum"})
    )
    with pytest.raises(ModelFormatError, match="unknown pooling mode"):
        SentenceTransformer(folder)


def test_plain_encoder_checkpoint_gets_mean_pooling(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert"), tmp_path)
    for name in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
        (folder / name).unlink()
    shutil.rmtree(folder / "1_Pooling")
    model = SentenceTransformer(folder, device="cpu")
    assert isinstance(model[0], Transformer)
    assert isinstance(model[1], Pooling)
    assert model[1].modes == ("mean",)
    assert model.tokenizer.padding_side == "right"
    assert model.max_seq_length == 128  # the tokenizer allows 512; the position table caps it


def test_trust_remote_code_is_off_by_default(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert"), tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n")
    model = SentenceTransformer(folder, device="cpu")
    assert type(model[0].auto_model).__name__ == "BertModel"


@pytest.mark.parametrize("path", ["../elsewhere/1_Pooling", "/etc"])
def test_module_paths_must_stay_inside_the_folder(
    tiny_model: Callable[..., Path], tmp_path: Path, path: str
) -> None:
    folder = copy_of(tiny_model("bert"), tmp_path)
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["path"] = path
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelFormatError, match="must stay inside"):
        SentenceTransformer(folder)


def test_malformed_modules_entry(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert"), tmp_path)
    (folder / "modules.json").write_text(json.dumps([{"idx": "zero", "type": "x"}, "junk"]))
    with pytest.raises(ModelFormatError, match="needs a 'type' and an integer 'idx'"):
        SentenceTransformer(folder)


def test_pickle_only_transformer_weights_get_the_opt_in_hint(
    tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    folder = copy_of(tiny_model("bert"), tmp_path)
    from safetensors.torch import load_file

    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelFormatError, match=r"use_safetensors': False"):
        SentenceTransformer(folder)
    assert SentenceTransformer(folder, model_kwargs={"use_safetensors": False}).encode("ok").shape == (32,)


def test_folder_cannot_switch_on_remote_code_or_hub_kernels(
    tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    folder = copy_of(tiny_model("bert"), tmp_path)
    config = {
        "max_seq_length": 64,
        "model_args": {"trust_remote_code": True, "use_kernels": True, "attn_implementation": "evil/kernel"},
        "config_args": {"trust_remote_code": True},
    }
    (folder / "sentence_bert_config.json").write_text(json.dumps(config))
    model = SentenceTransformer(folder, device="cpu")
    assert model.encode("still loads").shape == (32,)


def test_tokenizer_model_max_length_beats_the_folder_setting(tiny_model: Callable[..., Path]) -> None:
    model = SentenceTransformer(tiny_model("bert"), tokenizer_kwargs={"model_max_length": 16})
    assert model.max_seq_length == 16


def test_unsupported_output_wiring(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = copy_of(tiny_model("bert", layout="v6"), tmp_path)
    config = json.loads((folder / "sentence_bert_config.json").read_text())
    config["module_output_name"] = "sentence_embedding"
    (folder / "sentence_bert_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="only forward -> last_hidden_state -> token_embeddings"):
        SentenceTransformer(folder)


def test_unknown_saved_similarity_falls_back_to_cosine(
    tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    folder = copy_of(tiny_model("bert", similarity_fn_name="dot", layout="v6"), tmp_path)
    assert SentenceTransformer(folder).similarity_fn_name == "dot"
    path = folder / "config_sentence_transformers.json"
    path.write_text(path.read_text().replace('"dot"', '"maxsim"'))
    assert SentenceTransformer(folder).similarity_fn_name == "cosine"
