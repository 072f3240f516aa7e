"""Preview pictures during training: what the network makes of one fixed crop, epoch by epoch.

Every ``preview.every_n_epochs`` epochs (and after the last) :class:`PreviewCallback` predicts
the crop chosen by :mod:`hpc_runner.data.preview_region` with the current weights, the way
careamics' own ``predict_step`` does - the training data's normalisation
(``datamodule.train_dataset.normalization``), the module's forward pass, ``denormalize`` - and
writes ``previews/epoch_NNNN.png`` (:mod:`hpc_runner.data.preview_image`) atomically, then a
``preview`` record naming it, with the crop's PSNR when the spec has a ground truth.

A preview must never break or change the training: it runs in eval mode without gradients and
restores every random number generator (Python, numpy, torch, CUDA) and each submodule's
train/eval mode afterwards, so a run's losses are the same with previews on and off (tested);
any failure is recorded as one debug message and ends the previews of that attempt.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning.pytorch import Callback, LightningModule, Trainer

from hpc_runner.data.preview_region import Region, plan_region, read_region
from hpc_runner.spec.preview_section import PreviewSpec, preview_due
from hpc_runner.stream.files import replace_file
from hpc_runner.stream.previews import PREVIEWS_DIR, preview_relpath
from hpc_runner.stream.records import PreviewValue
from hpc_runner.stream.status import TrainUpdateType

if TYPE_CHECKING:
    import numpy as np
    import torch

    from hpc_runner.node.callback import StatusCallback
    from hpc_runner.spec.job import JobSpec


@contextmanager
def training_untouched(module: torch.nn.Module) -> Iterator[None]:
    """Run a prediction inside a training without changing what the training does next.

    Eval mode (batch norm uses, and does not update, its running statistics; dropout is off),
    no autograd graph (the parameters' gradients stay as they are), and on exit every random
    number generator state and every submodule's own train/eval mode as they were.
    """
    import numpy as np
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    modes = [(submodule, submodule.training) for submodule in module.modules()]
    grad_enabled = torch.is_grad_enabled()
    try:
        module.eval()
        with torch.no_grad():
            yield
    finally:
        for submodule, mode in modes:
            submodule.training = mode
        torch.set_grad_enabled(grad_enabled)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def predict_crop(module: torch.nn.Module, normalization: Any, crop: np.ndarray) -> np.ndarray:
    """``crop`` (``C(Z)YX``) through careamics' prediction path: normalise, forward, denormalise."""
    import numpy as np
    import torch

    normalised, _ = normalization(crop)
    parameter = next(module.parameters())
    batch = torch.from_numpy(np.ascontiguousarray(normalised[np.newaxis]))
    output = module(batch.to(parameter.device, parameter.dtype))
    restored = normalization.denormalize(output.float())
    return np.asarray(restored.detach().cpu().numpy()[0], dtype=np.float32)


class PreviewCallback(Callback):
    """Write a preview picture every few epochs (rank 0 only).

    Parameters
    ----------
    status : StatusCallback
        The run's status callback: its writer records each preview (one writer per file).
    run_dir : path
        The run directory (pictures go to its ``previews/``).
    spec : PreviewSpec
        How often and which crop.
    image : array, list of arrays or source name
        The training image (the first one is previewed).
    axes : str
        The image's axes as the training names them.
    multiple : int
        Crop sides are multiples of this (``2**depth`` of the UNet).
    z_depth : int, optional
        Planes the network sees at once (3D: the training patch's Z size).
    channels : sequence of int, optional
        The channels the training uses (careamics' ``channels``).
    ground_truth : array or source name, optional
        The clean image, for the crop's PSNR.
    """

    def __init__(
        self,
        status: StatusCallback,
        run_dir: str | Path,
        spec: PreviewSpec,
        image: Any,
        axes: str,
        *,
        multiple: int = 4,
        z_depth: int | None = None,
        channels: Sequence[int] | None = None,
        ground_truth: Any = None,
    ) -> None:
        self.status = status
        self.run_dir = Path(run_dir)
        self.spec = spec
        self.image = image
        self.axes = axes
        self.multiple = multiple
        self.z_depth = z_depth
        self.channels = list(channels) if channels is not None else None
        self.ground_truth = ground_truth
        self.active = spec.enabled
        self.written: list[PreviewValue] = []
        self._region: Region | None = None
        self._crop: np.ndarray | None = None
        self._truth: np.ndarray | None = None
        self._every = 1

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.active = self.spec.enabled and trainer.is_global_zero

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.active or self._crop is not None:
            return
        try:
            self._prepare(int(trainer.max_epochs or 1))
        except Exception as exc:  # a preview never breaks a training: say why, stop previewing
            self._give_up("the crop could not be read", exc)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.active or self._crop is None or trainer.sanity_checking:
            return
        epoch = trainer.current_epoch + 1
        due = preview_due(epoch, int(trainer.max_epochs or epoch), self._every)
        if not (due or trainer.should_stop):  # a stop ends the run: show where it got to
            return
        try:
            self.take(trainer, pl_module, epoch)
        except Exception as exc:  # a preview never breaks a training: say why, stop previewing
            self._give_up(f"the preview of epoch {epoch} failed", exc)

    def take(self, trainer: Trainer, pl_module: LightningModule, epoch: int) -> PreviewValue:
        """Predict the crop now, write its picture and record it."""
        from hpc_runner.data.preview_image import compose, png_bytes
        from hpc_runner.data.sources import psnr

        assert self._crop is not None and self._region is not None
        normalization = _training_normalization(trainer)
        with training_untouched(pl_module):
            prediction = predict_crop(pl_module, normalization, self._crop)
        measured = psnr(prediction, self._truth) if self._truth is not None else None
        plane = None
        if self._region.z is not None and self._region.z0 is not None:
            plane = self._region.z - self._region.z0
        picture = compose(self._crop, prediction, epoch=epoch, psnr=measured, plane=plane)
        relpath = preview_relpath(epoch)
        (self.run_dir / PREVIEWS_DIR).mkdir(exist_ok=True)
        replace_file(self.run_dir / relpath, png_bytes(picture))
        value = PreviewValue(relpath, epoch, measured)
        self.status.writer.write_extension("preview", value)
        self.written.append(value)
        return value

    def _prepare(self, max_epochs: int) -> None:
        self._every = self.spec.interval(max_epochs)
        shape = _shape(self.image)
        self._region = plan_region(
            shape,
            self.axes,
            multiple=self.multiple,
            z_depth=self.z_depth,
            region=self.spec.region,
            z=self.spec.z,
        )
        self._crop = read_region(self.image, self.axes, self._region, self.channels)
        if self.ground_truth is not None:
            try:
                self._truth = read_region(
                    self.ground_truth, self.axes, self._region, self.channels, image_shape=shape
                )
            except (ValueError, OSError) as exc:
                self._debug(f"previews without PSNR: the ground truth's crop: {exc}")

    def _give_up(self, what: str, exc: BaseException) -> None:
        self.active = False
        self._debug(f"previews off for this attempt: {what}: {type(exc).__name__}: {exc}")

    def _debug(self, message: str) -> None:
        self.status.emit(TrainUpdateType.DEBUG, message)


def _training_normalization(trainer: Trainer) -> Any:
    """The normalisation careamics computed from the training data (its predictions use it)."""
    dataset = getattr(getattr(trainer, "datamodule", None), "train_dataset", None)
    normalization = getattr(dataset, "normalization", None)
    if normalization is None:
        raise RuntimeError("careamics' training normalisation was not found")
    return normalization


def _shape(image: Any) -> tuple[int, ...]:
    if isinstance(image, list | tuple):
        image = image[0]
    if isinstance(image, str) or hasattr(image, "__fspath__"):
        from hpc_runner.data.sources import check_source

        return check_source(str(image))[0]
    return tuple(image.shape)


def preview_callback(
    spec: JobSpec, run_dir: str | Path, train_kwargs: dict[str, Any], status: StatusCallback
) -> PreviewCallback | None:
    """The preview callback of a run (None with ``preview: false``)."""
    if not spec.preview.enabled:
        return None
    try:
        data_config = spec.careamics["data_config"]
        axes: str = data_config["axes"]
        model = spec.careamics["algorithm_config"].get("model") or {}
        patch = data_config["patching"]["patch_size"]
        depth = int(model.get("depth", 2))
    except (KeyError, TypeError, ValueError) as exc:  # a configuration careamics took anyway
        status.emit(TrainUpdateType.DEBUG, f"no previews: {type(exc).__name__}: {exc}")
        return None
    return PreviewCallback(
        status,
        run_dir,
        spec.preview,
        train_kwargs["train_data"],
        axes,
        multiple=2**depth,
        z_depth=int(patch[0]) if "Z" in axes else None,
        channels=data_config.get("channels"),
        ground_truth=spec.ground_truth,
    )
