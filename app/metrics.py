"""Prometheus metrics of the service (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_LATENCY = Histogram(
    "rfqdesk_http_request_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RFQ_TRANSITIONS = Counter("rfqdesk_rfq_transitions_total", "RFQ state transitions", ["to_state"])
RFQ_CREATED = Counter(
    "rfqdesk_rfqs_created_total", "RFQs created", ["underlying", "structure", "channel"]
)
STAGE_LATENCY = Histogram(
    "rfqdesk_stage_seconds",
    "Latency of one stage of an RFQ",
    ["stage"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
RFQS_BY_STATE = Gauge(
    "rfqdesk_rfqs",
    "RFQs by current state (refreshed by the sweeper)",
    ["state"],
    multiprocess_mode="livemax",
)
DEALER_OUTCOMES = Counter(
    "rfqdesk_dealer_requests_total",
    "Dealer requests by outcome (timeouts are no_response)",
    ["outcome"],
)
MODEL_VERSION = Gauge(
    "rfqdesk_model_info",
    "The model version serving (value 1)",
    ["model", "version"],
    multiprocess_mode="livemax",
)
GROUP_COMMIT_UNITS = Histogram(
    "rfqdesk_db_group_commit_units",
    "Units of work written by one group-commit statement (app.db)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
