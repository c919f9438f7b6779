"""Writes the real-encoder image fixtures in tests/fixtures/leather-crop/ from the vendored MVTec file.

Run with Debian's Python and libjpeg-turbo (python3-pil, libjpeg-turbo-progs):
/usr/bin/python3 scripts/make_image_fixtures.py

A 240x289 crop (not square, not a multiple of the 8- or 16-pixel JPEG block) of
tests/fixtures/mvtec-leather/train/good/000.png, written by real encoders: Pillow's PNG encoder (gray)
and libjpeg-turbo's cjpeg (4:2:0 baseline with restart markers, progressive, gray).
tests/data_image_file_test.ts decodes each and compares it with the same crop of the source PNG.
"""
import pathlib
import subprocess
import tempfile

from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "fixtures" / "mvtec-leather" / "train" / "good" / "000.png"
OUT = ROOT / "tests" / "fixtures" / "leather-crop"
# left, top, right, bottom: 240 wide, 289 high
BOX = (300, 200, 540, 489)

OUT.mkdir(exist_ok=True)
crop = Image.open(SOURCE).convert("RGB").crop(BOX)
crop.convert("L").save(OUT / "gray.png")  # Pillow: L = (299 R + 587 G + 114 B) / 1000, rounded
with tempfile.TemporaryDirectory() as tmp:
    ppm = pathlib.Path(tmp) / "crop.ppm"
    crop.save(ppm)
    for name, flags in [
        ("rgb420.jpg", ["-quality", "90", "-sample", "2x2", "-restart", "3"]),
        ("progressive.jpg", ["-quality", "90", "-progressive"]),
        ("gray.jpg", ["-quality", "90", "-grayscale"]),
    ]:
        subprocess.run(["cjpeg", *flags, "-outfile", str(OUT / name), str(ppm)], check=True)
for path in sorted(OUT.iterdir()):
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")
