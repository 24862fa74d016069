"""Pure domain core of rfqdesk: instruments, expiries, structures and RFQ validation.

No I/O and no clock: the request date or time ``as_of`` is always passed in. Nothing here
imports from the rest of the application or from web, database or network libraries.
"""

from app.domain.enums import Direction, OptionType, Side, Structure
from app.domain.errors import DomainError, InvalidInstrument
from app.domain.expiries import (
    EXPIRY_HOUR_UTC,
    expiry_candidates,
    expiry_datetime,
    format_expiry_code,
    last_friday,
    monthly_expiry,
    parse_expiry_code,
    weekly_expiry,
)
from app.domain.instruments import (
    Instrument,
    format_decimal,
    normalise_quantity,
    normalise_strike,
)
from app.domain.structures import (
    DEFAULT_RATIO,
    Leg,
    Recognised,
    StructureShape,
    build_legs,
    recognise,
    structure_shape,
)
from app.domain.validation import RfqLimits, validate_package

__all__ = [
    "DEFAULT_RATIO",
    "EXPIRY_HOUR_UTC",
    "Direction",
    "DomainError",
    "Instrument",
    "InvalidInstrument",
    "Leg",
    "OptionType",
    "Recognised",
    "RfqLimits",
    "Side",
    "Structure",
    "StructureShape",
    "build_legs",
    "expiry_candidates",
    "expiry_datetime",
    "format_decimal",
    "format_expiry_code",
    "last_friday",
    "monthly_expiry",
    "normalise_quantity",
    "normalise_strike",
    "parse_expiry_code",
    "recognise",
    "structure_shape",
    "validate_package",
    "weekly_expiry",
]
