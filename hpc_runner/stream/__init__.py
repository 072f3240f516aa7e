"""The status stream: the status model, the record format, the writer and the readers.

The bottom layer of the data path (shared/DESIGN.md): a node writes ``status.jsonl`` through
:mod:`~hpc_runner.stream.writer`, the login node tails and folds it back into a
``TrainingStatus`` (:mod:`~hpc_runner.stream.tail`, :mod:`~hpc_runner.stream.run_state`), and
:mod:`~hpc_runner.stream.runs` names the files of a run directory. It imports no other
hpc_runner package and nothing heavy (no torch, lightning, careamics, textual or submitit).
"""
