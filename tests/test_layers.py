"""The package's layers, listed once: imports point down (or within a layer) and form no cycle.

Imports under ``if TYPE_CHECKING:`` are left out: they never run. Imports inside functions count.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "omniembed"

LAYERS: list[tuple[str, ...]] = [
    ("errors", "_version", "_moved"),  # the base everything may use
    ("inputs",),  # modality detection, the input policy, media decoders
    ("formats",),  # hub resolution, model folder files
    ("modules",),  # transformer, pooling, dense, normalize, multimodal towers, rerank heads
    ("runtime",),  # speed only: oneDNN, int8, fused encoder, ONNX, OpenVINO, token batches, threads
    ("embedding",),  # SentenceTransformer, PairedEncoder, similarity, quantize, process pool
    ("sparse",),  # SparseEncoder (SPLADE, inference-free), sparse scores, checks of sparse vectors
    ("rerank",),  # CrossEncoder
    ("late_interaction",),  # multi-vector encoders, MaxSim, MUVERA, index
    ("retrieval",),  # semantic search, retrieve and rerank, fusion, zero-shot
    ("training",),  # Trainer, TrainingArguments, losses, evaluators (on transformers' Trainer)
    ("store",),  # collections API and its engines
    ("distributed",),  # bulk encoding and import on Ray (embed, import_into)
    ("server",),
    ("cli",),
]
ROOT_LAYER = 9.5
"""``omniembed`` itself re-exports the library's public names: above the store, below server and CLI."""
MOVED = ("search", "late_interaction_index", "store.keyword", "store.fusion")
"""Old paths kept as thin re-exports: they may import anything, and nothing may import them."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, modules: dict[str, Path]) -> set[str]:
    """The omniembed modules a file imports at run time (not under ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("omniembed"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("omniembed"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def layer_of(module: str) -> float | None:
    """The layer index of ``omniembed.<top>...``; ``None`` for moved paths."""
    rest = module.removeprefix("omniembed").lstrip(".")
    if not rest:
        return ROOT_LAYER
    if rest in MOVED:
        return None
    top = rest.split(".")[0]
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"omniembed.{rest} is in no layer: add its package to LAYERS in {__file__}")


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imported(path, modules) - {name} for name, path in modules.items()}


def test_every_package_has_a_layer() -> None:
    for name in all_modules():
        layer_of(name)


def test_imports_point_down() -> None:
    upward = []
    for importer, targets in graph().items():
        here = layer_of(importer)
        for target in targets:
            there = layer_of(target)
            if target.removeprefix("omniembed.") in MOVED:
                upward.append(f"{importer} imports the moved path {target}")
            elif here is not None and (there is None or there > here):
                upward.append(f"{importer} (layer {here}) imports {target} (layer {there})")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycles() -> None:
    edges = graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                walk(target)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            walk(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


TESTS = Path(__file__).resolve().parent
REPOSITORY_TESTS = {
    "test_benchmarks.py",
    "test_examples.py",
    "test_helpers.py",
    "test_layers.py",
    "test_package.py",
    "test_repository.py",
}
"""Tests of the repository as a whole, the only test files at the top of ``tests/``."""


def test_tests_mirror_the_packages() -> None:
    packages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    folders = {
        path.name for path in TESTS.iterdir() if path.is_dir() and not path.name.startswith((".", "_"))
    }
    orphans = folders - packages - {"helpers"}
    assert not orphans, f"test folders without a package of that name: {sorted(orphans)}"
    stray = {path.name for path in TESTS.glob("test_*.py")} - REPOSITORY_TESTS
    assert not stray, f"move {sorted(stray)} into tests/<package>/ (the package they test)"
