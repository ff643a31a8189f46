from minicpmv_app.grounding import GroundingFilter, strip_grounding

ANSWER = "There is <ref>a cat</ref><box>(12,40),(200,310)</box> on <ref>the sofa</ref>."


def test_tags_are_stripped_like_upstream():
    assert strip_grounding(ANSWER) == "There is a cat on the sofa."


def test_stream_split_anywhere_gives_the_same_text():
    for size in range(1, 8):
        pieces = [ANSWER[i : i + size] for i in range(0, len(ANSWER), size)]
        grounding = GroundingFilter()
        shown = "".join(grounding.feed(p) for p in pieces) + grounding.flush()
        assert shown == "There is a cat on the sofa.", size


def test_plain_less_than_signs_survive():
    grounding = GroundingFilter()
    assert grounding.feed("if a < b and c <d") + grounding.flush() == "if a < b and c <d"
