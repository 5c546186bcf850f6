#!/usr/bin/env python3
"""Reference outputs of PIL for models/imageset's tests.

Writes models/imageset/testdata/pil_resize.json: PIL's Image.resize of small
procedural RGB images (the pattern `pattern` below, which the Go test
recreates) with bilinear and bicubic filters, shrinking and enlarging, as
hex strings of the interleaved RGB bytes; and testdata/cmyk.jpg, a CMYK JPEG
(Go cannot encode one) of the same pattern, with PIL's RGB reading of it.

    /usr/bin/python3 scripts/imageset-reference.py   # needs Pillow (python3-pil)
"""
import json
import os

from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "imageset", "testdata")


def pattern(w, h):
    """Edges, gradients and texture: value = (7x² + 13y + 71c + 5(x xor y)) mod 256."""
    img = Image.new("RGB", (w, h))
    px = img.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = tuple((7 * x * x + 13 * y + 71 * c + 5 * (x ^ y)) & 255 for c in range(3))
    return img


def main():
    cases = []
    for (sw, sh), (dw, dh) in [((37, 23), (16, 10)), ((37, 23), (9, 5)), ((37, 23), (50, 31)),
                               ((40, 40), (40, 17)), ((64, 48), (21, 16)), ((5, 3), (12, 7))]:
        src = pattern(sw, sh)
        for name, f in (("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)):
            out = src.resize((dw, dh), f)
            cases.append({"src": [sw, sh], "dst": [dw, dh], "filter": name, "rgb": out.tobytes().hex()})
    os.makedirs(OUT, exist_ok=True)
    cmyk = pattern(24, 16).convert("CMYK")
    cmyk.save(os.path.join(OUT, "cmyk.jpg"), quality=95)
    back = Image.open(os.path.join(OUT, "cmyk.jpg")).convert("RGB")
    with open(os.path.join(OUT, "pil_resize.json"), "w") as f:
        json.dump({"pil": Image.__version__, "resize": cases,
                   "cmyk_jpeg_rgb": back.tobytes().hex()}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
