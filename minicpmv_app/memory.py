"""Past chats kept in the person's own browser: a plain, JSON-able store the UI hands to the browser and back.

The server keeps nothing: Gradio stores this dict in the browser's localStorage (``gr.BrowserState``, encrypted);
the server only reads it when a page opens and writes it back after an answer. Each chat is its JSON export
(``transcript.export_json``) with pictures shrunk for storage, so reopening one continues it.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from typing import Optional

from .errors import InvalidInputError

# localStorage holds about 5 M characters per site; the encrypted store is about 4/3 of its JSON.
MAX_STORE_CHARS = 3_000_000
STORE_PICTURE_SIDE = 1024  # pictures are kept at most this large in memory (exports keep the originals)


class MemoryFull(InvalidInputError):
    """Saving this chat would pass the browser's storage cap."""


def empty() -> dict:
    return {"chats": [], "current": None}


def normalise(store) -> dict:
    """A store as read back from the browser: anything malformed there is dropped, not trusted."""
    if not isinstance(store, dict) or not isinstance(store.get("chats"), list):
        return empty()
    chats = [{**c, "saved": c.get("saved") if isinstance(c.get("saved"), str) else ""} for c in store["chats"]
             if isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("data"), str)
             and isinstance(c.get("title"), str)]
    current = store.get("current") if any(c["id"] == store.get("current") for c in chats) else None
    return {"chats": chats, "current": current}


def used(store: dict) -> int:
    return sum(len(c["data"]) + len(c["title"]) for c in store["chats"])


def find(store: dict, chat_id: Optional[str]) -> Optional[dict]:
    return next((c for c in store["chats"] if c["id"] == chat_id), None)


def save(store: dict, chat_id: Optional[str], title: str, data: str, *, limit: int = MAX_STORE_CHARS) -> tuple[dict, str]:
    """``store`` with chat ``chat_id`` (a new id when None) set to ``data``, made the current one.
    Refuses with ``MemoryFull`` (the store unchanged) when it would pass ``limit``."""
    store = normalise(store)
    chat_id = chat_id or uuid.uuid4().hex
    old = find(store, chat_id)
    others = [c for c in store["chats"] if c["id"] != chat_id]
    size = sum(len(c["data"]) + len(c["title"]) for c in others) + len(data) + len(title)
    if size > limit:
        raise MemoryFull(
            f"This browser's chat memory is full ({size / 1e6:.1f} of {limit / 1e6:.1f} MB): delete older chats, or "
            "export this one to keep it.", key="memory_full", size=round(size / 1e6, 1), limit=round(limit / 1e6, 1))
    entry = {"id": chat_id, "title": (old or {}).get("title") or title, "data": data,
             "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    return {"chats": [entry, *others], "current": chat_id}, chat_id


def rename(store: dict, chat_id: Optional[str], title: str) -> dict:
    store = normalise(store)
    title = (title or "").strip()[:80]
    if not title:
        raise InvalidInputError("Type a new name for the chat.", key="rename_empty")
    if find(store, chat_id) is None:
        raise InvalidInputError("Choose a saved chat first.", key="no_saved_chat")
    return {**store, "chats": [{**c, "title": title} if c["id"] == chat_id else c for c in store["chats"]]}


def delete(store: dict, chat_id: Optional[str]) -> dict:
    store = normalise(store)
    chats = [c for c in store["chats"] if c["id"] != chat_id]
    return {"chats": chats, "current": store["current"] if store["current"] != chat_id else None}


def choices(store: dict) -> list[tuple[str, str]]:
    """(label, id) for a picker, newest first."""
    return [(f"{c['title']} · {c.get('saved', '')[:16].replace('T', ' ')}", c["id"]) for c in normalise(store)["chats"]]
