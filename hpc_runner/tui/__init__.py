"""The Textual monitoring TUI (``hpc-runner watch``); see :mod:`hpc_runner.tui.app`.

Nothing here imports torch, lightning or careamics: the TUI reads status files only.
"""
