"""Validation problems of job specs and cluster profiles, collected and reported together.

A user who fixes one typo should not have to resubmit to learn about the next one, so the
loaders here never stop at the first problem: each check appends a :class:`Problem` (file, key
path, reason) to a :class:`Problems` list and :class:`SpecError` reports all of them, one per
line. Only the standard library and PyYAML are imported, so the monitoring side may use this.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_runner.errors import UsageError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file.

    Parameters
    ----------
    file : str
        The file the problem is in (as the user named it).
    key : str
        Dotted key path inside the file (``training.patch_size``, ``data.train``), or
        ``line N`` for syntax errors, or ``-`` for the file as a whole.
    reason : str
        What is wrong, ending with how to fix it.
    """

    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key or '-'}: {self.reason}"


class SpecError(UsageError):
    """An invalid job spec or cluster profile: every problem found, one per line (exit code 2).

    Parameters
    ----------
    problems : iterable of Problem
        Everything found wrong; never empty.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


class Problems:
    """A collector bound to one file, so checks only say the key and the reason."""

    def __init__(self, file: str | Path) -> None:
        self.file = str(file)
        self.items: list[Problem] = []

    def add(self, key: str, reason: str) -> None:
        self.items.append(Problem(self.file, key, reason))

    def extend(self, problems: Iterable[Problem]) -> None:
        self.items.extend(problems)

    def raise_if_any(self) -> None:
        if self.items:
            raise SpecError(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


def join_key(prefix: str, key: object) -> str:
    """``prefix.key`` (list indices as ``prefix[3]``)."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate a typo most probably meant, or None when nothing is close."""
    matches = difflib.get_close_matches(str(word), list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key_reason(key: object, valid: Iterable[str]) -> str:
    """``unknown key (did you mean 'x'?)`` or the list of valid keys when nothing is close."""
    valid = sorted(valid)
    guess = closest(str(key), valid)
    if guess is not None:
        return f"unknown key (did you mean '{guess}'?)"
    return f"unknown key (valid keys: {', '.join(valid)})"


def check_keys(
    mapping: Mapping[str, Any], valid: Iterable[str], prefix: str, problems: Problems
) -> None:
    """Report every key of ``mapping`` that is not in ``valid``, with the closest valid one."""
    valid = list(valid)
    for key in mapping:
        if key not in valid:
            problems.add(join_key(prefix, key), unknown_key_reason(key, valid))


def type_name(value: object) -> str:
    """A user-facing name for the YAML type of a value (``an empty string`` for ``""`` or blanks,
    so that "expected a non-empty string, got ..." says what was wrong)."""
    if isinstance(value, str) and not value.strip():
        return "an empty string" if not value else "a blank string"
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


#: Job specs, sweeps, profiles and careamics configurations are a few KiB.
MAX_YAML_BYTES = 16 << 20


def load_yaml_mapping(path: Path, problems: Problems) -> dict[str, Any] | None:
    """Read a YAML file that must hold a mapping; report a missing file or a syntax error.

    Returns None (after adding a problem) when there is nothing usable to validate further.
    Duplicate keys are reported because PyYAML would silently keep the last one.
    """
    import yaml

    from hpc_runner.stream.files import read_regular_text, reason_of

    try:  # a FIFO or a device is refused at once, not read until it ends
        text = read_regular_text(path, max_bytes=MAX_YAML_BYTES)
    except FileNotFoundError:
        problems.add("-", "no such file (check the path)")
        return None
    except OSError as error:
        problems.add("-", f"cannot read the file: {reason_of(error)} (give a YAML file)")
        return None
    except UnicodeDecodeError as error:
        problems.add("-", f"not UTF-8 text (byte {error.start}: {error.reason}): save it as UTF-8")
        return None
    loader = _strict_loader(problems)
    try:
        data = yaml.load(text, Loader=loader)  # a SafeLoader subclass with the alias limit
    except RecursionError:  # PyYAML composes nested collections recursively
        problems.add("-", "nested too deeply to be a spec (check the brackets)")
        return None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "-"
        what = " ".join(part for part in (error.context, error.problem) if part)
        problems.add(where, f"YAML syntax error: {what} (fix the YAML syntax there)")
        return None
    except yaml.YAMLError as error:
        problems.add("-", f"YAML error: {error}")
        return None
    if data is None:
        problems.add("-", "the file is empty (it must be a YAML mapping of keys to values)")
        return None
    if not isinstance(data, dict):
        problems.add("-", f"expected a YAML mapping of keys to values, got {type_name(data)}")
        return None
    return data


def _strict_loader(problems: Problems) -> type:
    """A SafeLoader that reports duplicate keys (with their line) instead of dropping them, and
    refuses alias bombs (:mod:`~hpc_runner.spec.yaml_load`)."""
    from hpc_runner.spec.yaml_load import LimitedLoader

    class StrictLoader(LimitedLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # '<<: *defaults': merged below; the keys written here override
                key = self.construct_object(key_node, deep=deep)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # unhashable key: let PyYAML report it
                    continue
                if duplicate:
                    problems.add(
                        f"line {key_node.start_mark.line + 1}",
                        f"duplicate key '{key}' (keep only one of them)",
                    )
            return super().construct_mapping(node, deep=deep)

    return StrictLoader
