"""The pure parts behind the TUI's new views: columns for a width, rows grouped and filtered,
curves against epochs, following a log, and the ``--on-event`` command's environment."""

from __future__ import annotations

import os
from array import array
from pathlib import Path

import pytest
from textual.app import App

from hpc_runner.control.phase import Phase
from hpc_runner.errors import UsageError
from hpc_runner.stream.records import make_record
from hpc_runner.stream.status import TrainUpdateType
from hpc_runner.tui.columns import ESSENTIAL, param_headers, sorted_keys
from hpc_runner.tui.curves import ema, integer_ticks, prepared, run_series
from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.plot_throttle import PlotThrottle
from hpc_runner.tui.table_layout import fit
from hpc_runner.tui.table_rows import arrange, group_key, matches
from hpc_runner.tui.text import wrap_path
from hpc_runner.watch.events import EventCommand, RunEvent
from hpc_runner.watch.log_tail import LogTail
from tests.tui_support import wait_for


def entry(label: str, *records: tuple[str, object], sweep: str | None = None) -> RunEntry:
    run = RunEntry(label, label, Path(label))
    run.run.apply(
        [
            make_record(TrainUpdateType(kind), value, t=1.0, seq=0, attempt=0)
            for kind, value in records
        ]
    )
    run.loading = False
    run.sweep = sweep
    return run


# -- columns for the terminal's width ----------------------------------------------------------


def test_80_columns_show_the_essentials_and_wide_terminals_add_columns() -> None:
    wanted = {"name": 30, "phase": 40, "epoch": 5, "batch": 7}
    narrow = fit(80, wanted)
    assert narrow.keys == ESSENTIAL and narrow.total <= 80
    assert dict(zip(narrow.keys, narrow.widths, strict=True))["name"] >= 12
    wide = fit(200, wanted, hidden=frozenset({"psnr", "params", "gpu", "mem"}))
    assert wide.keys == (*ESSENTIAL, "elapsed", "eta", "attempt")
    sampled = fit(200, wanted, hidden=frozenset({"psnr", "params"}))  # a run with samples
    assert sampled.keys == (*ESSENTIAL, "elapsed", "eta", "attempt", "gpu", "mem")
    assert wide.total <= 200
    widths = dict(zip(wide.keys, wide.widths, strict=True))
    assert widths["name"] == 30 and widths["phase"] == 40  # all they need, no more
    # PSNR comes first among the extras, and columns never overflow the width
    for width in range(60, 220, 7):
        layout = fit(width, wanted)
        assert layout.total <= max(width, fit(0, wanted).total)
        assert set(layout.keys) <= set(fit(width + 7, wanted).keys)  # more, never other
    assert fit(100, wanted).keys == (*ESSENTIAL, "psnr")


def test_the_sorted_column_has_room_for_its_arrow() -> None:
    layout = fit(120, {}, sort_by="best")
    assert dict(zip(layout.keys, layout.widths, strict=True))["best"] >= len("Best val ▲")


def test_parameter_headers_are_short_but_never_ambiguous() -> None:
    assert param_headers(["training.lr", "training.use_n2v2"]) == {
        "training.lr": "lr",
        "training.use_n2v2": "use_n2v2",
    }
    assert param_headers(["data.train", "after.predict.images", "evaluate.train"]) == {
        "data.train": "data.train",
        "after.predict.images": "images",
        "evaluate.train": "evaluate.train",
    }


def test_reverse_sorting_turns_the_known_values_round_and_keeps_unknown_last() -> None:
    runs = [
        entry("a", ("val_loss", 0.3)),
        entry("b", ("val_loss", 0.1)),
        entry("c"),
        entry("d", ("val_loss", 0.2)),
    ]
    assert sorted_keys(runs, "best", 0.0) == ["b", "d", "a", "c"]
    assert sorted_keys(runs, "best", 0.0, reverse=True) == ["a", "d", "b", "c"]
    assert sorted_keys(runs, "name", 0.0, reverse=True) == ["d", "c", "b", "a"]


def test_a_sweep_is_one_group_where_its_first_run_would_stand() -> None:
    runs = [
        entry("solo", ("val_loss", 0.5)),
        entry("s/x", ("val_loss", 0.9), sweep="s"),
        entry("s/y", ("val_loss", 0.1), sweep="s"),
    ]
    phases = {run.key: run.phase(0.0) for run in runs}
    by_loss = arrange(runs, phases, now=0.0, column="best")
    assert by_loss.rows == [group_key("s"), "s/y", "s/x", "solo"]
    folded = arrange(runs, phases, now=0.0, column="best", collapsed={"s"})
    assert folded.rows == [group_key("s"), "solo"] and folded.groups[group_key("s")]
    only = arrange(runs, phases, now=0.0, query="s/x")
    assert only.rows == [group_key("s"), "s/x"]


def test_the_filter_matches_every_word_in_name_phase_and_sweep_values() -> None:
    run = entry("sweep/lr=0.01", ("state", "DONE"), sweep="sweep")
    run.params = {"training.lr": "0.01", "training.use_n2v2": "true"}
    phase = run.phase(0.0)
    assert phase.phase is Phase.DONE
    for query in ("lr=0.01", "LR=0.01 done", "use_n2v2=true", "training.lr=0.01", ""):
        assert matches(run, phase, query), query
    for query in ("lr=0.1 ", "crashed", "lr=0.01 crashed"):
        assert not matches(run, phase, query), query


# -- curves ------------------------------------------------------------------------------------


def test_loss_and_val_loss_share_an_axis_of_epochs() -> None:
    run = entry(
        "r",
        ("max_epochs", 3),
        ("max_batches", 4),
        *[("loss", 1.0 / (step + 1)) for step in range(8)],
        ("epoch_idx", 0),
        ("val_loss", 0.5),
        ("epoch_idx", 1),
        ("val_loss", 0.25),
    ).run
    series, axis = run_series(run, 100)
    assert axis == "epoch"
    loss, val = series
    assert loss.xs == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]  # step i is (i+1)/4 epochs
    assert (val.xs, val.ys) == ([1.0, 2.0], [0.5, 0.25])
    assert loss.smooth and not val.smooth
    without_epochs = entry("s", *[("loss", 1.0)] * 3).run
    series, axis = run_series(without_epochs, 100)
    assert axis == "step" and series[0].xs == [1.0, 2.0, 3.0]


def test_ticks_are_whole_epochs_and_smoothing_is_a_debiased_ema() -> None:
    assert integer_ticks(3.8) == [0, 1, 2, 3, 4]
    assert integer_ticks(30) == [0, 5, 10, 15, 20, 25, 30]
    assert all(len(integer_ticks(high)) <= 9 for high in (0.5, 7, 99, 1234, 10**7))
    assert ema([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # no pull towards 0
    smoothed = ema([0.0, 10.0])
    assert 0.0 < smoothed[1] < 10.0
    run = entry("r", ("max_batches", 2), ("loss", -1.0), ("loss", 2.0)).run
    series, _ = run_series(run, 10)
    (shown,) = prepared(series, smooth=False, log_y=True)
    assert shown.ys == [2.0]  # a log axis cannot show a value <= 0


def test_long_paths_wrap_after_separators() -> None:
    path = "/scratch/user/runs/n2v_sweep/lr=0.001_use_n2v2=true/work/checkpoints/best.ckpt"
    lines = wrap_path(path, 30).split("\n")
    assert "".join(lines) == path
    assert all(len(line) <= 30 for line in lines)
    assert all(line.endswith("/") for line in lines[:-1])
    assert wrap_path("a" * 50, 20).split("\n") == ["a" * 20, "a" * 20, "a" * 10]


# -- a log, followed ---------------------------------------------------------------------------


def test_a_log_tail_hands_out_complete_lines_and_starts_over_when_replaced(
    tmp_path: Path,
) -> None:
    log = tmp_path / "1_0_log.out"
    log.write_bytes(b"one\ntwo\nthr")
    tail = LogTail(log)
    first = tail.read()
    assert (first.lines, first.reset, first.partial) == (["one", "two"], True, "thr")
    with log.open("ab") as handle:
        handle.write(b"ee\n\x1b[31mred\x1b[0m\n50%\r100%\n\xff\n")
    more = tail.read()
    assert more.lines == ["three", "red", "100%", "\ufffd"] and not more.reset
    log.write_bytes(b"new\n")  # shorter: replaced
    assert tail.read().lines == ["new"]
    start = LogTail(log, start_bytes=2)  # from inside the last line: it is skipped
    assert start.read().lines == []
    os.unlink(log)
    os.mkfifo(log)  # never waited on
    with pytest.raises(OSError, match="FIFO"):
        LogTail(log).read()


# -- --on-event --------------------------------------------------------------------------------


def test_on_event_is_split_once_and_checked(tmp_path: Path) -> None:
    command = EventCommand("printf '%s' 'two words'")
    assert list(command.argv) == ["printf", "%s", "two words"]
    for bad, reason in (("", "give a command"), ("'unclosed", "quotation"),
                        ("no-such-program-xyz", "no such command")):  # fmt: skip
        with pytest.raises(UsageError, match=reason):
            EventCommand(bad)


def test_event_variables_are_printable_one_line_text() -> None:
    event = RunEvent("$(touch x)\x1b[31m", "CRASHED", "ValueError: a\nb\x00", Path("/r"))
    env = event.environment()
    assert env["HPC_RUNNER_RUN"] == "$(touch x)\\u001b[31m"  # the characters, not run
    assert env["HPC_RUNNER_REASON"] == "ValueError: a\\nb\\u0000"
    assert env["HPC_RUNNER_PHASE"] == "CRASHED" and env["HPC_RUNNER_RUN_DIR"] == "/r"


def test_the_downsampled_history_is_what_the_plot_gets() -> None:
    run = entry("r", ("max_batches", 10)).run
    run.losses = array("d", [1.0] * 10_000)
    (loss,), axis = run_series(run, 200)
    assert axis == "epoch" and len(loss.xs) <= 200 and loss.xs[-1] > 990


async def test_plot_throttle_draws_at_once_then_once_more_for_a_burst() -> None:
    """A burst of requests: one draw at once, one more after the interval (the last request is
    not lost); a key press (``now``) draws at once and takes the place of a scheduled draw."""
    draws: list[float] = []
    app = App()
    async with app.run_test() as pilot:
        throttle = PlotThrottle(app, lambda: draws.append(1) is None, interval=0.2)
        for _ in range(5):
            throttle.soon()
        assert len(draws) == 1 and throttle.pending
        await wait_for(lambda: not throttle.pending, lambda: pilot.pause(0.02))
        assert len(draws) == 2
        throttle.soon()  # within the interval of the last draw: scheduled
        assert throttle.pending
        throttle.now()
        assert len(draws) == 3 and not throttle.pending
        await pilot.pause(0.3)
        assert len(draws) == 3  # the scheduled draw was replaced, not added

        # A draw that could not happen (not laid out) does not hold the next one back.
        refused = PlotThrottle(app, lambda: False, interval=10.0)
        refused.soon()
        refused.soon()
        assert not refused.pending
