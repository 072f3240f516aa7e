"""Write the demo's data: a real photograph with synthetic noise, and the clean original.

``examples/data/noisy.tif`` is scikit-image's ``camera()`` sample (512 x 512, the classic
cameraman) scaled to [0, 1], with Poisson (shot) noise at a low photon count plus Gaussian
read noise; ``examples/data/clean.tif`` is the image without noise, for the PSNR that the run
reports before and after denoising. The noise is seeded, so the files are the same on every
machine. Run it once before ``hpc-runner submit examples/n2v_demo.yaml``; it does nothing when
the files exist (``--force`` rewrites them).

Usage: ``python examples/make_demo_data.py [--force] [--out DIR]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

SEED = 42
PHOTONS = 30.0  # mean photon count at full brightness: strong shot noise
READ_NOISE = 0.05  # Gaussian read noise, as a fraction of the full range


def make_images(seed: int = SEED) -> tuple[object, object]:
    """The (noisy, clean) float32 image pair."""
    import numpy as np
    from skimage import data

    clean = data.camera().astype(np.float32) / 255.0
    rng = np.random.default_rng(seed)
    noisy = rng.poisson(clean * PHOTONS) / PHOTONS
    noisy = noisy + rng.normal(0.0, READ_NOISE, clean.shape)
    return noisy.astype(np.float32), clean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--force", action="store_true", help="rewrite existing files")
    args = parser.parse_args(argv)
    noisy_path, clean_path = args.out / "noisy.tif", args.out / "clean.tif"
    if noisy_path.exists() and clean_path.exists() and not args.force:
        print(f"demo data already in {args.out}")
        return 0
    import tifffile

    noisy, clean = make_images()
    args.out.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(noisy_path, noisy)
    tifffile.imwrite(clean_path, clean)
    print(f"wrote {noisy_path} and {clean_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
