"""A conversation as a file: Markdown and self-contained HTML to read or send, JSON to import and continue.

Every export carries a run card: which model (folder fingerprint or revision) ran on which backend, device and
dtype, with which settings and knobs, under which versions, and when. No UI toolkit here: the Gradio and
Streamlit adapters only offer the files and save imported pictures where they keep uploads.

Import is data only: the JSON is size-checked before it is parsed, every field is type-checked, every picture is
decoded and checked as an image, and nothing in it is executed or fetched.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import html
import io
import json
import platform
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

from PIL import Image, ImageOps

from . import __version__, answers
from .errors import InvalidInputError, MediaError
from .media import kinds
from .media.images import load_image, to_rgb
from .session import LABELS, ChatSession, State, Turn, decode

FORMAT = "minicpmv-chat"
VERSION = 1
MAX_IMPORT_BYTES = 40_000_000  # "40 MB" as the page and the README say it (decimal, as the hubs count)
MAX_TURNS = 500
MAX_IMAGES = 256
MAX_TEXT = 200_000  # characters per field
LIBRARIES = ("transformers", "torch", "accelerate", "gradio", "streamlit", "pillow", "pypdfium2", "openai")


# Names an imported error's params may not take: the exception's own arguments and the translation's language.
RESERVED_PARAMS = {"key", "message", "lang", "self"}


class ImportRefused(InvalidInputError):
    """An import file that is not a conversation this app wrote, or breaks a limit."""


# -- run card ------------------------------------------------------------------------------------------
def run_card(chat, session: Optional[ChatSession] = None, *, now: Optional[_dt.datetime] = None) -> dict:
    """What produced the answers: model, backend, device, dtype, the latest settings, versions, time (UTC)."""
    # The latest answer made here: an imported turn's settings describe another run, not this one.
    settings = next((t.settings for t in reversed(session.turns) if t.settings and not t.settings.get("imported")),
                    None) if session else None
    folder = getattr(chat, "folder", None)
    return {
        "model": str(chat.model_path),
        "revision": getattr(chat, "revision", None),
        "fingerprint": fingerprint(folder) if folder else None,
        **chat.backend.card(),
        "settings": settings,
        "versions": {"app": __version__, "python": platform.python_version(), **library_versions()},
        "time": (now or _dt.datetime.now(_dt.timezone.utc)).isoformat(timespec="seconds"),
    }


def library_versions() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@functools.lru_cache(maxsize=8)
def _fingerprint(folder: str, modified: float) -> str:
    return fingerprint(folder, cached=False)


def fingerprint(folder, *, cached: bool = True) -> str:
    """A checkpoint folder's identity: the hub snapshot's commit when it is one, else a hash of its small files
    (configs, tokenizer, chat template) and the names and sizes of its weights (not read: they are gigabytes)."""
    folder = Path(folder)
    if cached:  # once per folder (and its last change), not at every save of a chat
        return _fingerprint(str(folder), folder.stat().st_mtime)
    if folder.parent.name == "snapshots" and len(folder.name) == 40:
        return f"commit:{folder.name}"
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        if path.stat().st_size <= 4 * 1024 * 1024:
            digest.update(path.read_bytes())
        else:
            digest.update(str(path.stat().st_size).encode())
    return f"sha256:{digest.hexdigest()[:16]}"


# -- export --------------------------------------------------------------------------------------------
def export_json(session: ChatSession, card: dict, *, title: str = "", picture_side: Optional[int] = None) -> str:
    """The conversation as JSON; ``picture_side`` shrinks larger pictures to that side (JPEG), for storage."""
    turns = [turn_record(t, picture_side) for t in session.turns]
    return json.dumps({"format": FORMAT, "version": VERSION, "title": title or default_title(session),
                       "run_card": card, "turns": turns}, ensure_ascii=False)


def turn_record(turn: Turn, picture_side: Optional[int] = None) -> dict:
    pictures = [shrunk(data, mime, picture_side) if picture_side else (data, mime) for data, mime in turn_pictures(turn)]
    return {
        "question": turn.text,
        "label": turn.label,  # how the page showed the question (Locate), or null
        "images": [{"mime": mime, "data": base64.b64encode(data).decode("ascii")} for data, mime in pictures],
        "video": next((Path(f).name for f in turn.files if kinds.is_video(f)), None),  # named only: not embedded
        "left_out": left_out(turn),  # files that could not be read as pictures, named only
        "pages": turn.pages,
        "answer": turn.answer,
        "reasoning": turn.reasoning,
        "state": turn.state.value,
        "error": str(turn.error) if turn.error else None,
        # So a reopened chat shows the reason in the page's language.
        "error_key": getattr(turn.error, "key", None),
        "error_params": {k: v for k, v in (getattr(turn.error, "params", None) or {}).items()
                         if isinstance(v, (str, int, float))},
        "example": turn.example,
        "settings": turn.settings,
    }


def turn_pictures(turn: Turn) -> list[tuple[bytes, str]]:
    """The pictures the model saw, as (bytes, mime): a picture file's own bytes, and otherwise (PDF pages, a file
    already cleaned away) the decoded picture as JPEG. A file that is neither (empty, damaged, not a picture,
    deleted) is left out and named by ``left_out``: one bad file never stops the rest of a chat being saved."""
    return _pictures(turn)[0]


def left_out(turn: Turn) -> list[str]:
    """The names of the turn's files that no export or memory can hold (they could not be read as pictures)."""
    return _pictures(turn)[1]


# The memory saves a chat after every turn: each turn's pictures are read once, and forgotten with the turn.
_TURN_PICTURES: "weakref.WeakKeyDictionary[Turn, tuple]" = weakref.WeakKeyDictionary()


def _pictures(turn: Turn) -> tuple[list[tuple[bytes, str]], list[str]]:
    key = (len(turn.files), turn.parts is not None)  # made once per turn (and again once its media are decoded)
    if _TURN_PICTURES.get(turn, (None,))[0] == key:
        return _TURN_PICTURES[turn][1]
    files = [f for f in turn.files if kinds.kind_of(f).embedded]
    decoded = [p for p in turn.parts or [] if isinstance(p, Image.Image)]
    pictures: list[tuple[bytes, str]] = []
    missing: list[str] = []
    if decoded and len(decoded) != len(files):  # a PDF became several pages: the pages are what the model saw
        pictures = [_jpeg(image) for image in decoded]
    else:
        for index, f in enumerate(files):
            data = _readable_picture(f)
            if data is not None:
                pictures.append(data)
            elif index < len(decoded):
                pictures.append(_jpeg(decoded[index]))
            elif not kinds.is_pdf(f):  # a refused PDF's message names it already
                missing.append(Path(f).name)
    _TURN_PICTURES[turn] = (key, (pictures, missing))
    return pictures, missing


def _readable_picture(path: str) -> Optional[tuple[bytes, str]]:
    """The file's bytes and mime when it is a whole picture (decoded to the end), else None."""
    if kinds.by_suffix(path) is not kinds.IMAGE:
        return None
    try:
        data = Path(path).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # a truncated file fails here, not later in a shrink or a browser
            return data, kinds.PICTURE_FORMATS.get(image.format or "", ("image/png", ".png"))[0]
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _jpeg(image: Image.Image) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=92)
    return buffer.getvalue(), "image/jpeg"


class _ShrunkCopies:
    """Shrunk pictures by content, least recently used out first, within ``max_bytes`` in all."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.copies: "OrderedDict[tuple[bytes, int], tuple[bytes, str]]" = OrderedDict()
        self.held = 0  # bytes in ``copies``
        self._lock = threading.Lock()

    def get(self, key) -> Optional[tuple[bytes, str]]:
        with self._lock:
            if key in self.copies:
                self.copies.move_to_end(key)
                return self.copies[key]
        return None

    def put(self, key, copy: tuple[bytes, str]) -> None:
        with self._lock:
            if key not in self.copies:
                self.copies[key] = copy
                self.held += len(copy[0])
            while self.held > self.max_bytes:
                self.held -= len(self.copies.popitem(last=False)[1][0])


# The memory saves the whole chat after every turn, so without this each save shrank every photo of the chat
# again (a 4032x3024 JPEG takes about 0.25 s here, so a chat of 50 photos spent about 12 s per save). The shrunk
# copies are kept within a bound the UI's memory can afford.
_SHRUNK = _ShrunkCopies(48 * 2**20)


def shrunk(data: bytes, mime: str, side: int) -> tuple[bytes, str]:
    """A picture no larger than ``side`` a side: as it is when it fits, else resized and stored as JPEG."""
    key = (hashlib.blake2b(data, digest_size=16).digest(), side)
    kept = _SHRUNK.get(key)
    if kept is not None:
        return kept
    with Image.open(io.BytesIO(data)) as opened:
        if max(opened.size) <= side:
            return data, mime
        # Upright and on white first, as the model saw it: the JPEG keeps neither EXIF orientation nor alpha.
        image = to_rgb(ImageOps.exif_transpose(opened) or opened)
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
    result = buffer.getvalue(), "image/jpeg"
    _SHRUNK.put(key, result)
    return result


def default_title(session: ChatSession) -> str:
    first = next((t.text for t in session.turns if t.text), "") or "Chat"
    return first[:60]


def export_markdown(session: ChatSession, card: dict, *, title: str = "") -> str:
    lines = [f"# {title or default_title(session)}", "", "## Run card", "", "```json",
             json.dumps(card, ensure_ascii=False, indent=2), "```", ""]
    for number, turn in enumerate(session.turns, 1):
        lines.append(f"## Turn {number}")
        pictures = turn_pictures(turn)
        if pictures:
            lines.append(f"*{len(pictures)} picture(s) (embedded in the HTML and JSON exports)*")
        if turn.pages:
            lines.append(f"*PDF pages {turn.pages}*")
        if left_out(turn):
            lines.append(f"*Not included (could not be read as pictures): {html.escape(', '.join(left_out(turn)))}*")
        # Escaped: a Markdown viewer that renders inline HTML must not run markup from a question or an answer.
        lines += ["", f"**You:** {html.escape(turn.text)}", ""]
        if turn.reasoning.strip():
            lines += ["<details><summary>Thinking</summary>", "", html.escape(turn.reasoning.strip()), "", "</details>", ""]
        lines += [f"**MiniCPM-V:** {html.escape(_shown(turn))}", ""]
    return "\n".join(lines)


def export_html(session: ChatSession, card: dict, *, title: str = "") -> str:
    """One page, no external resources: pictures are data: URLs and every text is escaped."""
    title = html.escape(title or default_title(session))
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_card_value(v))}</td></tr>"
                   for k, v in card.items())
    body = []
    for turn in session.turns:
        pictures = "".join(f'<img alt="picture {n}" src="data:{mime};base64,{base64.b64encode(data).decode()}">'
                           for n, (data, mime) in enumerate(turn_pictures(turn), 1))
        figures = "".join(f'<img alt="boxes on picture {i + 1}" src="data:image/png;base64,{_png(f)}">'
                          for i, f in turn.figures())
        thinking = (f"<details><summary>Thinking</summary><p>{html.escape(turn.reasoning.strip())}</p></details>"
                    if turn.reasoning.strip() else "")
        if left_out(turn):
            pictures += f'<p class="note">Not included (could not be read as pictures): {html.escape(", ".join(left_out(turn)))}</p>'
        body.append(f'<div class="user">{pictures}<p>{html.escape(turn.text)}</p></div>'
                    f'<div class="bot">{thinking}<p>{html.escape(_shown(turn))}</p>{figures}</div>')
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; style-src \'unsafe-inline\'">'
            f"<style>{_CSS}</style></head><body><h1>{title}</h1>{''.join(body)}"
            f"<details><summary>Run card</summary><table>{rows}</table></details></body></html>")


_CSS = ("body{font-family:system-ui,sans-serif;max-width:820px;margin:2em auto;padding:0 1em}"
        ".user,.bot{border-radius:10px;padding:.6em 1em;margin:.6em 0}.user{background:#eef2ff}"
        ".bot{background:#f5f5f5}p{white-space:pre-wrap}img{max-width:320px;max-height:320px;margin:.3em}"
        "th{text-align:left;padding-right:1em;vertical-align:top}td{white-space:pre-wrap}")


def _card_value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _shown(turn: Turn) -> str:
    if turn.state == State.FAILED:
        return f"(failed: {turn.error})"
    if turn.state == State.STOPPED:
        return f"{answers.shown(turn)} (stopped)".strip()
    return answers.shown(turn)


def _png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


# The formats a UI offers: kind -> (file suffix, MIME type, writer(session, card)).
EXPORTS = {"markdown": (".md", "text/markdown", export_markdown), "html": (".html", "text/html", export_html),
           "json": (".json", "application/json", export_json)}


# -- import --------------------------------------------------------------------------------------------
@dataclass
class ImportedTurn:
    question: str
    pictures: list  # (bytes, suffix), each decoded and checked
    answer: str
    reasoning: str = ""
    state: str = "answered"
    example: bool = False
    pages: str = ""
    settings: Optional[dict] = None
    error: str = ""  # a failed turn's reason (it is shown again, and never sent to the model)
    error_key: str = ""
    error_params: dict = field(default_factory=dict)
    label: Optional[dict] = None


@dataclass
class Transcript:
    title: str
    run_card: dict
    turns: list = field(default_factory=list)
    skipped: int = 0  # turns whose video was not embedded, left out


def read(data: bytes, *, max_bytes: int = MAX_IMPORT_BYTES) -> Transcript:
    """Parse and check an exported JSON conversation; refuse anything else with ``ImportRefused``."""
    if len(data) > max_bytes:
        raise ImportRefused(f"The file is {len(data) / 1e6:.1f} MB; imports are limited to {max_bytes / 1e6:.0f} MB.",
                            key="import_too_large", size=round(len(data) / 1e6, 1), limit=round(max_bytes / 1e6))
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ImportRefused("This file is not a conversation exported as JSON by this app.", key="import_not_json") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ImportRefused("This file is not a conversation exported as JSON by this app.", key="import_not_json")
    if document.get("version") != VERSION:
        raise ImportRefused(f"This export is version {document.get('version')!r}; this app reads version {VERSION}.",
                            key="import_version", version=str(document.get("version")))
    turns = _field(document, "turns", list)
    if len(turns) > MAX_TURNS:
        raise ImportRefused(f"The conversation has {len(turns)} turns; the limit is {MAX_TURNS}.",
                            key="import_too_many_turns", count=len(turns), limit=MAX_TURNS)
    transcript = Transcript(_text(document, "title"), _field(document, "run_card", dict, {}))
    pictures = 0
    for raw in turns:
        if not isinstance(raw, dict):
            raise ImportRefused("A turn in this file is not an object.", key="import_bad_field", field="turns")
        state = _text(raw, "state") or "answered"
        if state not in (State.ANSWERED.value, State.STOPPED.value, State.FAILED.value):
            raise ImportRefused(f"Unknown turn state {state!r}.", key="import_bad_field", field="state")
        if raw.get("video"):
            transcript.skipped += 1
            continue
        # A failed turn comes back with its reason; its pictures (if any were readable) are not needed again.
        images = [] if state == State.FAILED.value else [_picture(item) for item in _field(raw, "images", list, [])]
        pictures += len(images)
        if pictures > MAX_IMAGES:
            raise ImportRefused(f"The conversation has {pictures} pictures or more; an import takes at most "
                                f"{MAX_IMAGES}.", key="import_too_many_pictures", count=pictures, limit=MAX_IMAGES)
        error_params = raw.get("error_params")
        transcript.turns.append(ImportedTurn(
            _text(raw, "question"), images, _text(raw, "answer"), _text(raw, "reasoning"), state,
            bool(_field(raw, "example", bool, False)), _text(raw, "pages"), _field(raw, "settings", dict, None),
            _text({**raw, "error": raw.get("error") or ""}, "error"),
            _text({**raw, "error_key": raw.get("error_key") or ""}, "error_key"),
            {k: v for k, v in (error_params if isinstance(error_params, dict) else {}).items()
             if isinstance(k, str) and k.isidentifier() and k not in RESERVED_PARAMS
             and isinstance(v, (str, int, float)) and len(str(v)) <= 1000},
            _label(raw.get("label")),
        ))
    return transcript


def _label(value) -> Optional[dict]:
    """A turn's label, if it is one this app writes (a known key, short text values); anything else is dropped
    and the question is shown as it was sent."""
    if not isinstance(value, dict) or value.get("key") not in LABELS:
        return None
    values = {k: v for k, v in value.items() if k != "key"}
    if set(values) != set(LABELS[value["key"]]) or not all(isinstance(v, str) and len(v) <= 1000
                                                           for v in values.values()):
        return None
    return {"key": value["key"], **values}


def _field(mapping: dict, name: str, kind, default=...):
    value = mapping.get(name, default)
    if value is None and default is not None:  # null where a value is needed: as bad as a missing one
        value = ...
    if value is ...:
        raise ImportRefused(f'The file has no "{name}".', key="import_bad_field", field=name)
    if value is not None and not isinstance(value, kind):
        raise ImportRefused(f'"{name}" has the wrong type in this file.', key="import_bad_field", field=name)
    return value


def _text(mapping: dict, name: str) -> str:
    value = _field(mapping, name, str, "") or ""
    if len(value) > MAX_TEXT:
        raise ImportRefused(f'"{name}" is longer than {MAX_TEXT} characters.', key="import_bad_field", field=name)
    return value


def _picture(item) -> tuple[bytes, str]:
    if not isinstance(item, dict) or not isinstance(item.get("data"), str):
        raise ImportRefused("A picture in this file is malformed.", key="import_bad_field", field="images")
    try:
        data = base64.b64decode(item["data"], validate=True)
        image = load_image(data)  # decoded in full: a broken or oversized picture is refused here
    except (ValueError, MediaError) as exc:
        raise ImportRefused(f"A picture in this file cannot be used ({exc}).", key="import_bad_picture") from None
    return data, kinds.PICTURE_FORMATS.get(image.format or "", ("", ".png"))[1]


def restore(session: ChatSession, transcript: Transcript, save: Callable[[bytes, str], str]) -> None:
    """Replace ``session``'s turns with the transcript's; ``save(bytes, suffix)`` stores a picture (a name of the
    UI's own) and returns its path. The pictures are decoded now, so the next answer sees them. Refused, before
    anything is saved, while an answer is being written."""
    session.ensure_idle()
    turns = []
    for record in transcript.turns:
        files = [save(data, suffix) for data, suffix in record.pictures]
        settings = {**record.settings, "imported": True} if record.settings else None  # another run's
        turn = Turn(record.question, files, State(record.state), answer=record.answer, reasoning=record.reasoning,
                    example=record.example, pages=record.pages, settings=settings, label=record.label)
        if turn.state == State.FAILED:
            from .errors import MiniCPMVError

            turn.error = MiniCPMVError(record.error or "This turn failed.", key=record.error_key or None,
                                       **record.error_params)
        else:
            turn.parts = decode(turn)
        turns.append(turn)
    session.replace(turns)
