"""Dealer-fill model: P(dealer answers with a tradeable quote), P(desk fills from it)."""
