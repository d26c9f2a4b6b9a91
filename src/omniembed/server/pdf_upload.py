"""``POST /v1/collections/{name}/pdf``: a PDF's bytes in, one object per page.

Remote input is data: the PDF comes as base64 (or a data URL) in the JSON body, never as a path or a
URL. The body limit bounds its size; the operator's page and pixel limits bound what it renders to,
checked before each page is rendered.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from omniembed.errors import InvalidInputError
from omniembed.inputs import data_urls
from omniembed.inputs.modality import check_text
from omniembed.server.state import ServerState, get_state

router = APIRouter(prefix="/v1/collections", tags=["collections"])
StateDep = Annotated[ServerState, Depends(get_state)]


class PdfUpload(BaseModel):
    """A PDF to import page by page into a collection made with the page properties."""

    file: str = Field(min_length=1, max_length=255, description="the file name the pages carry")
    data: str = Field(
        description="the PDF's bytes, as base64 or a data URL ('data:application/pdf;base64,...')"
    )
    dpi: float = Field(default=144.0, ge=18, le=300, description="render resolution")
    max_side: int = Field(default=1536, ge=64, le=4096, description="the longest side of a page image")


@router.post("/{name}/pdf", summary="Import a PDF, one object per page")
async def upload_pdf(name: str, body: PdfUpload, state: StateDep) -> dict[str, Any]:
    """Render each page, read its text layer and insert ``file``, ``page``, ``image`` and ``text``.

    ``unread`` lists the pages that could not be read (over the pixel limit, broken); a document that
    cannot be read at all (not a PDF, corrupt, encrypted, too many pages) is a 400 error.
    """
    from omniembed.inputs.pdf import PdfLimits, count_pages

    collection = state.collection(name)
    file = _file_name(body.file)
    data = data_urls.decode(body.data, "data (the PDF)")
    settings = state.settings
    limits = PdfLimits(
        max_bytes=settings.max_body_bytes,
        max_pages=settings.max_pdf_pages,
        max_page_pixels=settings.max_image_pixels,
    )

    def run() -> Any:
        return collection.data.insert_pdf(
            (file, data), dpi=body.dpi, max_side=body.max_side, limits=limits, show_progress=False
        )

    # A document that cannot be read at all is a 400 error, found before the model lock is taken.
    await state.run_remote(lambda: count_pages(data, name=file, limits=limits))
    # Each page is decoded once more by an image model: the request's pixel budget is the route's
    # page limit times the per-image limit, so a long PDF is bounded by its pages, not cut short.
    budget = settings.max_pdf_pages * settings.max_image_pixels
    policy = dataclasses.replace(state.policy, max_request_pixels=budget)
    result = await state.run_remote(run, lock=True, policy=policy)
    return {
        "file": file,
        "uuids": result.uuids,
        "errors": result.errors,
        "unread": result.unread,
        "embedded": result.embedded,
    }


def _file_name(name: str) -> str:
    """The name pages carry: a plain file name, without folders or control characters."""
    check_text(name, "file")
    if "/" in name or "\\" in name or name in (".", "..") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInputError(f"file must be a plain file name such as 'report.pdf', got {name!r:.80}")
    return name
