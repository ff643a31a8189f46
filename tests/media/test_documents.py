"""PDFs as pages: ranges, limits, resolution from the slice budget, refusals that leave nothing behind."""

from __future__ import annotations

import os
import tempfile

import pytest
from PIL import Image

from minicpmv_app.errors import MediaError
from minicpmv_app.media.documents import MAX_PAGES, check_pdf, parse_pages, render_pdf, target_pixels
from tests.media_factory import write_pdf

RED, BLUE, GREEN = (220, 30, 30), (30, 60, 220), (30, 170, 60)


def pages(*colours, size=(300, 200)):
    return [Image.new("RGB", size, colour) for colour in colours]


def centre(image: Image.Image):
    """The colour at the page's centre, as the nearest of ours (Pillow stores PDF pages as JPEG)."""
    pixel = image.getpixel((image.width // 2, image.height // 2))
    return min((RED, BLUE, GREEN), key=lambda c: sum((a - b) ** 2 for a, b in zip(c, pixel)))


@pytest.mark.parametrize("spec, chosen", [("", [1, 2, 3]), ("2", [2]), ("2-2", [2]), ("2-", [2, 3]),
                                          ("3,1", [3, 1]), ("1-2, 2-3", [1, 2, 3])])
def test_page_ranges(spec, chosen):
    assert parse_pages(spec, 3) == chosen


@pytest.mark.parametrize("spec, key", [("4", "pdf_range_outside"), ("0", "pdf_range_outside"),
                                       ("3-1", "pdf_range_outside"), ("two", "pdf_bad_range"), ("1-2-3", "pdf_bad_range")])
def test_bad_page_ranges_are_refused_with_their_reason(spec, key):
    with pytest.raises(MediaError) as caught:
        parse_pages(spec, 3)
    assert caught.value.key == key


def test_pages_render_in_order_with_their_content(tmp_path):
    pdf = write_pdf(tmp_path / "doc.pdf", pages(RED, BLUE, GREEN))
    images = render_pdf(pdf, check_pdf(pdf, "3,1"))
    assert [centre(i) for i in images] == [GREEN, RED]
    assert all(i.mode == "RGB" for i in images)


def test_resolution_follows_the_models_slice_budget(tmp_path):
    # A 300x200 pt page drawn for 9 slices of 448x448 has about 9*448*448 pixels; for 36 slices, four times that.
    pdf = write_pdf(tmp_path / "doc.pdf", pages(RED))
    nine = render_pdf(pdf, [1], pixels=target_pixels({"max_slice_nums": 9}))[0]
    thirty_six = render_pdf(pdf, [1], pixels=target_pixels({"max_slice_nums": 36}))[0]
    assert abs(nine.width * nine.height / (9 * 448 * 448) - 1) < 0.02
    assert abs(thirty_six.width / nine.width - 2) < 0.02
    assert target_pixels({}) == target_pixels({"max_slice_nums": 9})


def test_progress_is_reported_per_page(tmp_path):
    pdf = write_pdf(tmp_path / "doc.pdf", pages(RED, BLUE))
    seen = []
    render_pdf(pdf, [1, 2], progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]


def test_too_many_pages_are_refused_and_a_range_gets_under_the_limit(tmp_path):
    pdf = write_pdf(tmp_path / "long.pdf", pages(*[RED] * (MAX_PAGES + 2), size=(60, 40)))
    with pytest.raises(MediaError, match=f"more than {MAX_PAGES}") as caught:
        check_pdf(pdf)
    assert caught.value.key == "pdf_too_many_pages"
    assert check_pdf(pdf, f"3-{MAX_PAGES + 2}") == list(range(3, MAX_PAGES + 3))


def test_encrypted_and_broken_pdfs_are_refused_and_leave_nothing_in_temp(tmp_path, monkeypatch):
    # A temp folder of this test's own: the machine's /tmp is shared with whatever else runs beside the suite
    # (under load a Gradio server there wrote its cache meanwhile), and that is not the app's writing.
    private = tmp_path / "temp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    monkeypatch.setenv("TMPDIR", str(private))
    before = set(os.listdir(tempfile.gettempdir()))
    locked = write_pdf(tmp_path / "locked.pdf", pages(RED), password="secret")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n1 0 obj <<>> garbage")
    with pytest.raises(MediaError, match="password") as caught:
        check_pdf(locked)
    assert caught.value.key == "pdf_encrypted"
    with pytest.raises(MediaError) as caught:
        check_pdf(broken)
    assert caught.value.key == "pdf_unreadable"
    with pytest.raises(MediaError) as caught:
        check_pdf(tmp_path / "missing.pdf")
    assert caught.value.key == "pdf_missing" and str(tmp_path) not in str(caught.value)  # no server path
    render_pdf(write_pdf(tmp_path / "fine.pdf", pages(RED)), [1])
    assert set(os.listdir(tempfile.gettempdir())) - before == set()  # checked and drawn in memory only


def test_each_pdf_failure_gets_its_own_reason_whatever_failed_before(tmp_path):
    """PDFium reports its last error, which a failure that sets none leaves stale: a 0-page PDF after a protected
    one read "password-protected", after a garbage one "damaged". Each now says what is wrong with it."""
    from pypdf import PdfWriter

    locked = write_pdf(tmp_path / "locked.pdf", pages(RED), password="secret")
    empty = tmp_path / "zero-pages.pdf"
    PdfWriter().write(str(empty))
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"this is not a PDF at all\n" * 20)
    expected = {locked: "pdf_encrypted", empty: "pdf_no_pages", garbage: "pdf_unreadable"}
    for order in ([locked, empty, garbage], [garbage, empty, locked], [empty, locked, empty, garbage, empty]):
        for path in order:
            with pytest.raises(MediaError) as caught:
                check_pdf(path)
            assert caught.value.key == expected[path], (path.name, [p.name for p in order])
