"""A preview picture: the input crop and its prediction side by side, one contrast, a label.

Pure image work (numpy and Pillow, both careamics dependencies): the node hands in two
``C(Z)YX`` float arrays and gets PNG bytes back.

- 3D: the plane asked for (default the middle one) of each.
- Channels: one is grey; two are magenta and green (readable with red-green colour blindness);
  three are red, green and blue; of more, the first three are shown (the label says so).
- Contrast: one stretch for both panels, per channel, from the 1st to the 99.5th percentile of
  the input, so that the prediction is seen in the input's terms and the input looks the same
  in every preview (a stretch per panel would make any prediction look as contrasted as the
  noise; one over both panels would let an untrained network's wild output grey the input).
- Small crops are enlarged by a whole factor (nearest neighbour) to at least
  :data:`MIN_PANEL` pixels a side, so that the label fits and a terminal shows more than a dot.

PNG writer chosen by measurement (``benchmarks/bench_preview.py``; a 528x280 RGB picture):
Pillow at ``compress_level=1`` takes ~8 ms, at its default level 6 ~35 ms, imageio (Pillow
underneath) ~31 ms, and level 1 files are no larger for noisy images.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

#: Percentiles of the shared contrast stretch.
PERCENTILES = (1.0, 99.5)
#: Smallest side of a panel in the picture (small crops are enlarged to it).
MIN_PANEL = 160
#: Pixels between the two panels, and height of the label strip above them.
GAP = 4
LABEL_HEIGHT = 16
#: Colour of each shown channel by the number of channels shown (RGB weights).
CHANNEL_COLOURS: dict[int, tuple[tuple[float, float, float], ...]] = {
    2: ((1.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
    3: ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
}
PNG_COMPRESS_LEVEL = 1


def shown_plane(crop: np.ndarray, plane: int | None = None) -> np.ndarray:
    """``C x Y x X`` of a ``C(Z)YX`` crop: for 3D the given plane (default the middle one)."""
    if crop.ndim == 3:
        return crop
    if crop.ndim != 4:
        raise ValueError(f"expected a C(Z)YX crop, got {crop.ndim} dimensions")
    return crop[:, crop.shape[1] // 2 if plane is None else plane]


def stretch_limits(*panels: np.ndarray) -> list[tuple[float, float]]:
    """Per channel, the (low, high) percentiles of all ``panels`` (``C x Y x X``) together."""
    import numpy as np

    limits = []
    for channel in range(panels[0].shape[0]):
        values = np.concatenate([panel[channel].ravel() for panel in panels])
        values = values[np.isfinite(values)]
        if values.size == 0:
            limits.append((0.0, 1.0))
            continue
        low, high = (float(v) for v in np.percentile(values, PERCENTILES))
        limits.append((low, high if high > low else low + 1.0))
    return limits


def to_pixels(panel: np.ndarray, limits: Sequence[tuple[float, float]]) -> np.ndarray:
    """``uint8`` pixels of a ``C x Y x X`` panel: ``Y x X`` grey for one channel, else RGB."""
    import numpy as np

    shown = panel[:3]
    scaled = np.empty(shown.shape, dtype=np.float32)
    for channel, (low, high) in enumerate(limits[: len(shown)]):
        scaled[channel] = (shown[channel] - low) / (high - low)
    scaled = np.nan_to_num(np.clip(scaled, 0.0, 1.0), nan=0.0)
    if len(shown) == 1:
        return (scaled[0] * 255.0 + 0.5).astype(np.uint8)
    colours = np.asarray(CHANNEL_COLOURS[len(shown)], dtype=np.float32)  # channels x RGB
    rgb = np.clip(np.tensordot(scaled, colours, axes=([0], [0])), 0.0, 1.0)
    return (rgb * 255.0 + 0.5).astype(np.uint8)


def compose(
    input_crop: np.ndarray,
    prediction: np.ndarray,
    *,
    epoch: int,
    psnr: float | None = None,
    plane: int | None = None,
) -> Image.Image:
    """The picture: ``input | prediction`` under a strip naming each (``input  epoch 12``,
    ``prediction  PSNR 24.31 dB``).

    Parameters
    ----------
    input_crop, prediction : ndarray
        ``C(Z)YX`` float arrays of the same spatial size (channels may differ: CARE may predict
        other channels than it reads; each panel is then stretched on its own).
    epoch : int
        Epochs completed.
    psnr : float, optional
        The prediction's PSNR against the ground truth.
    plane : int, optional
        For 3D crops, the plane shown (index within the crop).
    """
    import numpy as np
    from PIL import Image, ImageDraw

    left, right = shown_plane(input_crop, plane), shown_plane(prediction, plane)
    if left.shape[0] == right.shape[0]:
        limits_left = limits_right = stretch_limits(left)
    else:
        limits_left, limits_right = stretch_limits(left), stretch_limits(right)
    panels = [to_pixels(left, limits_left), to_pixels(right, limits_right)]
    if panels[0].ndim != panels[1].ndim:  # one grey, one colour: both colour
        panels = [p if p.ndim == 3 else np.repeat(p[..., np.newaxis], 3, axis=2) for p in panels]
    height, width = panels[0].shape[:2]
    factor = max(1, math.ceil(MIN_PANEL / max(1, min(height, width))))
    panels = [p.repeat(factor, axis=0).repeat(factor, axis=1) for p in panels]
    height, width = height * factor, width * factor
    mode = "L" if panels[0].ndim == 2 else "RGB"
    picture = Image.new(mode, (2 * width + GAP, height + LABEL_HEIGHT), 0)
    for index, pixels in enumerate(panels):
        picture.paste(Image.fromarray(pixels, mode), (index * (width + GAP), LABEL_HEIGHT))
    draw = ImageDraw.Draw(picture)
    font = _font()
    white: Any = 255 if mode == "L" else (255, 255, 255)
    channels = f"  ch 0-2 of {left.shape[0]}" if left.shape[0] > 3 else ""
    draw.text((2, 2), f"input  epoch {epoch}{channels}", fill=white, font=font)
    measured = "" if psnr is None else f"  PSNR {psnr:.2f} dB"
    draw.text((width + GAP + 2, 2), f"prediction{measured}", fill=white, font=font)
    return picture


def panel_boxes(picture_size: tuple[int, int]) -> tuple[tuple[int, int, int, int], ...]:
    """The (left, top, right, bottom) boxes of the input and prediction panels in a picture."""
    total_width, total_height = picture_size
    width = (total_width - GAP) // 2
    return (
        (0, LABEL_HEIGHT, width, total_height),
        (width + GAP, LABEL_HEIGHT, total_width, total_height),
    )


def png_bytes(picture: Image.Image) -> bytes:
    """The picture as PNG (see the module's note on the compression level)."""
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return out.getvalue()


def _font() -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=11)
    except (OSError, ValueError, TypeError):  # Pillow without FreeType: its bitmap font
        return ImageFont.load_default()
