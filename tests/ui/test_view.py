"""The view of a turn (``ui/view.py``), tested once for every UI: sessions driven through their real states, in
both languages, then the two adapters' output for the same turns."""

from __future__ import annotations

import pytest
from PIL import Image

from minicpmv_app.errors import MediaError
from minicpmv_app.media import kinds
from minicpmv_app.session import ChatSession, State
from minicpmv_app.ui import view
from minicpmv_app.ui.i18n import text
from tests.media_factory import write_pdf
from tests.test_session import ScriptedChat, run


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (255, 0, 0)).save(path)
    return str(path)


def answered(*answers, files=(), question="What is it?"):
    session, chat = ChatSession(), ScriptedChat(*answers)
    session.submit(question, list(files))
    run(session, chat)
    return session.turns[-1]


def kinds_of(blocks):
    return [type(block).__name__ for block in blocks]


def test_a_waiting_question_shows_the_persons_side_only(picture, tmp_path):
    document = write_pdf(tmp_path / "report.pdf", [Image.new("RGB", (200, 280), "white")] * 3)
    session = ChatSession()
    turn = session.submit("Summarise", [picture, str(document)], pages="2-3")
    blocks = view.question_blocks(turn, "en", name=lambda path: "mine-" + path.rsplit("/", 1)[-1])
    assert kinds_of(blocks) == ["File", "File", "Question"]
    assert blocks[0].kind is kinds.IMAGE and blocks[0].caption is None  # a picture shows itself
    assert blocks[1].caption == "📄 mine-report.pdf: pages 2-3" and blocks[1].name == "mine-report.pdf"
    assert view.answer_blocks(turn, "en") == []


def test_thinking_is_open_while_written_and_closed_once_the_answer_starts():
    session, chat = ChatSession(), ScriptedChat(("let me look", "a red square"))
    session.submit("What is it?")
    events = session.answer(chat, {})
    next(events)  # the reasoning
    turn = session.turns[-1]
    assert [(type(b).__name__, getattr(b, "open", None)) for b in view.answer_blocks(turn, "en")] == [("Thinking", True)]
    next(events)  # the first word of the answer
    blocks = view.answer_blocks(turn, "en")
    assert kinds_of(blocks) == ["Thinking", "Answer"] and not blocks[0].open and blocks[1].text == "a"
    list(events)
    assert view.answer_blocks(turn, "en")[1].text == "a red square"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_failed_answer_says_why_in_the_pages_language(lang):
    turn = answered(MediaError("The image is empty (0 bytes).", key="image_empty"))
    [failure] = view.answer_blocks(turn, lang)
    assert isinstance(failure, view.Failure)
    assert failure.text == text("error_prefix", lang, message=text("error.image_empty", lang) if lang == "zh"
                                else "The image is empty (0 bytes).")


def test_a_stopped_answer_keeps_its_words_and_says_it_was_stopped_in_the_view_only():
    session, chat = ChatSession(), ScriptedChat("one two three four")
    session.submit("Count.")
    events = session.answer(chat, {})
    next(events)
    session.stop()
    list(events)
    blocks = view.answer_blocks(session.turns[-1], "zh")
    assert kinds_of(blocks) == ["Answer", "Mark"] and blocks[0].text == "one" and blocks[1].text == "（已停止）"
    session.submit("Go on.")
    run(session, chat)
    previous = chat.asked[-1].messages[-2]
    assert previous.role == "assistant" and "停止" not in previous.text


def test_stop_before_the_first_word_says_so_and_says_when_it_never_reached_the_model(picture):
    session, chat = ChatSession(), ScriptedChat("never")
    session.submit("Count.")
    session.stop()
    run(session, chat)
    assert session.turns[-1].state == State.STOPPED
    assert [b.text for b in view.answer_blocks(session.turns[-1], "en")] == [text("stopped", "en")]
    unsent = ChatSession()
    turn = unsent.submit("What?", [picture])
    turn.state = State.STOPPED  # as a Stop while decoding leaves it: nothing was sent
    assert [b.text for b in view.answer_blocks(turn, "en")] == [text("stopped_unsent", "en")]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_answer_with_no_words_says_so(lang):
    turn = answered("")
    assert [(type(b).__name__, b.text) for b in view.answer_blocks(turn, lang)] == [("Mark", text("empty_answer", lang))]


def test_a_cut_off_answer_says_so_under_its_words():
    turn = answered("a red")
    turn.cut_off = True  # as the session sets it when max new tokens ends the answer
    assert [b.text for b in view.answer_blocks(turn, "en")] == ["a red", text("cut_off", "en")]


def test_a_model_written_table_is_sanitised_and_marked_as_html():
    turn = answered('<table><tr><td onclick="steal()">1</td></tr></table><script>steal()</script>')
    [answer] = view.answer_blocks(turn, "en")
    assert answer.html and answer.text == "<table><tbody><tr><td>1</td></tr></tbody></table>"
    assert not view.answer_blocks(answered("<b>bold</b> words"), "en")[0].html  # only tables are shown as HTML


def test_a_grounded_answer_shows_its_text_its_raw_answer_and_its_boxes(picture):
    turn = answered("<ref>red square</ref><box>100 100 900 900</box>", files=[picture], question="Where is it?")
    blocks = view.answer_blocks(turn, "zh")
    assert kinds_of(blocks) == ["Answer", "RawAnswer", "Figure"]
    assert blocks[0].text == "red square" and "<box>100 100 900 900</box>" in blocks[1].text
    assert blocks[2].index == 0 and blocks[2].image.size == (40, 30)
    assert blocks[2].caption == text("grounding_figure", "zh", n=1)


def test_boxes_that_belong_to_no_picture_are_counted(picture, tmp_path):
    other = tmp_path / "blue.png"
    Image.new("RGB", (40, 30), (0, 0, 255)).save(other)
    turn = answered("<ref>a</ref><box>0 0 500 500</box>", files=[picture, str(other)], question="Where?")
    blocks = view.answer_blocks(turn, "en")
    assert kinds_of(blocks)[-1] == "Unplaced" and blocks[-1].text == text("grounding_unplaced", "en", count=1)


def test_a_locate_turn_shows_the_words_the_person_chose(picture):
    session, chat = ChatSession(), ScriptedChat("red", "<ref>shape</ref><box>0 0 500 500</box>")
    session.submit("What colour?", [picture])
    run(session, chat)
    turn = session.locate("shape")
    assert [b.text for b in view.question_blocks(turn, "zh") if isinstance(b, view.Question)] == [
        text("locate_turn", "zh", phrase="shape")]


def test_gradio_draws_each_block_as_a_chatbot_message(picture):
    from minicpmv_app.ui.gradio_common import render

    session, chat = ChatSession(), ScriptedChat(("hmm", "<ref>shape</ref><box>100 100 900 900</box>"), "one two")
    session.submit("Where?", [picture])
    run(session, chat)
    session.submit("Count.")
    events = session.answer(chat, {})
    next(events)
    session.stop()
    list(events)
    messages = render(session, "en")
    assert [m["role"] for m in messages] == ["user", "user", "assistant", "assistant", "assistant", "assistant",
                                              "user", "assistant"]
    assert messages[0]["content"] == {"path": picture}
    assert messages[2]["metadata"]["title"] == "Thinking" and messages[2]["metadata"]["status"] == "done"
    assert messages[3]["content"] == "shape" and messages[4]["content"].startswith("```text\n<ref>shape</ref>")
    figure = messages[5]["content"]
    assert figure["alt_text"] == "Boxes on image 1" and Image.open(figure["path"]).size == (40, 30)
    assert render(session, "en")[5]["content"]["path"] == figure["path"]  # the drawn picture is saved once
    assert messages[7]["content"] == "one\n\n*(stopped)*"  # the mark joins the answer's bubble


def test_thinking_with_no_answer_says_the_answer_is_missing():
    """A model that thought and then ended: the page shows its Thinking and says no answer came, never a blank."""
    turn = answered(("let me look", ""))
    blocks = view.answer_blocks(turn, "en")
    assert kinds_of(blocks) == ["Thinking", "Mark"] and blocks[1].text == text("empty_answer", "en")
