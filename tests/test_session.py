"""The conversation state machine (minicpmv_app.session): every transition, refusals that change nothing, the
double-Regenerate race, the refused-after-failure case, Stop during decoding. A scripted model stands in for the
backend so these run in well under a second each; the UIs' tests use the real tiny model."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

from minicpmv_app.errors import GenerationError, InvalidInputError
from minicpmv_app.media.video import UniformPlan
from minicpmv_app.reasoning import Reasoning
from minicpmv_app.presets import resolve
from minicpmv_app.session import ChatSession, Done, Failed, Progress, State, Stopped, TextDelta


class ScriptedChat:
    """The methods a session calls on MiniCPMVChat, answering from a script; records what it was asked."""

    def __init__(self, *answers):
        self.answers = list(answers) or ["fine"]
        self.asked = []

    def settings(self, **params):
        return resolve(**{k: v for k, v in params.items() if k != "decode_type"})

    def frame_plan(self, settings):
        return UniformPlan()

    def page_pixels(self, settings):
        return 448 * 448 * 9

    def stream_conversation(self, conversation, settings, *, stop=None, reasoning=False, keep_grounding=False):
        self.asked.append(conversation)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, tuple):  # (reasoning, answer): a thinking model
            yield Reasoning(answer[0])
            answer = answer[1]
        for word in answer.split(" "):
            if stop is not None and stop.is_set():
                return
            yield word + " "


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (32, 32), (255, 0, 0)).save(path)
    return str(path)


def run(session, chat, **settings):
    return list(session.answer(chat, settings))


def test_a_turn_goes_idle_pending_answering_answered():
    session, chat = ChatSession(), ScriptedChat("a red square")
    assert session.state == State.IDLE
    session.submit("What is it?")
    assert session.state == State.PENDING and session.busy
    events = session.answer(chat, {})
    first = next(events)
    assert isinstance(first, TextDelta) and session.state == State.ANSWERING
    rest = list(events)
    assert isinstance(rest[-1], Done) and rest[-1].answer == "a red square "
    assert session.state == State.ANSWERED and [m.role for m in session.history()] == ["user", "assistant"]


def test_history_goes_back_to_the_model_in_order(picture):
    session, chat = ChatSession(), ScriptedChat("one", "two")
    session.submit("First?", [picture])
    run(session, chat)
    session.submit("Second?")
    run(session, chat)
    roles = [(m.role, m.text) for m in chat.asked[-1].messages]
    assert roles == [("user", "First?"), ("assistant", "one "), ("user", "Second?")]
    assert len(chat.asked[-1].messages[0].images) == 1


@pytest.mark.parametrize("text, files, key", [
    ("", [], "message_empty"),
    ("x", ["a.mp4", "b.mp4"], "one_video"),
    ("x", ["a.png", "b.mp4"], "mixed_media"),
])
def test_bad_input_is_refused_and_nothing_is_recorded(text, files, key):
    session = ChatSession()
    with pytest.raises(InvalidInputError) as caught:
        session.submit(text, files)
    assert caught.value.key == key and session.turns == []


def test_a_conversation_keeps_to_one_kind_of_media(picture):
    session, chat = ChatSession(), ScriptedChat()
    session.submit("Look", [picture])
    run(session, chat)
    with pytest.raises(InvalidInputError) as caught:
        session.submit("And this", ["clip.mp4"])
    assert caught.value.key == "conversation_is_images" and len(session.turns) == 1


def test_submit_while_busy_is_refused_with_its_reason():
    session, chat = ChatSession(), ScriptedChat("a b c")
    session.submit("One")
    with pytest.raises(InvalidInputError) as pending:
        session.submit("Two")
    events = session.answer(chat, {})
    next(events)
    with pytest.raises(InvalidInputError) as answering:
        session.submit("Two")
    assert (pending.value.key, answering.value.key) == ("busy_pending", "busy_answering")
    list(events)
    assert [t.text for t in session.turns] == ["One"]


def test_a_failed_turn_is_shown_kept_out_of_history_and_never_answered_again():
    session, chat = ChatSession(), ScriptedChat(GenerationError("boom", key="model_failed"), "fine")
    session.submit("Will fail")
    events = run(session, chat)
    assert isinstance(events[-1], Failed) and session.state == State.FAILED and session.history() == []
    # A refused input after the failure changes nothing and answers nothing ...
    with pytest.raises(InvalidInputError):
        session.submit("   ")
    with pytest.raises(InvalidInputError) as caught:
        run(session, chat)
    assert caught.value.key == "nothing_to_answer" and len(chat.asked) == 1
    # ... and the next real question goes without the failed turn.
    session.submit("Next")
    run(session, chat)
    assert [m.text for m in chat.asked[-1].messages] == ["Next"]


def test_regenerate_asks_the_same_question_again():
    session, chat = ChatSession(), ScriptedChat("first", "second")
    session.submit("Q")
    run(session, chat)
    session.regenerate()
    assert session.state == State.PENDING and session.turns[-1].answer == ""
    run(session, chat)
    assert session.turns[-1].answer == "second " and len(session.turns) == 1
    assert chat.asked[0].messages[-1].parts == chat.asked[1].messages[-1].parts


def test_regenerate_retries_a_failed_turn():
    session, chat = ChatSession(), ScriptedChat(GenerationError("boom"), "ok")
    session.submit("Q")
    run(session, chat)
    session.regenerate()
    assert isinstance(run(session, chat)[-1], Done) and session.state == State.ANSWERED


def test_double_regenerate_is_refused_while_the_first_is_pending_or_answering():
    session, chat = ChatSession(), ScriptedChat("first", "one two three four")
    session.submit("Q")
    run(session, chat)
    session.regenerate()
    with pytest.raises(InvalidInputError) as pending:
        session.regenerate()
    events = session.answer(chat, {})
    next(events)
    with pytest.raises(InvalidInputError) as answering:
        session.regenerate()
    assert (pending.value.key, answering.value.key) == ("busy_pending", "busy_answering")
    assert isinstance(list(events)[-1], Done)
    assert session.turns[-1].answer == "one two three four "  # the first regenerate's answer arrived whole


def test_nothing_to_regenerate():
    session = ChatSession()
    with pytest.raises(InvalidInputError) as caught:
        session.regenerate()
    assert caught.value.key == "nothing_to_regenerate"
    session.add_example("Colour?", [], "red")
    with pytest.raises(InvalidInputError):
        session.regenerate()  # a few-shot example's answer is the person's, not the model's


def test_stop_keeps_what_was_written_and_the_conversation_goes_on():
    session, chat = ChatSession(), ScriptedChat("a b c d e f", "next")
    session.submit("Talk")
    events = session.answer(chat, {})
    next(events)
    session.stop()
    session.stop()  # twice is fine
    rest = list(events)
    assert isinstance(rest[-1], Stopped) and rest[-1].answer == "a "
    assert session.state == State.STOPPED and session.history()[-1].text == "a "
    session.submit("Go on")
    assert isinstance(run(session, chat)[-1], Done)


def test_stop_before_the_first_token_never_calls_the_model():
    session, chat = ChatSession(), ScriptedChat()
    session.submit("Q")
    session.stop()
    events = run(session, chat)
    assert events == [Stopped("")] and chat.asked == [] and session.history() == []


def test_stop_when_idle_or_twice_is_harmless():
    session = ChatSession()
    session.stop()
    session.stop()
    assert session.state == State.IDLE


def test_clear_stops_a_running_answer_and_forgets_everything():
    session, chat = ChatSession(), ScriptedChat("a b c d")
    session.submit("Q")
    events = session.answer(chat, {})
    next(events)
    running = session.turns[-1]
    session.clear()
    assert running.stop.is_set() and session.state == State.IDLE and session.history() == []
    list(events)  # the old answer ends into a turn that is no longer shown
    assert session.turns == []


def test_stop_during_video_decoding_acts_between_frames(clip):
    session, chat = ChatSession(), ScriptedChat()
    session.submit("What happens?", [str(clip(seconds=20, fps=5, size=(64, 48)))])
    events = session.answer(chat, {})
    first = next(events)
    assert isinstance(first, Progress) and first.total == 20
    session.stop()
    rest = list(events)
    frames_seen = max([e.done for e in rest if isinstance(e, Progress)] + [first.done])
    assert isinstance(rest[-1], Stopped) and chat.asked == []  # decoding ended early; the model was never called
    assert frames_seen < 20


def test_a_few_shot_example_is_checked_now_and_joins_the_history(picture, tmp_path):
    session = ChatSession()
    bad = tmp_path / "bad.png"
    bad.write_text("not a picture")
    with pytest.raises(InvalidInputError):
        session.add_example("Colour?", [str(bad)], "red")
    assert session.turns == []
    with pytest.raises(InvalidInputError) as caught:
        session.add_example("Colour?", [picture], "")
    assert caught.value.key == "few_shot_needs_answer"
    session.add_example("Colour?", [picture], "red")
    assert session.state == State.ANSWERED and session.history()[-1].text == "red"


def test_reasoning_is_never_sent_back():
    session, chat = ChatSession(), ScriptedChat("answer", "next")
    session.submit("Q")
    run(session, chat)
    session.turns[-1].reasoning = "I think the shape is red"
    session.submit("Q2")
    run(session, chat)
    assert "I think" not in str([m.parts for m in chat.asked[-1].messages])


def test_transitions_from_two_threads_record_one_turn():
    session = ChatSession()
    results = []

    def submit():
        try:
            session.submit("same")
            results.append("ok")
        except InvalidInputError:
            results.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] + ["refused"] * 7 and len(session.turns) == 1


def test_reasoning_is_kept_apart_and_never_sent_back(picture):
    session, chat = ChatSession(), ScriptedChat(("I see red.", "red"), "square")
    session.submit("What colour?", [picture])
    events = run(session, chat)
    assert [type(e).__name__ for e in events][:3] == ["Progress", "ReasoningDelta", "TextDelta"]  # Progress: the picture
    turn = session.turns[-1]
    assert (turn.reasoning, turn.answer) == ("I see red.", "red ")
    session.submit("And the shape?")
    run(session, chat)
    sent = [m.text for m in chat.asked[-1].messages]
    assert sent == ["What colour?", "red ", "And the shape?"] and not any("I see" in t for t in sent)


def test_a_grounded_answer_has_its_boxes_on_its_picture(picture):
    session, chat = ChatSession(), ScriptedChat("<ref>red square</ref><box>100 100 900 900</box>")
    session.submit("Where is the shape?", [picture])
    run(session, chat)
    turn = session.turns[-1]
    assert turn.shown_answer.strip() == "red square"
    assert [(r.label, r.image) for r in turn.regions] == [("red square", 0)]
    ((index, figure),) = turn.figures()
    assert index == 0 and figure.size == (32, 32)
    # The history keeps the raw answer: what the model wrote.
    assert "<box>" in session.history()[-1].text


def test_locate_asks_the_grounding_prompt_about_the_latest_picture(picture):
    session, chat = ChatSession(), ScriptedChat("red", "<ref>shape</ref><box>0 0 500 500</box>")
    with pytest.raises(InvalidInputError) as caught:
        session.locate("shape")
    assert caught.value.key == "nothing_to_locate"
    session.submit("What colour?", [picture])
    run(session, chat)
    with pytest.raises(InvalidInputError) as caught:
        session.locate("  ")
    assert caught.value.key == "locate_empty"
    turn = session.locate("shape")
    assert turn.files == [picture] and turn.text.endswith("<ref>shape</ref>")
    assert turn.label == {"key": "locate_turn", "phrase": "shape"}  # shown as asked: "Locate: shape"
    run(session, chat)
    assert [r.label for r in session.turns[-1].regions] == ["shape"]
    # One-image models: the picture already in the conversation is not sent again.
    assert session.locate("shape", resend=False).files == []


def test_zoom_crops_the_chosen_box_and_refuses_without_one(picture):
    session, chat = ChatSession(), ScriptedChat("<ref>a</ref><box>0 0 500 500</box> <ref>b</ref><box>500 500 1000 1000</box>")
    with pytest.raises(InvalidInputError) as caught:
        session.zoom(0)
    assert caught.value.key == "nothing_to_zoom"
    session.submit("Where?", [picture])
    run(session, chat)
    assert [r.label for r in session.regions()] == ["a", "b"]
    assert session.zoom(1).size == (18, 18)  # 16 px plus a 10% margin inside the picture
    with pytest.raises(InvalidInputError):
        session.zoom(5)


def test_recognize_sends_the_cards_prompt_about_the_given_or_latest_picture(image_file):
    from minicpmv_app.backends.cards import MINICPM_OCR
    from minicpmv_app.errors import InvalidInputError

    table = MINICPM_OCR.prompt("table")
    session, chat = ChatSession(), ScriptedChat("<table><tr><td>a</td></tr></table>")
    with pytest.raises(InvalidInputError) as refused:
        session.recognize(table)
    assert refused.value.key == "nothing_to_recognize"
    first, crop = image_file(name="page.png"), image_file(colour=(0, 0, 255), name="crop.png")
    turn = session.recognize(table, str(first))
    assert (turn.text, turn.files, turn.answer_format) == ("Table Recognition:", [str(first)], "html")
    list(session.answer(chat, {}))
    assert chat.asked[-1].messages[-1].text == "Table Recognition:" and len(chat.asked[-1].images) == 1
    assert session.recognize(MINICPM_OCR.prompt("text"), str(crop)).files == [str(crop)]  # a crop in the box
    list(session.answer(chat, {}))
    assert session.recognize(table).files == [str(crop)]  # else the latest picture in the chat


def test_a_stop_while_decoding_marks_the_turn_unsent_and_regenerate_decodes_again(clip):
    from minicpmv_app.session import Stopped
    from minicpmv_app.ui.gradio_common import render

    def stopped_while_decoding(session, chat):
        turn = session.submit("What colour is the video?", [str(clip(seconds=2, fps=10))])
        turn.stop.set()  # pressed while the frames are being decoded
        assert isinstance(list(session.answer(chat, {}))[-1], Stopped)
        return turn

    session, chat = ChatSession(), ScriptedChat("a blue video")
    turn = stopped_while_decoding(session, chat)
    assert turn.unsent and turn.parts is None and chat.asked == []  # the model never got it
    assert "not sent to the model" in render(session, "en")[-1]["content"]  # and the page says so
    session.regenerate()  # the same turn again: its video is decoded and sent this time
    list(session.answer(chat, {}))
    assert len(chat.asked[-1].videos) == 1 and not session.turns[-1].unsent

    session, chat = ChatSession(), ScriptedChat("a blue video")
    stopped_while_decoding(session, chat)
    session.submit("And now?")  # a follow-up instead: the unsent video is not in its history
    list(session.answer(chat, {}))
    assert not chat.asked[-1].videos


def test_an_answer_cut_off_by_max_new_tokens_says_so_even_when_thinking_used_it_all(trained_chat):
    """The trained tiny thinking with a budget of 1 token: the reasoning took it, the answer is empty. The page
    says why instead of showing an empty bubble; a budget that lets it finish says nothing."""
    from minicpmv_app.tiny_task import draw
    from minicpmv_app.ui.gradio_common import render
    from minicpmv_app.ui.i18n import text

    def ask(tmp, **settings):
        session = ChatSession()
        path = tmp / "blue.png"
        draw("blue", "square").save(path)
        session.submit("What colour is the shape?", [str(path)])
        list(session.answer(trained_chat, {"decode_type": "Beam Search", "num_beams": 1, **settings}))
        return session

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        short = ask(Path(folder), max_new_tokens=1, enable_thinking=True)
        assert short.turns[-1].cut_off and short.turns[-1].answer == ""
        assert render(short, "en")[-1]["content"] == f"*{text('cut_off', 'en')}*"
        whole = ask(Path(folder), max_new_tokens=64, enable_thinking=True)
        assert not whole.turns[-1].cut_off and whole.turns[-1].answer.strip() == "blue"
        assert text("cut_off", "en") not in render(whole, "en")[-1]["content"]
