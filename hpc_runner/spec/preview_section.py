"""The optional ``preview:`` section of a job spec: pictures of the denoising during training.

::

    preview:                   # default: on, about 10 previews per run plus the last epoch
      every_n_epochs: 5        # a preview after every 5th epoch (and after the last one)
      region: [128, 64, 256]   # y0, x0, size: the square crop shown, size <= 256 (default:
                               # the centred one of <= 192)
      z: 12                    # 3D data: the plane shown (default: the middle one)
    # preview: false           # no previews

Each preview predicts the crop with the current weights and writes
``previews/epoch_NNNN.png`` in the run directory (:mod:`hpc_runner.node.preview`). The crop is
checked at submission against the training image and the network (:mod:`hpc_runner.data.
preview_region`), so a region off the image is reported before anything runs. Plain data that
round-trips through ``run.yaml`` (:meth:`PreviewSpec.to_dict`, :meth:`PreviewSpec.from_dict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpc_runner.spec.errors import Problems, check_keys, type_name

if TYPE_CHECKING:
    from hpc_runner.spec.data_section import DataSpec

PREVIEW_KEYS = ("every_n_epochs", "region", "z")
#: About this many previews per run by default (plus the last epoch's).
DEFAULT_PREVIEWS = 10


def default_interval(max_epochs: int) -> int:
    """Epochs between two previews so that a run makes about :data:`DEFAULT_PREVIEWS`."""
    return max(1, math.ceil(max_epochs / DEFAULT_PREVIEWS))


def preview_due(epoch: int, max_epochs: int, every: int) -> bool:
    """Whether a preview is taken after ``epoch`` epochs (counted from 1): every ``every``-th
    epoch, and the last one."""
    return epoch % every == 0 or epoch >= max_epochs


@dataclass(frozen=True)
class PreviewSpec:
    """The resolved ``preview:`` section.

    Attributes
    ----------
    enabled : bool
        False for ``preview: false``.
    every_n_epochs : int | None
        Epochs between previews; None: :func:`default_interval` of the run's epochs.
    region : (y0, x0, size) | None
        The crop; None: the centred square of at most 192 pixels.
    z : int | None
        The plane shown of 3D data; None: the middle one.
    """

    enabled: bool = True
    every_n_epochs: int | None = None
    region: tuple[int, int, int] | None = None
    z: int | None = None

    def interval(self, max_epochs: int) -> int:
        """Epochs between two previews of a run of ``max_epochs``."""
        return self.every_n_epochs or default_interval(max_epochs)

    def to_dict(self) -> dict[str, Any] | bool:
        """YAML-able form for ``run.yaml`` (``False`` when off)."""
        if not self.enabled:
            return False
        return {
            "every_n_epochs": self.every_n_epochs,
            "region": list(self.region) if self.region else None,
            "z": self.z,
        }

    @classmethod
    def from_dict(cls, data: Any) -> PreviewSpec:
        """The section back from ``run.yaml`` (absent, from an older run.yaml: the default)."""
        if data is False:
            return cls(enabled=False)
        if not isinstance(data, dict):
            return cls()
        region = data.get("region")
        return cls(
            every_n_epochs=data.get("every_n_epochs"),
            region=(int(region[0]), int(region[1]), int(region[2])) if region else None,
            z=data.get("z"),
        )


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def preview_section(
    section: Any, careamics: dict[str, Any] | None, data: DataSpec | None, problems: Problems
) -> PreviewSpec:
    """The ``preview:`` section as a :class:`PreviewSpec`; problems are added to ``problems``."""
    if section is None or section is True:
        section = {}
    if section is False:
        return PreviewSpec(enabled=False)
    if not isinstance(section, dict):
        problems.add(
            "preview",
            f"expected true, false or a mapping (e.g. 'preview: {{every_n_epochs: 5}}'), "
            f"got {type_name(section)}",
        )
        return PreviewSpec()
    check_keys(section, PREVIEW_KEYS, "preview", problems)
    every = section.get("every_n_epochs")
    if every is not None and not (_whole(every) and every >= 1):
        problems.add(
            "preview.every_n_epochs",
            f"expected a whole number of epochs, 1 or more, got {type_name(every)} "
            f"({every!r}); leave it out for about {DEFAULT_PREVIEWS} previews per run",
        )
        every = None
    region = section.get("region")
    if region is not None and not (
        isinstance(region, list) and len(region) == 3 and all(_whole(v) for v in region)
    ):
        problems.add(
            "preview.region",
            f"expected [y0, x0, size] (three whole numbers: the top left corner and the side "
            f"of the square), got {region!r}",
        )
        region = None
    z = section.get("z")
    if z is not None and not (_whole(z) and z >= 0):
        problems.add("preview.z", f"expected a plane index (0 or more), got {z!r}")
        z = None
    spec = PreviewSpec(
        every_n_epochs=every,
        region=tuple(region) if region else None,
        z=z,  # type: ignore[arg-type]
    )
    if careamics is not None and data is not None and (region is not None or z is not None):
        _check_fits(spec, careamics, data, problems)
    return spec


def _check_fits(
    spec: PreviewSpec, careamics: dict[str, Any], data: DataSpec, problems: Problems
) -> None:
    """The region and plane asked for fit the first training image and the network."""
    from hpc_runner.data.preview_region import RegionError, plan_region
    from hpc_runner.data.sources import DataSourceError, check_source

    try:
        shape = check_source(data.train)[0]
    except (DataSourceError, IndexError):
        return  # data.train's own problem is reported by the data section
    data_config = careamics["data_config"]
    axes: str = data_config["axes"]
    if len(shape) != len(axes):
        return  # reported by check_data_fits
    model = careamics["algorithm_config"].get("model") or {}
    patch = data_config["patching"]["patch_size"]
    try:
        plan_region(
            shape,
            axes,
            multiple=2 ** int(model.get("depth", 2)),
            z_depth=int(patch[0]) if "Z" in axes else None,
            region=spec.region,
            z=spec.z,
        )
    except RegionError as error:
        problems.add(f"preview.{error.key}", str(error))
