"""Re-encodes scikit-image's sample photos (CC-licensed) to ImageNet-like JPEGs for the data bench.

Usage: python scripts/bench/make-images.py [OUT_DIR]   (default .cache/bench-images)
Needs Pillow and pip. Downloads the scikit-image wheel (no install), takes its colour photos, and writes
128 JPEGs of 500x375 (quality 90) from random crops of them into OUT_DIR/<photo>/, an ImageFolder tree.
"""
import glob
import os
import random
import subprocess
import sys
import tempfile
import zipfile

from PIL import Image

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg",
          "hubble_deep_field.jpg", "ihc.png", "retina.jpg"]


def fetch_photos(tmp):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "scikit-image", "-d", tmp],
                   check=True)
    wheel = glob.glob(os.path.join(tmp, "scikit_image-*.whl"))[0]
    with zipfile.ZipFile(wheel) as z:
        for name in PHOTOS:
            z.extract(f"skimage/data/{name}", tmp)
    return [os.path.join(tmp, "skimage/data", n) for n in PHOTOS]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else ".cache/bench-images"
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        for path in fetch_photos(tmp):
            img = Image.open(path).convert("RGB")
            cls = os.path.join(out, os.path.splitext(os.path.basename(path))[0])
            os.makedirs(cls, exist_ok=True)
            for k in range(16):
                scale = rng.uniform(0.6, 1.0)
                w, h = int(img.width * scale), int(img.width * scale * 0.75)
                h = min(h, img.height)
                x, y = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
                crop = img.crop((x, y, x + w, y + h)).resize((500, 375), Image.BICUBIC)
                crop.save(os.path.join(cls, f"{k:03d}.jpg"), quality=90)
    print(f"wrote {len(PHOTOS) * 16} JPEGs under {out}")


if __name__ == "__main__":
    main()
