"""The scenario's ``wear`` section: the fade model, its period, ambient, retirement, second life."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from v2gsim.fields import ConfigModel
from v2gsim.physics.ambient import AmbientConfig
from v2gsim.physics.wear import WEAR_MODELS


class SecondLifeConfig(ConfigModel):
    enabled: bool = Field(default=True, description="keep retired vehicle packs as stationary storage (else they are recycled)")
    site: str | None = Field(default=None, description="site id that hosts the storage of retired vehicle packs (its bus on a network; null: spread over the EV connections)")
    c_rate_max_per_h: Annotated[float, Field(gt=0, le=2, description="charge/discharge power limit per pack, in capacities per hour")] = 0.5
    p_max_kw: Annotated[float, Field(gt=0, le=1e6, description="converter rating of each storage (grid side, both directions); null: the packs' C-rate only")] | None = None
    soc_min: Annotated[float, Field(ge=0, le=0.5, description="lower SOC limit of the stationary operation")] = 0.1
    soc_max: Annotated[float, Field(ge=0.5, le=1, description="upper SOC limit of the stationary operation")] = 0.95
    eta_charge: Annotated[float, Field(gt=0.5, le=1, description="grid-to-battery efficiency of the storage converter")] = 0.95
    eta_discharge: Annotated[float, Field(gt=0.5, le=1, description="battery-to-grid efficiency of the storage converter")] = 0.95
    end_of_life_soh: Annotated[float, Field(ge=0.3, le=0.95, description="second-life packs are recycled below this state of health")] = 0.6
    band_frac: Annotated[
        float, Field(gt=0, le=0.5, description="charge where the price is in the lowest band_frac of the run's price range, discharge in the highest")
    ] = 0.25


class WearConfig(ConfigModel):
    """Scenario section ``wear``: battery ageing of every vehicle (and retired pack)."""

    model: str = Field(
        default="off",
        description="fade model: auto (per chemistry: LFP naumann_lfp, NMC schmalstieg_nmc), off, or a registered "
        "wear model (v2gsim schema lists them)",
    )
    update_period_h: Annotated[
        float, Field(gt=0, le=8760, description="fade models advance once per period; must be a whole number of steps")
    ] = 24.0
    ambient: AmbientConfig = Field(default_factory=AmbientConfig, description="ambient temperature profile (default: guangzhou preset)")
    heating_k_per_c_rate: Annotated[
        float, Field(ge=0, le=50, description="battery temperature rise above ambient per 1C of current (steady state), K")
    ] = 8.0
    driving_speed_kmh: Annotated[
        float, Field(gt=0, le=120, description="mean driving speed, turns consumption into the traction C-rate")
    ] = 30.0
    retirement_soh: Annotated[
        float, Field(ge=0.5, le=0.99, description="packs below this state of health leave vehicle service (end of life for the wear price)")
    ] = 0.8
    replacement_cost_cny_per_kwh: Annotated[
        float, Field(ge=0, le=10_000, description="price of a replacement pack per kWh of capacity")
    ] = 650.0
    price_dispatch: bool = Field(default=True, description="write the marginal wear price into fleet.wear_cost_cny_per_kwh for strategies")
    marginal_window_fec: Annotated[
        float, Field(gt=0, le=10_000, description="the marginal wear price is the fade of the next this-many full equivalent cycles, per cycle")
    ] = 100.0
    rainflow: bool = Field(default=True, description="xu_rainflow: rainflow-count an hourly SOC history (a Python loop per vehicle and period)")
    second_life: SecondLifeConfig = Field(default_factory=SecondLifeConfig)

    @field_validator("model")
    @classmethod
    def _registered(cls, v: str) -> str:
        if v not in ("auto", "off") and v not in WEAR_MODELS:  # the registry as it is now, plugins included
            raise PydanticCustomError("unknown_name", "unknown wear model '{name}'", {"name": v, "hint": WEAR_MODELS.hint(v, "auto", "off")})
        return v

    @property
    def enabled(self) -> bool:
        return self.model != "off"
