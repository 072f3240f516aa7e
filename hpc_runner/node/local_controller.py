"""submitit's local controller, recording its processes for the monitor (local runs).

``python -m hpc_runner.node.local_controller FOLDER`` does what ``python -m
submitit.local._local FOLDER`` does - start the job's tasks, forward signals, time out, restart
on a local requeue - and also writes ``<job id>_processes.json`` (see
:mod:`hpc_runner.stream.processes`): the controller and task pids with their start times when
the tasks start, and their exit codes when they end. That lets the monitor tell a training that
runs from one that was killed (and by which signal), find an orphaned training after the
controller itself was killed, and ``cancel`` end every process of the run, all without reading
submitit's pickles.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from submitit.local.local import Controller

from hpc_runner.node.interrupts import take_interrupts
from hpc_runner.stream.processes import (
    JobProcesses,
    identify,
    read_processes,
    this_process,
    write_processes,
)


class RecordingController(Controller):
    """A submitit ``Controller`` that records its tasks' pids, start times and exit codes."""

    def start_tasks(self) -> None:
        super().start_tasks()
        tasks = [identify(task.pid) for task in self.tasks]
        self._record(
            JobProcesses(
                host=socket.gethostname(),
                controller=this_process(),
                tasks=[task for task in tasks if task is not None],
                started=time.time(),
            )
        )

    def wait(self, freq: int = 24) -> Sequence[int | None]:
        exit_codes = super().wait(freq)
        record = read_processes(self.folder, self.pid)
        if record is not None:
            record.exit_codes = list(exit_codes)
            self._record(record)
        return exit_codes

    def _record(self, record: JobProcesses) -> None:
        try:
            write_processes(self.folder, self.pid, record)
        except OSError as exc:  # the training matters more than its bookkeeping
            print(f"hpc-runner: cannot record the job's processes: {exc}", file=sys.stderr)


def main(argv: Sequence[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m hpc_runner.node.local_controller SUBMITIT_FOLDER")
    take_interrupts()  # cancel interrupts the controller while no task runs yet
    RecordingController(Path(argv[0])).run()


if __name__ == "__main__":
    main(sys.argv[1:])
