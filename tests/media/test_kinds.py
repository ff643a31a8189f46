"""The media kinds table: every place that asks what a file is gets the same answer from it."""

from __future__ import annotations


import pytest
from PIL import Image

from minicpmv_app import transcript
from minicpmv_app.errors import MediaError
from minicpmv_app.media import kinds
from minicpmv_app.session import ChatSession, Turn
from minicpmv_app.ui.streamlit_app import MODES
from minicpmv_app.ui.uploads import UploadFolder
from tests.media_factory import solid_image, write_clip, write_pdf


def test_each_suffix_names_one_kind_in_any_case():
    seen = {}
    for kind in kinds.KINDS:
        for suffix in kind.suffixes:
            assert suffix not in seen, f"{suffix} is both {seen.get(suffix)} and {kind.name}"
            seen[suffix] = kind.name
            assert kinds.kind_of(f"/tmp/holiday{suffix.upper()}") is kind
    assert kinds.by_suffix("notes.txt") is None
    assert kinds.kind_of("notes.txt") is kinds.IMAGE  # tried as a picture, so it is refused with the picture's reason


def test_an_upload_keeps_a_known_suffix_and_loses_any_other():
    folder = UploadFolder()
    try:
        for kind in kinds.KINDS:
            for suffix in kind.suffixes:
                assert kinds.kind_of(folder.save(f"mine{suffix.upper()}", b"x")) is kind
        saved = folder.save("../../etc/evil.sh", b"x")
        assert saved.suffix == ".bin" and saved.parent == folder.path
    finally:
        folder.clear()


def test_both_uis_offer_every_suffix_of_the_kinds_they_take():
    assert kinds.UPLOAD_TYPES == ["image", "video", ".pdf"]  # Gradio's names for the three kinds
    offered = {suffix for mode in MODES.values() for suffix in mode["file_type"] or []}
    assert offered == {s.lstrip(".") for s in kinds.SUFFIXES}


def test_each_kind_decodes_to_what_the_model_sees(tmp_path):
    picture = tmp_path / "red.png"
    solid_image((255, 0, 0), (64, 48)).save(picture)
    [image] = kinds.kind_of(picture).decode(picture)
    assert isinstance(image, Image.Image) and image.getpixel((10, 10)) == (255, 0, 0)

    document = write_pdf(tmp_path / "two.pdf", [solid_image((255, 0, 0), (200, 280)), solid_image((0, 0, 255), (200, 280))])
    progress = []
    pages = kinds.kind_of(document).decode(document, pages="2,1", progress=lambda d, t, k: progress.append((d, t, k)))
    assert [max(range(3), key=lambda c: p.getpixel((100, 140))[c]) for p in pages] == [2, 0]  # blue, then red
    assert progress == [(1, 2, "pdf"), (2, 2, "pdf")]

    clip = write_clip(tmp_path / "clip.mp4", seconds=2, fps=5)
    [video] = kinds.kind_of(clip).decode(clip)
    assert video.frames and video.duration == pytest.approx(2, abs=0.3)

    broken = tmp_path / "notes.txt"
    broken.write_text("not a picture")
    with pytest.raises(MediaError):
        kinds.kind_of(broken).decode(broken)


def test_a_pdf_joins_a_conversation_about_pictures_but_not_one_about_a_video(tmp_path):
    picture = tmp_path / "red.png"
    solid_image().save(picture)
    document = write_pdf(tmp_path / "one.pdf", [solid_image(size=(200, 280))])
    session = ChatSession()
    session.turns.append(Turn("Look", [str(picture)], state=transcript.State.ANSWERED, answer="red"))
    session.submit("And this page?", [str(document)])  # pages are pictures: accepted

    session = ChatSession()
    session.turns.append(Turn("Watch", ["clip.mp4"], state=transcript.State.ANSWERED, answer="a clip"))
    with pytest.raises(Exception) as caught:
        session.submit("And this page?", [str(document)])
    assert getattr(caught.value, "key", None) == "conversation_is_video"


def test_a_phone_photo_is_exported_and_restored_as_the_jpeg_it_is(tmp_path):
    """Pillow opens a phone's JPEG with a depth map as MPO; an export still names it image/jpeg."""
    photo = tmp_path / "phone.jpg"
    solid_image((0, 128, 0), (80, 60)).save(photo, format="MPO", save_all=True,
                                            append_images=[solid_image((0, 0, 0), (80, 60))])
    with Image.open(photo) as opened:
        assert opened.format == "MPO"
    turn = Turn("What colour?", [str(photo)], state=transcript.State.ANSWERED, answer="green")
    record = transcript.turn_record(turn)
    assert [image["mime"] for image in record["images"]] == ["image/jpeg"]

    session = ChatSession()
    session.turns.append(turn)
    saved = []

    def save(blob: bytes, suffix: str) -> str:
        saved.append(suffix)
        target = tmp_path / f"restored{suffix}"
        target.write_bytes(blob)
        return str(target)

    transcript.restore(ChatSession(), transcript.read(transcript.export_json(session, {}).encode()), save)
    assert saved == [".jpg"]


def test_a_video_is_named_in_an_export_not_embedded(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", seconds=1, fps=5)
    record = transcript.turn_record(Turn("What happens?", [str(clip)], state=transcript.State.ANSWERED, answer="x"))
    assert record["video"] == "clip.mp4" and record["images"] == [] and record["left_out"] == []
