"""HDF5 data read lazily: patches come from the file one read at a time, never the whole dataset.

The stack is checked against careamics' own in-memory stack (same patches, padding and channel
picks), then a real training from a chunked HDF5 file is watched through the stack's only read
function: every read is at most one patch, and the dataset is never loaded as a whole.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml

from hpc_runner.data.hdf5_stack import Hdf5ImageStack, load_image_stacks
from hpc_runner.data.train_arguments import training_arguments
from hpc_runner.spec.job import load_job_spec
from hpc_runner.stream.status import TrainingState
from tests.run_support import run_state

PATCH = 16


@pytest.fixture
def stack_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    data = np.random.default_rng(3).random((3, 40, 2, 50), dtype=np.float32)  # S Y C X
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("/raw/stack", data=data, chunks=(1, 16, 1, 16))
    return path, data


def test_patches_match_careamics_in_memory_stack(stack_file: tuple[Path, np.ndarray]) -> None:
    from careamics.dataset.image_stack import InMemoryImageStack

    path, data = stack_file
    lazy = Hdf5ImageStack(str(path), "/raw/stack", "SYCX")
    reference = InMemoryImageStack.from_array(data, "SYCX")
    assert tuple(lazy.data_shape) == tuple(reference.data_shape) == (3, 2, 40, 50)
    cases = [
        (0, None, (0, 0), (16, 16)),
        (2, [1], (24, 34), (16, 16)),  # touches the far edges
        (1, [1, 0], (5, 7), (8, 8)),  # channels out of order (h5py needs increasing lists)
        (1, None, (30, 40), (16, 16)),  # overhangs: zero-padded
    ]
    for sample, channels, coords, size in cases:
        expected = reference.extract_patch(sample, channels, coords, size)
        np.testing.assert_array_equal(lazy.extract_patch(sample, channels, coords, size), expected)
    # a tile overhanging the start (negative coordinates) is padded, not wrapped around
    patch = lazy.extract_patch(0, None, (-4, -2), (16, 16))
    assert patch.shape == (2, 16, 16)
    assert not patch[:, :4, :].any() and not patch[:, :, :2].any()
    np.testing.assert_array_equal(patch[:, 4:, 2:], np.moveaxis(data[0, :12, :, :14], 1, 0))


def test_the_stack_pickles_without_its_file_handle(stack_file: tuple[Path, np.ndarray]) -> None:
    path, _ = stack_file
    stack = Hdf5ImageStack(str(path), "/raw/stack", "SYCX")
    first = stack.extract_patch(1, None, (8, 8), (16, 16))  # opens the file
    copy = pickle.loads(pickle.dumps(stack))  # as for a spawned data loader worker
    np.testing.assert_array_equal(copy.extract_patch(1, None, (8, 8), (16, 16)), first)
    stack.close()
    copy.close()


def test_loader_serves_hdf5_lazily_and_other_sources_in_memory(
    stack_file: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    path, data = stack_file
    np.save(tmp_path / "other.npy", data)
    stacks = load_image_stacks([f"{path}:/raw/stack", str(tmp_path / "other.npy")], "SYCX")
    assert [type(s).__name__ for s in stacks] == ["Hdf5ImageStack", "InMemoryImageStack"]
    (only,) = load_image_stacks(str(path), "SYCX")  # the file's one dataset, found by itself
    assert only.source == f"{path}:/raw/stack"


@pytest.mark.training
def test_training_reads_one_patch_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real N2V training from a chunked HDF5 stack, counting every read of the file."""
    from hpc_runner.node.training import train_with_status

    rng = np.random.default_rng(0)
    clean = np.tile(np.linspace(0, 1, 128, dtype=np.float32), (4, 128, 1))
    noisy = (clean + rng.normal(0, 0.2, clean.shape)).astype(np.float32)
    with h5py.File(tmp_path / "big.h5", "w") as handle:
        handle.create_dataset("/train/noisy", data=noisy, chunks=(1, 32, 32))
    spec_path = tmp_path / "job.yaml"
    spec_path.write_text(
        yaml.safe_dump(
            {
                "name": "lazy",
                "training": {
                    "algorithm": "n2v",
                    "axes": "SYX",
                    "patch_size": [PATCH, PATCH],
                    "batch_size": 8,
                    "epochs": 1,
                    "n_val_patches": 4,
                    "masked_pixel_percentage": 5,
                    "roi_size": 5,
                    "seed": 1,
                    "num_workers": 0,
                },
                "data": {"train": "big.h5:/train/noisy"},
            }
        )
    )
    spec = load_job_spec(spec_path)
    assert spec.data.data_type == "custom"

    def never_loaded_whole(source: str) -> Any:
        raise AssertionError(f"{source} was read into memory as a whole")

    monkeypatch.setattr("hpc_runner.data.hdf5_stack.load_source", never_loaded_whole)
    monkeypatch.setattr("hpc_runner.data.sources.load_source", never_loaded_whole)
    reads: list[int] = []
    original = Hdf5ImageStack.read

    def counting(self: Hdf5ImageStack, selection: tuple[Any, ...]) -> Any:
        data = original(self, selection)
        reads.append(int(np.asarray(data).size))
        return data

    monkeypatch.setattr(Hdf5ImageStack, "read", counting)
    arguments = training_arguments(spec.data, spec.careamics)
    assert arguments["train_data"] == spec.data.train  # a path: careamics asks the loader
    from careamics.config.factories.config_discriminators import instantiate_config

    train_with_status(
        tmp_path / "run" / "status.jsonl",
        config=instantiate_config(spec.careamics),
        work_dir=tmp_path / "run" / "work",
        **arguments,
    )
    assert run_state(tmp_path / "run").status.state is TrainingState.DONE
    # statistics, training and validation patches: many reads, each at most one patch
    patches = noisy.size // PATCH**2
    assert len(reads) >= patches
    assert max(reads) <= PATCH * PATCH < noisy.size
