"""Pure quantitative core of rfqdesk (numpy/scipy only: no I/O, clock or global config).

* :mod:`app.quant.pricing` — Black-76 / BSM / coin-settled options, greeks, implied vol, packages.
* :mod:`app.quant.quoting` — Guéant optimal quotes, the RFQ markup optimiser, inventory cost.
* :mod:`app.quant.scheduling` — Almgren–Chriss execution schedules and their Monte Carlo.
* :mod:`app.quant.errors` — :class:`QuantError` (a ``ValueError``) and its subclasses.
"""

from app.quant.errors import ImpliedVolNotFound, InvalidInput, NoConvergence, QuantError
from app.quant.pricing import (
    black76,
    bsm,
    coin_option,
    deribit_display_greeks,
    implied_vol,
    price_package,
)
from app.quant.quoting import (
    ExponentialIntensity,
    Intensity,
    LogisticIntensity,
    closed_form_quotes,
    closed_form_quotes_multi,
    exact_quotes_exponential,
    inventory_skew,
    myopic_quote,
    optimal_markup,
    optimal_markups,
    solve_quotes_ode,
)
from app.quant.scheduling import (
    ExecutionModel,
    ac_kappa,
    efficient_frontier,
    linear_schedule,
    optimal_schedule,
    schedule_moments,
    simulate_shortfall,
)
from app.quant.types import (
    ExecutionCostSample,
    ExecutionFrontier,
    ExecutionSchedule,
    MarkupResult,
    MyopicQuote,
    OptionGreeks,
    PackageRisk,
    QuoteLadder,
    QuotePair,
)

__all__ = [
    "ExecutionCostSample",
    "ExecutionFrontier",
    "ExecutionModel",
    "ExecutionSchedule",
    "ExponentialIntensity",
    "ImpliedVolNotFound",
    "Intensity",
    "InvalidInput",
    "LogisticIntensity",
    "MarkupResult",
    "MyopicQuote",
    "NoConvergence",
    "OptionGreeks",
    "PackageRisk",
    "QuantError",
    "QuoteLadder",
    "QuotePair",
    "ac_kappa",
    "black76",
    "bsm",
    "closed_form_quotes",
    "closed_form_quotes_multi",
    "coin_option",
    "deribit_display_greeks",
    "efficient_frontier",
    "exact_quotes_exponential",
    "implied_vol",
    "inventory_skew",
    "linear_schedule",
    "myopic_quote",
    "optimal_markup",
    "optimal_markups",
    "optimal_schedule",
    "price_package",
    "schedule_moments",
    "simulate_shortfall",
    "solve_quotes_ode",
]
