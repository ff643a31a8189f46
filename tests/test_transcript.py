"""Export (Markdown, self-contained HTML, JSON with a run card) and import that continues the conversation."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
import transformers
from PIL import Image

from minicpmv_app import __version__
from minicpmv_app.errors import InvalidInputError
from minicpmv_app.session import ChatSession, State
from minicpmv_app.transcript import (
    MAX_IMPORT_BYTES, ImportRefused, export_html, export_json, export_markdown, read, restore, run_card,
)

GREEDY = {"decode_type": "Beam Search", "num_beams": 1, "max_new_tokens": 12}


def shape_file(tmp_path, colour, shape="square", name=None):
    import random

    from minicpmv_app.tiny_task import draw

    path = tmp_path / (name or f"{colour}.png")
    draw(colour, shape, size=(160, 120), rng=random.Random(5)).save(path)
    return path


def answered_session(chat, tmp_path) -> ChatSession:
    session = ChatSession()
    session.submit("What colour is the shape?", [str(shape_file(tmp_path, "green"))])
    list(session.answer(chat, GREEDY))
    return session


def saver(folder):
    folder.mkdir(exist_ok=True)
    count = iter(range(10_000))

    def save(data: bytes, suffix: str) -> str:
        path = folder / f"imported-{next(count)}{suffix}"
        path.write_bytes(data)
        return str(path)

    return save


def test_json_reimports_and_the_next_answer_sees_the_imported_picture(trained_chat, tmp_path):
    session = answered_session(trained_chat, tmp_path)
    assert session.turns[0].answer == "green"
    data = export_json(session, run_card(trained_chat, session)).encode()
    (tmp_path / "green.png").unlink()  # the original upload is gone: the picture travels in the file

    restored = ChatSession()
    transcript = read(data)
    restore(restored, transcript, saver(tmp_path / "imported"))
    assert [(t.text, t.answer, t.state) for t in restored.turns] == [("What colour is the shape?", "green", State.ANSWERED)]
    restored.submit("What colour is the shape?")  # a follow-up with no picture of its own
    list(restored.answer(trained_chat, GREEDY))
    assert restored.turns[-1].answer == "green"
    assert len(restored.history()) == 4 and any(isinstance(p, Image.Image) for p in restored.history()[0].parts)


def test_the_run_card_says_what_ran(trained_chat, tmp_path):
    session = answered_session(trained_chat, tmp_path)
    card = json.loads(export_json(session, run_card(trained_chat, session)))["run_card"]
    assert card["model"] == "tiny" and card["fingerprint"].startswith("sha256:")
    assert card["backend"] == "transformers" and card["device"] == "cpu" and card["dtype"] == "float32"
    assert card["model_class"] == type(trained_chat.backend.model).__name__
    assert card["settings"] == session.turns[0].settings
    assert card["settings"]["decode_type"] == "Beam Search" and card["settings"]["max_new_tokens"] == 12
    assert card["settings"]["max_slice_nums"] == 36 and card["settings"]["downsample_mode"] == "16x"
    assert card["versions"]["app"] == __version__ and card["versions"]["transformers"] == transformers.__version__
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", card["time"])


def test_html_is_self_contained_and_escapes_text(trained_chat, tmp_path):
    session = answered_session(trained_chat, tmp_path)
    session.turns[0].text = "<script>alert(1)</script> and <img src=http://example.com/x.png>"
    page = export_html(session, run_card(trained_chat, session))
    assert "<script>" not in page and "&lt;script&gt;" in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/") for s in sources)
    picture = base64.b64decode(sources[0].split(",", 1)[1])
    assert picture == (tmp_path / "green.png").read_bytes()  # the uploaded picture, as it was
    markdown = export_markdown(session, run_card(trained_chat, session))
    assert "**MiniCPM-V:** green" in markdown and '"backend": "transformers"' in markdown


def good_export(trained_chat, tmp_path) -> dict:
    return json.loads(export_json(answered_session(trained_chat, tmp_path), run_card(trained_chat)))


@pytest.mark.parametrize("damage, key", [
    (lambda d: b"not json", "import_not_json"),
    (lambda d: json.dumps({"turns": []}).encode(), "import_not_json"),
    (lambda d: json.dumps({**d, "version": 99}).encode(), "import_version"),
    (lambda d: json.dumps({**d, "turns": "no"}).encode(), "import_bad_field"),
    (lambda d: json.dumps({**d, "turns": [{**d["turns"][0], "answer": 5}]}).encode(), "import_bad_field"),
    (lambda d: json.dumps({**d, "turns": [{**d["turns"][0], "state": "pending"}]}).encode(), "import_bad_field"),
    (lambda d: json.dumps({**d, "turns": [{**d["turns"][0], "images": [{"data": "@@@"}]}]}).encode(), "import_bad_picture"),
    (lambda d: json.dumps({**d, "turns": [{**d["turns"][0], "images": [{"data": base64.b64encode(b"GIF89a junk").decode()}]}]}).encode(), "import_bad_picture"),
    (lambda d: json.dumps({**d, "turns": None}).encode(), "import_bad_field"),
    (lambda d: json.dumps({**d, "turns": [{**d["turns"][0], "images": None}]}).encode(), "import_bad_field"),
    (lambda d: ("[" * 100_000 + "]" * 100_000).encode(), "import_not_json"),
    (lambda d: b" " * (MAX_IMPORT_BYTES + 1), "import_too_large"),
])
def test_bad_files_are_refused_with_a_reason_and_change_nothing(trained_chat, tmp_path, damage, key):
    session = answered_session(trained_chat, tmp_path)
    before = [(t.text, t.answer) for t in session.turns]
    bad = damage(good_export(trained_chat, tmp_path))
    with pytest.raises(ImportRefused) as caught:
        restore(session, read(bad), saver(tmp_path / "imported"))
    assert caught.value.key == key
    assert [(t.text, t.answer) for t in session.turns] == before
    assert not (tmp_path / "imported").exists() or not any((tmp_path / "imported").iterdir())


def test_pdf_pages_export_as_the_pictures_the_model_saw(trained_chat, tmp_path):
    from tests.media_factory import write_pdf

    pdf = write_pdf(tmp_path / "doc.pdf", [Image.open(shape_file(tmp_path, "red")), Image.open(shape_file(tmp_path, "blue"))])
    session = ChatSession()
    session.submit("What colour is the second image?", [str(pdf)], pages="2")
    list(session.answer(trained_chat, {**GREEDY, "max_slice_nums": 1}))
    record = json.loads(export_json(session, run_card(trained_chat, session)))["turns"][0]
    assert record["pages"] == "2" and len(record["images"]) == 1 and record["images"][0]["mime"] == "image/jpeg"
    page = Image.open(io.BytesIO(base64.b64decode(record["images"][0]["data"]))).convert("RGB")
    r, g, b = page.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert b > r  # page 2, the blue one


def test_restoring_into_a_busy_session_is_refused_before_anything_is_saved(trained_chat, tmp_path):
    data = export_json(answered_session(trained_chat, tmp_path), run_card(trained_chat)).encode()
    busy = ChatSession()
    busy.submit("What colour is the shape?")  # pending: an answer is on its way
    with pytest.raises(InvalidInputError, match="waiting for its answer"):
        restore(busy, read(data), saver(tmp_path / "imported"))
    assert not any((tmp_path / "imported").iterdir()) and busy.turns[0].text == "What colour is the shape?"


def test_imported_settings_are_marked_and_not_shown_as_this_runs(trained_chat, tmp_path):
    data = export_json(answered_session(trained_chat, tmp_path), run_card(trained_chat)).encode()
    restored = ChatSession()
    restore(restored, read(data), saver(tmp_path / "imported"))
    assert restored.turns[0].settings["imported"] is True
    assert run_card(trained_chat, restored)["settings"] is None  # nothing answered here yet


def test_an_imported_failed_turn_keeps_its_reason_but_no_reserved_params():
    """A crafted file cannot inject the exception's own arguments or the page's language through error_params."""
    from minicpmv_app.ui.i18n import localized

    from minicpmv_app.session import ChatSession, State
    from minicpmv_app.transcript import FORMAT, VERSION

    record = {"format": FORMAT, "version": VERSION, "title": "t", "run_card": {}, "turns": [
        {"question": "q", "images": [], "answer": "", "state": "failed", "error": "The image is empty (0 bytes).",
         "error_key": "image_empty", "error_params": {"lang": "xx", "key": "k", "message": "m", "name": "ok"}}]}
    loaded = read(json.dumps(record).encode())
    assert loaded.turns[0].error_params == {"name": "ok"}
    session = ChatSession()
    restore(session, loaded, lambda data, suffix: "unused")
    assert session.turns[0].state == State.FAILED
    assert localized(session.turns[0].error, "zh") == "图片是空的（0 字节）。请重新上传。"  # the reason, translated


def test_a_locate_turn_comes_back_shown_as_asked_and_a_crafted_label_is_dropped():
    from minicpmv_app.session import ChatSession
    from minicpmv_app.transcript import FORMAT, VERSION
    from minicpmv_app.ui.i18n import question

    prompt = "Please provide the bounding box coordinate of the region this sentence describes: <ref>shape</ref>"
    labels = [{"key": "locate_turn", "phrase": "shape"}, {"key": "error_prefix", "message": "injected"},
              {"key": "locate_turn", "phrase": "shape", "extra": "x"}, {"key": "locate_turn"}, "locate_turn"]
    record = {"format": FORMAT, "version": VERSION, "title": "t", "run_card": {}, "turns": [
        {"question": prompt, "images": [], "answer": "<ref>shape</ref><box>0 0 500 500</box>", "label": label}
        for label in labels]}
    session = ChatSession()
    restore(session, read(json.dumps(record).encode()), lambda data, suffix: "unused")
    assert question(session.turns[0], "en") == "🔎 Locate: shape" and question(session.turns[0], "zh") == "🔎 定位：shape"
    assert [question(t, "en") for t in session.turns[1:]] == [prompt] * 4  # shown as sent
    again = json.loads(export_json(session, {}))
    assert again["turns"][0]["label"] == labels[0] and again["turns"][1]["label"] is None


@pytest.mark.parametrize("answer", ['<TABLE><tr><td>a</td></tr></TABLE><IMG SRC=x ONERROR="alert(1)">',
                                    '<img src=x onerror="alert(1)"> no table at all'])
def test_html_answers_are_sanitised_whatever_their_case(answer):
    from minicpmv_app.answers import shown
    from minicpmv_app.session import State, Turn

    turn = Turn("Table Recognition:", [], State.ANSWERED, answer=answer, answer_format="html")
    assert "onerror" not in shown(turn).lower() and "<img" not in shown(turn).lower()


def test_saving_a_photo_chat_after_every_turn_shrinks_each_photo_once(tmp_path, monkeypatch):
    """The memory saves the whole chat after each turn: earlier photos are not shrunk again, and what is stored is
    the same each time. The kept copies stay within their bound."""
    from minicpmv_app import transcript
    from minicpmv_app.session import Turn
    from minicpmv_app.tiny_task import draw

    # The copies are kept for the process's life: start from none, so other tests' pictures do not count here.
    monkeypatch.setattr(transcript, "_SHRUNK", transcript._ShrunkCopies(transcript._SHRUNK.max_bytes))
    shrinks = []
    original = Image.Image.thumbnail
    monkeypatch.setattr(Image.Image, "thumbnail", lambda self, *a, **k: (shrinks.append(self.size), original(self, *a, **k))[1])
    session, stored = ChatSession(), {}
    for index, colour in enumerate(("red", "green", "blue", "yellow", "purple", "orange")):
        photo = tmp_path / f"photo-{index}.jpg"
        draw(colour, "circle", size=(1920, 1440)).save(photo, quality=90)
        session.turns.append(Turn(f"photo {index}", [str(photo)], State.ANSWERED, answer=colour))
        saved = json.loads(export_json(session, {}, picture_side=1024))
        for turn in saved["turns"]:
            stored.setdefault(turn["question"], set()).add(turn["images"][0]["data"])
    assert len(shrinks) == 6 and all(size == (1920, 1440) for size in shrinks)
    assert all(len(copies) == 1 for copies in stored.values())  # each photo stored the same way every save
    assert Image.open(io.BytesIO(base64.b64decode(next(iter(stored["photo 5"]))))).size == (1024, 768)
    transcript._SHRUNK.max_bytes = 300_000  # a smaller bound: the oldest copies leave
    draw("red", "square", size=(1920, 1440)).save(tmp_path / "new.jpg", quality=90)
    newest = transcript.shrunk((tmp_path / "new.jpg").read_bytes(), "image/jpeg", 1024)
    assert sum(len(data) for data, _ in transcript._SHRUNK.copies.values()) <= 300_000
    assert list(transcript._SHRUNK.copies.values())[-1] == newest
