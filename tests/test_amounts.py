"""Amounts as reps type them: separators, shorthands and currencies; nonsense refused with an example."""
from __future__ import annotations

import pytest

from conversations.amounts import parse_amount
from handlers.errors import InvalidInput
from handlers.values import Money

EXAMPLE = "Try 1500, 1,500.50, 1.5k, AED 2,000 or 2000 usd."


@pytest.mark.parametrize("text, expected", [
    ("1500", Money(150000, "USD")),
    ("1,500.50", Money(150050, "USD")),
    ("1.5k", Money(150000, "USD")),
    ("2K", Money(200000, "USD")),
    ("1.5m", Money(150_000_000, "USD")),
    ("AED 2,000", Money(200000, "AED")),
    ("aed 100", Money(10000, "AED")),
    ("2000 usd", Money(200000, "USD")),
    ("2k AED", Money(200000, "AED")),
    ("$300", Money(30000, "USD")),
    ("€1.234,50", Money(123450, "EUR")),  # European separators
    ("1 500", Money(150000, "USD")),
    ("1,234,567.89", Money(123456789, "USD")),
    ("0.5", Money(50, "USD")),
    ("¥1500", Money(1500, "JPY")),  # no minor units in yen
])
def test_amounts_people_type(text, expected):
    assert parse_amount(text, "USD") == expected


def test_the_default_currency_is_the_callers():
    assert parse_amount("2,000", "AED") == Money(200000, "AED")


@pytest.mark.parametrize("text, message", [
    ("0", "The amount must be more than zero."),
    ("0.00", "The amount must be more than zero."),
    ("-500", "The amount must be more than zero."),
    ("-1,500", "The amount must be more than zero."),
    ("abc", "I couldn't read “abc” as an amount."),
    ("", "I couldn't read “” as an amount."),
    ("100 dollars", "I couldn't read “100 dollars” as an amount."),
    ("0.001", "I couldn't read “0.001” as an amount."),  # not a thousands group
    ("1,2,3", "I couldn't read “1,2,3” as an amount."),
    ("XYZ 100", "“XYZ” is not a currency code."),
    ("AED 100 USD", "Two currencies in “AED 100 USD”."),
])
def test_zero_negative_and_garbage_are_refused_with_an_example(text, message):
    with pytest.raises(InvalidInput) as err:
        parse_amount(text, "USD")
    assert str(err.value) == f"{message} {EXAMPLE}"
    assert err.value.field == "amount"


def test_absurd_amounts_are_refused():
    with pytest.raises(InvalidInput, match="too large"):
        parse_amount("1000000000000000000", "USD")


def test_less_than_the_smallest_unit_is_refused():
    with pytest.raises(InvalidInput, match="The smallest JPY amount is 1"):
        parse_amount("¥0.4", "USD")
