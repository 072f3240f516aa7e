"""Run names and run identity of a sweep: derived from each run's values, never from positions.

A run's name is one ``label=fragment`` per key the sweep lists, in the sweep's order (``grid:``
keys, then ``zip:`` keys), joined by ``_``: ``patch_size=32x32_seed=1_train=a.tif@3f2a1c``.

- Every listed key is in every name, also a key with one value: adding a second value to it
  later must not rename the runs that exist. (A fixed setting belongs in the base spec.)
- The label is the key's last segment, or its whole path where two keys share a last segment.
- A fragment is *exact* when it shows the whole value unambiguously: a number (``1``, ``1.0``
  and ``1e-05`` stay apart), ``true``/``false``/``none``, a list of two or more numbers
  (``32x32``), or a short string that starts with a letter, is already a safe path component
  (:func:`hpc_runner.stream.runs.safe_run_name`) and does not read as a number or keyword.
  Any other value - a path (shown by its last component), a string that had to be changed or
  cut, a mapping, a list of strings - gets ``@`` and a short hash of its full value, so two
  values with the same readable part still get different names (``train=noisy.tif@3f2a1c``,
  ``train=noisy.tif@9b07e4``) whatever else the sweep lists. ``1``, ``1.0`` and ``"1"`` are
  three values (YAML types them apart): ``epochs=1``, ``epochs=1.0``, ``epochs=1@....``.
- A name longer than :data:`NAME_MAX` keeps its start and ends in a hash of all its values.

So a name depends only on the run's own values and the sweep's keys: reordering a list or
adding values renames nothing. Only the rare collision of two short hashes lengthens them.
(Reordering or adding *keys* does rename; a submission still finds the runs that exist by
their values, so nothing trains twice.)

A run's *identity* (:func:`run_identity`) is the canonical JSON of its values with relative
paths made absolute (``hpc_runner.spec.sweep_check.resolved_values``): a submission matches the
runs that exist by identity, not by name (and a run no identity matches by the settings it is
made with, ``hpc_runner.control.sweep_same``). Values from a script are first made the plain data a
YAML file would give (:func:`plain_value`: ``np.float64(1e-3)`` is the run ``1e-3``).
Pure; standard library only.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from hpc_runner.stream.runs import safe_run_name

#: Separates a fragment's readable part from the hash of its value (kept by safe_run_name).
HASH_MARK = "@"
#: Characters of a value's hash in a name: 16.7 million per readable text; collisions lengthen it.
HASH_LENGTH = 6
#: Readable characters of one value at most (beyond: cut, and the hash tells values apart).
FRAGMENT_MAX = 40
#: A run name's length at most, in bytes of UTF-8 (safe_run_name cuts at 200; this leaves room
#: for a conflict mark). In bytes: a name of 180 Japanese characters is 540 bytes, and the cut
#: that made it fit took its hash away, so two such runs got one name.
NAME_MAX = 180
_KEYWORDS = frozenset({"none", "null", "true", "false", "inf", "nan", "yes", "no", "on", "off"})
_LONGER = (10, 16, 64)


def plain_value(value: Any) -> Any:
    """A value as the plain data a YAML file would give: numpy scalars and arrays as the Python
    numbers and lists they equal (``.tolist()``), tuples as lists, mappings as dicts.

    Scripts build grids with ``numpy.linspace``/``logspace``: ``np.float64(1e-3)`` is the run of
    ``1e-3`` (one name, one identity), and a value must be writable to ``sweep.yaml`` and
    ``run.yaml``. Duck-typed (a ``shape`` tuple and ``tolist``): numpy is not imported.
    """
    if isinstance(value, Mapping):
        return {plain_value(key): plain_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(item) for item in value]
    if value is None or type(value) in (str, bool, int, float):
        return value
    tolist = getattr(value, "tolist", None)
    if isinstance(getattr(value, "shape", None), tuple) and callable(tolist):
        return plain_value(tolist())  # (np.float64 is a float, but writes as an object)
    return value


def canonical(value: Any) -> str:
    """One text per value: JSON with sorted keys; types stay apart (``1``, ``1.0``, ``"1"``),
    also as mapping keys (YAML allows ``{1: a, b: c}``, which JSON could not sort); a numpy
    number is the plain number it equals (:func:`plain_value`)."""
    return json.dumps(
        _text_keys(plain_value(value)), sort_keys=True, ensure_ascii=False, separators=(",", ":"),
        default=_tagged,
    )  # fmt: skip


def _text_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key if isinstance(key, str) else _tagged(key): _text_keys(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_text_keys(item) for item in value]
    return value


def _tagged(value: Any) -> str:
    """Values JSON has no type for (YAML dates, bytes) as ``type:text``."""
    return f"{type(value).__name__}:{value}"


def value_hash(value: Any, length: int = HASH_LENGTH) -> str:
    """The first ``length`` hex digits of the SHA-256 of the value's canonical text."""
    return hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()[:length]


def run_identity(values: Mapping[str, Any]) -> str:
    """What makes two runs of a sweep the same run: the canonical text of their values."""
    return canonical(dict(sorted(values.items())))


def key_labels(keys: Sequence[str]) -> dict[str, str]:
    """The last segment of each path (``training.patch_size`` → ``patch_size``), or the whole
    path where two keys share a last segment."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    pairs = zip(keys, last, strict=True)
    return {key: (tail if last.count(tail) == 1 else key) for key, tail in pairs}


def fragment(value: Any, hash_length: int = HASH_LENGTH) -> str:
    """A value's part of a run name: exact, or readable text + ``@`` + a hash of the value."""
    text, exact = _render(value)
    return text if exact else f"{text}{HASH_MARK}{value_hash(value, hash_length)}"


def run_name(
    overrides: Mapping[str, Any], labels: Mapping[str, str], hash_length: int = HASH_LENGTH
) -> str:
    """The name of the run that sets ``overrides`` (see the module docstring)."""
    if not overrides:
        return "run"
    name = "_".join(
        f"{labels[key]}={fragment(value, hash_length)}" for key, value in overrides.items()
    )
    if len(name.encode()) > NAME_MAX:
        whole = HASH_MARK + value_hash(dict(overrides), max(hash_length, 10))
        head = name.encode()[: NAME_MAX - len(whole)].decode("utf-8", errors="ignore")
        return safe_run_name(head.rstrip("._-=@"), suffix=whole)  # (the hash always kept)
    return safe_run_name(name)


def run_names(combos: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    """The names of the runs setting ``combos`` (the sweep's ``keys``), unique.

    Raises
    ------
    ValueError
        When two runs set the same values (a value listed twice).
    """
    labels = key_labels(keys)
    names = [run_name(combo, labels) for combo in combos]
    for length in _LONGER:  # two hashes collided: longer hashes for those runs only
        counts = Counter(names)
        if all(count == 1 for count in counts.values()):
            return names
        names = [
            run_name(combo, labels, length) if counts[name] > 1 else name
            for name, combo in zip(names, combos, strict=True)
        ]
    if len(set(names)) < len(names):
        (twice,) = [name for name, count in Counter(names).items() if count > 1][:1]
        raise ValueError(f"two runs set the same values ({twice}): list each value once")
    return names


def conflict_name(name: str, identity: str) -> str:
    """Another name for a run whose own name is taken by a run with other values: the name and
    a hash of the run's identity (so the same values get the same name the next time)."""
    mark = HASH_MARK + hashlib.sha256(identity.encode("utf-8")).hexdigest()[:8]
    return safe_run_name(name, suffix=mark)  # (the mark is kept whatever the name's length)


def _render(value: Any) -> tuple[str, bool]:
    """The readable text of a value, and whether it shows the value exactly."""
    if value is None:
        return "none", True
    if isinstance(value, bool):
        return ("true" if value else "false"), True
    if isinstance(value, int | float):
        text = repr(value) if isinstance(value, float) else str(value)
        return (text, True) if len(text) <= FRAGMENT_MAX else (_clean(text), False)
    if isinstance(value, str):
        if _exact_string(value):
            return value, True
        tail = value.rstrip("/").rsplit("/", 1)[-1] or value
        return _clean(tail), False
    if isinstance(value, Mapping):
        text = "-".join(f"{key}-{_render(item)[0]}" for key, item in value.items())
        return _clean(text or "empty"), False
    if isinstance(value, Sequence):
        numbers = all(_is_plain_number(item) for item in value)
        text = "x".join(_render(item)[0] for item in value)
        if numbers and len(value) >= 2 and len(text) <= FRAGMENT_MAX:
            return text, True
        return _clean(text or "empty"), False
    return _clean(str(value)), False


def _is_plain_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _exact_string(value: str) -> bool:
    """A string shown as itself: starts with a letter, safe as it is, not a number or keyword,
    free of the name's own marks (``=`` and ``@``), and short."""
    return (
        0 < len(value) <= FRAGMENT_MAX
        and value[0].isalpha()
        and value.lower() not in _KEYWORDS
        and "=" not in value
        and HASH_MARK not in value
        and safe_run_name(value) == value
        and not _is_number(value)
    )


def _is_number(text: str) -> bool:
    """``float()`` reads it (``infinity``, ``NaN``, ``1_000``): a YAML reader might too."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _clean(text: str) -> str:
    """Readable text, safe inside a name: safe_run_name's characters without ``=``/``@``, cut."""
    safe = safe_run_name(text) if text else "empty"
    return safe.replace("=", "-").replace(HASH_MARK, "-")[:FRAGMENT_MAX] or "empty"


def values_text(values: Mapping[str, Any]) -> str:
    """A run's values as messages name them: ``training.seed=1, data.train="a.tif"``."""
    return ", ".join(f"{key}={json.dumps(value, default=str)}" for key, value in values.items())
