"""Kubernetes resource quantities (``500m``, ``2``, ``1.5Gi``, ``1e3``), parsed exactly.

The grammar is apimachinery's: a signed decimal number, then a binary suffix (``Ki`` ..
``Ei``), a decimal one (``n``, ``u``, ``m``, none, ``k``, ``M`` .. ``E``) or an exponent
(``e3``, ``E-2``). Values are ``Decimal`` so that ``1Gi`` and ``1024Mi`` compare equal.
"""

from __future__ import annotations

import re
from decimal import Decimal

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
ALLOWED = (
    "a Kubernetes quantity: a number with an optional suffix, such as 500m, 2, 1.5Gi, 128Mi or 1e3"
)


def parse_quantity(text: str) -> Decimal:
    """The value of a quantity; ValueError, saying what one looks like, when it is none."""
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(f"must be {ALLOWED}; got {text!r}")
    number, suffix = Decimal(match.group("number")), match.group("suffix") or ""
    if suffix in _BINARY:
        return number * Decimal(1024) ** _BINARY[suffix]
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    if suffix:
        return number.scaleb(int(suffix[1:]))
    return number
