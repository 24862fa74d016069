"""``--dask``: training on a Dask cluster with xgboost's Dask integration (local cluster)."""

from __future__ import annotations

import numpy as np
import pytest

from ml.evaluate import log_loss
from ml.fill.train import fill_dataset, fit_head

from ._data import small_sim


def test_fit_head_on_a_local_dask_cluster():
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask.dataframe")
    from ml.export import LogData

    ds = fill_dataset(LogData(small_sim().tables))
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        head, info = fit_head(
            ds.x, ds.y_answer, ds.t, "fill", rounds=30, dask_address=cluster.scheduler_address
        )
    local, _ = fit_head(ds.x, ds.y_answer, ds.t, "fill", rounds=30)
    test = np.argsort(ds.t)[-len(ds.t) // 10 :]
    p_dask = head.predict(ds.x[test])
    p_local = local.predict(ds.x[test])
    assert info["trees"] >= 5
    # same data, same algorithm: comparable quality
    assert log_loss(ds.y_answer[test], p_dask) < log_loss(ds.y_answer[test], p_local) * 1.05
