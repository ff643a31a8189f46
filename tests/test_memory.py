"""Past chats: the index a browser keeps and the per-browser vault of chats on the server's disk."""

from __future__ import annotations

import json
import os
import time

import pytest

from minicpmv_app import memory, transcript
from minicpmv_app.session import ChatSession, State, Turn


@pytest.fixture(autouse=True)
def own_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICPMV_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def chat_json(text="hi") -> str:
    session = ChatSession()
    session.turns.append(Turn(text, [], State.ANSWERED, answer="red"))
    return transcript.export_json(session, {})


def test_a_saved_chat_comes_back_and_only_this_browsers_token_opens_it(own_home):
    store = memory.normalise(memory.blank())  # a browser's first visit: a token of its own
    store, chat_id = memory.save(store, None, "first", chat_json("secret question"))
    assert json.loads(memory.find(store, chat_id)["data"])["turns"][0]["question"] == "secret question"
    on_disk = list((own_home / "chats").rglob("*.chat"))
    assert len(on_disk) == 1 and b"secret question" not in on_disk[0].read_bytes()  # encrypted at rest
    other = {**store, "token": memory.empty()["token"]}  # another browser claiming the same chat id
    assert memory.find(other, chat_id) is None
    assert memory.normalise(memory.blank())["token"] != store["token"]  # each new browser gets its own vault


def test_a_hundred_chats_with_two_hundred_photo_turns_fit(tmp_path):
    from minicpmv_app.tiny_task import draw

    photo = tmp_path / "photo.jpg"
    draw("green", "circle", size=(1920, 1440)).save(photo, quality=90)  # a phone photo's size (bench: 4032x3024)
    store = memory.normalise(memory.blank())
    for number in range(100):
        session = ChatSession()
        session.turns += [Turn(f"photo {number}.{n}", [str(photo)], State.ANSWERED, answer="green") for n in range(2)]
        store, _ = memory.save(store, None, f"chat {number}", transcript.export_json(
            session, {}, picture_side=memory.STORE_PICTURE_SIDE))
    assert len(memory.choices(store)) == 100
    oldest = memory.find(store, store["chats"][-1]["id"])
    assert len(json.loads(oldest["data"])["turns"][1]["images"]) == 1  # and each keeps its picture
    assert len(json.dumps(store)) < 50_000  # what the browser itself holds: the index only


def test_full_memory_refuses_and_writes_nothing(own_home):
    store, chat_id = memory.save(memory.empty(), None, "a", chat_json())
    with pytest.raises(memory.MemoryFull) as full:
        memory.save(store, None, "b", chat_json("x" * 10_000), limit=5_000)
    assert full.value.key == "memory_full"
    assert len(list((own_home / "chats").rglob("*.chat"))) == 1 and not list((own_home / "chats").rglob("*.tmp"))


def test_the_cap_counts_the_files_not_what_the_browser_says():
    store, _ = memory.save(memory.empty(), None, "a", chat_json("y" * 20_000))
    forged = {**store, "chats": [{**c, "size": -10**9} for c in store["chats"]]}
    assert memory.normalise(forged)["chats"] == []  # a negative size is not believed
    lied = {**store, "chats": [{**c, "size": 0} for c in store["chats"]]}
    assert memory.used(memory.normalise(lied)) == memory.used(store) > 20_000
    with pytest.raises(memory.MemoryFull):
        memory.save(lied, None, "b", chat_json("z" * 20_000), limit=memory.used(store) + 10_000)


def test_chats_of_the_version_before_the_vault_move_into_it():
    old = {"chats": [{"id": "c" * 32, "title": "kept", "data": chat_json("from localStorage"), "saved": ""}],
           "current": "c" * 32}
    store = memory.normalise(old)
    assert store["token"] and store["current"] == "c" * 32
    assert json.loads(memory.find(store, "c" * 32)["data"])["turns"][0]["question"] == "from localStorage"
    assert "data" not in json.dumps(store["chats"])  # the browser keeps the list only from now on


def test_forged_entries_are_dropped_and_ids_cannot_leave_the_vault():
    store = memory.empty()
    forged = {**store, "chats": [{"id": "../../etc/passwd", "title": "x", "size": 1},
                                 {"id": "a" * 32, "title": 5, "size": 1}, "junk"]}
    assert memory.normalise(forged)["chats"] == []
    assert memory.normalise({"chats": [], "token": "short"})["token"] != "short"
    store, chat_id = memory.save(store, "../../escape", "t", chat_json())
    assert len(chat_id) == 32 and memory.find(store, chat_id) is not None


def test_rename_delete_and_old_chats_expire(own_home):
    store, first = memory.save(memory.empty(), None, "first", chat_json())
    store, second = memory.save(store, None, "second", chat_json())
    store = memory.rename(store, first, "renamed")
    assert [label.split(" · ")[0] for label, _ in memory.choices(store)] == ["second", "renamed"]
    store = memory.delete(store, second)
    assert memory.find(store, second) is None and len(list((own_home / "chats").rglob("*.chat"))) == 1
    old = time.time() - (memory.KEEP_DAYS + 1) * 86400
    for path in (own_home / "chats").rglob("*.chat"):
        os.utime(path, (old, old))
    assert memory.forget_old() == 1 and memory.find(store, first) is None
    assert memory.listed(store, first)  # still listed: the page says it expired, and it can be deleted
    assert memory.choices(memory.delete(store, first)) == []
