"""Client hit model: P(client trades | markup, RFQ), monotone decreasing in the markup."""
