"""Value rules shared by use cases and conversation parsers: money, phones, emails, text."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import phonenumbers
from babel.numbers import format_currency, get_currency_precision
from email_validator import EmailNotValidError, validate_email

from handlers.errors import InvalidInput

MAX_NAME = 200
MAX_TEXT = 4000


@dataclass(frozen=True, order=True)
class Money:
    """An amount in integer minor units of an ISO 4217 currency."""

    minor: int
    currency: str

    def format(self, locale: str = "en") -> str:
        return format_money(self.minor, self.currency, locale)


def minor_units(currency: str) -> int:
    return get_currency_precision(currency.upper())


def to_minor(amount: Decimal, currency: str) -> int:
    """Decimal major units -> integer minor units, rounding half up to the currency's precision."""
    exp = minor_units(currency)
    return int((amount * (Decimal(10) ** exp)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_major(minor: int, currency: str) -> Decimal:
    return Decimal(minor) / (Decimal(10) ** minor_units(currency))


def format_money(minor: int, currency: str, locale: str = "en") -> str:
    return format_currency(to_major(minor, currency), currency.upper(), locale=locale)


def normalize_phone(raw: str, region: str) -> str:
    """E.164 form of `raw`, read in `region` when it has no country code."""
    text = (raw or "").strip()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(
            f"“{clean_text(text, 40)}” is not a phone number. Try +971 50 123 4567.", field="phone"
        )
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(
            f"“{clean_text(text, 40)}” is not a valid phone number. Try +971 50 123 4567.",
            field="phone",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    try:
        info = validate_email((raw or "").strip(), check_deliverability=False)
    except EmailNotValidError:
        raise InvalidInput(
            f"“{clean_text(raw, 60)}” is not an email address. Try name@example.com.",
            field="email",
        )
    return info.normalized.lower()


def clean_text(raw: str | None, limit: int = MAX_TEXT) -> str:
    """Strip control characters (keeping newlines and tabs), trim, and cut to `limit`.

    Letters of every script, RTL marks and emoji are kept as typed.
    """
    if raw is None:
        return ""
    kept = []
    for ch in unicodedata.normalize("NFC", raw):
        cat = unicodedata.category(ch)
        if ch in "\n\t" or cat not in ("Cc", "Cs", "Co"):
            kept.append(ch)
    return "".join(kept).strip()[:limit]


def require_text(raw: str | None, what: str, limit: int = MAX_NAME, *, field: str | None = None) -> str:
    """Cleaned, non-empty text no longer than `limit`, or a clear `InvalidInput`."""
    text = clean_text(raw, limit=10 * limit + 10)
    if not text:
        raise InvalidInput(f"The {what} cannot be empty.", field=field)
    if len(text) > limit:
        raise InvalidInput(f"The {what} is too long ({len(text)} characters; at most {limit}).", field=field)
    return text
