"""Reading runs on the login node: discovery, file-system events or polling, and summaries.

:mod:`~hpc_runner.watch.watcher` follows every run below a directory off the UI thread (a UI hands
:class:`~hpc_runner.watch.watcher.RunWatcher` a ``deliver`` callback and applies each
:class:`~hpc_runner.watch.batches.WatchBatch` itself); :mod:`~hpc_runner.watch.report` and
:mod:`~hpc_runner.watch.results` turn runs into the plain objects of ``status --json`` and sweep
results. Nothing here imports textual or anything heavy (no torch, lightning or careamics), and
this file imports nothing, so that ``status`` does not load watchdog.
"""
