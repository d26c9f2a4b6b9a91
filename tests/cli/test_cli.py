"""The command line through ``main(argv)``: outputs, tables, exit codes and ``--help``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omniembed.cli import INPUT_ERROR, OK, PARTIAL, USAGE, main

SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]


@pytest.fixture
def lines(tmp_path: Path) -> Path:
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(SENTENCES) + "\n\n")
    return path


@pytest.mark.parametrize("command", [[], ["encode"], ["import"], ["search"], ["serve"], ["info"], ["bench"]])
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == OK
    assert "Usage" in capsys.readouterr().out


def test_usage_errors_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nonsense"]) == USAGE
    assert main(["encode", "--batch-size", "0", "x"]) == USAGE
    assert "omniembed --help" in capsys.readouterr().err


def test_encode_to_npy_and_jsonl(minilm_dir: Path, minilm: Any, lines: Path, tmp_path: Path) -> None:
    expected = minilm.encode(SENTENCES)
    assert main(["-q", "encode", str(minilm_dir), str(lines), "-o", str(tmp_path / "out.npy")]) == OK
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-5)
    assert main(["-q", "encode", str(minilm_dir), str(lines), "-o", str(tmp_path / "out.jsonl")]) == OK
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["text"] for row in rows] == SENTENCES
    np.testing.assert_allclose([row["embedding"] for row in rows], expected, atol=1e-5)


def test_encode_reads_stdin(
    minilm_dir: Path, minilm: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("hello world\n"))
    assert main(["-q", "encode", str(minilm_dir)]) == OK
    row = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(row["embedding"], minilm.encode("hello world"), atol=1e-5)


def test_input_errors_exit_2(minilm_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "encode", str(tmp_path / "no-model"), "-"]) == INPUT_ERROR
    assert "no-model" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text('{"title": "ok"}\n')
    assert main(["-q", "import", str(tmp_path / "db"), "Docs", str(bad), "--model", str(minilm_dir)]) == (
        INPUT_ERROR
    )
    assert "bad.txt is not a file omniembed imports" in capsys.readouterr().err
    assert main(["-q", "import", str(tmp_path / "db"), "Docs", str(tmp_path / "missing.jsonl")]) == (
        INPUT_ERROR
    )
    assert "missing.jsonl does not exist" in capsys.readouterr().err
    (tmp_path / "db2").mkdir()
    assert main(["-q", "search", str(tmp_path / "db2"), "Missing", "query"]) == INPUT_ERROR
    assert "Missing" in capsys.readouterr().err


@pytest.mark.slow
def test_info_and_bench(minilm_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "info", str(minilm_dir)]) == OK
    facts = json.loads(capsys.readouterr().out)
    assert facts["dimensions"] == 384
    assert facts["max_seq_length"] == 256
    assert facts["modalities"] == ["text"]
    assert main(["-q", "bench", str(minilm_dir), "--count", "16", "--batch-size", "8"]) == OK
    assert json.loads(capsys.readouterr().out)["texts_per_second"] > 0


@pytest.mark.slow
def test_import_then_search(minilm_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "articles.jsonl"
    records = [
        {"title": "Cats", "body": "Cats purr and sleep in the sun.", "year": 2001},
        {"title": "Rockets", "body": "Rockets burn fuel to reach orbit.", "year": 2015},
        {"title": "Broken", "year": 2**70},
    ]
    data.write_text("\n".join(json.dumps(r) for r in records))
    db = tmp_path / "db"
    assert main(["-q", "import", str(db), "Article", str(data), "--model", str(minilm_dir)]) == PARTIAL
    captured = capsys.readouterr()
    assert "imported 2 of 3" in captured.out
    assert "articles.jsonl:3: property 'year' is int" in captured.err
    assert main(["-q", "search", str(db), "Article", "kittens", "--mode", "near_text"]) == OK
    table = capsys.readouterr().out
    assert table.index("Cats") < table.index("Rockets")
    assert main(["-q", "search", str(db), "Article", "orbit", "--mode", "bm25", "--json"]) == OK
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["properties"]["title"] == "Rockets"
    csv_file = tmp_path / "more.csv"
    csv_file.write_text("title,body\nDogs,Dogs bark.\n")
    assert main(["-q", "import", str(db), "Article", str(csv_file)]) == OK  # the collection exists now
    assert "imported 1 of 1" in capsys.readouterr().out


def test_encode_to_parquet(minilm_dir: Path, minilm: Any, lines: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    assert main(["-q", "encode", str(minilm_dir), str(lines), "-o", str(tmp_path / "out.parquet")]) == OK
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("text").to_pylist() == SENTENCES
    np.testing.assert_allclose(table.column("embedding").to_pylist(), minilm.encode(SENTENCES), atol=1e-5)


def test_import_a_folder_of_images(tiny_clip: Any, cifar: Any, tmp_path: Path) -> None:
    import shutil

    import omniembed as oe

    folder = tmp_path / "pictures"
    folder.mkdir()
    for path, _ in cifar[:5]:
        shutil.copy(path, folder / Path(path).name)
    (folder / "notes.txt").write_text("not an image")
    model = str(tiny_clip("plain"))
    assert main(["-q", "import", str(tmp_path / "db"), "Pictures", str(folder), "--model", model]) == OK
    with oe.connect(tmp_path / "db") as db:
        pictures = db.collections.get("Pictures")
        assert len(pictures) == 5
        first = sorted(p for p in folder.iterdir() if p.suffix != ".txt")[0]
        assert pictures.query.near_image(first, limit=1)[0].properties["file"] == first.name


def test_serve_passes_the_security_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(app=app, **options))
    argv = ["-q", "serve", "--db", str(tmp_path / "db"), "--api-key", "k", "--max-input-chars", "500"]
    argv += [
        "--public-metrics",
        "--public-docs",
        "--allowed-host",
        "api.example.com",
        "--allowed-host",
        "*.lan",
        "--max-pdf-pages",
        "20",
    ]
    assert main(argv) == OK
    served["app"].state.omniembed.db.close()  # the app's shutdown would close it; uvicorn never ran
    settings = served["app"].state.omniembed.settings
    assert (settings.max_input_chars, settings.public_metrics, settings.public_docs) == (500, True, True)
    assert settings.allowed_hosts == ("api.example.com", "*.lan")
    assert settings.max_pdf_pages == 20
    assert main(["-q", "serve", "--db", str(tmp_path / "db2")]) == OK
    served["app"].state.omniembed.db.close()
    settings = served["app"].state.omniembed.settings
    assert settings.input_char_limit == 32 * 8192
    assert settings.max_pdf_pages == 500
    assert settings.allowed_hosts == ("localhost", "127.0.0.1", "[::1]")
    assert (settings.public_metrics, settings.public_docs) == (False, False)


def test_allowed_hosts_follow_the_listening_address(caplog: pytest.LogCaptureFixture) -> None:
    from omniembed.cli.serve import allowed_hosts

    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        assert allowed_hosts(host, None) == ("localhost", "127.0.0.1", "[::1]"), host
    assert not caplog.records
    with caplog.at_level("WARNING", logger="omniembed.cli"):
        assert allowed_hosts("0.0.0.0", None) == ("*",)
    assert "answering any Host header" in caplog.text
    assert allowed_hosts("0.0.0.0", ["api.example.com"]) == ("api.example.com",)


def test_serve_loads_a_sparse_folder_as_a_sparse_encoder(tmp_path: Path, tiny_model: Any) -> None:
    from omniembed import SentenceTransformer, SparseEncoder
    from omniembed.cli.serve import _load

    from helpers.sparse import build_splade

    loaded, _, _ = _load(str(build_splade(tmp_path / "splade")), None, None)
    assert isinstance(loaded, SparseEncoder)
    dense, _, _ = _load(str(tiny_model("bert")), None, None)
    assert isinstance(dense, SentenceTransformer)
