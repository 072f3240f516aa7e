"""The optional ``monitor:`` section of a job spec: how often the node samples what it is doing.

::

    monitor:
      interval_s: 10      # seconds between two `system` samples (GPU, CPU, memory, throughput);
                          # 0 turns sampling off (the `environment` record is always written)

Checked at submission with the rest of the spec; goes into ``run.yaml`` as resolved, and a
``run.yaml`` written before this section existed reads back with the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hpc_runner.spec.errors import Problems, check_keys, type_name

MONITOR_KEYS = ("interval_s",)

#: Seconds between two samples unless the spec says otherwise.
DEFAULT_INTERVAL_S = 10.0

#: The shortest interval accepted (besides 0 = off): sampling a process tree and the GPUs takes
#: a few milliseconds, which must stay a small share of the time between two samples.
MIN_INTERVAL_S = 0.1


@dataclass(frozen=True)
class MonitorSpec:
    """The resolved ``monitor:`` section.

    Parameters
    ----------
    interval_s : float
        Seconds between two ``system`` samples; 0 = no sampling.
    """

    interval_s: float = DEFAULT_INTERVAL_S

    def to_dict(self) -> dict[str, Any]:
        """YAML-able form for ``run.yaml``."""
        return {"interval_s": self.interval_s}

    @classmethod
    def from_dict(cls, data: Any) -> MonitorSpec:
        """The section back from ``run.yaml`` (the default when it has none)."""
        if not isinstance(data, dict) or data.get("interval_s") is None:
            return cls()
        return cls(interval_s=float(data["interval_s"]))


def monitor_section(section: Any, problems: Problems) -> MonitorSpec:
    """Check the ``monitor:`` section; problems are added to ``problems``."""
    if section is None:
        return MonitorSpec()
    if not isinstance(section, dict):
        problems.add(
            "monitor", f"expected a mapping like {{interval_s: 10}}, got {type_name(section)}"
        )
        return MonitorSpec()
    check_keys(section, MONITOR_KEYS, "monitor", problems)
    value = section.get("interval_s", DEFAULT_INTERVAL_S)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.add(
            "monitor.interval_s",
            f"expected a number of seconds, got {type_name(value)} (e.g. 10; 0 turns sampling off)",
        )
        return MonitorSpec()
    if value != 0 and not value >= MIN_INTERVAL_S:
        problems.add(
            "monitor.interval_s",
            f"{value} is too short: give at least {MIN_INTERVAL_S} seconds, or 0 to turn "
            "sampling off",
        )
        return MonitorSpec()
    return MonitorSpec(interval_s=float(value))
