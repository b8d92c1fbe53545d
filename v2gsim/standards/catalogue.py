"""Connectors and bidirectional (V2G) protocols that vehicles and chargers in China carry, each
with its source (tags as in DOMAIN.md: A well sourced, B one secondary source, C assumed).

Two things decide whether a car can use a charger:

* the **connector** (the plug and the car's inlet): charging, and discharging too, needs a
  common one. Every car sold in China carries a GB/T inlet and every public charger a GB/T
  gun, so connectors split Chinese fleets rarely (imports with only a CHAdeMO or CCS2 inlet
  are the exception) -- this is why a car that finds no common connector simply cannot
  charge there (counted, see :mod:`v2gsim.standards.compat`);
* the **bidirectional protocol**: discharging also needs both sides to speak one V2G
  protocol. Until GB/T 18487.4-2025 came into force, V2G piles in pilots spoke vendor or pilot
  protocols, so a V2G-capable car at a V2G pile could still fail to discharge there. This is
  the fragmentation the standards pair measures (``scenarios/standards_*.yaml``).

A vendor's own protocol is named ``vendor_<name>``: only the same vendor's cars and chargers
speak it (pre-standard pilots).
"""

from __future__ import annotations

import re

#: Connector (plug / inlet) -> (current, source).
CONNECTORS: dict[str, tuple[str, str]] = {
    "gbt_ac": ("ac", "GB/T 20234.2: the national AC connector of every Chinese EV and home pile [A]"),
    "gbt_dc": ("dc", "GB/T 20234.3 (2015 edition): the national DC connector; public DC piles in China use it [A]"),
    "chaoji": ("dc", "ChaoJi, GB/T 20234.4-2023 high-power DC interface, approved with GB/T 18487.1-2023 and "
                     "GB/T 27930-2023 by National Standard Announcement No. 9 of 2023 (7 Sep 2023); harmonised "
                     "with CHAdeMO 3.x, older GB/T and CHAdeMO cars through adapters [A, chinaevse.com / chademo.com]"),
    "chademo": ("dc", "CHAdeMO (Japan) DC connector; imports only in China [A]"),
    "ccs2": ("dc", "CCS2 (IEC 62196-3 combo 2) DC connector; imports only in China [A]"),
}

#: Bidirectional protocol -> source.
PROTOCOLS: dict[str, str] = {
    "gbt_18487_4": "GB/T 18487.4-2025 'discharging requirements for electric vehicles' (V2L/V2H/V2G, AC <= 440 V "
                   "three-phase, DC <= 1,000 V, M1 cars), issued 25 Apr 2025, in force 1 Nov 2025 [A, DOMAIN.md "
                   "'Policy'; codeofchina.com]",
    "chaoji": "ChaoJi bidirectional charging over GB/T 27930-2023 [A: standard published 2023; V2G use B]",
    "chademo": "CHAdeMO V2X (the protocol's bidirectional mode, since CHAdeMO 1.1) [A]",
    "iso_15118_20": "ISO 15118-20 bidirectional power transfer (CCS) [A]",
}

VENDOR_PROTOCOL = re.compile(r"^vendor_[a-z0-9_]+$")

DC_CONNECTORS = frozenset(c for c, (cur, _) in CONNECTORS.items() if cur == "dc")
AC_CONNECTORS = frozenset(c for c, (cur, _) in CONNECTORS.items() if cur == "ac")


def known_protocol(name: str) -> bool:
    """Whether ``name`` is a listed protocol or a vendor's own (``vendor_<name>``)."""
    return name in PROTOCOLS or bool(VENDOR_PROTOCOL.match(name))
