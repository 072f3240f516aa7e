"""The monitoring side starts fast because it never imports torch, lightning or careamics."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "lightning", "pytorch_lightning", "careamics")

MONITORING_MODULES = [
    "hpc_runner",
    "hpc_runner.stream.status",
    "hpc_runner.stream.records",
    "hpc_runner.stream.tail",
    "hpc_runner.stream.run_state",
    "hpc_runner.watch.report",
    "hpc_runner.stream.runs",
    "hpc_runner.cli",
    "hpc_runner.control.scheduler",
    "hpc_runner.control.jobs",
    "hpc_runner.spec.job",
    "hpc_runner.spec.profiles",
    "hpc_runner.watch.results",
    "hpc_runner.api",
    "hpc_runner.watch",
    "hpc_runner.tui.app",
]


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


@pytest.mark.parametrize("module", MONITORING_MODULES)
def test_monitoring_module_imports_nothing_heavy(module: str) -> None:
    assert heavy(loaded_after(f"import {module}")) == []


def test_status_command_on_empty_dir_imports_nothing_heavy(tmp_path: object) -> None:
    code = (
        "import contextlib, io\n"
        "from hpc_runner.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['status', {str(tmp_path)!r}, '--json']) == 0\n"
    )
    assert heavy(loaded_after(code)) == []


def test_probe_detects_heavy_imports() -> None:
    """The check above can fail: the node side does load lightning."""
    assert "lightning" in heavy(loaded_after("import hpc_runner.node.callback"))
