"""Past chats: an index the browser keeps, and the chats themselves in a per-browser vault on the server's disk.

The browser's store (``gr.BrowserState``: localStorage, encrypted by Gradio) holds the list of chats (id, title,
time, size) and a random token of that browser. Each chat is its JSON export (``transcript.export_json``, pictures
shrunk for storage) written to ``<home>/chats/<folder>/<id>.chat``, encrypted (Fernet) with a key derived from
the token. The folder's name is derived from the token too: without that browser's token the server can neither
find nor read its chats. localStorage holds about 5 MB a site (a couple of dozen photo turns); the vault holds
``MAX_STORE_BYTES`` a browser (hundreds of chats), and a chat not opened or saved for ``KEEP_DAYS`` is deleted.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import os
import re
import secrets
import tempfile
import time
import uuid
from pathlib import Path
from typing import Optional

from .errors import InvalidInputError

MAX_STORE_BYTES = 500_000_000  # per browser
STORE_PICTURE_SIDE = 1024  # pictures are kept at most this large in memory (exports keep the originals)
KEEP_DAYS = 90
_ID = re.compile(r"[0-9a-f]{32}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")


class MemoryFull(InvalidInputError):
    """Saving this chat would pass the per-browser cap."""


def home() -> Path:
    return Path(os.environ.get("MINICPMV_HOME") or Path.home() / ".cache" / "minicpmv-app")


def blank() -> dict:
    """What a browser holds before its first visit: no token yet (``normalise`` makes one for that browser alone;
    a default with a token would give every new browser the same vault)."""
    return {"chats": [], "current": None}


def empty() -> dict:
    return {"chats": [], "current": None, "token": secrets.token_urlsafe(32)}


def normalise(store) -> dict:
    """A store as read back from the browser: anything malformed there is dropped, not trusted. A store of the
    version before the vault (each chat's ``data`` inline, no token) moves its chats into a new vault."""
    if not isinstance(store, dict) or not isinstance(store.get("chats"), list):
        return empty()
    token = store.get("token") if isinstance(store.get("token"), str) and _TOKEN.fullmatch(store["token"]) else None
    if token is None:
        return _migrated(store)
    chats = [{"id": c["id"], "title": c["title"][:80], "saved": c.get("saved") if isinstance(c.get("saved"), str) else "",
              "size": c.get("size", 0)}
             for c in store["chats"]
             if isinstance(c, dict) and isinstance(c.get("id"), str) and _ID.fullmatch(c["id"])
             and isinstance(c.get("title"), str) and isinstance(c.get("size", 0), int) and c.get("size", 0) >= 0]
    current = store.get("current") if any(c["id"] == store.get("current") for c in chats) else None
    return {"chats": chats, "current": current, "token": token}


def _migrated(old: dict) -> dict:
    store = empty()
    for chat in reversed(old["chats"]):
        if (isinstance(chat, dict) and isinstance(chat.get("data"), str) and isinstance(chat.get("title"), str)
                and isinstance(chat.get("id"), str)):
            try:
                store, _ = save(store, chat["id"] if _ID.fullmatch(chat["id"]) else None, chat["title"], chat["data"])
            except MemoryFull:
                break
    current = old.get("current")
    store["current"] = current if any(c["id"] == current for c in store["chats"]) else None
    return store


def used(store: dict) -> int:
    """Bytes this browser's vault holds on disk (counted from the files, not from what the browser says)."""
    folder = _path(store["token"], "0" * 32).parent
    return sum(p.stat().st_size for p in folder.glob("*.chat")) if folder.is_dir() else 0


def listed(store: dict, chat_id: Optional[str]) -> bool:
    """Whether the browser's list names this chat (its file may be gone: expired, or deleted in another tab)."""
    return any(c["id"] == chat_id for c in store["chats"])


def find(store: dict, chat_id: Optional[str]) -> Optional[dict]:
    """The chat's entry with its ``data`` (the JSON export) read from the vault; None if there is none."""
    entry = next((c for c in store["chats"] if c["id"] == chat_id), None)
    if entry is None:
        return None
    data = _read(store["token"], entry["id"])
    return {**entry, "data": data} if data is not None else None


def save(store: dict, chat_id: Optional[str], title: str, data: str, *, limit: int = MAX_STORE_BYTES) -> tuple[dict, str]:
    """``store`` with chat ``chat_id`` (a new id when None) set to ``data``, made the current one.
    Refuses with ``MemoryFull`` (the store unchanged) when it would pass ``limit``."""
    store = normalise(store)
    chat_id = chat_id if chat_id and _ID.fullmatch(chat_id) else uuid.uuid4().hex
    old = next((c for c in store["chats"] if c["id"] == chat_id), None)
    others = [c for c in store["chats"] if c["id"] != chat_id]
    sealed = _fernet(store["token"]).encrypt(data.encode("utf-8"))
    path = _path(store["token"], chat_id)
    size = used(store) - (path.stat().st_size if path.is_file() else 0) + len(sealed)
    if size > limit:
        raise MemoryFull(
            f"This browser's chat memory is full ({size / 1e6:.1f} of {limit / 1e6:.1f} MB): delete older chats, or "
            "export this one to keep it.", key="memory_full", size=round(size / 1e6, 1), limit=round(limit / 1e6, 1))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # A file of its own per write, then renamed: a crash, or two tabs saving at once, never leaves half a chat.
    handle, staging = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "wb") as file:
        file.write(sealed)
    os.replace(staging, path)
    entry = {"id": chat_id, "title": (old or {}).get("title") or title[:80], "size": len(sealed),
             "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    return {"chats": [entry, *others], "current": chat_id, "token": store["token"]}, chat_id


def rename(store: dict, chat_id: Optional[str], title: str) -> dict:
    store = normalise(store)
    title = (title or "").strip()[:80]
    if not title:
        raise InvalidInputError("Type a new name for the chat.", key="rename_empty")
    if not any(c["id"] == chat_id for c in store["chats"]):
        raise InvalidInputError("Choose a saved chat first.", key="no_saved_chat")
    return {**store, "chats": [{**c, "title": title} if c["id"] == chat_id else c for c in store["chats"]]}


def delete(store: dict, chat_id: Optional[str]) -> dict:
    store = normalise(store)
    if chat_id and _ID.fullmatch(chat_id):
        _path(store["token"], chat_id).unlink(missing_ok=True)
    chats = [c for c in store["chats"] if c["id"] != chat_id]
    return {"chats": chats, "current": store["current"] if store["current"] != chat_id else None,
            "token": store["token"]}


def choices(store: dict) -> list[tuple[str, str]]:
    """(label, id) for a picker, newest first."""
    return [(f"{c['title']} · {c.get('saved', '')[:16].replace('T', ' ')}", c["id"]) for c in normalise(store)["chats"]]


def forget_old(days: int = KEEP_DAYS) -> int:
    """Delete vault chats not written or read for ``days``; returns how many (run at start)."""
    cutoff, removed = time.time() - days * 86400, 0
    for path in (home() / "chats").glob("*/*.chat"):
        try:
            if max(path.stat().st_mtime, path.stat().st_atime) < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            pass
    return removed


def _digest(purpose: bytes, token: str) -> bytes:
    return hashlib.sha256(purpose + token.encode("ascii")).digest()


def _fernet(token: str):
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(_digest(b"minicpmv-chats-key:", token)))


def _path(token: str, chat_id: str) -> Path:
    return home() / "chats" / _digest(b"minicpmv-chats-folder:", token).hex()[:32] / f"{chat_id}.chat"


def _read(token: str, chat_id: str) -> Optional[str]:
    from cryptography.fernet import InvalidToken

    path = _path(token, chat_id)
    try:
        data = _fernet(token).decrypt(path.read_bytes()).decode("utf-8")
        os.utime(path)  # opened: kept another KEEP_DAYS
    except (OSError, InvalidToken, UnicodeDecodeError):
        return None
    return data
