"""Every YAML document hpc-runner reads goes through :class:`LimitedLoader`.

YAML aliases let a few hundred bytes stand for a billion values (``&a [*b, *b, ...]`` nested a
few levels: the "billion laughs"). PyYAML loads such a document in milliseconds, because an
alias is the same object again, but anything that walks the result (the detail view listing a
run's settings, a sweep reading its values, a spec check) would then run for hours and fill the
memory. Run directories may hold anything (another user's, a copied one), so a document whose
values, counted as if every alias were written out, exceed :data:`MAX_YAML_VALUES` is refused
when it is read, with a message that says why. A real spec, sweep or profile holds a few hundred.
"""

from __future__ import annotations

from typing import Any

import yaml

#: Values a YAML document may hold with every alias written out (scalars, lists, mappings).
MAX_YAML_VALUES = 100_000


class TooManyValues(yaml.YAMLError):
    """A document whose aliases expand beyond :data:`MAX_YAML_VALUES` values."""


class LimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a document expanding beyond :data:`MAX_YAML_VALUES`
    (raises :class:`TooManyValues`, a ``yaml.YAMLError``, before anything is constructed)."""

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None and expanded_size(node, MAX_YAML_VALUES) > MAX_YAML_VALUES:
            raise TooManyValues(
                f"the document holds more than {MAX_YAML_VALUES:,} values once its aliases "
                "(*name) are written out: an alias repeated inside repeated aliases, or one "
                "that contains itself (write the values out, or use fewer aliases)"
            )
        return node


def expanded_size(node: yaml.Node, limit: int) -> int:
    """How many nodes ``node`` stands for with every alias written out, counting stops just
    past ``limit`` (so a recursive or exponential document costs ``limit`` steps, no more)."""
    count = 0
    stack = [node]
    while stack and count <= limit:
        current = stack.pop()
        count += 1
        if isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack.append(key)
                stack.append(value)
    return count


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with the limit above (raises ``yaml.YAMLError`` on a bad document)."""
    return yaml.load(text, Loader=LimitedLoader)  # (a SafeLoader subclass)
