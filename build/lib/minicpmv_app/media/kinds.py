"""Each kind of file a person can attach, in one place: how it is recognised, decoded into model inputs, offered
for upload, grouped in a conversation and kept by an export.

Every question "what kind is this file?" in the app reads this table, so a new kind (audio for MiniCPM-o, say) is
a new entry and its decoder: the session, the uploads, the exports and both UIs' upload boxes follow from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from .documents import check_pdf, render_pdf, target_pixels
from .images import prepare_image
from .video import load_video

PathLike = Union[str, os.PathLike]
# progress(done, total, kind) may raise to stop the decoding (the session's Stop).
Progress = Optional[Callable[[int, int, str], None]]


def _picture(path: PathLike, *, pages: str, plan, pixels: Optional[int], progress: Progress) -> list:
    # A large JPEG is decoded at the scale the model will use (draft mode).
    return [prepare_image(path, draft_pixels=pixels)]


def _video(path: PathLike, *, pages: str, plan, pixels: Optional[int], progress: Progress) -> list:
    return [load_video(path, progress=(lambda d, t: progress(d, t, "video")) if progress else None, plan=plan)]


def _document(path: PathLike, *, pages: str, plan, pixels: Optional[int], progress: Progress) -> list:
    rendered = render_pdf(path, check_pdf(path, pages), pixels=pixels or target_pixels(),
                          progress=(lambda d, t: progress(d, t, "pdf")) if progress else None)
    return [prepare_image(page) for page in rendered]


@dataclass(frozen=True)
class MediaKind:
    name: str
    suffixes: frozenset[str]
    decoder: Callable[..., list]  # (path, *, pages, plan, pixels, progress) -> model input parts, in order
    upload_type: str  # the entry in a Gradio upload's file_types
    conversation: str  # the kind of conversation it belongs to: one conversation keeps to one
    alone: bool = False  # one per message, with nothing of another kind beside it
    picture: bool = False  # a picture the model sees as it is: Locate, OCR and Zoom work on it, and it shows inline
    embedded: bool = True  # an export holds what the model saw of it (a video is only named: too large)
    paged: bool = False  # a page range chooses what of it the model sees

    def decode(self, path: PathLike, *, pages: str = "", plan=None, pixels: Optional[int] = None,
               progress: Progress = None) -> list:
        return self.decoder(path, pages=pages, plan=plan, pixels=pixels, progress=progress)


IMAGE = MediaKind("image", frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}), _picture,
                  upload_type="image", conversation="image", picture=True)
VIDEO = MediaKind("video", frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".flv", ".wmv", ".mpeg", ".mpg",
                                      ".3gp"}), _video, upload_type="video", conversation="video", alone=True,
                  embedded=False)
PDF = MediaKind("pdf", frozenset({".pdf"}), _document, upload_type=".pdf", conversation="image", paged=True)
KINDS = (IMAGE, VIDEO, PDF)

SUFFIXES = frozenset().union(*(kind.suffixes for kind in KINDS))
UPLOAD_TYPES = [kind.upload_type for kind in KINDS]
# A picture's MIME type and file suffix by its Pillow format (an export names it, a restored one is saved under it).
# MPO is how Pillow opens a phone's JPEG with a depth map: its bytes are JPEG.
PICTURE_FORMATS = {"PNG": ("image/png", ".png"), "JPEG": ("image/jpeg", ".jpg"), "MPO": ("image/jpeg", ".jpg"),
                   "WEBP": ("image/webp", ".webp"), "GIF": ("image/gif", ".gif"), "BMP": ("image/bmp", ".bmp"),
                   "TIFF": ("image/tiff", ".tif")}


def by_suffix(path: PathLike) -> Optional[MediaKind]:
    """The kind a file's suffix names, or None."""
    suffix = Path(path).suffix.lower()
    return next((kind for kind in KINDS if suffix in kind.suffixes), None)


def kind_of(path: PathLike) -> MediaKind:
    """The kind a file is handled as. A file of no known suffix is tried as a picture, so a wrong file gets the
    picture decoder's reason ("not an image") rather than being dropped."""
    return by_suffix(path) or IMAGE


def is_video(path: PathLike) -> bool:
    return kind_of(path) is VIDEO


def is_pdf(path: PathLike) -> bool:
    return kind_of(path) is PDF


def is_picture(path: PathLike) -> bool:
    return kind_of(path).picture


def file_types(kind: MediaKind) -> list[str]:
    """A kind's suffixes without the dot, sorted (Streamlit's ``file_type``)."""
    return sorted(s.lstrip(".") for s in kind.suffixes)
