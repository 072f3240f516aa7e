"""Python API for scripted sweeps: build, submit, wait with a progress bar, collect results.

::

    from hpc_runner.api import Sweep

    sweep = Sweep(
        base="examples/n2v_demo.yaml",
        grid={"training.patch_size": [[32, 32], [64, 64]]},
        zip={"training.seed": [1, 2]},
        cluster={"array_parallelism": 2},
    )
    for run in sweep.expand():
        print(run.name, run.overrides)
    sweep.submit("runs", cluster="auto")      # one SLURM job array, or local processes
    rows = sweep.wait(progress=True)          # a progress bar until every run has ended
    print(best(rows)["model"])                # the best run's checkpoint

:func:`wait` and :func:`results` also work on the directory of a sweep submitted earlier (by
``hpc-runner sweep`` or another script). Importing this module is cheap and monitoring-safe:
careamics is imported only by validation and submission, tqdm only by :func:`wait`.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from hpc_runner.spec.errors import Problems
from hpc_runner.spec.sweep import SweepRun, SweepSpec
from hpc_runner.spec.sweep_file import load_sweep, parse_sweep
from hpc_runner.stream.runs import STATUS_FILE, default_runs_dir, find_runs
from hpc_runner.watch.results import best, sweep_results

if TYPE_CHECKING:
    from hpc_runner.control.submit import SubmittedRun
    from hpc_runner.spec.job import JobSpec

__all__ = ["Sweep", "best", "results", "wait"]


class Sweep:
    """A sweep built in code: a base job spec and the values to vary.

    Parameters
    ----------
    base : str or path
        The base job spec (relative paths are relative to ``directory``).
    grid, zip : mapping of dotted key path to list, optional
        As in a sweep file (see :mod:`hpc_runner.spec.sweep`).
    name : str, optional
        The sweep's directory name below the runs directory (default ``<base name>_sweep``).
    cluster : mapping, optional
        ``array_parallelism`` and cluster profile keys for every run.
    directory : str or path, optional
        Where relative paths (``base``, data files in the values) are resolved; default the
        current directory.

    Raises
    ------
    SpecError
        When the sweep itself is malformed (bad keys, unequal zip lists, missing base).
    """

    def __init__(
        self,
        base: str | os.PathLike[str],
        grid: Mapping[str, Any] | None = None,
        zip: Mapping[str, Any] | None = None,  # the sweep file's word (shadows the builtin)
        *,
        name: str | None = None,
        cluster: Mapping[str, Any] | None = None,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        folder = Path(directory or Path.cwd()).absolute()
        name = name or f"{Path(base).stem}_sweep"
        raw: dict[str, Any] = {"name": name, "base": os.fspath(base)}
        for key, section in (("grid", grid), ("zip", zip), ("cluster", cluster)):
            if section:
                raw[key] = dict(section)  # (numpy values: parse_sweep makes them plain)
        problems = Problems(f"Sweep({name!r})")
        self.spec: SweepSpec = parse_sweep(raw, folder / f"{name}.yaml", problems)
        self.directory: Path | None = None  # the sweep's directory, once submitted

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Sweep:
        """The sweep of a sweep file (``hpc-runner sweep``'s input)."""
        sweep = cls.__new__(cls)
        sweep.spec = load_sweep(path)
        sweep.directory = None
        return sweep

    @property
    def name(self) -> str:
        return self.spec.name

    def expand(self) -> list[SweepRun]:
        """Every run: its name and the job spec keys it sets (pure, no validation)."""
        return self.spec.runs()

    def validate(self, *, profile: str | None = None) -> list[tuple[SweepRun, JobSpec]]:
        """Every run as a validated job spec (imports careamics); raises SpecError with every
        problem at once."""
        from hpc_runner.spec.sweep_check import check_sweep

        return check_sweep(self.spec, profile=profile)

    def submit(
        self,
        runs_dir: str | os.PathLike[str] | None = None,
        *,
        cluster: str = "auto",
        profile: str | None = None,
        only_failed: bool = False,
    ) -> list[SubmittedRun]:
        """Validate and submit the runs that do not exist yet (``only_failed``: also those that
        crashed, were cancelled or never started) as one job array into
        ``runs_dir/<name>/``; returns what was submitted (empty when nothing was)."""
        from hpc_runner.control.sweep_submit import plan_sweep, submit_plan

        checked = self.validate(profile=profile)
        sweep_dir = Path(runs_dir or default_runs_dir()) / self.spec.name
        plan = plan_sweep(checked, sweep_dir, only_failed=only_failed)
        submitted = submit_plan(plan, self.spec, sweep_dir, cluster=cluster)
        self.directory = sweep_dir.absolute()
        if submitted and submitted[0].scheduler == "debug":
            from hpc_runner.control.submit import run_debug

            for one in submitted:
                run_debug(one)
        return submitted

    def wait(self, **kwargs: Any) -> list[dict[str, Any]]:
        """:func:`wait` on this sweep's directory (after :meth:`submit`)."""
        return wait(self._directory(), **kwargs)

    def results(self) -> list[dict[str, Any]]:
        """:func:`results` of this sweep's directory (after :meth:`submit`)."""
        return results(self._directory())

    def _directory(self) -> Path:
        if self.directory is None:
            raise RuntimeError("submit the sweep first (or use hpc_runner.api.wait(DIR))")
        return self.directory


def results(sweep_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Ranked result rows of a sweep directory: ``run``, ``state``, ``best_val_loss``,
    ``epoch``/``max_epochs``, ``model`` (the checkpoint to use), ``overrides``, ... (see
    :mod:`hpc_runner.watch.results`); :func:`best` picks the winner."""
    return sweep_results(Path(sweep_dir))


def wait(
    sweep_dir: str | os.PathLike[str],
    *,
    progress: bool = True,
    interval_s: float = 2.0,
    scheduler_interval_s: float = 10.0,
    timeout_s: float | None = None,
    file: TextIO | None = None,
) -> list[dict[str, Any]]:
    """Follow every run below ``sweep_dir`` until all have ended; return :func:`results`.

    A run has ended when its status file reached DONE, STOPPED or CRASHED and its job is no
    longer running (the after-training step may still write predictions after DONE), or when
    the scheduler says its job ended without a final record.

    Parameters
    ----------
    progress : bool
        Show a progress bar (tqdm, on ``file``, default stderr): runs done, with the running
        ones counted by their fraction of epochs.
    interval_s : float
        Seconds between two reads of the status files.
    scheduler_interval_s : float
        Seconds between two scheduler queries (one batched query for all runs).
    timeout_s : float, optional
        Give up after this long: TimeoutError.

    Raises
    ------
    FileNotFoundError
        ``sweep_dir`` is not a directory (a mistyped path waited forever for runs to appear).
    """
    from tqdm import tqdm

    from hpc_runner.control.phase import RUNNING, WAITING, derive_phase
    from hpc_runner.control.scheduler import SchedulerPoller, job_records
    from hpc_runner.stream.run_state import RunState, follow
    from hpc_runner.stream.tail import StatusTail

    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such runs directory", str(root))
    poller = SchedulerPoller(scheduler_interval_s, max_interval_s=4 * scheduler_interval_s)
    followed: dict[Path, tuple[StatusTail, RunState]] = {}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    bar = tqdm(total=0, unit="run", desc=root.name, disable=not progress, file=file or sys.stderr)
    try:
        while True:
            for run_dir in find_runs(root):
                if run_dir not in followed:
                    followed[run_dir] = (StatusTail(run_dir / STATUS_FILE), RunState())
            states: Counter[str] = Counter()
            done = 0.0
            jobs = job_records(followed)
            schedulers = poller.states(jobs)
            ended = 0
            now = time.time()
            for run_dir, (tail, run) in followed.items():
                follow(tail, run)
                scheduler = schedulers.get(run_dir)
                phase = derive_phase(run, jobs[run_dir], scheduler, now=now).phase
                states[phase.value] += 1
                # a DONE training's job may still predict or export: wait for it to exit
                exiting = scheduler is not None and scheduler.state in RUNNING | WAITING
                ended += phase.final and not exiting
                done += 1.0 if phase.final else _fraction(run)
            bar.total = len(followed)
            bar.n = round(done, 2)
            bar.set_postfix_str(" ".join(f"{k} {v}" for k, v in sorted(states.items())))
            bar.refresh()
            if followed and ended == len(followed):
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"{root}: {len(followed) - ended} runs still going after {timeout_s} s"
                )
            time.sleep(interval_s)
    finally:
        bar.close()
    return results(root)


def _fraction(run: Any) -> float:
    """How far a running training is, in [0, 1): epochs and batches done of the maximum."""
    status = run.status
    if status.max_epochs <= 0 or status.epoch_idx < 0:
        return 0.0
    within = (status.batch_idx + 1) / status.max_batches if status.max_batches > 0 else 0.0
    return min(0.99, max(0.0, (status.epoch_idx + min(within, 1.0)) / status.max_epochs))
