"""Resource quantities ("500m", "1Gi", 2) parsed and written back in the API server's canonical form.

The real server decodes a quantity when it decodes the object: a malformed one makes the whole request a 400
BadRequest (``quantities must match the regular expression ...`` / ``unable to parse quantity's suffix``), not
a 422. Stored quantities come back canonical: ``0.5`` -> ``500m``, ``1000m`` -> ``1``, ``2048Mi`` -> ``2Gi``,
``1500`` -> ``1500``, ``2000`` -> ``2k``; binary suffixes stay binary when the value is a whole number of
bytes, decimal exponents (``1e3``) stay exponents.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal

PATTERN = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}


class QuantityError(ValueError):
    pass


def parse(value) -> tuple[Decimal, str]:
    """(value, format) with format one of DecimalSI, BinarySI, DecimalExponent."""
    text = str(value).strip()
    match = re.match(PATTERN, text)
    if not match or text.count(".") > 1:
        raise QuantityError(f"quantities must match the regular expression '{PATTERN}'")
    number, suffix = match.groups()
    try:
        amount = Decimal(number)
    except ArithmeticError as exc:
        raise QuantityError(f"quantities must match the regular expression '{PATTERN}'") from exc
    if suffix in DECIMAL:
        return amount * (Decimal(10) ** DECIMAL[suffix]), "DecimalSI"
    if suffix in BINARY:
        return amount * (2 ** BINARY[suffix]), "BinarySI"
    exponent = re.match(r"^[eE]([-+]?[0-9]+)$", suffix)
    if exponent:
        return amount * (Decimal(10) ** int(exponent.group(1))), "DecimalExponent"
    raise QuantityError("unable to parse quantity's suffix")


def canonical(value) -> str:
    """The string the real server stores and returns for a quantity."""
    amount, fmt = parse(value)
    amount = amount.quantize(Decimal("1e-9"), rounding=ROUND_CEILING) if amount % Decimal("1e-9") else amount
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount == 0:
        return "0"
    if fmt == "BinarySI" and amount == amount.to_integral_value() and amount >= 1024:
        whole = int(amount)
        for suffix, shift in sorted(BINARY.items(), key=lambda item: -item[1]):
            if whole % (1 << shift) == 0:
                return f"{sign}{whole >> shift}{suffix}"
    exponent = max(e for e in DECIMAL.values() if (amount / (Decimal(10) ** e)) % 1 == 0 or e == -9)
    mantissa = int(amount / (Decimal(10) ** exponent))
    if fmt == "DecimalExponent":
        return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
    suffix = {v: k for k, v in DECIMAL.items()}[exponent]
    return f"{sign}{mantissa}{suffix}"
