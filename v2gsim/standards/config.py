"""Scenario fields for standards: the charger types of a site and the vehicle types of a
population group, each a share of the site's chargers or of the group's vehicles.

    sites:
      - {id: hub, kind: public, chargers: 36, p_max_kw: 60,
         standards: [{share: 0.5, connectors: [gbt_dc], v2g: [gbt_18487_4]},
                     {share: 0.5, connectors: [gbt_dc]}]}          # charge-only guns
    population:
      - {archetype: ride_hailing, count: 300, vehicle: ...,
         standards: [{share: 0.7, inlets: [gbt_ac, gbt_dc], v2g: [gbt_18487_4]},
                     {share: 0.3, inlets: [gbt_ac, gbt_dc], v2g: [vendor_x]}]}

Without ``standards`` a site's chargers and a group's vehicles fit everything (a site's
``bidirectional_share`` of its chargers discharge any bidirectional car), as before.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from v2gsim.fields import ConfigModel
from v2gsim.standards.catalogue import CONNECTORS, PROTOCOLS, known_protocol

_CONNECTOR_NAMES = ", ".join(CONNECTORS)


def _check_connectors(v: list[str]) -> list[str]:
    bad = [c for c in v if c not in CONNECTORS]
    if bad:
        raise ValueError(f"unknown connector {bad[0]!r}; known: {_CONNECTOR_NAMES}")
    if len(set(v)) != len(v):
        raise ValueError("lists a connector twice")
    return v


def _check_protocols(v: list[str]) -> list[str]:
    bad = [p for p in v if not known_protocol(p)]
    if bad:
        raise ValueError(f"unknown bidirectional protocol {bad[0]!r}; known: {', '.join(PROTOCOLS)}, or vendor_<name> "
                         "for a vendor's own protocol")
    if len(set(v)) != len(v):
        raise ValueError("lists a protocol twice")
    return v


class ChargerStandard(ConfigModel):
    """One type of charger at a site."""

    share: Annotated[float, Field(gt=0, le=1, description="share of the site's chargers of this type; the shares add up to 1")]
    connectors: list[str] = Field(min_length=1, description=f"the guns (or adapters) it offers: {_CONNECTOR_NAMES}")
    v2g: list[str] = Field(default_factory=list, description="bidirectional protocols it speaks (empty: charge only): "
                           f"{', '.join(PROTOCOLS)} or vendor_<name>")

    @field_validator("connectors")
    @classmethod
    def _connectors(cls, v: list[str]) -> list[str]:
        return _check_connectors(v)

    @field_validator("v2g")
    @classmethod
    def _protocols(cls, v: list[str]) -> list[str]:
        return _check_protocols(v)


class VehicleStandard(ConfigModel):
    """One type of vehicle in a population group."""

    share: Annotated[float, Field(gt=0, le=1, description="share of the group's vehicles of this type; the shares add up to 1")]
    inlets: list[str] = Field(min_length=1, description=f"the car's charging inlets: {_CONNECTOR_NAMES}")
    v2g: list[str] = Field(default_factory=list, description="bidirectional protocols the car speaks (empty: it cannot "
                           "discharge); needs a bidirectional vehicle")

    @field_validator("inlets")
    @classmethod
    def _inlets(cls, v: list[str]) -> list[str]:
        return _check_connectors(v)

    @field_validator("v2g")
    @classmethod
    def _protocols(cls, v: list[str]) -> list[str]:
        return _check_protocols(v)
