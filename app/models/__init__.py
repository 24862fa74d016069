"""ORM models; importing this package registers every table on ``Base.metadata``."""

from app.models.analytics import (
    AnalyticsHistogram,
    AnalyticsRollup,
    AnalyticsRollupState,
    FillMarkout,
)
from app.models.api_key import ApiKey
from app.models.dealer import Dealer, DealerQuote, DealerRequest
from app.models.desk import DeskRiskFactor
from app.models.execution import ChildOrder, ExecutionPlan
from app.models.fill import Fill
from app.models.market import MarketSnapshot
from app.models.message import ChatMessage
from app.models.model_version import ModelVersion
from app.models.quote import ClientQuote
from app.models.rfq import Rfq, RfqEvent, RfqLeg

__all__ = [
    "AnalyticsHistogram",
    "AnalyticsRollup",
    "AnalyticsRollupState",
    "ApiKey",
    "ChatMessage",
    "ChildOrder",
    "ClientQuote",
    "Dealer",
    "DealerQuote",
    "DealerRequest",
    "DeskRiskFactor",
    "ExecutionPlan",
    "Fill",
    "FillMarkout",
    "MarketSnapshot",
    "ModelVersion",
    "Rfq",
    "RfqEvent",
    "RfqLeg",
]
