"""Residual execution: an Almgren–Chriss schedule, split across lit venues, worked in the
background and resumable after a restart.

* :mod:`~app.execution.config` — ``ExecutionSettings`` (mounted as ``Settings.execution``).
* :mod:`~app.execution.split` — pure least-cost split of a slice across venues.
* :mod:`~app.execution.venues` — the venue adapter interface and the simulated venues.
* :mod:`~app.execution.planning` — pure plan book-keeping: model, schedule, slices, shortfall.
* :mod:`~app.execution.service` — ``plan_residual`` (accept flow) and reads.
* :mod:`~app.execution.worker` — ``ExecutionWorker``, the background loop.
* :mod:`~app.execution.endpoints` — ``GET /v1/executions``; :mod:`~app.execution.cli` — plots.
"""
