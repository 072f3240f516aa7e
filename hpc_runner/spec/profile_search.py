"""Where cluster profiles come from: five places, a later one overriding an earlier one by name.

1. ``package`` — the profiles shipped inside hpc_runner (``hpc_runner/slurm_templates``, in a
   source checkout a link to the repository's top-level ``slurm_templates/``);
2. ``site`` — what the cluster's administrators provide: ``$HPC_RUNNER_SITE_PROFILES``, by
   default ``/etc/hpc-runner/profiles``;
3. ``user`` — the user's own: ``$XDG_CONFIG_HOME/hpc-runner/profiles``, by default
   ``~/.config/hpc-runner/profiles`` (where ``hpc-runner profiles new`` writes);
4. ``project`` — ``./slurm_templates/`` in the current directory;
5. ``env`` — the directories in ``$HPC_RUNNER_TEMPLATES``.

Where an environment variable lists several directories (``os.pathsep``-separated), the first
one wins, as on ``PATH``. A file that a later place overrides is kept as a *shadowed* file, so
``hpc-runner profiles`` can say which one hides which. The user directory follows the XDG base
directory rules on every platform: the profiles of a cluster's login nodes live where the
cluster's documentation says, not in ``~/Library`` (so :mod:`platformdirs` is not used).

Only the standard library is imported: listing profiles must start fast on a login node.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hpc_runner.spec.errors import Problem

SITE_ENV = "HPC_RUNNER_SITE_PROFILES"
SITE_DEFAULT = "/etc/hpc-runner/profiles"
TEMPLATES_ENV = "HPC_RUNNER_TEMPLATES"
TEMPLATES_DIR = "slurm_templates"
#: The places, lowest precedence first.
PLACES = ("package", "site", "user", "project", "env")
SUFFIXES = (".yml", ".yaml")  # in one directory, NAME.yaml overrides NAME.yml


@dataclass(frozen=True)
class SearchDir:
    """One directory searched for profiles and the place it stands for."""

    place: str
    path: Path

    def describe(self) -> str:
        """``user /home/me/.config/hpc-runner/profiles`` (with ``(absent)`` when missing)."""
        return f"{self.place} {self.path}" + ("" if self.path.is_dir() else " (absent)")


@dataclass(frozen=True)
class ProfileFile:
    """The file a profile name resolves to, and the files of that name it overrides.

    Parameters
    ----------
    name : str
        The profile's name (the file name without its suffix).
    path : Path
        The file that is used.
    place : str
        One of :data:`PLACES`.
    shadows : tuple of (place, path)
        Files of the same name in earlier places (or ``NAME.yml`` beside ``NAME.yaml``),
        nearest first: this file hides them.
    """

    name: str
    path: Path
    place: str
    shadows: tuple[tuple[str, Path], ...] = ()


@dataclass(frozen=True)
class ProfileScan:
    """What the search found: the winning file of every name, and the directories that could
    not be read (a problem each; the other directories still count)."""

    dirs: tuple[SearchDir, ...]
    files: dict[str, ProfileFile]
    problems: tuple[Problem, ...] = ()

    def searched(self) -> str:
        """The search order for messages: ``package DIR, site DIR (absent), ...``."""
        return ", ".join(directory.describe() for directory in self.dirs)


def package_dir() -> Path:
    """``hpc_runner/slurm_templates`` of the imported package (wheel, editable or checkout)."""
    return Path(__file__).resolve().parent.parent / TEMPLATES_DIR


def user_dir() -> Path | None:
    """``$XDG_CONFIG_HOME/hpc-runner/profiles`` or ``~/.config/hpc-runner/profiles``; None
    when there is no home directory to speak of.

    A relative ``XDG_CONFIG_HOME`` is ignored, as the XDG base directory specification says.
    """
    config = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config):
        try:
            config = str(Path.home() / ".config")
        except RuntimeError:  # no HOME and no passwd entry
            return None
    return Path(config) / "hpc-runner" / "profiles"


def search_dirs() -> list[SearchDir]:
    """Every directory searched, lowest precedence first, each once.

    A directory reached twice (``./slurm_templates`` in the repository is the shipped one)
    keeps its first, lowest place, so it never shadows itself.
    """
    site = _env_dirs(SITE_ENV, SITE_DEFAULT)
    candidates = [SearchDir("package", package_dir())]
    candidates += [SearchDir("site", path) for path in reversed(site)]
    user = user_dir()
    if user is not None:
        candidates.append(SearchDir("user", user))
    candidates.append(SearchDir("project", Path.cwd() / TEMPLATES_DIR))
    candidates += [SearchDir("env", path) for path in reversed(_env_dirs(TEMPLATES_ENV, ""))]
    unique: list[SearchDir] = []
    seen: set[Path] = set()
    for candidate in candidates:
        resolved = candidate.path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(candidate)
    return unique


def scan_profiles() -> ProfileScan:
    """Find every profile file; a later place overrides an earlier one by name (pure apart
    from listing the directories)."""
    dirs = search_dirs()
    chains: dict[str, list[tuple[str, Path]]] = {}
    problems: list[Problem] = []
    for directory in dirs:
        try:
            entries = sorted(os.scandir(directory.path), key=lambda entry: entry.name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as error:
            reason = (
                f"cannot read this profile directory ({error.strerror}): its profiles are left "
                "out (fix its permissions)"
            )
            problems.append(Problem(str(directory.path), "-", reason))
            continue
        for suffix in SUFFIXES:
            for entry in entries:
                stem, dot, ext = entry.name.rpartition(".")
                if not dot or f".{ext}" != suffix or stem.startswith(".") or not stem:
                    continue
                chains.setdefault(stem, []).append((directory.place, Path(entry.path)))
    files = {
        name: ProfileFile(name, chain[-1][1], chain[-1][0], tuple(reversed(chain[:-1])))
        for name, chain in sorted(chains.items())
    }
    return ProfileScan(tuple(dirs), files, tuple(problems))


def _env_dirs(variable: str, default: str) -> list[Path]:
    """The directories an environment variable lists (``default`` when it is unset; set but
    empty means none)."""
    value = os.environ.get(variable)
    if value is None:
        value = default
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part]
