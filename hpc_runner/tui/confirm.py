"""A question in a modal dialog whose buttons say what they do; keys y / n / escape, or click.

The question may need a slow look first (``resume`` asks the scheduler and reads the run's
spec): the dialog then opens at once with the confirming button disabled, and a worker thread
posts :class:`~hpc_runner.tui.messages.AnswerReady` with the real question, or with why the
action cannot be done (the dialog then only offers to close).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from hpc_runner.tui.messages import AnswerReady


class ConfirmDialog(ModalScreen[bool]):
    """Dismissed with True (confirmed) or False.

    Parameters
    ----------
    question : Text
        What is asked; a ``Text`` so that run names in it are shown literally.
    confirm_label : str
        What the confirming button does (``Stop``, ``Cancel job``, ``Resume``).
    decline_label : str
        What the other one does (``Don't stop``, ``Keep it``, ``Don't resume``).
    ready : bool
        False: the question is still being worked out; confirming waits for
        :class:`AnswerReady`.
    """

    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > Vertical {
        width: 84; max-width: 100%; height: auto; max-height: 90%; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    ConfirmDialog #question { margin-bottom: 1; }
    ConfirmDialog Horizontal { height: auto; align-horizontal: right; }
    ConfirmDialog Button { margin-left: 2; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", tooltip="do what the red button says"),
        Binding("n", "answer(False)", "No", tooltip="do what the other button says"),
        Binding("escape", "answer(False)", "No", tooltip="do what the other button says"),
    ]

    def __init__(
        self,
        question: Text,
        confirm_label: str = "Yes",
        decline_label: str = "No",
        *,
        ready: bool = True,
    ) -> None:
        super().__init__()
        self.question = question
        self.confirm_label = confirm_label
        self.decline_label = decline_label
        self.ready = ready
        self.refused = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, id="question", markup=False)
            with Horizontal():
                yield Button(
                    f"{self.confirm_label} (y)", variant="error", id="yes", disabled=not self.ready
                )
                yield Button(f"{self.decline_label} (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # a stray Enter must not stop a training

    def on_answer_ready(self, message: AnswerReady) -> None:
        """The question is worked out: ask it, or say why there is nothing to confirm."""
        self.question = message.question
        self.query_one("#question", Static).update(message.question)
        yes, no = self.query_one("#yes", Button), self.query_one("#no", Button)
        if message.ok:
            self.ready = True
            yes.disabled = False
        else:
            self.refused = True
            yes.display = False
            no.label = "Close (n)"

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_answer(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        if answer and (not self.ready or self.refused):
            return  # nothing to confirm (yet)
        self.dismiss(answer)
