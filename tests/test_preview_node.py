"""Preview pictures written by real tiny careamics trainings on the CPU: they do not change the
training, they work for 2D, 3D and multi-channel data, and a failing preview never breaks a run.

The demo's previews (the expected number, both panels, PSNR rising) are checked on the README's
demo training in ``tests/test_demo.py`` with :func:`assert_demo_previews`.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hpc_runner.data.preview_image import panel_boxes
from hpc_runner.node.callback import StatusCallback
from hpc_runner.node.preview import PreviewCallback, training_untouched
from hpc_runner.node.training import train_with_status
from hpc_runner.spec.preview_section import PreviewSpec
from hpc_runner.stream.previews import preview_file
from hpc_runner.stream.run_state import RunState, replay
from tests.tiny import tiny_config, tiny_image

pytestmark = pytest.mark.training


def _train(
    run_dir: Path, image: np.ndarray, config: Any, preview: PreviewSpec | None, **options: Any
) -> tuple[RunState, PreviewCallback | None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    status = StatusCallback(run_dir / "status.jsonl")
    callbacks = []
    previews = None
    if preview is not None:
        axes = config.data_config.axes
        previews = PreviewCallback(status, run_dir, preview, image, axes, **options)
        callbacks.append(previews)
    train_with_status(
        run_dir / "status.jsonl",
        config=config,
        status_callback=status,
        callbacks=callbacks,
        train_data=image,
    )
    return replay(run_dir / "status.jsonl"), previews


def panels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The input and prediction panels of a preview PNG, as Pillow reads it."""
    with Image.open(io.BytesIO(path.read_bytes())) as picture:
        picture.load()
        assert picture.format == "PNG"
        left, right = (np.asarray(picture.crop(box), dtype=np.float64) for box in
                       panel_boxes(picture.size))  # fmt: skip
    return left, right


def test_previews_leave_the_training_exactly_as_it_was(tmp_path: Path) -> None:
    """Same seed, previews after every epoch or none: the same loss at every step."""
    image = tiny_image()
    with_previews, callback = _train(
        tmp_path / "on", image, tiny_config(num_epochs=3), PreviewSpec(every_n_epochs=1),
        ground_truth=image,
    )  # fmt: skip
    without, _ = _train(tmp_path / "off", image, tiny_config(num_epochs=3), None)
    assert with_previews.status.state.name == "DONE"
    assert len(with_previews.losses) == 21
    assert with_previews.losses.tolist() == without.losses.tolist()
    assert with_previews.val_losses == without.val_losses
    assert callback is not None and [v.epoch for v in callback.written] == [1, 2, 3]
    for value in callback.written:
        left, right = panels(tmp_path / "on" / value.path)
        assert not np.array_equal(left, right)
    assert all(v.psnr is not None and np.isfinite(v.psnr) for v in callback.written)


def test_training_untouched_restores_generators_modes_and_gradients() -> None:
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), torch.nn.Dropout(0.5)
    )
    model.train()
    model[2].eval()  # a submodule a training keeps in eval mode stays so
    model(torch.ones(3, 4)).sum().backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    running = model[1].running_mean.clone()
    states = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    with training_untouched(model):
        assert not model.training and not torch.is_grad_enabled()
        random.random(), np.random.random(), torch.rand(3)  # a prediction that draws numbers
        model(torch.randn(3, 4))
    assert model.training and model[1].training and not model[2].training
    assert torch.is_grad_enabled()
    assert random.getstate() == states[0]
    assert np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])
    assert torch.equal(model[1].running_mean, running)  # eval: batch norm statistics kept
    after = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.equal(a, b) for a, b in zip(grads, after, strict=True))


@pytest.mark.parametrize(
    ("axes", "shape", "config", "mode"),
    [
        ("ZYX", (16, 48, 48), {"patch_size": (8, 16, 16)}, "L"),
        ("YXC", (48, 48, 2), {"n_channels": 2}, "RGB"),
        ("CYX", (3, 48, 48), {"n_channels": 3}, "RGB"),
    ],
)
def test_3d_and_multichannel_data_give_a_sensible_preview(
    tmp_path: Path, axes: str, shape: tuple[int, ...], config: dict[str, Any], mode: str
) -> None:
    clean = np.zeros(shape, dtype=np.float32)
    clean[tuple(slice(s // 4, 3 * s // 4) for s in shape)] = 1.0  # a bright block
    image = clean + np.random.default_rng(0).normal(0, 0.3, shape).astype(np.float32)
    run, callback = _train(
        tmp_path, image, tiny_config(axes=axes, num_epochs=1, **config), PreviewSpec(),
        ground_truth=clean,
    )  # fmt: skip
    assert run.status.state.name == "DONE" and callback is not None
    (written,) = callback.written
    assert run.preview == written and written.psnr is not None
    path = preview_file(tmp_path, written.path)
    assert path is not None and path.is_file()
    with Image.open(path) as picture:
        assert picture.mode == mode
    left, right = panels(path)
    assert left.shape == right.shape and not np.array_equal(left, right)
    assert np.isfinite(written.psnr) and right.std() > 0
    # the crop, its axes and channels are right: the bright block sits in the input's middle
    # (a network trained for one epoch of 2-patch batches predicts little yet)
    middle = left[left.shape[0] // 3 : 2 * left.shape[0] // 3,
                  left.shape[1] // 3 : 2 * left.shape[1] // 3]  # fmt: skip
    assert middle.mean() > left[:8, :8].mean() + 40


def test_a_failing_preview_is_reported_and_the_training_goes_on(tmp_path: Path) -> None:
    """``previews`` is a file, so no picture can be written: one message, no more previews."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "previews").write_text("not a directory")
    run, callback = _train(
        tmp_path, tiny_image(), tiny_config(num_epochs=2), PreviewSpec(every_n_epochs=1)
    )
    assert run.status.state.name == "DONE" and run.exception is None
    assert callback is not None and callback.written == [] and run.preview is None
    failures = [m for _, m in run.debug if m.startswith("previews off")]
    assert len(failures) == 1 and "the preview of epoch 1 failed: FileExistsError" in failures[0]


def roughness(panel: np.ndarray) -> float:
    """Mean difference between horizontally neighbouring pixels: high for pixel noise."""
    return float(np.abs(np.diff(panel, axis=1)).mean())


def assert_demo_previews(run_dir: Path, entry: dict[str, Any]) -> None:
    """The README demo (30 epochs, ground truth): 10 previews, each a PNG whose prediction
    differs from its input, the PSNR of the last above that of the first."""
    pictures = sorted((run_dir / "previews").glob("epoch_*.png"))
    assert [p.name for p in pictures] == [f"epoch_{e:04d}.png" for e in range(3, 31, 3)]
    for picture in pictures:
        left, right = panels(picture)
        assert left.shape == right.shape and np.abs(left - right).mean() > 5
        # the noise is gone: neighbouring pixels differ far less (measured: 29.5 vs 2.8-6.4)
        assert roughness(right) < roughness(left) / 2
    assert entry["preview"] == str(pictures[-1]) and entry["preview_epoch"] == 30
    history = entry["psnr_history"]
    assert [epoch for epoch, _ in history] == list(range(3, 31, 3))
    assert history[-1][1] > history[0][1] + 3.0  # measured here: 15.7 -> 24.1 dB
