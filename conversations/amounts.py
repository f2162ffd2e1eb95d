"""Money as reps type it: "1500", "1,500.50", "1.5k", "AED 2,000", "2000 usd", "$300"."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from babel.numbers import get_currency_name

from handlers.errors import InvalidInput
from handlers.values import Money, minor_units, to_minor

EXAMPLES = "1500, 1,500.50, 1.5k, AED 2,000 or 2000 usd"
MAX_MINOR = 10**15  # a quadrillion minor units: far beyond any real deal, far below BigInteger

_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_WHOLE = re.compile(r"^[-+]?(\d+|[1-9]\d{0,2}(,\d{3})+|[1-9]\d{0,2}(\.\d{3})+)$")
_SUFFIX = {"k": Decimal(1_000), "m": Decimal(1_000_000)}
_PATTERN = re.compile(
    r"""^\s*
    (?P<pre>[A-Za-z]{3}|[$€£¥₹])?\s*
    (?P<num>[-+]?\d[\d,.\s']*)
    \s*(?P<suffix>[kKmM])?\s*
    (?P<post>[A-Za-z]{3}|[$€£¥₹])?\s*$""",
    re.X,
)


def _currency(token: str | None) -> str | None:
    if not token:
        return None
    if token in _SYMBOLS:
        return _SYMBOLS[token]
    code = token.upper()
    if get_currency_name(code) == code:
        raise InvalidInput(f"“{token}” is not a currency code. Try {EXAMPLES}.", field="amount")
    return code


def _number(text: str) -> Decimal:
    digits = text.replace(" ", "").replace("'", "")
    # The last separator followed by 1-2 digits is the decimal point; others group thousands.
    match = re.match(r"^(.*?)([.,])(\d{1,2})$", digits)
    if match and match.group(2) not in match.group(1):
        whole, frac = match.group(1), match.group(3)
    else:
        whole, frac = digits, ""
    # Thousands groups must look like thousands: "0.001" or "1,2,3" is a typo, not 1 or 123.
    if not _WHOLE.match(whole):
        raise InvalidOperation(text)
    whole = whole.replace(",", "").replace(".", "")
    return Decimal(f"{whole}.{frac}" if frac else whole)


def parse_amount(text: str, default_currency: str) -> Money:
    """An amount > 0 in minor units; refuses zero, negatives and garbage with an example."""
    raw = (text or "").strip()
    match = _PATTERN.match(raw)
    if not match:
        raise InvalidInput(f"I couldn't read “{raw[:30]}” as an amount. Try {EXAMPLES}.", field="amount")
    pre, post = _currency(match.group("pre")), _currency(match.group("post"))
    if pre and post and pre != post:
        raise InvalidInput(f"Two currencies in “{raw[:30]}”. Try {EXAMPLES}.", field="amount")
    currency = pre or post or default_currency
    try:
        value = _number(match.group("num"))
    except InvalidOperation:
        raise InvalidInput(f"I couldn't read “{raw[:30]}” as an amount. Try {EXAMPLES}.", field="amount")
    if match.group("suffix"):
        value *= _SUFFIX[match.group("suffix").lower()]
    if value <= 0:
        raise InvalidInput(f"The amount must be more than zero. Try {EXAMPLES}.", field="amount")
    try:
        minor = to_minor(value, currency)
    except InvalidOperation:  # more digits than any real amount (decimal context overflow)
        raise InvalidInput("That amount is too large. Check the number of zeros.", field="amount")
    if minor <= 0:
        smallest = Decimal(1) / (Decimal(10) ** minor_units(currency))
        raise InvalidInput(f"The smallest {currency} amount is {smallest}.", field="amount")
    if minor > MAX_MINOR:
        raise InvalidInput("That amount is too large. Check the number of zeros.", field="amount")
    return Money(minor, currency)
