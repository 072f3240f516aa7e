"""Redraw a plot at most every half second, and never drop the last request.

plotext is the costliest thing on screen: a training that writes a loss every few milliseconds
would otherwise redraw the detail and compare views hundreds of times a second. Both screens ask
through one :class:`PlotThrottle`, so they pace their plots the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.message_pump import MessagePump
from textual.timer import Timer

#: Seconds between two redraws at most.
PLOT_INTERVAL = 0.5


class PlotThrottle:
    """Calls ``draw`` now, or once when the interval since the last draw has passed.

    ``draw`` returns False when it could not draw yet (the plot is not laid out): that attempt
    does not count as a draw, so the next request is not held back by it.
    """

    def __init__(
        self, owner: MessagePump, draw: Callable[[], bool], interval: float = PLOT_INTERVAL
    ) -> None:
        self.owner = owner
        self.draw = draw
        self.interval = interval
        self._last = -interval
        self._timer: Timer | None = None

    @property
    def pending(self) -> bool:
        """A draw is scheduled and has not happened yet."""
        return self._timer is not None

    def soon(self) -> None:
        """Draw now if the last draw is long enough ago, else once when it is."""
        if self._timer is not None:
            return
        wait = self._last + self.interval - time.monotonic()
        if wait > 0:
            self._timer = self.owner.set_timer(wait, self.now)
        else:
            self.now()

    def now(self) -> None:
        """Draw at once (a key the user pressed), taking the place of a scheduled draw."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self.draw() is not False:
            self._last = time.monotonic()
