"""Compare's rules without a UI: the second model loads on demand and only if it fits; both sides stream."""

from __future__ import annotations

import pytest

from minicpmv_app.compare import FIRST, SECOND, Contenders, answer_both
from minicpmv_app.errors import ModelLoadError
from minicpmv_app.session import ChatSession, Done, State, TextDelta
from minicpmv_app.ui.gradio_compare import side_settings

GREEDY = {"decode_type": "Beam Search", "num_beams": 1, "max_new_tokens": 8}


def test_the_second_model_loads_only_when_asked_and_only_if_it_fits(tiny_chat):
    roomy = Contenders(tiny_chat, {"model_path": "tiny-random", "device": "cpu"}, free_memory=lambda d: 10**12)
    assert roomy.names == [FIRST, SECOND] and "loads when first used" in roomy.label(SECOND)
    assert roomy._second is None
    second = roomy.get(SECOND)
    assert second is not tiny_chat and roomy.get(SECOND) is second  # loaded once
    assert "loads when" not in roomy.label(SECOND)

    tight = Contenders(tiny_chat, {"model_path": "tiny-random", "device": "cpu"}, free_memory=lambda d: 10_000)
    with pytest.raises(ModelLoadError, match="not loaded") as caught:
        tight.get(SECOND)
    assert caught.value.key == "second_model_too_big"
    assert Contenders(tiny_chat).names == [FIRST] and Contenders(tiny_chat).get(SECOND) is tiny_chat


def test_both_sides_answer_and_their_events_interleave_by_side(tiny_chat):
    sessions = [ChatSession(), ChatSession()]
    for session in sessions:
        session.submit("What colour is it?", [])
    seen = list(answer_both([(s, tiny_chat, GREEDY) for s in sessions]))
    assert {index for index, _ in seen} == {0, 1}
    for index in (0, 1):
        mine = [e for i, e in seen if i == index]
        assert isinstance(mine[-1], Done) and "".join(e.text for e in mine if isinstance(e, TextDelta)) == mine[-1].answer
    assert [s.state for s in sessions] == [State.ANSWERED, State.ANSWERED]


def test_a_side_that_refuses_leaves_the_other_unchanged(tiny_chat, tmp_path):
    from minicpmv_app.compare import Contenders  # noqa: F401  (the tab's submit does this; here by hand)

    a, b = ChatSession(), ChatSession()
    b.submit("Busy already", [])  # B is waiting for an answer: it refuses the next message
    turn = a.submit("What colour is it?", [])
    try:
        b.submit("What colour is it?", [])
    except Exception:
        a.withdraw(turn)
    assert a.turns == [] and [t.text for t in b.turns] == ["Busy already"]


def test_side_settings_keep_the_models_own_knobs_and_refuse_asked_ones_it_lacks(tiny_chat):
    base = {"decode_type": "Sampling", "max_new_tokens": 8, "enable_thinking": False, "max_slice_nums": 36}
    taken = side_settings(tiny_chat, base, "Beam Search", True, "4x")
    assert taken["enable_thinking"] is True and taken["downsample_mode"] == "4x" and taken["decode_type"] == "Beam Search"

    class NoKnobs:
        knobs = {}

    plain = side_settings(NoKnobs, base, "Sampling", False, "16x")
    assert "enable_thinking" not in plain and "max_slice_nums" not in plain and "downsample_mode" not in plain
    asked = side_settings(NoKnobs, base, "Sampling", True, "16x")
    assert asked["enable_thinking"] is True  # so that side says the model does not take it
