"""Every BTC and ETH option the venue listed on 2025-05-08 parses to its own attributes."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from app.domain import Instrument, OptionType

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
INSTRUMENTS = (
    SHARED / "data/venue/deribit_get_instruments_btc_eth_option_result_real_2025-05-08.json"
)


@pytest.fixture(scope="module")
def listed():
    if not INSTRUMENTS.exists():
        pytest.skip(f"venue payloads not found at {INSTRUMENTS} (../shared beside the checkout)")
    return json.loads(INSTRUMENTS.read_text())


def test_all_listed_instruments_parse(listed):
    assert len(listed) == 1268
    for record in listed:
        name = record["instrument_name"]
        instrument = Instrument.parse(name)
        assert instrument.name == name
        assert instrument.underlying == record["base_currency"]
        assert instrument.strike == Decimal(str(record["strike"])), name
        assert instrument.option_type is OptionType(record["option_type"]), name
        expires = datetime.fromtimestamp(record["expiration_timestamp"] / 1000, tz=UTC)
        assert instrument.expiry_at == expires, name
