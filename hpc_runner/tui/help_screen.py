"""Every key of every screen, listed from the screens' own bindings (so it cannot fall behind)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static

#: Keys that Textual itself provides, which no BINDINGS list of ours names.
GENERIC_KEYS = [
    ("s / c / r", "in the footer only where the run's phase allows them"),
    ("enter / esc in a prompt", "keep what was typed / clear it"),
    ("tab / shift+tab", "move the focus (buttons, panes)"),
    ("ctrl+q", "quit"),
]
MOUSE = [
    ("click a row", "highlight a run; click it again to open its details (a sweep: fold it)"),
    ("click a column header", "sort by that column; click again for the other direction"),
    ("click a key in the footer", "do what it says"),
    ("wheel", "scroll tables, logs and messages"),
]


def bindings_of(node_class: type[DOMNode]) -> list[Binding]:
    """The bindings a class declares itself and inherits, base classes first, one per key.

    A subclass's binding of a key replaces its base's; within one class the first binding of
    a key is the one listed (a second one is a hidden fallback: see ``RunScreen``).
    """
    seen: dict[str, Binding] = {}
    for cls in reversed(node_class.__mro__):
        if not cls.__module__.startswith("hpc_runner."):
            continue  # Textual's generic bindings (focus, copy) are listed once, below
        declared: list[BindingType] = cls.__dict__.get("BINDINGS", [])
        own: set[str] = set()
        for binding in Binding.make_bindings(declared):
            if binding.key not in own:
                own.add(binding.key)
                seen[binding.key] = binding
    return list(seen.values())


class HelpScreen(ModalScreen[None]):
    """The key reference; Esc, q or ? closes it.

    Parameters
    ----------
    sections : list of (title, node classes)
        Which screens and widgets (and the app) to list, in order.
    """

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 100; height: 90%; border: thick $primary; background: $surface; padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close"),
    ]

    def __init__(self, sections: list[tuple[str, tuple[type[DOMNode], ...]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self.help_table(), id="keys")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).border_title = "hpc-runner watch — keys"

    def help_table(self) -> Table:
        """Keys by section, then the generic keys and the mouse."""
        table = Table(box=None, show_header=False, expand=True, padding=(0, 1))
        table.add_column("key", style="bold", width=24, no_wrap=True)
        table.add_column("does")
        listed: set[tuple[str, str]] = set()
        for title, node_classes in self.sections:
            table.add_row(Text(title, style="bold underline"), "")
            rows: dict[tuple[str, str], list[str]] = {}  # one row per action: "↓ / j"
            for node_class in node_classes:
                for binding in bindings_of(node_class):
                    does = binding.tooltip or binding.description
                    keys = rows.setdefault((binding.action, does), [])
                    if (key := self.app.get_key_display(binding)) not in keys:
                        keys.append(key)
            again = [" / ".join(keys) for row, keys in rows.items() if row in listed]
            for row, keys in rows.items():
                if row not in listed:
                    table.add_row(" / ".join(keys), row[1])
            if again:  # the run keys of the table work in the details too: said once
                table.add_row(Text(" ".join(again), style="dim"), Text("as above", style="dim"))
            listed.update(rows)
            table.add_row("", "")
        for key, does in GENERIC_KEYS:
            table.add_row(key, does)
        table.add_row("", "")
        table.add_row(Text("Mouse", style="bold underline"), "")
        for key, does in MOUSE:
            table.add_row(key, does)
        return table


def toggle_help(app: App[Any]) -> None:
    """Open the key reference of every screen (or close it if it is open)."""
    # Imported here: the detail screen pulls in plotext, which the first paint can do without.
    from hpc_runner.tui.compare_screen import CompareScreen
    from hpc_runner.tui.detail_screen import DetailScreen
    from hpc_runner.tui.logs_screen import LogsScreen
    from hpc_runner.tui.prompt_bar import PromptBar
    from hpc_runner.tui.runs_screen import RunsScreen
    from hpc_runner.tui.runs_table import RunsTable

    if isinstance(app.screen, HelpScreen):
        app.screen.dismiss()
        return
    sections: list[tuple[str, tuple[type[DOMNode], ...]]] = [
        ("Runs table", (RunsScreen, RunsTable)),
        ("Filter and search prompts", (PromptBar,)),
        ("Run details", (DetailScreen,)),
        ("Compare (runs marked with space)", (CompareScreen,)),
        ("Logs", (LogsScreen,)),
        ("Everywhere", (type(app),)),
    ]
    app.push_screen(HelpScreen(sections))
