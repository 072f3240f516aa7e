"""Job specs, sweep specs and cluster profiles: YAML in, validated plain data out.

Everything a user writes is checked here before anything is written or submitted; every problem
is reported at once as ``FILE: KEY.PATH: reason``. Imports only :mod:`hpc_runner.stream` and
:mod:`hpc_runner.data` below it; careamics is imported inside the checks that need it.
"""
