import pytest

from minicpmv_app.errors import MediaError
from minicpmv_app.media.video import MAX_NUM_FRAMES, available_backends, load_video, sample_indices


def test_sampling_takes_one_frame_per_second():
    assert sample_indices(100, 10.0) == list(range(0, 100, 10))


def test_sampling_caps_at_64_uniformly():
    indices = sample_indices(30 * 600, 30.0)  # ten minutes at 30 fps
    assert len(indices) == MAX_NUM_FRAMES
    gaps = {b - a for a, b in zip(indices, indices[1:])}
    assert max(gaps) - min(gaps) <= 30  # uniform up to one source second
    assert indices[0] > 0 and indices[-1] < 30 * 600


@pytest.mark.parametrize("backend", available_backends())
def test_clip_is_sampled_at_about_one_fps(clip, backend):
    path = clip(seconds=5, fps=10)
    video = load_video(path, backend=backend)
    assert len(video) == 5
    assert video.indices == [0, 10, 20, 30, 40]
    assert video.duration == pytest.approx(5.0, abs=0.2)
    levels = [frame.convert("L").getpixel((5, 5)) for frame in video.frames]
    assert levels == sorted(levels) and levels[-1] - levels[0] > 100  # frames come in order, from across the clip


def test_decoders_agree(clip):
    if len(available_backends()) < 2:
        pytest.skip("needs both decord and PyAV")
    path = clip(seconds=4, fps=8)
    a, b = (load_video(path, backend=name) for name in ("decord", "pyav"))
    assert a.indices == b.indices
    for x, y in zip(a.frames, b.frames):
        assert abs(x.convert("L").getpixel((3, 3)) - y.convert("L").getpixel((3, 3))) <= 3


def test_long_clip_is_capped_at_64_frames(clip):
    path = clip(seconds=80, fps=2, size=(32, 32))
    video = load_video(path)
    assert len(video) == MAX_NUM_FRAMES


def test_progress_is_reported(clip):
    seen = []
    load_video(clip(seconds=3, fps=5), progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (3, 3)


def test_empty_and_non_video_files_are_refused(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        load_video(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(MediaError, match="cannot be decoded|no video"):
        load_video(text)


@pytest.mark.parametrize("backend", available_backends())
def test_a_portrait_phone_clip_reaches_the_model_standing_up(tmp_path, backend):
    """Stored 128x64 landscape with a display matrix turning it 90° clockwise: frames come out 64x128, with the
    stored left half (red) on top, as every player shows it."""
    import av

    from tests.media_factory import set_display_rotation, two_tone_clip

    path = set_display_rotation(two_tone_clip(tmp_path / "portrait.mp4"), 90)
    with av.open(str(path)) as container:
        assert next(container.decode(video=0)).rotation == -90  # FFmpeg sees what a phone writes
    video = load_video(path, backend=backend)
    frame = video.frames[0]
    assert frame.size == (64, 128)
    top, bottom = frame.getpixel((32, 10)), frame.getpixel((32, 118))
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60


def test_a_clip_without_rotation_is_left_as_stored(tmp_path):
    from tests.media_factory import two_tone_clip

    frame = load_video(two_tone_clip(tmp_path / "landscape.mp4")).frames[0]
    assert frame.size == (128, 64) and frame.getpixel((10, 32))[0] > 200
