"""Parameters, errors and access of the analytics API; the dashboard's files."""

from __future__ import annotations

import httpx
import pytest

from app.auth.keys import Role
from tests.conftest import KeyMaker

WINDOW = {"since": "2026-03-01T00:00:00Z", "until": "2026-03-02T00:00:00Z"}


async def get(api: httpx.AsyncClient, headers: dict[str, str], path: str, **params):
    return await api.get(f"/v1/analytics/{path}", params=WINDOW | params, headers=headers)


class TestParameters:
    async def test_unknown_group_by_is_a_422_naming_the_field(self, api, analyst):
        resp = await get(api, analyst, "hit-ratio", group_by=["dealer", "colour"])
        assert resp.status_code == 422
        body = resp.json()
        assert body["field"] == "group_by[1]"
        assert "size_notional" in body["detail"]  # the allowed values are listed

    @pytest.mark.parametrize(
        ("path", "params", "field"),
        [
            ("price-improvement", {"group_by": "dealer"}, "group_by"),
            ("markouts", {"dealer": "alpha"}, "dealer"),
            ("calibration", {"group_by": "dealer"}, "group_by"),
            ("quote-width", {"source": "client", "dealer": "alpha"}, "dealer"),
        ],
    )
    async def test_dealer_where_it_does_not_apply_is_a_422(self, api, analyst, path, params, field):
        resp = await get(api, analyst, path, **params)
        assert resp.status_code == 422
        assert resp.json()["field"] == field
        assert "does not apply" in resp.json()["detail"]

    async def test_dealer_grouping_applies_to_dealer_fills(self, api, analyst):
        for path in ("price-improvement", "markouts"):
            resp = await get(api, analyst, path, group_by="dealer", counterparty="dealer")
            assert resp.status_code == 200, resp.text

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"since": "2026-03-02T00:00:00Z"}, "since"),
            ({"since": "yesterday"}, "since"),
            ({"until": "2026-13-01"}, "until"),
            # the default window would step off the calendar (found by schemathesis: was a 500)
            ({"until": "0001-01-01T00:05:01Z"}, "until"),
            ({"since": "9999-12-31T23:59:59Z"}, "since"),
            ({"group_by": ["day", "hour", "client", "side", "channel"]}, "group_by"),
            ({"format": "xml"}, "format"),
            ({"underlying": "B1"}, "underlying"),
        ],
    )
    async def test_bad_parameters_are_422s_naming_the_field(self, api, analyst, params, field):
        resp = await get(api, analyst, "funnel", **params)
        assert resp.status_code == 422, resp.text
        assert resp.json()["field"] == field

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"model": "weather"}, "model"),
            ({"buckets": 1}, "buckets"),
            ({"buckets": 51}, "buckets"),
        ],
    )
    async def test_calibration_parameters(self, api, analyst, params, field):
        resp = await get(api, analyst, "calibration", **params)
        assert resp.status_code == 422
        assert resp.json()["field"] == field

    async def test_bad_source_and_counterparty(self, api, analyst):
        assert (await get(api, analyst, "quote-width", source="x")).json()["field"] == "source"
        resp = await get(api, analyst, "markouts", counterparty="desk")
        assert resp.json()["field"] == "counterparty"

    async def test_repeated_group_by_is_used_once_and_naive_times_are_utc(self, api, analyst):
        resp = await api.get(
            "/v1/analytics/hit-ratio",
            params={"since": "2026-03-01T00:00:00", "until": "2026-03-02", "group_by": ["day"] * 2},
            headers=analyst,
        )
        assert resp.status_code == 200
        body = resp.json()
        assert body["group_by"] == ["day"]
        assert body["since"] == "2026-03-01T00:00:00Z"
        assert body["until"] == "2026-03-02T00:00:00Z"

    async def test_default_window_is_the_last_30_days(self, api, analyst):
        body = (await api.get("/v1/analytics/cover", headers=analyst)).json()
        from datetime import datetime

        since = datetime.fromisoformat(body["since"])
        until = datetime.fromisoformat(body["until"])
        assert (until - since).days == 30

    async def test_dimensions_lists_the_buckets(self, api, analyst):
        body = (await api.get("/v1/analytics/dimensions", headers=analyst)).json()
        dims = {d["name"]: d for d in body["dimensions"]}
        assert set(dims) >= {"dealer", "client", "size_vega", "tenor", "hour", "day"}
        assert dims["size_contracts"]["buckets"][0] == "<10"
        assert dims["size_notional"]["buckets"][-1] == "25m+"
        assert dims["dealer"]["buckets"] is None


class TestTimeout:
    async def test_a_report_that_runs_out_of_time_is_a_503(
        self, api, analyst, seeded, database_url, monkeypatch
    ):
        if not database_url.startswith("postgresql"):
            pytest.skip("statement timeouts are PostgreSQL's")
        from app.analytics.service import analytics_service

        monkeypatch.setattr(analytics_service, "statement_timeout_s", 0.001)
        params = {"since": "2026-03-01T00:00:00Z", "until": "2026-03-05T00:00:00Z"}
        resp = await api.get(
            "/v1/analytics/cover", params=params | {"group_by": "dealer"}, headers=analyst
        )
        assert resp.status_code == 503
        assert resp.json()["error"] == "report_timeout"
        assert resp.headers["retry-after"] == "60"


class TestAccess:
    async def test_a_key_is_required(self, api):
        resp = await api.get("/v1/analytics/hit-ratio")
        assert resp.status_code == 401

    @pytest.mark.parametrize("role", [Role.SALES, Role.BOT])
    async def test_other_roles_are_refused(self, api, auth: KeyMaker, role):
        resp = await api.get("/v1/analytics/funnel", headers=await auth(role))
        assert resp.status_code == 403

    async def test_admin_is_admitted(self, api, auth: KeyMaker):
        resp = await api.get("/v1/analytics/funnel", headers=await auth(Role.ADMIN))
        assert resp.status_code == 200


class TestDashboardFiles:
    async def test_page_and_assets_are_served_with_a_strict_policy(self, api):
        page = await api.get("/dashboard")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "connect-src 'self'" in csp
        assert 'data-testid="key-form"' in page.text
        for name, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
            resp = await api.get(f"/dashboard/{name}")
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith(kind)
        assert (await api.get("/dashboard/../main.py")).status_code == 404
        assert (await api.get("/dashboard/secrets.txt")).status_code == 404

    async def test_nothing_is_loaded_from_elsewhere(self, api):
        for name in ("", "/dashboard.js", "/dashboard.css"):
            text = (await api.get(f"/dashboard{name}")).text
            text = text.replace('"http://www.w3.org/2000/svg"', "")  # a namespace, not a fetch
            assert "http://" not in text
            assert "https://" not in text
            assert "//cdn" not in text
