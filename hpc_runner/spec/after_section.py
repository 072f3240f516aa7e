"""The optional ``after:`` section of a job spec: what the node does once the training is DONE.

::

    after:
      predict:                        # denoise images with the trained model
        images: data/noisy.tif        # a source or a list (as in data:); default: data.train
        axes: SYX                     # the images' axes; default: the training's axes
        tile_size: [256, 256]         # predict tile by tile (large images); default: whole
        tile_overlap: [48, 48]        # even, smaller than the tile; default: a quarter tile
        format: tiff                  # tiff (one file per image) or hdf5 (one file)
      export_bmz:                     # a BioImage Model Zoo archive of the model
        authors: [Jane Doe, {name: John Roe, affiliation: EMBL}]
        name: N2V demo                # default: the run's name
        description: ...              # default: says what was trained, on what
        data_description: ...
        input: data/noisy.tif         # example input (cropped); default: data.train

Checked at submission like the rest of the spec (files exist, tiles fit careamics' rules,
authors given), so that a typo does not surface after hours of training. Plain data: the
resolved section goes into ``run.yaml`` and back (:meth:`AfterSpec.to_dict`,
:meth:`AfterSpec.from_dict`); :mod:`hpc_runner.node.after` carries it out on the node.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hpc_runner.spec.errors import Problems, check_keys, join_key, type_name

AFTER_KEYS = ("predict", "export_bmz")
PREDICT_KEYS = ("images", "axes", "tile_size", "tile_overlap", "format")
BMZ_KEYS = ("authors", "name", "description", "data_description", "input")
AUTHOR_KEYS = ("name", "affiliation", "email", "github_user", "orcid")
FORMATS = ("tiff", "hdf5")


@dataclass(frozen=True)
class PredictSpec:
    """Prediction after training: sources (None = the training data), tiling, output format."""

    images: tuple[str, ...] | None = None
    axes: str | None = None
    tile_size: tuple[int, ...] | None = None
    tile_overlap: tuple[int, ...] | None = None
    format: str = "tiff"


@dataclass(frozen=True)
class BmzSpec:
    """BioImage Model Zoo export: authors (``{"name": ...}`` mappings) and descriptions."""

    authors: tuple[dict[str, str], ...]
    name: str | None = None
    description: str | None = None
    data_description: str | None = None
    input: str | None = None


@dataclass(frozen=True)
class AfterSpec:
    """The resolved ``after:`` section (sources absolute)."""

    predict: PredictSpec | None = None
    export_bmz: BmzSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        """YAML-able form for ``run.yaml``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> AfterSpec | None:
        """The section back from ``run.yaml`` (None when there is none)."""
        if not data:
            return None
        predict, bmz = data.get("predict"), data.get("export_bmz")
        return cls(
            predict=PredictSpec(**_tuples(predict, ("images", "tile_size", "tile_overlap")))
            if predict
            else None,
            export_bmz=BmzSpec(**_tuples(bmz, ("authors",))) if bmz else None,
        )


def _tuples(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: tuple(v) if k in keys and v is not None else v for k, v in data.items()}


def after_section(
    section: Any, spec_dir: Path, careamics: dict[str, Any] | None, problems: Problems
) -> AfterSpec | None:
    """The ``after:`` section checked against the training configuration, or None."""
    if section is None:
        return None
    if not isinstance(section, dict):
        problems.add(
            "after",
            f"expected a mapping with predict: and/or export_bmz:, got {type_name(section)}",
        )
        return None
    check_keys(section, AFTER_KEYS, "after", problems)
    predict = (
        _predict(section.get("predict"), spec_dir, careamics, problems)
        if "predict" in section
        else None
    )
    bmz = _bmz(section.get("export_bmz"), spec_dir, problems) if "export_bmz" in section else None
    if predict is None and bmz is None:
        return None
    return AfterSpec(predict=predict, export_bmz=bmz)


def _mapping(value: Any, key: str, problems: Problems) -> dict[str, Any] | None:
    if value is None or value is True:
        return {}
    if not isinstance(value, dict):
        problems.add(key, f"expected a mapping (or true for the defaults), got {type_name(value)}")
        return None
    return value


def _sources(value: Any, key: str, spec_dir: Path, problems: Problems) -> tuple[str, ...] | None:
    from hpc_runner.spec.data_section import _source

    values = value if isinstance(value, list) else [value]
    if not values:
        problems.add(key, "expected a source or a non-empty list of sources")
        return None
    found = [
        _source(item, join_key(key, i) if isinstance(value, list) else key, spec_dir, problems)
        for i, item in enumerate(values)
    ]
    return tuple(source for source in found if source is not None) if all(found) else None


def _predict(
    value: Any, spec_dir: Path, careamics: dict[str, Any] | None, problems: Problems
) -> PredictSpec | None:
    section = _mapping(value, "after.predict", problems)
    if section is None:
        return None
    check_keys(section, PREDICT_KEYS, "after.predict", problems)
    images = None
    if section.get("images") is not None:
        images = _sources(section["images"], "after.predict.images", spec_dir, problems)
    axes = section.get("axes")
    if axes is not None and (not isinstance(axes, str) or not axes or set(axes) - set("STCZYX")):
        problems.add(
            "after.predict.axes", f"expected axes like 'SYX' (letters of STCZYX), got {axes!r}"
        )
        axes = None
    if images is not None and careamics is not None:
        _check_dimensions(images, axes or careamics["data_config"]["axes"], problems)
    fmt = section.get("format", "tiff")
    if fmt not in FORMATS:
        problems.add("after.predict.format", f"'{fmt}' is not one of {', '.join(FORMATS)}")
    tile = _ints(section.get("tile_size"), "after.predict.tile_size", problems)
    overlap = _ints(section.get("tile_overlap"), "after.predict.tile_overlap", problems)
    if overlap is not None and tile is None:
        problems.add("after.predict.tile_overlap", "given without tile_size (add tile_size)")
    if tile is not None and careamics is not None:
        overlap = overlap or tuple(min(48, size // 4 // 2 * 2) for size in tile)
        _check_tiles(tile, overlap, careamics, problems)
    return PredictSpec(
        images=images, axes=axes, tile_size=tile, tile_overlap=overlap, format=str(fmt)
    )


def _check_dimensions(images: tuple[str, ...], axes: str, problems: Problems) -> None:
    from hpc_runner.data.sources import check_source

    for index, source in enumerate(images):
        for shape in check_source(source):
            if len(shape) != len(axes):
                problems.add(
                    join_key("after.predict.images", index)
                    if len(images) > 1
                    else "after.predict.images",
                    f"image has {len(shape)} dimensions {shape} but the axes '{axes}' have "
                    f"{len(axes)} (set after.predict.axes, e.g. 'S{axes}' for a stack)",
                )
                return


def _ints(value: Any, key: str, problems: Problems) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) and item >= 0 for item in value
    ):
        problems.add(key, f"expected a list of whole numbers (one per spatial axis), got {value!r}")
        return None
    return tuple(value)


def _check_tiles(
    tile: tuple[int, ...], overlap: tuple[int, ...], careamics: dict[str, Any], problems: Problems
) -> None:
    """careamics' own tile rules (square in YX, overlap even and smaller), one value per
    spatial axis, and a multiple of the UNet's 2**depth (else tiles show seams)."""
    import pydantic
    from careamics.config.data.patching_strategies import TiledPatchingConfig

    spatial = [axis for axis in careamics["data_config"]["axes"] if axis in "ZYX"]
    for key, sizes in (("tile_size", tile), ("tile_overlap", overlap)):
        if len(sizes) != len(spatial):
            problems.add(
                f"after.predict.{key}",
                f"{len(sizes)} values for the {len(spatial)} spatial axes {''.join(spatial)}",
            )
            return
    try:
        TiledPatchingConfig(name="tiled", patch_size=list(tile), overlaps=list(overlap))
    except pydantic.ValidationError as error:
        for item in error.errors():
            key = "tile_size" if item["loc"][:1] == ("patch_size",) else "tile_overlap"
            problems.add(
                f"after.predict.{key}", "careamics: " + item["msg"].removeprefix("Value error, ")
            )
        return
    depth = int(careamics["algorithm_config"]["model"].get("depth", 0))
    if any(size % 2**depth for size in tile):
        problems.add(
            "after.predict.tile_size",
            f"{list(tile)}: use multiples of {2**depth} (2 ** the model's depth {depth})",
        )


def _bmz(value: Any, spec_dir: Path, problems: Problems) -> BmzSpec | None:
    section = _mapping(value, "after.export_bmz", problems)
    if section is None:
        return None
    check_keys(section, BMZ_KEYS, "after.export_bmz", problems)
    authors = _authors(section.get("authors"), problems)
    texts = {}
    for key in ("name", "description", "data_description"):
        text = section.get(key)
        if text is not None and (not isinstance(text, str) or not text.strip()):
            problems.add(
                f"after.export_bmz.{key}", f"expected a non-empty string, got {type_name(text)}"
            )
            text = None
        texts[key] = text
    example = None
    if section.get("input") is not None:
        found = _sources(section["input"], "after.export_bmz.input", spec_dir, problems)
        example = found[0] if found else None
    if authors is None:
        return None
    return BmzSpec(authors=authors, input=example, **texts)


def _authors(value: Any, problems: Problems) -> tuple[dict[str, str], ...] | None:
    key = "after.export_bmz.authors"
    if not isinstance(value, list) or not value:
        reason = "missing" if value is None else f"expected a list, got {type_name(value)}"
        problems.add(key, f"{reason} (the Model Zoo needs authors: 'authors: [Your Name]')")
        return None
    authors = []
    for index, author in enumerate(value):
        where = join_key(key, index)
        if isinstance(author, str) and author.strip():
            authors.append({"name": author.strip()})
        elif isinstance(author, dict) and isinstance(author.get("name"), str):
            check_keys(author, AUTHOR_KEYS, where, problems)
            authors.append({k: str(v) for k, v in author.items() if k in AUTHOR_KEYS})
        else:
            problems.add(where, "expected a name, or a mapping with name: (and affiliation:, ...)")
    return tuple(authors) if len(authors) == len(value) else None
