"""Frame stamps as integer nanoseconds, the form a ``builtin_interfaces/Time`` holds exactly: equal
stamps compare equal and a header rebuilt from one is the header received. Float seconds only
for arithmetic on durations and for printing."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

NS = 1_000_000_000


def seconds(ns: int) -> float:
    """``ns`` as float seconds (for evaluation, CSV and TUM output), correctly rounded (Python
    divides integers exactly before rounding once)."""
    return int(ns) / NS


def to_ns(seconds_text: str | float) -> int:
    """Nanoseconds of a stamp written in seconds ('1311868169.163498', '1.036e-01'), rounded to
    the nearest; read from the text, so that 16 significant digits are not lost to a float.
    ValueError for anything that is not a finite number."""
    try:
        value = Decimal(str(seconds_text).strip())
    except InvalidOperation:
        raise ValueError(f"not a number of seconds: {seconds_text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number of seconds: {seconds_text!r}")
    return int((value * NS).to_integral_value())
