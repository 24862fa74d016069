from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from app import migrate
from ml.evaluate import reliability
from ml.export import LOG_TABLES, SCHEMA, LogData, export_log, read_log_db, read_log_parquet
from ml.sim import SimConfig, simulate
from ml.sim.io import read_truth, write_truth
from ml.sim.writer import write_log_db

from ._data import small_sim


class TestSimulator:
    def test_reproducible(self):
        a = simulate(SimConfig(n_rfqs=300, seed=11))
        b = simulate(SimConfig(n_rfqs=300, seed=11))
        c = simulate(SimConfig(n_rfqs=300, seed=12))
        for name in LOG_TABLES:
            assert a.tables[name].equals(b.tables[name]), name
        assert not a.tables["rfq"].equals(c.tables["rfq"])

    def test_tables_follow_the_log_schema_and_lifecycle(self):
        sim = small_sim()
        t = sim.tables
        for name in LOG_TABLES:
            assert t[name].schema == SCHEMA[name]
        assert set(t["rfq"]["state"].to_pylist()) <= {"filled", "passed", "expired"}
        outcomes = Counter(t["dealer_request"]["outcome"].to_pylist())
        assert set(outcomes) <= {"quoted", "won", "lost", "no_response", "declined", "error"}
        assert outcomes["won"] > 0
        assert outcomes["declined"] > 0
        assert outcomes["no_response"] > 0
        # each RFQ's events run new → quoting → quoted → final, versions match
        events = Counter(t["rfq_event"]["rfq_id"].to_pylist())
        assert [events[r] for r in t["rfq"]["id"].to_pylist()] == t["rfq"]["version"].to_pylist()
        # traded RFQs: the cover (dealer fills + desk residual) equals the client's fill
        fills = t["fill"].to_pylist()
        by_rfq: dict[str, dict[str, float]] = {}
        for f in fills:
            d = by_rfq.setdefault(f["rfq_id"], {})
            d[f["counterparty"]] = d.get(f["counterparty"], 0.0) + f["quantity"]
        for q in by_rfq.values():
            assert q.get("dealer", 0.0) + q.get("desk", 0.0) == pytest.approx(q["client"])
        won = t["dealer_request"].filter(pc.equal(t["dealer_request"]["outcome"], "won"))
        assert all(v > 0 for v in won["fill_quantity"].to_pylist())

    def test_events_are_drawn_from_the_true_probabilities(self):
        sim = small_sim()
        out = np.array(sim.tables["dealer_request"]["outcome"].to_pylist())
        answered = np.isin(out, ["quoted", "won", "lost"]).astype(float)
        p = sim.truth["dealer_request"]["p_answer"].to_numpy()
        se = np.sqrt(np.sum(p * (1 - p))) / len(p)
        assert abs(answered.mean() - p.mean()) < 4 * se
        for b in reliability(answered, p, bins=5):
            assert abs(b.observed - b.mean_predicted) < 0.04
        # the oracle reproduces the recorded truth of the requests asked
        o = sim.oracle
        row = {rid: i for i, rid in enumerate(o.rfq_ids)}
        names = {n: j for j, n in enumerate(o.dealer_names)}
        tr = sim.truth["dealer_request"].to_pylist()[:500]
        got = o.truth(
            np.array([row[r["rfq_id"]] for r in tr]),
            np.array([names[r["dealer"]] for r in tr]),
            np.array([r["n_asked"] for r in tr]),
        )
        np.testing.assert_allclose(got.p_win, [r["p_win"] for r in tr], rtol=1e-12)

    def test_client_hits_follow_the_truth(self):
        sim = small_sim()
        rfq = sim.tables["rfq"].to_pylist()
        truth = sim.truth["client_quote"].to_pylist()
        p = np.array([(r["p_hit_bid"] or 0.0) + (r["p_hit_ask"] or 0.0) for r in truth])
        hit = np.array([r["state"] == "filled" for r in rfq], dtype=float)
        se = np.sqrt(np.sum(p * (1 - p))) / len(p)
        assert abs(hit.mean() - p.mean()) < 4 * se


class TestStorage:
    def test_database_and_parquet_round_trip(self, tmp_path: Path):
        sim = simulate(SimConfig(n_rfqs=200, seed=5))
        url = f"sqlite+aiosqlite:///{tmp_path / 'sim.db'}"
        migrate.upgrade(url)
        asyncio.run(write_log_db(sim.tables, url))
        log = asyncio.run(read_log_db(url))
        for name in LOG_TABLES:
            want = sim.tables[name].sort_by("id")
            got = log.tables[name].sort_by("id")
            assert got.equals(want), name
        export_log(log, tmp_path / "export")
        again = read_log_parquet(tmp_path / "export")
        for name in LOG_TABLES:
            assert again.tables[name].sort_by("id").equals(log.tables[name].sort_by("id"))
        # windows select RFQs and everything hanging off them
        created = sorted(sim.tables["rfq"]["created_at"].to_pylist())
        since = created[100]
        part = asyncio.run(read_log_db(url, since=since))
        part_pq = read_log_parquet(tmp_path / "export", since=since)
        assert part.tables["rfq"].num_rows == part_pq.tables["rfq"].num_rows == 100
        for name in LOG_TABLES:
            assert part.tables[name].num_rows == part_pq.tables[name].num_rows, name
        # the service's start-up store, seeded from the database, matches a replay
        from ml.features import build_store, seed_store

        end = max(created)
        seeded = asyncio.run(seed_store(url, days=30, now=end))
        replayed = build_store(LogData(sim.tables))
        at = end.timestamp() + 60
        for d in ("sim-dealer-01", "sim-dealer-07"):
            assert seeded.dealer_row(d, "BTC", "call", at, 1.0) == replayed.dealer_row(
                d, "BTC", "call", at, 1.0
            )
        client = sim.tables["rfq"]["client"][0].as_py()
        assert seeded.client_row(client, at) == replayed.client_row(client, at)
        # a second run into the same database reuses the dealers by name
        other = simulate(SimConfig(n_rfqs=50, seed=6))
        asyncio.run(write_log_db(other.tables, url))
        assert asyncio.run(read_log_db(url)).tables["dealer"].num_rows == 16

    def test_truth_is_kept_apart(self, tmp_path: Path):
        sim = small_sim()
        write_truth(sim, tmp_path / "truth")
        truth = read_truth(tmp_path / "truth")
        assert truth["dealer_request"].num_rows == sim.tables["dealer_request"].num_rows
        assert (
            "p_answer" not in LogData(sim.tables).tables["dealer_request"].column_names
            or sim.tables["dealer_request"]["p_answer"].null_count
            == sim.tables["dealer_request"].num_rows
        )  # the log carries only the desk's own predictions
