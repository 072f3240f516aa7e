"""Preview pictures, the parts without a training: the crop, the picture, the spec section, the
record and its fold, ``status --json`` and the ranking by a preview's PSNR."""

from __future__ import annotations

import io
import math
from pathlib import Path

import msgspec
import numpy as np
import pytest
from PIL import Image

from hpc_runner.data.preview_image import MIN_PANEL, compose, panel_boxes, png_bytes
from hpc_runner.data.preview_region import Region, RegionError, plan_region, read_region
from hpc_runner.spec.job import dump_run_spec, load_job_spec, load_run_spec
from hpc_runner.spec.preview_section import PreviewSpec, default_interval, preview_due
from hpc_runner.stream.previews import preview_file, preview_history, preview_relpath
from hpc_runner.stream.records import PreviewValue, decode_lines
from hpc_runner.stream.run_state import RunState, replay
from hpc_runner.stream.runs import RUN_SPEC_FILE
from hpc_runner.stream.writer import StatusWriter
from hpc_runner.watch.report import run_summary
from hpc_runner.watch.results import best, metric_text, rank, ranking_metric
from tests.test_spec import job_dir, n2v_spec, problems_of, write_spec

__all__ = ["job_dir"]  # the fixture, used by name


# -- the schedule -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("epochs", "expected"),
    [(30, [3, 6, 9, 12, 15, 18, 21, 24, 27, 30]), (25, [3, 6, 9, 12, 15, 18, 21, 24, 25]),
     (4, [1, 2, 3, 4]), (1, [1])],
)  # fmt: skip
def test_about_ten_previews_by_default_and_always_the_last_epoch(
    epochs: int, expected: list[int]
) -> None:
    every = default_interval(epochs)
    assert [e for e in range(1, epochs + 1) if preview_due(e, epochs, every)] == expected


# -- the crop ------------------------------------------------------------------------------------


def test_default_region_is_the_centred_square_of_at_most_192_one_asked_for_up_to_256() -> None:
    assert plan_region((512, 600), "YX", multiple=4) == Region(160, 204, 192)
    asked = plan_region((512, 600), "YX", multiple=4, region=(10, 20, 256))
    assert asked == Region(10, 20, 256)
    assert plan_region((3, 70, 90), "SYX", multiple=16) == Region(3, 13, 64)  # 70 -> 64
    with pytest.raises(RegionError, match="smaller than 16"):
        plan_region((8, 8), "YX", multiple=16)


def test_3d_region_is_a_slab_as_deep_as_a_patch_around_the_plane_shown() -> None:
    region = plan_region((40, 64, 64), "ZYX", multiple=4, z_depth=8)
    assert (region.z, region.z0, region.depth) == (20, 16, 8)
    edge = plan_region((40, 64, 64), "ZYX", multiple=4, z_depth=8, z=39)
    assert (edge.z, edge.z0, edge.depth) == (39, 32, 8)
    with pytest.raises(RegionError) as caught:
        plan_region((40, 64, 64), "ZYX", multiple=4, z_depth=8, z=40)
    assert caught.value.key == "z" and "0 to 39" in str(caught.value)


@pytest.mark.parametrize(
    ("region", "message"),
    [((0, 0, 30), "multiple of 4"), ((40, 0, 32), "beyond the image"), ((0, 0, 512), "256")],
)
def test_a_region_that_does_not_fit_says_how_to_fix_it(
    region: tuple[int, int, int], message: str
) -> None:
    with pytest.raises(RegionError, match=message):
        plan_region((64, 64), "YX", multiple=4, region=region)


def test_read_region_takes_sample_zero_and_orders_axes_czyx() -> None:
    data = np.arange(2 * 3 * 8 * 8, dtype=np.float32).reshape(2, 8, 8, 3)  # SYXC
    crop = read_region(data, "SYXC", Region(2, 4, 4))
    assert crop.shape == (3, 4, 4) and crop.dtype == np.float32
    assert np.array_equal(crop, np.moveaxis(data[0, 2:6, 4:8, :], -1, 0))
    assert read_region(data, "SYXC", Region(2, 4, 4), channels=[2]).shape == (1, 4, 4)
    # a ground truth saved without the size-1 S axis of its image
    truth = read_region(data[0, ..., 0], "SYX", Region(0, 0, 4), image_shape=(1, 8, 8))
    assert truth.shape == (1, 4, 4)


# -- the picture ---------------------------------------------------------------------------------


def _halves(png: bytes) -> tuple[np.ndarray, np.ndarray, Image.Image]:
    picture = Image.open(io.BytesIO(png))
    picture.load()
    left, right = (np.asarray(picture.crop(box)) for box in panel_boxes(picture.size))
    return left, right, picture


@pytest.mark.parametrize(
    ("shape", "mode"),
    [((1, 64, 64), "L"), ((1, 8, 32, 32), "L"), ((2, 48, 48), "RGB"), ((3, 48, 48), "RGB"),
     ((5, 48, 48), "RGB")],
)  # fmt: skip
def test_picture_shows_input_and_prediction_side_by_side(shape: tuple[int, ...], mode: str) -> None:
    rng = np.random.default_rng(0)
    noisy = rng.normal(100.0, 20.0, shape).astype(np.float32)
    smooth = np.full(shape, 100.0, dtype=np.float32)
    png = png_bytes(compose(noisy, smooth, epoch=3, psnr=21.5))
    left, right, picture = _halves(png)
    assert picture.format == "PNG" and picture.mode == mode
    assert left.shape == right.shape and min(left.shape[:2]) >= MIN_PANEL  # small crops enlarged
    assert left.std() > 10 * max(right.std(), 0.1)  # noise left, flat prediction right
    # one shared stretch: the flat prediction sits mid-grey, where the noise is centred
    assert 90 < right.mean() < 170 and abs(left.mean() - right.mean()) < 20


def test_one_contrast_for_both_panels() -> None:
    """A prediction at half the input's brightness looks half as bright, not the same."""
    ramp = np.tile(np.linspace(0, 100, 64, dtype=np.float32), (64, 1))[np.newaxis]
    left, right, _ = _halves(png_bytes(compose(ramp, ramp / 2, epoch=1)))
    assert right.mean() < 0.7 * left.mean()


# -- the spec section ----------------------------------------------------------------------------


def test_preview_section_round_trips_through_run_yaml(job_dir: Path) -> None:
    spec = load_job_spec(write_spec(job_dir, n2v_spec(preview={"every_n_epochs": 2,
                                                               "region": [8, 0, 32]})))  # fmt: skip
    assert spec.preview == PreviewSpec(every_n_epochs=2, region=(8, 0, 32))
    (job_dir / RUN_SPEC_FILE).write_text(dump_run_spec(spec))
    assert load_run_spec(job_dir).preview == spec.preview
    off = load_job_spec(write_spec(job_dir, n2v_spec(preview=False)))
    (job_dir / RUN_SPEC_FILE).write_text(dump_run_spec(off))
    assert load_run_spec(job_dir).preview.enabled is False
    assert load_job_spec(write_spec(job_dir, n2v_spec())).preview == PreviewSpec()  # default on


def test_bad_preview_keys_are_reported_with_their_fix(job_dir: Path) -> None:
    bad = {"every_n_epochs": 0, "region": [0, 0], "z": 1, "every_n_epoch": 3}
    problems = problems_of(write_spec(job_dir, n2v_spec(preview=bad)))
    text = "\n".join(problems)
    assert "preview.every_n_epoch: unknown key (did you mean 'every_n_epochs'?)" in text
    assert "preview.every_n_epochs: expected a whole number of epochs, 1 or more" in text
    assert "preview.region: expected [y0, x0, size]" in text
    assert "preview.z: z is for 3D data, but the axes 'YX' have no Z (remove it)" in text
    beyond = problems_of(write_spec(job_dir, n2v_spec(preview={"region": [48, 0, 32]})))
    assert any("preview.region: [48, 0, 32] reaches beyond the image (64x64)" in p for p in beyond)
    wrong = problems_of(write_spec(job_dir, n2v_spec(preview="often")))
    assert any("preview: expected true, false or a mapping" in p for p in wrong)


# -- the record, the fold, status --json ---------------------------------------------------------


def _previews(run_dir: Path, values: list[PreviewValue]) -> RunState:
    run_dir.mkdir(parents=True, exist_ok=True)
    with StatusWriter(run_dir / "status.jsonl") as writer:
        for value in values:
            writer.write_extension("preview", value)
    return replay(run_dir / "status.jsonl")


def test_previews_fold_into_a_psnr_history_and_status_json(tmp_path: Path) -> None:
    values = [PreviewValue(preview_relpath(e), e, p) for e, p in [(3, 18.0), (6, 21.0), (9, None)]]
    values.append(PreviewValue(preview_relpath(6), 6, 22.0))  # a resumed run previews 6 again
    run = _previews(tmp_path / "r", values)
    assert run.preview == values[-1] and run.skipped_lines == 0
    assert preview_history(run.preview_epochs, run.preview_psnrs) == [(3, 18.0), (6, 22.0),
                                                                      (9, None)]  # fmt: skip
    summary = run_summary("r", run, run_dir=tmp_path / "r")
    assert summary["preview"] == str((tmp_path / "r/previews/epoch_0006.png").absolute())
    assert summary["psnr_history"] == [[3, 18.0], [6, 22.0]]
    assert (summary["preview_epoch"], summary["preview_psnr"]) == (6, 22.0)
    plain = run_summary("x", RunState())
    assert [plain[k] for k in ("preview", "psnr_history", "preview_psnr")] == [None, None, None]
    run.clear()
    assert run.preview is None and len(run.preview_epochs) == 0


def test_a_record_naming_another_file_or_a_silly_epoch_is_not_trusted(tmp_path: Path) -> None:
    for path in ("../../etc/passwd", "/etc/passwd", "previews/../run.yaml", "previews/x.png",
                 "previews/epoch_0003.png/..", "work/epoch_0003.png"):  # fmt: skip
        assert preview_file(tmp_path, path) is None, path
    assert preview_file(tmp_path, "previews/epoch_0003.png") == tmp_path / "previews/epoch_0003.png"
    run = _previews(tmp_path / "r", [PreviewValue("../../etc/passwd", 3, 20.0)])
    assert run_summary("r", run, run_dir=tmp_path / "r")["preview"] is None
    line = b'{"type":"preview","value":{"path":"p","epoch":%d},"v":1,"t":1,"seq":1,"attempt":0}'
    records, skipped = decode_lines([line % 10**30, line % -1, line % 7])
    assert len(records) == 1 and skipped["invalid"] == 2


def test_the_seed_status_model_ignores_preview_records(tmp_path: Path) -> None:
    """careamics-napari's TrainingStatus folds a stream that holds preview records."""
    from hpc_runner.stream.records import is_update

    with StatusWriter(tmp_path / "status.jsonl") as writer:
        writer.write_extension("preview", PreviewValue(preview_relpath(1), 1))
    records, _ = decode_lines((tmp_path / "status.jsonl").read_bytes().splitlines())
    assert records and not any(is_update(record) for record in records)
    assert msgspec.json.decode(msgspec.json.encode(records[0].value)) == {
        "path": "previews/epoch_0001.png",
        "epoch": 1,
    }


# -- ranking -------------------------------------------------------------------------------------


def _row(run: str, psnr: float | None, preview: float | None, loss: float = 0.1) -> dict:
    return {"rank": None, "run": run, "phase": "DONE", "state": "DONE", "best_val_loss": loss,
            "psnr": psnr, "preview_psnr": preview, "overrides": {}}  # fmt: skip


def test_ranking_prefers_the_whole_image_psnr_then_the_last_preview_psnr() -> None:
    rows = [_row("a", 25.0, 30.0), _row("b", 26.0, 20.0)]
    assert ranking_metric(rows) == "psnr" and best(rows)["run"] == "b"
    rows = [_row("a", None, 30.0, 0.5), _row("b", 26.0, 20.0, 0.1)]  # never a mix of the two
    assert ranking_metric(rows) == "preview_psnr" and best(rows)["run"] == "a"
    assert [r["rank"] for r in rank(rows)] == [1, 2]
    assert metric_text(rows[0], "preview_psnr") == "preview PSNR 30.00 dB"
    rows = [_row("a", None, None, 0.5), _row("b", 26.0, math.nan, 0.1)]
    assert ranking_metric(rows) == "best_val_loss"
