"""Every analytics report against the same figures computed independently from the raw rows
(tests/analytics/expected.py), on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.analytics import expected as ex
from tests.analytics.seed import SINCE, UNTIL, Seeded

Rows = dict[tuple[Any, ...], dict[str, Any]]


async def get_report(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    path: str,
    dims: list[str],
    **params: Any,
) -> tuple[dict[str, Any], Rows]:
    query = {"since": SINCE.isoformat(), "until": UNTIL.isoformat(), "group_by": dims} | params
    resp = await api.get(f"/v1/analytics/{path}", params=query, headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    rows = {
        (*(row["group"][d] for d in dims), *([row["bucket_lower"]] if "bucket" in row else [])): row
        for row in body["rows"]
    }
    assert len(rows) == len(body["rows"]), "one row per group"
    return body, rows


def assert_rows(got: Rows, want: Rows, metrics: list[str] | None = None) -> None:
    assert set(got) == set(want)
    assert want, "the seeded log must give this report something to count"
    for key, row in want.items():
        for name, value in row.items():
            if metrics is not None and name not in metrics:
                continue
            if value is None or isinstance(value, int):
                assert got[key][name] == value, (key, name, got[key][name], value)
            else:
                assert got[key][name] == pytest.approx(value, rel=1e-9, abs=1e-9), (key, name)


@pytest.fixture
async def log(seeded: Seeded, session: AsyncSession) -> ex.Log:
    return await ex.load(session)


@pytest.fixture
def rfqs(log: ex.Log) -> list[Any]:
    return log.window(SINCE, UNTIL)


DIMENSIONS = [
    [],
    ["underlying"],
    ["client"],
    ["day"],
    ["hour"],
    ["structure", "side"],
    ["channel"],
    ["size_contracts"],
    ["size_notional"],
    ["size_vega"],
    ["tenor"],
]


class TestHitRatio:
    async def test_client_hit_ratio_equals_the_raw_rows_by_every_dimension(
        self, api, analyst, log, rfqs
    ):
        for dims in DIMENSIONS:
            body, rows = await get_report(api, analyst, "hit-ratio", dims)
            assert body["unit"] == "rfq"
            assert_rows(rows, ex.rfq_hit_ratio(log, rfqs, dims))

    async def test_hit_ratio_by_dealer_equals_an_independent_computation(
        self, api, analyst, log, rfqs
    ):
        for dims in (["dealer"], ["dealer", "underlying"], ["day", "dealer"]):
            body, rows = await get_report(api, analyst, "hit-ratio", dims)
            assert body["unit"] == "dealer_request"
            want = ex.dealer_hit_ratio(log, rfqs, dims)
            assert_rows(rows, want)
            # not vacuous: dealers won and lost, and their ratios differ
            ratios = {r["hit_ratio"] for r in want.values() if r["hit_ratio"] is not None}
            assert len(ratios) > 1
            quoted = sum(r["quoted"] for r in want.values())
            assert 0 < sum(r["traded"] for r in want.values()) < quoted

    async def test_window_excludes_rfqs_outside_it(self, api, analyst, log, rfqs):
        _, rows = await get_report(api, analyst, "hit-ratio", [])
        assert rows[()]["requests"] == len(rfqs) == len(log.rfqs) - 1

    async def test_filters(self, api, analyst, log):
        flt = {"underlying": "ETH", "client": "acme"}
        _, rows = await get_report(api, analyst, "hit-ratio", ["structure"], **flt)
        assert_rows(rows, ex.rfq_hit_ratio(log, log.window(SINCE, UNTIL, **flt), ["structure"]))
        _, rows = await get_report(api, analyst, "hit-ratio", ["underlying"], dealer="bravo")
        want = ex.dealer_hit_ratio(log, log.window(SINCE, UNTIL), ["dealer", "underlying"])
        assert_rows(rows, {(k[1],): v for k, v in want.items() if k[0] == "bravo"})


class TestDealers:
    async def test_funnel(self, api, analyst, log, rfqs):
        for dims in (["dealer"], [], ["dealer", "day"], ["underlying"]):
            _, rows = await get_report(api, analyst, "funnel", dims)
            want = ex.funnel(log, rfqs, dims)
            assert_rows(rows, want)
            for key, row in rows.items():
                rate = want[key]["answered"] / want[key]["asked"]
                assert row["response_rate"] == pytest.approx(rate)
                assert row["best"] <= row["answered"]

    async def test_funnel_counts_ties_for_every_tied_dealer(self, api, analyst, log, rfqs):
        _, rows = await get_report(api, analyst, "funnel", [])
        firm = ex.firm_quotes(log, rfqs)
        rfqs_with_best = sum(1 for quotes in firm.values() if quotes)
        assert rows[()]["best"] > rfqs_with_best  # some RFQs have tied best prices

    async def test_funnel_best_compares_with_dealers_outside_the_filter(
        self, api, analyst, log, rfqs
    ):
        _, rows = await get_report(api, analyst, "funnel", [], dealer="charlie")
        assert rows[()]["best"] == ex.funnel(log, rfqs, ["dealer"])[("charlie",)]["best"]

    async def test_response_times(self, api, analyst, log, rfqs):
        for dims in (["dealer"], ["underlying"], []):
            _, rows = await get_report(api, analyst, "response-times", dims)
            assert_rows(rows, ex.response_times(log, rfqs, dims))

    async def test_quote_width(self, api, analyst, log, rfqs):
        _, rows = await get_report(api, analyst, "quote-width", ["dealer"])
        assert_rows(rows, ex.dealer_width(log, rfqs, ["dealer"]))
        _, rows = await get_report(api, analyst, "quote-width", ["underlying"], source="client")
        assert_rows(rows, ex.client_width(log, rfqs, ["underlying"]))

    async def test_cover(self, api, analyst, log, rfqs):
        for dims in (["dealer"], [], ["side"]):
            _, rows = await get_report(api, analyst, "cover", dims)
            assert_rows(rows, ex.cover(log, rfqs, dims))

    async def test_fill_and_win_calibration(self, api, analyst, log, rfqs):
        for model, dims in (("fill", ["dealer"]), ("win", [])):
            _, rows = await get_report(api, analyst, "calibration", dims, model=model, buckets=5)
            got = {(*k[:-1], round(k[-1] * 5)): r for k, r in rows.items()}
            assert_rows(got, ex.calibration(log, rfqs, dims, model, 5))


class TestTrades:
    async def test_price_improvement(self, api, analyst, log, rfqs):
        for dims in ([], ["underlying"], ["client", "day"]):
            _, rows = await get_report(api, analyst, "price-improvement", dims)
            want = ex.price_improvement(log, rfqs, dims, "client")
            assert_rows(rows, want)
            assert any(r["screen_mid_fills"] for r in want.values())  # mid from the screen...
            assert any(r["vs_mid_usd"] != r["vs_theo_usd"] for r in want.values())  # ...or theo
        _, rows = await get_report(
            api, analyst, "price-improvement", ["dealer"], counterparty="dealer"
        )
        assert_rows(rows, ex.price_improvement(log, rfqs, ["dealer"], "dealer"))

    async def test_markouts_reprice_the_package_on_the_later_snapshots(
        self, api, analyst, log, rfqs
    ):
        cases = (("client", []), ("client", ["underlying"]), ("dealer", ["dealer"]))
        for counterparty, dims in cases:
            _, rows = await get_report(api, analyst, "markouts", dims, counterparty=counterparty)
            want = ex.markouts(log, rfqs, dims, counterparty)
            assert_rows(rows, want)
            # not vacuous: a horizon without a snapshot leaves fills unpriced there
            fills = sum(r["fills"] for r in want.values())
            assert sum(r["priced_1m"] for r in want.values()) < fills
            assert sum(r["priced_30m"] for r in want.values()) == fills

    async def test_markouts_are_the_same_from_the_cache(self, api, analyst, log, rfqs):
        from app.analytics.service import analytics_service

        _, first = await get_report(api, analyst, "markouts", ["underlying"])
        assert len(analytics_service.markout_cache) > 0
        _, again = await get_report(api, analyst, "markouts", ["underlying"])
        assert again == first

    async def test_hit_calibration(self, api, analyst, log, rfqs):
        for dims in ([], ["underlying"]):
            body, rows = await get_report(api, analyst, "calibration", dims, model="hit")
            assert body["model"] == "hit"
            got = {(*k[:-1], round(k[-1] * 10)): r for k, r in rows.items()}
            for key, row in rows.items():
                assert row["bucket"] == f"{row['bucket_lower']:.2f}-{row['bucket_upper']:.2f}", key
            assert_rows(got, ex.calibration(log, rfqs, dims, "hit", 10))


ENDPOINTS = [
    ("hit-ratio", {}),
    ("funnel", {}),
    ("response-times", {}),
    ("quote-width", {}),
    ("quote-width", {"source": "client"}),
    ("cover", {}),
    ("price-improvement", {}),
    ("price-improvement", {"counterparty": "dealer"}),
    ("markouts", {}),
    ("markouts", {"counterparty": "dealer"}),
    ("calibration", {}),
    ("calibration", {"model": "fill"}),
]


class TestCsv:
    async def test_csv_matches_json(self, api, analyst, seeded):
        for path, params in ENDPOINTS:
            await self._check(api, analyst, path, params)

    async def _check(self, api, analyst, path, params):
        dims = ["underlying", "day"]
        query = {"since": SINCE.isoformat(), "until": UNTIL.isoformat(), "group_by": dims}
        body = (await api.get(f"/v1/analytics/{path}", params=query | params,
                              headers=analyst)).json()  # fmt: skip
        resp = await api.get(
            f"/v1/analytics/{path}", params=query | params | {"format": "csv"}, headers=analyst
        )
        assert resp.status_code == 200, (path, resp.text)
        assert resp.headers["content-type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(resp.text)))
        header, lines = table[0], table[1:]
        assert header[:2] == dims
        assert len(lines) == len(body["rows"]) > 0
        for line, row in zip(lines, body["rows"], strict=True):
            flat = {**row["group"], **{k: v for k, v in row.items() if k != "group"}}
            assert set(header) == set(flat)
            for name, cell in zip(header, line, strict=True):
                value = flat[name]
                if value is None:
                    assert cell == ""
                elif isinstance(value, float):
                    assert float(cell) == pytest.approx(value, rel=1e-12)
                else:
                    assert cell == str(value)


class TestEmptyWindow:
    async def test_no_rows_as_json_and_a_header_as_csv(self, api, analyst, seeded):
        for path, params in ENDPOINTS:
            await self._check(api, analyst, path, params)

    async def _check(self, api, analyst, path, params):
        dims = ["dealer"] if path in ("funnel", "cover") else ["underlying"]
        query = {"since": "2020-01-01T00:00:00Z", "until": "2020-02-01T00:00:00Z", "group_by": dims}
        resp = await api.get(f"/v1/analytics/{path}", params=query | params, headers=analyst)
        assert resp.status_code == 200, resp.text
        assert resp.json()["rows"] == []
        resp = await api.get(
            f"/v1/analytics/{path}", params=query | params | {"format": "csv"}, headers=analyst
        )
        assert resp.status_code == 200
        lines = resp.text.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(dims[0] + ",")
