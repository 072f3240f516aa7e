"""After training: tiled prediction (TIFF, HDF5) and a BioImage Model Zoo archive, on the CPU.

The node entry runs in this process on a real tiny training; the archive is loaded back into
a CAREamist and predicts, so a broken export cannot pass.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import tifffile
import yaml

from hpc_runner.control.submit import prepare_run
from hpc_runner.node.job import NodeJob
from hpc_runner.spec.job import SpecError, load_job_spec, load_run_spec
from hpc_runner.stream.status import TrainingState
from tests.run_support import debug_messages, run_state, write_spec


def with_after(spec_path: Path, after: dict[str, Any]) -> Path:
    document = yaml.safe_load(spec_path.read_text())
    document["after"] = after
    spec_path.write_text(yaml.safe_dump(document, sort_keys=False))
    return spec_path


#: Set while a test must not reach the network; read by :func:`_refuse_network`.
OFFLINE = threading.Event()


def _refuse_network(event: str, args: tuple[Any, ...]) -> None:
    """An audit hook (PEP 578): it sees every connection and address lookup in every thread
    of this process, without replacing any function; it does nothing unless OFFLINE is set."""
    if OFFLINE.is_set() and event in {"socket.connect", "socket.getaddrinfo"}:
        raise OSError(f"network disabled in this test ({event} {args[1:]!r})")


sys.addaudithook(_refuse_network)


@pytest.fixture
def no_network() -> Iterator[None]:
    """Fail any attempt to reach another host: the export must work offline."""
    OFFLINE.set()
    try:
        with pytest.raises(OSError, match="network disabled"):  # the guard is really on
            socket.create_connection(("127.0.0.1", 9), timeout=1)
        yield
    finally:
        OFFLINE.clear()


@pytest.mark.training
def test_prediction_and_bmz_export_after_training(tmp_path: Path, no_network: None) -> None:
    spec_dir = tmp_path / "spec"
    spec_path = write_spec(spec_dir, epochs=2)
    extra = np.random.default_rng(1).random((2, 64, 96), dtype=np.float32)
    with h5py.File(spec_dir / "extra.h5", "w") as handle:
        handle.create_dataset("/stack/noisy", data=extra, chunks=(1, 32, 32))
        handle.create_dataset("/single", data=extra[0, :, :72], chunks=(16, 16))
    after = {
        "predict": {
            "images": ["extra.h5:/stack/noisy"],
            "axes": "SYX",
            "tile_size": [32, 32],
            "tile_overlap": [8, 8],
        },
        "export_bmz": {
            "authors": ["Test Author", {"name": "Second", "affiliation": "Lab"}],
            "description": "A tiny N2V test model.",
            "input": "extra.h5:/single",  # the example: a crop, read from the file alone
        },
    }
    spec = load_job_spec(with_after(spec_path, after))
    assert spec.after is not None and spec.after.predict is not None
    run_dir = prepare_run(spec, tmp_path / "runs")
    assert load_run_spec(run_dir).after == spec.after  # round trip through run.yaml

    result = NodeJob(str(run_dir))()

    run = run_state(run_dir)
    assert run.status.state is TrainingState.DONE and run.exception is None
    model = run.model
    assert model is not None and model.checkpoint and model.predictions and model.bmz_archive
    assert (result["predictions"], result["bmz_archive"]) == (model.predictions, model.bmz_archive)
    predictions = Path(model.predictions)
    assert predictions == run_dir / "work" / "predictions"
    assert sorted(p.name for p in predictions.iterdir()) == ["extra_stack_noisy.tif"]
    # the HDF5 stack (SYX, 2 samples) was read lazily, tiled, and denoised sample by sample
    denoised = np.squeeze(tifffile.imread(predictions / "extra_stack_noisy.tif"))
    assert denoised.shape == extra.shape and np.isfinite(denoised).all()
    assert not np.allclose(denoised, extra)

    archive = Path(model.bmz_archive)
    assert archive.is_file() and archive.suffix == ".zip" and archive.stat().st_size > 10_000
    messages = debug_messages(run)
    assert f"BioImage Model Zoo archive: {archive}" in messages
    from careamics import CAREamist

    reloaded = CAREamist(bmz_path=archive, work_dir=tmp_path / "reloaded")
    noisy = np.load(spec_dir / "tiny.npy")
    again, _ = reloaded.predict(pred_data=noisy, data_type="array")
    assert np.squeeze(again[0]).shape == noisy.shape

    # `status --json` shows where everything is
    from tests.run_support import cli

    answer = cli("status", str(tmp_path / "runs"), "--json")
    (entry,) = json.loads(answer.stdout)
    assert entry["state"] == "DONE"
    assert entry["model"]["predictions"] == model.predictions
    assert entry["model"]["bmz_archive"] == model.bmz_archive


@pytest.mark.training
def test_predictions_to_hdf5_and_a_failed_export_keeps_done(tmp_path: Path) -> None:
    spec_dir = tmp_path / "spec"
    spec_path = write_spec(spec_dir, epochs=1)
    np.save(spec_dir / "example.npy", np.zeros((64, 64), dtype=np.float32))
    after = {
        "predict": {"format": "hdf5"},
        "export_bmz": {"authors": ["A"], "input": "example.npy"},
    }
    spec = load_job_spec(with_after(spec_path, after))
    run_dir = prepare_run(spec, tmp_path / "runs")
    os.remove(spec_dir / "example.npy")  # gone by the time the training is done

    NodeJob(str(run_dir))()

    run = run_state(run_dir)
    assert run.status.state is TrainingState.DONE  # the training itself succeeded
    assert run.exception is not None and "example.npy" in run.exception.message
    messages = debug_messages(run)
    assert any(m.startswith("after training: BioImage Model Zoo export failed") for m in messages)
    assert run.model is not None and run.model.bmz_archive is None and run.model.checkpoint
    target = Path(run.model.predictions or "")
    assert target == run_dir / "work" / "predictions.h5"
    with h5py.File(target) as handle:
        assert list(handle) == ["tiny"]
        assert np.squeeze(handle["tiny"][()]).shape == (64, 64)


def test_example_input_is_a_small_crop_in_whole_patches() -> None:
    from hpc_runner.node.after import example_input, model_name

    image = np.arange(3 * 300 * 40, dtype=np.uint16).reshape(3, 300, 40)
    example = example_input(image, "SYX", [16, 16])
    assert example.shape == (1, 256, 32) and example.dtype == np.float32
    np.testing.assert_array_equal(example[0], image[0, :256, :32])
    assert example_input(np.zeros((2, 20, 20, 3)), "ZYXC", [8, 16, 16]).shape == (2, 16, 16, 3)
    assert model_name("n2v") == "n2v model" and model_name("a/b") == "a_b model"


def test_after_section_errors_name_the_key(tmp_path: Path) -> None:
    spec_path = with_after(
        write_spec(tmp_path),
        {
            "predict": {"images": "missing.tif", "tile_size": [32, 16], "format": "png"},
            "export_bmz": {"authors": [], "nmae": "x"},
            "extra": 1,
        },
    )
    with pytest.raises(SpecError) as caught:
        load_job_spec(spec_path)
    keys = {problem.key for problem in caught.value.problems}
    assert keys >= {
        "after.predict.images",
        "after.predict.tile_size",
        "after.predict.format",
        "after.export_bmz.authors",
        "after.export_bmz.nmae",
        "after.extra",
    }
    text = str(caught.value)
    assert "squared in YX" in text and "did you mean 'name'" in text
