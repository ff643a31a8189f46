"""PDFs as pages: a page range, a page limit, and each page rendered (pypdfium2) to the pixels the model will use.

The resolution follows the model's slice budget, not a fixed DPI: MiniCPM-V slices a picture into at most
``max_slice_nums`` tiles of 448x448 and shrinks anything larger, so a page is rendered to that many pixels
(2.6: 9 slices, about 1.8 MP; 4.6: 36, about 7.2 MP). Pages are kept in memory only: nothing is written to temp.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

from PIL import Image

from ..errors import MediaError
from .images import MAX_SIDE

# At most this many pages reach the model in one turn: each page is up to max_slice_nums+1 images' worth of tokens.
MAX_PAGES = 16
# The ready-made document prompts every UI offers (locale keys preset_<name> for the button, prompt_<name> for the text).
PROMPTS = ("transcribe", "table", "summary")
SLICE_SIDE = 448  # every MiniCPM-V generation's scale_resolution
DEFAULT_SLICES = 9  # 2.x's slice_config.max_slice_nums, for models with no slice knob
# pdfium is not thread-safe: one document is opened or rendered at a time in this process.
_PDFIUM = threading.Lock()


def target_pixels(knobs: Optional[Mapping[str, Any]] = None, *, side: int = SLICE_SIDE) -> int:
    """The page area the model sees at full detail: its slice budget of ``side`` x ``side`` tiles."""
    slices = int((knobs or {}).get("max_slice_nums") or DEFAULT_SLICES)
    return side * side * max(1, slices)


def parse_pages(spec: Optional[str], count: int) -> list[int]:
    """1-based page numbers from "2", "1-3", "2-", "1,3,5-6" (empty: every page), in the order written."""
    spec = (spec or "").strip()
    if not spec:
        return list(range(1, count + 1))
    pages: list[int] = []
    seen: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d*))?", part)
        if not match:
            raise MediaError(f'"{spec}" is not a page range: write e.g. 2, 1-3 or 1,3,5-6.', key="pdf_bad_range",
                             spec=spec)
        first = int(match.group(1))
        last = first if match.group(2) is None else int(match.group(2) or count)
        if not 1 <= first <= last <= count:
            raise MediaError(f"Pages {part} are outside this PDF, which has {count} page(s).", key="pdf_range_outside",
                             part=part, count=count)
        for page in range(first, last + 1):
            if page not in seen:
                seen.add(page)
                pages.append(page)
    return pages


def _open(path: Union[str, os.PathLike]):
    import pypdfium2 as pdfium

    if not Path(path).is_file():  # a refused file already cleaned away, sent again: no server path in the message
        raise MediaError("This PDF is no longer here: attach it again.", key="pdf_missing")
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError:
        # PDFium's message is its *last* error, which a failure that sets none leaves stale (a 0-page PDF after a
        # protected one reads "Incorrect password"): the file itself says why.
        raise _why_unopened(path) from None
    except (OSError, ValueError) as exc:
        raise MediaError(f"The PDF could not be read ({type(exc).__name__}).", key="pdf_unreadable") from None


def _why_unopened(path: Union[str, os.PathLike]) -> MediaError:
    """Why PDFium could not open ``path``, decided from the file (pypdf reads what PDFium refused)."""
    with open(path, "rb") as file:
        head = file.read(1024)
    if b"%PDF-" in head:
        try:
            from pypdf import PdfReader

            reader = PdfReader(str(path), strict=False)
            if reader.is_encrypted:
                return MediaError("This PDF is password-protected: remove the password (print it to a new PDF) and "
                                  "try again.", key="pdf_encrypted")
            if len(reader.pages) == 0:
                return MediaError("This PDF has no pages.", key="pdf_no_pages")
        except Exception:  # pypdf cannot read it either: damaged
            pass
    return MediaError("This PDF is damaged or is not a PDF: open it in a PDF viewer, save a new copy and try again.",
                      key="pdf_unreadable")


def check_pdf(path: Union[str, os.PathLike], spec: Optional[str] = None, *, max_pages: int = MAX_PAGES) -> list[int]:
    """Open ``path`` and return the pages ``spec`` chooses; refuse a bad file, a bad range or too many pages."""
    with _PDFIUM:
        document = _open(path)
        try:
            count = len(document)
        finally:
            document.close()
    if count == 0:
        raise MediaError("This PDF has no pages.", key="pdf_no_pages")
    pages = parse_pages(spec, count)
    if len(pages) > max_pages:
        raise MediaError(f"{len(pages)} pages is more than {max_pages} per message: choose a page range, e.g. 1-{max_pages}.",
                         key="pdf_too_many_pages", count=len(pages), limit=max_pages)
    return pages


def render_pdf(path: Union[str, os.PathLike], pages: list[int], *, pixels: int = target_pixels(),
               progress: Optional[Callable[[int, int], None]] = None) -> list[Image.Image]:
    """The chosen pages as RGB images of about ``pixels`` pixels each (never over ``MAX_SIDE`` a side), in order.
    ``progress(done, total)`` is called after each page and may raise to stop."""
    images: list[Image.Image] = []
    with _PDFIUM:
        document = _open(path)
    try:
        for done, number in enumerate(pages, 1):
            with _PDFIUM:  # per page: another person's PDF is not held up for a whole document
                page = document[number - 1]
                try:
                    width, height = page.get_size()  # in points (1/72 inch)
                    scale = (pixels / max(1.0, width * height)) ** 0.5
                    scale = min(scale, MAX_SIDE / max(width, height, 1.0))
                    bitmap = page.render(scale=scale, fill_color=(255, 255, 255, 255))
                    images.append(bitmap.to_pil().convert("RGB"))
                except Exception as exc:  # pdfium raises its own errors for broken page content
                    raise MediaError(f"Page {number} of this PDF could not be drawn ({exc}).",
                                     key="pdf_page_failed", page=number) from None
                finally:
                    page.close()
            if progress is not None:
                progress(done, len(pages))
    finally:
        with _PDFIUM:
            document.close()
    return images
