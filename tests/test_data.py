"""Data sources from real files (TIFF, NumPy, Zarr, HDF5) feeding real tiny careamics trainings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import yaml
import zarr

from hpc_runner.data.sources import (
    DataSourceError,
    careamics_data_type,
    check_source,
    load_source,
    psnr,
    source_kind,
    split_source,
)
from hpc_runner.data.train_arguments import training_arguments
from hpc_runner.spec.job import DataSpec, load_job_spec
from tests.tiny import tiny_image

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def files(tmp_path: Path) -> dict[str, np.ndarray]:
    """One tiny image per format, written with each format's own library."""
    images = {name: tiny_image(seed=seed) for seed, name in enumerate("abcdef")}
    tifffile.imwrite(tmp_path / "a.tif", images["a"])
    (tmp_path / "stack").mkdir()
    tifffile.imwrite(tmp_path / "stack" / "1.tif", images["a"])
    tifffile.imwrite(tmp_path / "stack" / "2.tiff", images["b"])
    np.save(tmp_path / "b.npy", images["b"])
    np.savez(tmp_path / "one.npz", only=images["c"])
    np.savez(tmp_path / "two.npz", noisy=images["c"], clean=images["d"])
    with h5py.File(tmp_path / "e.h5", "w") as handle:
        handle.create_dataset("/train/noisy", data=images["e"])
        handle.create_dataset("/train/clean", data=images["d"])
    zarr.save_array(str(tmp_path / "f.zarr"), images["f"])
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("raw", shape=images["f"].shape, dtype=images["f"].dtype)[...] = images["f"]
    return images


def test_split_and_kind() -> None:
    assert split_source("/d/x.h5:/train/noisy") == ("/d/x.h5", "/train/noisy")
    assert split_source("/d/x.H5") == ("/d/x.H5", None)
    assert split_source("/d/p.npz:noisy") == ("/d/p.npz", "noisy")
    assert split_source("/d/s.zarr:/raw") == ("/d/s.zarr", "/raw")
    assert split_source("/d/a:b/img.tif") == ("/d/a:b/img.tif", None)
    kinds = [source_kind(s) for s in ("a.tif", "a.TIFF", "a.npy", "a.npz:x", "a.hdf5:/d", "a.zarr")]
    assert kinds == ["tiff", "tiff", "numpy", "numpy", "hdf5", "zarr"]
    with pytest.raises(DataSourceError, match=re.escape("unsupported file type '.png'")):
        source_kind("a.png")


def test_data_type_is_tiff_only_when_careamics_can_read_the_tiffs(tmp_path: Path) -> None:
    assert careamics_data_type({"train": "a.tif", "val": "b.tiff"}) == "tiff"
    assert careamics_data_type({"train": "a.tif", "val": "b.npy"}) == "array"
    assert careamics_data_type({"train": "a.h5:/x"}) == "custom"  # read lazily (hdf5_stack)
    assert careamics_data_type({"train": "a.h5:/x"}, requested="array") == "array"
    assert careamics_data_type({"train": "a.tif"}, requested="array") == "array"
    # careamics pairs TIFF inputs and targets by file name
    assert careamics_data_type({"train": "in/a.tif", "train_target": "gt/a.tif"}) == "tiff"
    assert careamics_data_type({"train": "noisy.tif", "train_target": "clean.tif"}) == "array"
    for folder, names in {"in": ["1.tif", "2.tif"], "gt": ["1.tif", "3.tif"]}.items():
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / name).touch()
    pair = {"train": str(tmp_path / "in"), "train_target": str(tmp_path / "gt")}
    assert careamics_data_type(pair) == "array"
    (tmp_path / "gt" / "3.tif").rename(tmp_path / "gt" / "2.tif")
    assert careamics_data_type(pair) == "tiff"


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ("a.tif", "a"),
        ("b.npy", "b"),
        ("one.npz", "c"),
        ("two.npz:clean", "d"),
        ("e.h5:/train/noisy", "e"),
        ("f.zarr", "f"),
        ("g.zarr:/raw", "f"),
    ],
)
def test_every_format_loads(
    tmp_path: Path, files: dict[str, np.ndarray], source: str, key: str
) -> None:
    full = str(tmp_path / source)
    assert check_source(full) == [(64, 64)]
    loaded = load_source(full)
    assert isinstance(loaded, np.ndarray)
    np.testing.assert_array_equal(loaded, files[key])


def test_tiff_directory_is_a_list(tmp_path: Path, files: dict[str, np.ndarray]) -> None:
    assert check_source(str(tmp_path / "stack")) == [(64, 64), (64, 64)]
    loaded = load_source(str(tmp_path / "stack"))
    assert isinstance(loaded, list)
    np.testing.assert_array_equal(loaded[1], files["b"])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing.tif", "no such file or directory"),
        ("e.h5:/train/noisier", re.escape("no dataset '/train/noisier' (it holds: /train/clean,")),
        ("e.h5", "name the dataset as"),
        ("two.npz", "name the array as '.*two.npz:NAME' \\(the file holds: noisy, clean\\)"),
        ("b.npy:x", re.escape("is a .npy file: remove ':x'")),
        ("a.tif:x", re.escape("is a TIFF file: remove ':x'")),
        ("g.zarr", "is a Zarr group: name an array .* \\(top-level arrays: raw\\)"),
        ("g.zarr:/nope", "cannot open"),
    ],
)
def test_bad_sources_say_what_to_do(
    tmp_path: Path, files: dict[str, np.ndarray], source: str, message: str
) -> None:
    with pytest.raises(DataSourceError, match=message):
        check_source(str(tmp_path / source))


def test_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    (tmp_path / "empty").mkdir()
    for name, message in [("bad.tif", "not a readable TIFF"), ("bad.h5", "not a readable HDF5")]:
        with pytest.raises(DataSourceError, match=message):
            check_source(str(tmp_path / name))
    with pytest.raises(DataSourceError, match=re.escape("holds no .tif")):
        check_source(str(tmp_path / "empty"))


def test_training_arguments_for_each_data_type(
    tmp_path: Path, files: dict[str, np.ndarray]
) -> None:
    data = DataSpec(train=str(tmp_path / "a.tif"), val=str(tmp_path / "stack"), data_type="tiff")
    arguments = training_arguments(data, {"data_config": {"data_type": "tiff"}})
    assert arguments == {"train_data": tmp_path / "a.tif", "val_data": tmp_path / "stack"}
    data = DataSpec(
        train=f"{tmp_path / 'e.h5'}:/train/noisy",
        train_target=f"{tmp_path / 'e.h5'}:/train/clean",
        val=str(tmp_path / "f.zarr"),
        val_target=f"{tmp_path / 'two.npz'}:clean",
    )
    arguments = training_arguments(data, {"data_config": {"data_type": "array"}})
    assert list(arguments) == ["train_data", "train_data_target", "val_data", "val_data_target"]
    for argument, key in zip(arguments.values(), "edfd", strict=True):
        np.testing.assert_array_equal(argument, files[key])
    with pytest.raises(DataSourceError, match="data_type 'czi' is not supported"):
        training_arguments(data, {"data_config": {"data_type": "czi"}})


def train_from_spec(tmp_path: Path, data: dict[str, str], training: dict[str, object]) -> object:
    """Resolve a spec and train it with careamics, the way the node does."""
    from careamics import CAREamist
    from careamics.config.factories.config_discriminators import instantiate_config

    spec_path = tmp_path / "job.yaml"
    spec_path.write_text(yaml.safe_dump({"name": "tiny", "training": training, "data": data}))
    spec = load_job_spec(spec_path)
    careamist = CAREamist(
        instantiate_config(spec.careamics), work_dir=tmp_path / "work", enable_progress_bar=False
    )
    careamist.train(**training_arguments(spec.data, spec.careamics))
    return careamist


TINY = {
    "axes": "YX",
    "patch_size": [16, 16],
    "batch_size": 2,
    "epochs": 2,
    "n_val_patches": 2,
    "seed": 42,
    "num_workers": 0,
}


@pytest.mark.training
def test_n2v_trains_from_hdf5(tmp_path: Path, files: dict[str, np.ndarray]) -> None:
    training = {"algorithm": "n2v", "masked_pixel_percentage": 5, "roi_size": 5, **TINY}
    careamist = train_from_spec(tmp_path, {"train": "e.h5:/train/noisy"}, training)
    assert careamist.config.data_config.data_type == "custom"  # type: ignore[attr-defined]
    assert careamist.trainer.current_epoch == 2  # type: ignore[attr-defined]
    assert list((tmp_path / "work" / "checkpoints").rglob("tiny_last.ckpt"))


@pytest.mark.training
def test_care_trains_from_tiff_pairs(tmp_path: Path, files: dict[str, np.ndarray]) -> None:
    """Targets named differently from their inputs (careamics' TIFF reader pairs by name)."""
    tifffile.imwrite(tmp_path / "clean.tif", files["b"])
    training = {"algorithm": "care", **TINY}
    data = {"train": "a.tif", "train_target": "clean.tif"}
    careamist = train_from_spec(tmp_path, data, training)
    # different file names: careamics would refuse the TIFF pair, so they go in as arrays
    assert careamist.config.data_config.data_type == "array"  # type: ignore[attr-defined]
    assert careamist.trainer.current_epoch == 2  # type: ignore[attr-defined]


def test_psnr() -> None:
    from skimage.metrics import peak_signal_noise_ratio

    reference = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    assert psnr(reference, reference) == float("inf")
    assert psnr(reference + 0.1, reference) == pytest.approx(20.0)
    noisy = reference + np.random.default_rng(0).normal(0, 0.05, reference.shape)
    expected = peak_signal_noise_ratio(reference, noisy, data_range=1.0)
    assert psnr(noisy[None, None], reference) == pytest.approx(expected)  # predict's (S, C, Y, X)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(noisy[:10], reference)


def test_demo_data_is_deterministic(tmp_path: Path) -> None:
    script = REPO / "examples" / "make_demo_data.py"
    for out in ("one", "two"):
        subprocess.run([sys.executable, str(script), "--out", str(tmp_path / out)], check=True)
    one, two = tmp_path / "one", tmp_path / "two"
    assert (one / "noisy.tif").read_bytes() == (two / "noisy.tif").read_bytes()
    noisy, clean = tifffile.imread(one / "noisy.tif"), tifffile.imread(one / "clean.tif")
    assert noisy.shape == clean.shape == (512, 512) and noisy.dtype == np.float32
    assert 15 < psnr(noisy, clean) < 20  # noisy enough for denoising to show
