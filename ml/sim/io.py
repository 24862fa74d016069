"""The simulator's true probabilities on disk, apart from the log (training never reads them).

``<truth dir>/dealer_request.parquet``: ``id`` (dealer_request id), ``rfq_id``, ``dealer``,
``n_asked``, ``p_answer``, ``p_acceptable``, ``p_win`` (given the client traded),
``inventory_x``. ``<truth dir>/client_quote.parquet``: ``id`` (client_quote id), ``rfq_id``,
``p_hit_bid``, ``p_hit_ask`` (null where that side was not quoted). ``world.json``: the hidden
market, for debugging.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ml.sim.engine import SimResult

__all__ = ["TRUTH_TABLES", "read_truth", "write_truth"]

TRUTH_TABLES = ("dealer_request", "client_quote")


def write_truth(result: SimResult, directory: Path) -> None:
    """Write the run's true probabilities (and its config and world) to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in TRUTH_TABLES:
        pq.write_table(result.truth[name], directory / f"{name}.parquet", compression="zstd")
    cfg = result.config
    meta = {
        "config": {
            **{k: getattr(cfg, k) for k in cfg.__dataclass_fields__ if k != "start"},
            "start": cfg.start.isoformat(),
        },
        "stats": result.stats,
    }
    (directory / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    (directory / "world.json").write_text(json.dumps(result.world.to_dict(), indent=1) + "\n")


def read_truth(directory: Path) -> dict[str, pa.Table]:
    """The truth tables in ``directory`` (missing ones are left out)."""
    out = {}
    for name in TRUTH_TABLES:
        path = directory / f"{name}.parquet"
        if path.exists():
            out[name] = pq.read_table(path)
    return out
