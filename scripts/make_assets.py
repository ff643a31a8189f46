"""Draw the demos' example media (receipt, chart, two scenes, a short clip) so nothing is downloaded.

    python scripts/make_assets.py        # writes assets/
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minicpmv_app.media.video import write_video  # noqa: E402

ASSETS = ROOT / "assets"


def font(size: int):
    return ImageFont.load_default(size=size)


def receipt(path: Path) -> None:
    image = Image.new("RGB", (360, 420), "white")
    draw = ImageDraw.Draw(image)
    rows = [
        ("CORNER CAFE", "", 28), ("12 Market Street", "", 16), ("", "", 10),
        ("Flat white", "3.50", 18), ("Croissant", "2.75", 18),
        ("Orange juice", "4.00", 18), ("Banana bread", "4.50", 18),
        ("", "", 10), ("TOTAL", "14.75", 22), ("", "", 10), ("Thank you!", "", 18),
    ]
    y = 20
    for label, price, size in rows:
        draw.text((24, y), label, fill="black", font=font(size))
        if price:  # prices right-aligned in one column, as on a real receipt
            draw.text((330 - draw.textlength(price, font=font(size)), y), price, fill="black", font=font(size))
        y += size + 12
    image.save(path, optimize=True)


def chart(path: Path) -> None:
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun"]
    sales = [12, 18, 9, 24, 16, 20]
    image = Image.new("RGB", (480, 320), "white")
    draw = ImageDraw.Draw(image)
    draw.text((150, 10), "Monthly sales (k$)", fill="black", font=font(20))
    draw.line((50, 280, 460, 280), fill="black", width=2)
    draw.line((50, 280, 50, 50), fill="black", width=2)
    for i, (month, value) in enumerate(zip(months, sales)):
        x = 70 + i * 65
        top = 280 - value * 9
        draw.rectangle((x, top, x + 40, 280), fill=(60, 110, 200))
        draw.text((x + 8, 286), month, fill="black", font=font(14))
        draw.text((x + 10, top - 18), str(value), fill="black", font=font(14))
    image.save(path, optimize=True)


def scene(path: Path, second_shape: str) -> None:
    image = Image.new("RGB", (320, 240), (245, 245, 235))
    draw = ImageDraw.Draw(image)
    draw.ellipse((30, 60, 130, 160), fill=(220, 30, 30))
    if second_shape == "square":
        draw.rectangle((190, 60, 290, 160), fill=(30, 60, 220))
    else:
        draw.polygon([(240, 55), (190, 165), (290, 165)], fill=(30, 170, 60))
    image.save(path, optimize=True)


def clip(path: Path, seconds: int = 4, fps: int = 10, size=(160, 120)) -> None:
    """A yellow ball rolling across a meadow."""
    count = seconds * fps

    def frames():
        for n in range(count):
            image = Image.new("RGB", size, (200, 230, 255))
            draw = ImageDraw.Draw(image)
            x = 10 + (size[0] - 50) * n / (count - 1)
            draw.rectangle((0, 95, size[0], size[1]), fill=(90, 170, 80))
            draw.ellipse((x, 60, x + 30, 90), fill=(240, 200, 0))
            yield image

    write_video(path, frames(), fps=fps, size=size, options={"preset": "veryslow", "crf": "30"})


def main(folder: Path = ASSETS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    receipt(folder / "receipt.png")
    chart(folder / "chart.png")
    scene(folder / "shapes_a.png", "square")
    scene(folder / "shapes_b.png", "triangle")
    clip(folder / "clip.mp4")
    for item in sorted(folder.iterdir()):
        print(f"{item.name:14} {item.stat().st_size:>8} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ASSETS)
