"""The scenario: frozen, typed pydantic models. Every number carries its unit in its name and a
declared range; unknown fields are errors (``extra="forbid"``).

The model never reads YAML: :mod:`v2gsim.scenario.loader` turns files into these objects and
:func:`cross_checks` adds the problems a single field cannot see (references between sections,
presets, data files).

The business models a scenario may name are those registered when it is validated (built-ins,
installed entry points, the scenario's ``plugins:``): :func:`scenario_model` assembles the
scenario class from the registry, and ``Scenario.model_validate`` goes through it.
"""

from __future__ import annotations

import difflib
import functools
import threading
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, field_validator, model_validator

from v2gsim.errors import Problem
from v2gsim.fields import DEFAULT_ZONE, ID_PATTERN, ConfigModel, LocalDateTime, check_zone, local_zone
from v2gsim.market.events import GridOperatorConfig, request_problems
from v2gsim.market.tariffs import TariffConfig
from v2gsim.market.contracts import ContractsConfig, contract_problems
from v2gsim.physics.ageing.config import WearConfig
from v2gsim.physics.ageing.initial import DEFAULT_GROUP_AGE, InitialAge, InitialSoh, Spread
from v2gsim.plugins import load_plugin, resolve_entry
from v2gsim.standards.config import ChargerStandard, VehicleStandard
from v2gsim.strategies.base import STRATEGIES, StrategyConfig


def _pct(lo: float = 0.0, hi: float = 1.0):
    return Field(ge=lo, le=hi)


class TimeConfig(ConfigModel):
    start: LocalDateTime = Field(
        description="start of the run, local wall-clock time (e.g. 2026-07-06T00:00); a time with a UTC offset "
        "(2026-07-05T16:00Z) is converted to the local time of timezone"
    )
    step_min: Annotated[int, Field(ge=1, le=60, description="step length in minutes; must divide a day")] = 15
    horizon_days: Annotated[
        float, Field(ge=1, le=3660, description="length of the run in days; must be a whole number of steps")
    ]
    warmup_days: Annotated[
        int, Field(ge=0, le=60, description="days simulated before start so the run begins settled; not recorded")
    ] = 1
    timezone: str = Field(
        default=DEFAULT_ZONE,
        description="IANA time zone of the run; the model's clock is its local wall-clock time, times with a UTC "
        "offset (in YAML or CSV files) are converted to it",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _in_zone(cls, data: Any, handler):
        # times with an offset are converted to this section's own zone (see v2gsim.fields)
        with local_zone(data.get("timezone", DEFAULT_ZONE) if isinstance(data, dict) else None):
            return handler(data)

    @field_validator("step_min")
    @classmethod
    def _divides_day(cls, v: int) -> int:
        if 1440 % v:
            raise ValueError(f"must divide a day (1440 min) evenly, e.g. 1, 5, 10, 15, 20, 30, 60; got {v}")
        return v

    @field_validator("horizon_days")
    @classmethod
    def _whole_steps(cls, v: float, info: ValidationInfo) -> float:
        step = info.data.get("step_min")
        if step is None:
            return v  # step_min's own problem is reported
        steps = v * 1440 / step
        if abs(steps - round(steps)) > 1e-6:
            lo, hi = np.floor(steps) * step / 1440, np.ceil(steps) * step / 1440
            raise ValueError(f"must be a whole number of {step}-minute steps; {v:g} days are {steps:.6g} steps "
                             f"(nearest: {lo:.10g} or {hi:.10g} days)")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        check_zone(v)
        return v

    @property
    def dt_h(self) -> float:
        return self.step_min / 60.0

    @property
    def n_steps(self) -> int:
        """Recorded steps (horizon_days is a whole number of steps)."""
        return int(round(self.horizon_days * 1440 / self.step_min))

    @property
    def steps_per_day(self) -> int:
        return 1440 // self.step_min

    def clock(self) -> pd.DatetimeIndex:
        """Start of every step simulated, warm-up included: naive local wall-clock times."""
        n = self.warmup_days * self.steps_per_day + self.n_steps
        return pd.date_range(pd.Timestamp(self.start) - pd.Timedelta(days=self.warmup_days), periods=n, freq=f"{self.step_min}min")


class VehicleSpec(ConfigModel):
    name: str = "custom"
    capacity_kwh: Annotated[float, Field(gt=0, le=1500, description="usable battery capacity")]
    consumption_kwh_per_km: Annotated[float, Field(gt=0, le=3, description="real-world consumption")]
    p_ac_max_kw: Annotated[float, Field(gt=0, le=50, description="on-board AC charger limit, grid side")]
    p_dc_max_kw: Annotated[float, Field(ge=0, le=1000, description="DC charging limit")]
    bidirectional: bool = Field(default=False, description="vehicle can discharge to the grid (V2G)")
    chemistry: Literal["LFP", "NMC"] = "LFP"
    soc_knee: Annotated[float, Field(ge=0.5, le=1.0, description="SOC above which charging power tapers (CC-CV)")] = 0.8
    taper_cutoff_frac: Annotated[
        float, Field(gt=0, le=0.5, description="charging ends when tapered power falls below this share of its CC power")
    ] = 0.05
    eta_charge: Annotated[float, Field(gt=0.5, le=1.0, description="grid-to-battery efficiency")] = 0.92
    eta_discharge: Annotated[float, Field(gt=0.5, le=1.0, description="battery-to-grid efficiency")] = 0.92
    pack_standard: str | None = Field(default=None, description="swap pack standard, if swappable")


@functools.cache
def vehicle_presets() -> dict[str, VehicleSpec]:
    """The bundled vehicle presets (``scenario/presets/vehicles.yaml``), by name."""
    text = resources.files("v2gsim.scenario").joinpath("presets/vehicles.yaml").read_text()
    return {k: VehicleSpec.model_validate(v) for k, v in yaml.safe_load(text).items()}


Archetype = Literal["private_commuter", "private_car_cn", "ride_hailing", "city_bus", "v2g_visitor"]


class PopulationGroup(ConfigModel):
    archetype: Archetype = Field(description="driving pattern, see docs of v2gsim.population.archetypes")
    count: Annotated[int, Field(gt=0, le=5_000_000, description="number of driver-vehicle pairs")]
    vehicle: str | VehicleSpec = Field(description="vehicle preset name or an inline vehicle spec")
    home_site: str | None = Field(default=None, description="site id of the home (or depot, for buses) base")
    home_charger_share: Annotated[float, _pct(), Field(description="share of the group owning a pile at home_site")] = 1.0
    work_site: str | None = Field(default=None, description="site id where commuters park at work")
    public_site: str | None = Field(default=None, description="site id of public chargers used on other stops")
    soc_initial_min: Annotated[float, _pct()] = 0.5
    soc_initial_max: Annotated[float, _pct()] = 0.9
    soc_target: Annotated[float, Field(ge=0.3, le=1.0, description="SOC at which the driver considers the car full")] = 1.0
    soc_min_departure_mean: Annotated[float, _pct(0, 0.9), Field(description="mean SOC a driver insists on at departure")] = 0.3
    soc_min_departure_sd: Annotated[float, _pct(0, 0.5)] = 0.1
    public_charge_below_soc: Annotated[
        float, _pct(), Field(description="arriving where they have no charger below this SOC, drivers park at public_site")
    ] = 0.5
    swap_below_soc: Annotated[
        float, _pct(), Field(description="vehicles with a swappable pack arriving below this SOC first swap at a compatible "
                             "station of a battery_swap business model")
    ] = 0.25
    swap_before_trip_reserve_soc: Annotated[float, _pct()] | None = Field(
        default=None,
        description="vehicles with a swappable pack whose next trip would leave them below this SOC swap before it, on "
        "arriving at the stop before (unless they plug in at their own pile there); null (default): only swap_below_soc",
    )
    # Before a trip (docs/mobility.md): a driver whose next trip needs more than the car holds
    # (plus trip_reserve_soc) stays plugged and leaves later, else detours to a public fast
    # charger, else shortens or cancels the trip. All defaults are assumptions [C].
    trip_reserve_soc: Annotated[
        float, _pct(0, 0.5), Field(description="SOC a driver keeps on top of the next trip's energy when deciding to leave [C]")
    ] = 0.05
    max_departure_delay_min: Annotated[
        float, Field(ge=0, le=1440, description="longest a plugged driver delays a departure to charge enough for the trip, "
                     "minutes; 0: never waits [C]")
    ] = 120.0
    detour_max_charge_min: Annotated[
        float, Field(ge=0, le=480, description="longest a driver charges (or queues) at a fast-charger detour before a "
                     "trip, minutes; 0: no detours [C]")
    ] = 60.0
    detour_extra_min: Annotated[
        float, Field(ge=0, le=240, description="driving time a detour to a fast charger adds to the trip, minutes [C]")
    ] = 15.0
    max_charger_wait_min: Annotated[
        float, Field(ge=0, le=1440, description="longest a driver waits in a full public site's FIFO queue for a charger, "
                     "minutes [C]")
    ] = 30.0
    shorten_min_share: Annotated[
        float, _pct(), Field(description="a trip the charge covers only in part is shortened to what it covers if that is at "
                             "least this share, else cancelled [C]")
    ] = 0.5
    daily_km_scale: Annotated[float, Field(gt=0, le=10, description="multiplies the archetype's daily distance")] = 1.0
    departure_estimate_sd_h: Annotated[
        float, Field(ge=0, le=12, description="error sd of the departure time a driver states on arrival")
    ] = 0.5
    standards: list[VehicleStandard] | None = Field(
        default=None, description="connectors and bidirectional protocols of the group's vehicles, by share "
        "(v2gsim.standards); absent: they fit every charger and, if bidirectional, discharge at every bidirectional one")

    initial_age_years: InitialAge = Field(
        default_factory=lambda: Spread.model_validate(DEFAULT_GROUP_AGE),
        description="age of the group's battery packs at the start, years: a number or {dist: fixed|uniform|normal|empirical|cn_nev_stock, ...}; "
        "default cn_nev_stock (China's NEV stock, MPS 2019-2024); 0 keeps them new; the calendar law runs on from it, "
        "and the cycle law from the cycles of the group's own mean daily distance over that age "
        "(docs/wear.md, Initial age; only with wear on)")
    initial_soh: InitialSoh | None = Field(
        default=None, description="state of health of the group's packs at the start (a number or a distribution); "
        "null: the calendar fade of initial_age_years plus the cycle fade of the group's driving over it (1.0 when new)")

    @model_validator(mode="after")
    def _soc_order(self):
        if self.soc_initial_min > self.soc_initial_max:
            raise ValueError(
                f"soc_initial_min ({self.soc_initial_min}) must not exceed soc_initial_max ({self.soc_initial_max})"
            )
        return self


class Site(ConfigModel):
    id: Annotated[str, Field(pattern=ID_PATTERN, description="unique site id")]
    kind: Literal["home", "work", "public", "depot"]
    p_max_kw: Annotated[float, Field(gt=0, le=1000, description="power limit of one charger, grid side")]
    chargers: Annotated[int, Field(gt=0, le=1_000_000)] | None = Field(
        default=None,
        description="number of charging points; home sites default to one private pile per owner, others need it",
    )
    current: Literal["ac", "dc", "auto"] = Field(default="auto", description="auto: DC above 22 kW per charger")
    bidirectional_share: Annotated[float, _pct(), Field(description="share of chargers that can discharge (V2G)")] = 0.0
    standards: list[ChargerStandard] | None = Field(
        default=None, description="the site's charger types by share: connectors and bidirectional protocols "
        "(v2gsim.standards); replaces bidirectional_share (the share of types speaking a protocol); absent: every "
        "charger fits every car")
    p_limit_kw: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="site connection limit on its net power (charging minus V2G), both directions; the site's load manager scales the chargers to it pro rata"
    )
    bus: Annotated[int, Field(ge=0)] | Literal["auto", "spread"] | None = Field(
        default=None,
        description="feeder.network bus index of the site; auto (the default with a network): home sites spread "
        "their piles over the load buses in proportion to their load, other sites sit on one load bus drawn the same way; "
        "spread: a shared site standing for many stations over the district, each vehicle charging there draws at "
        "its own bus (drawn like home piles)",
    )

    # Public chargers only (docs/mobility.md, "Full cars leave"): drivers unplug a full car after a
    # grace period; those who stay pay the operator's idle fee (占位费). Operators' published rules
    # (v2gsim.population.idle.OPERATOR_RULES, with the source): NIO 15 min then 0.5 CNY/min (cap 50),
    # Li Auto 15 min then 2 CNY/min (cap 200), XPeng 30 min then 1 CNY/min (cap 100), Tesla China
    # 3.2 / 6.4 CNY/min, no cap [B].
    leave_when_done: bool | None = Field(
        default=None, description="public sites: a driver unplugs once the car reached its charge target and grace_min "
        "has passed, freeing the charger for the queue; the car stays parked until its next trip; null (default): on "
        "for public DC sites where no charger can discharge, off for public AC sites (no source found for AC) and V2G "
        "stations (their cars are parked to feed back when called)")
    grace_min: Annotated[float, Field(ge=0, le=1440, description="minutes a full car may stay plugged before its driver "
                                      "unplugs (leave_when_done) or the idle fee starts; 15: NIO's and Li Auto's free "
                                      "period after charging ends [B]")] = 15.0
    leave_share: Annotated[float, _pct(), Field(description="share of drivers who follow leave_when_done (the others stay "
                                                "plugged, paying any idle fee) [C]")] = 1.0
    idle_fee_cny_per_min: Annotated[float, Field(ge=0, le=100, description="fee per minute a full car stays plugged past "
                                                 "grace_min, paid by its driver to the site's operator; 0 (default): none. "
                                                 "Published: NIO 0.5, XPeng 1, Li Auto 2, Tesla 3.2-6.4 [B]")] = 0.0
    idle_fee_cap_cny: Annotated[float, Field(gt=0, le=100_000)] | None = Field(
        default=None, description="most idle fee one session pays (NIO 50, XPeng 100, Li Auto 200 [B]); null: no cap")

    @property
    def is_dc(self) -> bool:
        return self.current == "dc" or (self.current == "auto" and self.p_max_kw > 22)

    @property
    def leaves_when_done(self) -> bool:
        """Whether drivers unplug full cars here (public sites; default: DC ones)."""
        if self.kind != "public":
            return False
        if self.leave_when_done is not None:
            return bool(self.leave_when_done)
        from v2gsim.standards.compat import v2g_share

        # a V2G station's cars are parked there to feed back when called: they stay
        return self.is_dc and v2g_share(self) == 0


class BaseLoadConfig(ConfigModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    source: Literal["standard", "network_profiles"] = Field(
        default="standard",
        alias="from",
        description="standard: the standard profile scaled to households (split over the network's load buses "
        "by their load); network_profiles: each network load's own profile (SimBench year profiles, else H0 "
        "scaled to the load's rating); needs feeder.network",
    )
    profile: str = Field(
        default="bdew:h0",
        description="standard load profile: bdew:h0 (aggregate households, demandlib), bdew:g0..., or simbench:H0-A... (single customers)",
    )
    annual_kwh_per_household: Annotated[float, Field(ge=0, le=100_000, description="annual energy per household")] = 2700
    csv: str | None = Field(
        default=None, description="CSV with columns time, p_kw replacing the standard profile (already scaled)"
    )


class FeederConfig(ConfigModel):
    transformer_kva: Annotated[float, Field(gt=0, le=1_000_000, description="rated apparent power of the transformer")] | None = Field(
        default=None, description="required without feeder.network; with one, its transformers' ratings are used"
    )
    power_factor: Annotated[float, Field(ge=0.5, le=1.0, description="power factor to turn kW into kVA loading")] = 0.95
    households: Annotated[int, Field(ge=0, le=10_000_000, description="households whose base load the feeder carries")] | None = Field(
        default=None, description="required unless base_load comes from network_profiles or a csv"
    )
    base_load: BaseLoadConfig = BaseLoadConfig()
    network: str | None = Field(
        default=None,
        description="pandapower network: case33bw, cigre_lv, cigre_mv, a Kerber feeder, simbench:<code>, "
        "file:<net.json>, or replicate:<N>:<network> (N copies, one feeder each); absent: a single transformer (transformer_kva)",
    )
    solver: Literal["ac", "capacity_only"] = Field(
        default="ac", description="ac: AC power flow every step (lightsim2grid); capacity_only: transformer sums only"
    )
    v_min_pu: Annotated[float, Field(ge=0.5, le=1.0, description="lower voltage band limit for violation KPIs")] = 0.93
    v_max_pu: Annotated[float, Field(ge=1.0, le=1.5, description="upper voltage band limit for violation KPIs")] = 1.07
    loading_limit_pct: Annotated[
        float, Field(gt=0, le=200, description="line/transformer loading limit for overload KPIs and headroom")
    ] = 100.0

    @model_validator(mode="after")
    def _needs(self):
        if self.network is None and self.transformer_kva is None:
            raise ValueError("transformer_kva is required when no feeder.network is given")
        if self.network is None and self.base_load.source == "network_profiles":
            raise ValueError("base_load.from: network_profiles needs a feeder.network")
        if self.households is None and self.base_load.source == "standard" and self.base_load.csv is None:
            raise ValueError("households is required for a standard-profile base load (or use base_load.csv / from: network_profiles)")
        return self


class SessionsConfig(ConfigModel):
    file: str | None = Field(default=None, description="charging sessions file in one of the formats (see format)")
    csv: str | None = Field(default=None, description="the same as file (the older name)")
    format: Literal["auto", "csv", "acn_json", "elaad_csv"] = Field(
        default="auto", description="csv: arrival, departure, energy_kwh[, site_id, max_power_kw, vehicle_id], times local to "
        "time.timezone or with a UTC offset; acn_json: ACN-Data sessions as published; elaad_csv: ElaadNL's open transactions "
        "file as published; auto: told apart by the file's content")
    vehicle: str | VehicleSpec = Field(default="generic_private_50", description="vehicle preset for session vehicles")
    default_site: str | None = Field(default=None, description="site for rows without a (mapped) site")
    site_map: dict[str, str] = Field(default_factory=dict, description="the file's station or site ids (ACN stationID/siteID, "
                                     "ElaadNL ChargePoint, csv site_id) -> scenario site ids")
    file_timezone: str | None = Field(default=None, description="elaad_csv: zone of its times, which carry no offset (default UTC, "
                                      "as the column names say); converted to time.timezone")

    @model_validator(mode="after")
    def _one_file(self):
        if (self.file is None) == (self.csv is None):
            raise ValueError("give the session file as file: (or its older name csv:), once")
        if self.file_timezone is not None:
            check_zone(self.file_timezone)
        return self

    @property
    def path(self) -> str:
        return self.file if self.file is not None else self.csv


class ChargersConfig(ConfigModel):
    """Chargers provisioned from published stock counts (v2gsim/data/charging_provision.yaml)."""

    provision: str = Field(
        description="preset of home-pile ownership and public chargers per EV, e.g. cn_national_2024q3 (NEA, end Sept "
        "2024); groups without home_charger_share get its home-pile share, public sites without chargers get "
        "ceil(public chargers per EV x vehicles naming them as public_site); explicit values win",
    )
    home_pile_share: Annotated[float, _pct()] | None = Field(
        default=None, description="replaces the preset's home-pile share (private piles per EV)")
    public_chargers_per_ev: Annotated[float, Field(ge=0, le=10)] | None = Field(
        default=None, description="replaces the preset's public chargers per EV")

    @field_validator("provision")
    @classmethod
    def _known(cls, v: str) -> str:
        from v2gsim.data.provision import provision_presets

        known = list(provision_presets())
        if v not in known:
            raise ValueError(f"unknown provision preset {v!r}; {_suggest(v, known)}")
        return v


class OutputsConfig(ConfigModel):
    session_sample: Annotated[int, Field(ge=0, le=10_000_000, description="vehicles whose sessions are recorded")] = 1000
    trace_sample: Annotated[int, Field(ge=0, le=100_000, description="vehicles whose SOC is recorded every step")] = 0
    plots: bool = Field(default=True, description="write PNG plots next to the tables")
    bus_voltages: bool = Field(default=False, description="record every bus voltage every step (long table; needs feeder.network)")


def _default_business_models() -> list[StrategyConfig]:
    return [STRATEGIES["uncontrolled"].config_cls()]


def _business_models_field():
    return Field(default_factory=_default_business_models, min_length=1,
                 description="who controls the chargers (and swap stations), each picked by kind: from the registered "
                 "business models; omitted: uncontrolled charging everywhere")


class Scenario(ConfigModel):
    """A validated scenario. Build it with ``Scenario.model_validate(data)`` (or
    :func:`v2gsim.load_scenario`): the instance is of the class :func:`scenario_model` assembles
    from the registered business models, a subclass of this one."""

    # bounded: both are printed (progress bar, summaries, plot titles) and stored with every result
    name: Annotated[str, Field(max_length=200, description="short title, printed and stored with the results")]
    description: Annotated[str, Field(max_length=5000, description="free text about the scenario")] = ""
    plugins: list[str] = Field(
        default_factory=list, exclude_if=lambda v: not v,  # absent from dumps (and hashes) when empty
        description="your own modules adding business models, wear models or network sources: a .py file relative to "
        "this file, or a module name (this file's folder first, then sys.path); imported only when allowed "
        "(--plugins, or V2GSIM_ALLOW_PLUGINS=1); see docs/extending.md",
    )
    seed: Annotated[int, Field(ge=0, le=2**63 - 1, description="master seed of every random stream")] = 0
    time: TimeConfig
    feeder: FeederConfig
    tariff: TariffConfig = Field(default_factory=lambda: TariffConfig(flat_cny_per_kwh=0.6))
    sites: list[Site] = []
    population: list[PopulationGroup] = []
    mobility_sessions: SessionsConfig | None = None
    chargers: ChargersConfig | None = Field(
        default=None, exclude_if=lambda v: v is None,  # absent from dumps (and hashes) when not used
        description="size home piles and public chargers from published figures (provision: <preset>); explicit "
        "counts in sites and population win",
    )
    business_models: list[StrategyConfig] = _business_models_field()
    grid_operator: GridOperatorConfig = Field(
        default_factory=GridOperatorConfig, exclude_if=lambda v: not v.requests,  # absent from dumps (and hashes) when empty
        description="the grid company's requests to the operators (peak cut, valley fill, discharge calls, regulation), "
        "each with its window, notice and price; see docs/market.md",
    )
    outputs: OutputsConfig = OutputsConfig()
    wear: WearConfig = Field(default_factory=WearConfig, description="battery ageing, its attribution, price and second life")
    contracts: ContractsConfig = Field(
        default_factory=ContractsConfig, exclude_if=lambda v: v.empty,  # absent from dumps (and hashes) when empty
        description="contracts between operators and drivers: V2G revenue share, wear compensation, minimum guarantee, "
        "battery-as-a-service leases (v2gsim.market.contracts)",
    )
    reference: Literal["uncontrolled", "none"] | str = Field(
        default="uncontrolled",
        description="what the run is compared with (reference_* KPIs): uncontrolled = the same actors, vehicles and "
        "mobility with the control taken away (business models charge uncontrolled, swap stations charge packs as "
        "they come back); none; or a scenario file (relative to this one) with the same time section",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _in_zone(cls, data: Any, handler):
        """Times with an offset anywhere in the scenario are converted to time.timezone."""
        if not isinstance(data, dict):
            return handler(data)
        time = data.get("time")
        zone = time.timezone if isinstance(time, TimeConfig) else time.get("timezone", DEFAULT_ZONE) if isinstance(time, dict) else None
        bms = data.get("business_models")
        if isinstance(bms, list) and any(isinstance(bm, BaseModel) for bm in bms):
            # configs built outside the scenario kept their offsets; validate them again in its zone
            data = {**data, "business_models": [bm.model_dump(by_alias=True) if isinstance(bm, BaseModel) else bm for bm in bms]}
        with local_zone(zone):
            return handler(data)

    @model_validator(mode="before")
    @classmethod
    def _provision(cls, data: Any) -> Any:
        """Fill in what ``chargers.provision`` sizes (groups' home-pile shares, public sites'
        chargers) before the fields are validated, so the scenario holds plain counts."""
        from v2gsim.data.provision import provisioned

        return provisioned(data)

    @model_validator(mode="after")
    def _has_vehicles(self):
        if not self.population and self.mobility_sessions is None:
            raise ValueError("a scenario needs vehicles: give population groups or mobility_sessions")
        return self

    def site_index(self) -> dict[str, int]:
        return {s.id: i for i, s in enumerate(self.sites)}

    # The class validating a scenario is assembled from the registry; these send the base class's
    # constructors there, so Scenario(...) and Scenario.model_validate(...) know every kind.
    def __new__(cls, *args: Any, **kwargs: Any):
        return super().__new__(scenario_model() if cls is Scenario else cls)

    @classmethod
    def model_validate(cls, *args: Any, **kwargs: Any):
        if cls is Scenario:
            return scenario_model().model_validate(*args, **kwargs)
        return super().model_validate(*args, **kwargs)

    @classmethod
    def model_validate_json(cls, *args: Any, **kwargs: Any):
        if cls is Scenario:
            return scenario_model().model_validate_json(*args, **kwargs)
        return super().model_validate_json(*args, **kwargs)

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any):
        if cls is Scenario:
            return scenario_model().model_json_schema(*args, **kwargs)
        return super().model_json_schema(*args, **kwargs)

    def __eq__(self, other: object) -> bool:
        # two scenarios validated before and after a registration are of two assembled classes
        if not isinstance(other, Scenario):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __reduce__(self):
        # Sent to another process (a sweep worker) as data plus the plugins that define its kinds:
        # the worker imports them, then validates the data again (the sending process allowed them).
        return _restore_scenario, (self.model_dump(),)


def _restore_scenario(data: dict) -> Scenario:
    for entry in data.get("plugins", ()):
        load_plugin(entry)
    return Scenario.model_validate(data)


_assembled: tuple[int, type[Scenario]] | None = None
_assembly_lock = threading.Lock()


def scenario_model() -> type[Scenario]:
    """The scenario class for the business models registered now: ``business_models`` is the
    union of their config classes, told apart by ``kind:`` (so an unknown kind is reported with
    the known ones, and ``v2gsim schema`` lists every one's fields). Rebuilt when the registry
    changes."""
    global _assembled
    len(STRATEGIES)  # fills the registry (imports the built-ins) before the lock is taken
    with _assembly_lock:
        if _assembled is None or _assembled[0] != STRATEGIES.version:
            configs = tuple(cls.config_cls for cls in STRATEGIES.values())
            item = configs[0] if len(configs) == 1 else Annotated[Union[configs], Field(discriminator="kind")]  # noqa: UP007
            model = create_model("Scenario", __base__=Scenario, __module__=__name__,
                                 business_models=(list[item], _business_models_field()))
            _assembled = (STRATEGIES.version, model)
        return _assembled[1]


# --------------------------------------------------------------------------- cross checks


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(str(name), known, n=1)
    listing = ", ".join(known) if known else "(none)"
    return f"did you mean {close[0]!r}? known: {listing}" if close else f"known: {listing}"


def model_checks(sc: Scenario) -> list[Problem]:
    """Problems of a validated scenario that its business models find (see
    ``StrategyConfig.scenario_problems``), and those of its standards (v2gsim.standards.checks)."""
    from v2gsim.standards.checks import standards_problems

    return ([p for i, bm in enumerate(sc.business_models) for p in bm.scenario_problems(sc, f"business_models[{i}]")]
            + request_problems(sc) + contract_problems(sc) + standards_problems(sc))


def cross_checks(raw: Any) -> list[Problem]:
    """Problems between sections, on the raw dict (tolerant of any shape; pydantic reports shapes)."""
    if not isinstance(raw, dict):
        return []
    problems: list[Problem] = []
    sites = raw.get("sites") if isinstance(raw.get("sites"), list) else []
    kinds: dict[str, str] = {}
    for i, s in enumerate(sites):
        if isinstance(s, dict) and isinstance(s.get("id"), str):
            if s["id"] in kinds:
                problems.append(Problem(f"sites[{i}].id", f"duplicate site id {s['id']!r}", "site ids must be unique"))
            kinds[s["id"]] = s.get("kind")
    site_ids = list(kinds)
    presets = list(vehicle_presets())
    for i, s in enumerate(sites):  # leaving when done and idle fees: rules of public chargers
        if not isinstance(s, dict) or s.get("kind") == "public":
            continue
        for key, off in (("leave_when_done", (None, False)), ("idle_fee_cny_per_min", (None, 0, 0.0)), ("idle_fee_cap_cny", (None,))):
            if key in s and s[key] not in off:
                problems.append(Problem(f"sites[{i}].{key}", f"is a rule of public chargers; site {s.get('id')!r} is of kind {s.get('kind')!r}",
                                        f"remove {key} or make the site kind: public"))

    def check_vehicle(path: str, v: Any):
        if isinstance(v, str) and v not in presets:
            problems.append(Problem(path, f"unknown vehicle preset {v!r}", _suggest(v, presets)))

    allowed = {"home_site": ("home", "depot"), "work_site": ("work",), "public_site": ("public", "depot")}
    groups = raw.get("population") if isinstance(raw.get("population"), list) else []
    for i, g in enumerate(groups):
        if not isinstance(g, dict):
            continue
        check_vehicle(f"population[{i}].vehicle", g.get("vehicle"))
        for key, ok_kinds in allowed.items():
            sid = g.get(key)
            if sid is None:
                continue
            if sid not in kinds:
                problems.append(Problem(f"population[{i}].{key}", f"names site {sid!r}, which is not in sites", _suggest(sid, site_ids)))
            elif kinds[sid] not in ok_kinds:
                problems.append(
                    Problem(
                        f"population[{i}].{key}",
                        f"site {sid!r} is of kind {kinds[sid]!r}",
                        f"{key} needs a site of kind {' or '.join(ok_kinds)}",
                    )
                )
    ms = raw.get("mobility_sessions")
    if isinstance(ms, dict):
        check_vehicle("mobility_sessions.vehicle", ms.get("vehicle", "generic_private_50"))
        ds = ms.get("default_site")
        if ds is not None and ds not in kinds:
            problems.append(Problem("mobility_sessions.default_site", f"names site {ds!r}, which is not in sites", _suggest(ds, site_ids)))
        sm = ms.get("site_map")
        for key, sid in (sm.items() if isinstance(sm, dict) else ()):
            if sid not in kinds:
                problems.append(Problem(f"mobility_sessions.site_map.{key}", f"names site {sid!r}, which is not in sites",
                                        _suggest(str(sid), site_ids)))
    claimed: dict[str, int] = {}
    bms = raw.get("business_models") if isinstance(raw.get("business_models"), list) else []
    for i, bm in enumerate(bms):
        if not isinstance(bm, dict) or not isinstance(bm.get("sites"), list):
            continue
        for j, sid in enumerate(bm["sites"]):
            if sid not in kinds:
                problems.append(Problem(f"business_models[{i}].sites[{j}]", f"names site {sid!r}, which is not in sites", _suggest(sid, site_ids)))
            elif sid in claimed:
                problems.append(
                    Problem(
                        f"business_models[{i}].sites[{j}]",
                        f"site {sid!r} is already controlled by business_models[{claimed[sid]}]",
                        "each site has one operator; remove it from one of the lists",
                    )
                )
            else:
                claimed[sid] = i
    from v2gsim.data.provision import provision_figures, provisioned

    provisioning = provision_figures(raw.get("chargers")) is not None
    for i, s in enumerate(provisioned(raw).get("sites") if isinstance(raw.get("sites"), list) else []):
        if isinstance(s, dict) and s.get("kind") in ("work", "public", "depot") and s.get("chargers") is None:
            if provisioning and s.get("kind") == "public":
                hint = "chargers.provision sizes a public site from the groups naming it as public_site, and none does: give its chargers"
            elif provisioning:
                hint = "chargers.provision sizes public sites only (the published counts cover no workplaces or depots): give its chargers"
            else:
                hint = "give the number of charging points, or size public sites with chargers: {provision: cn_national_2024q3}"
            problems.append(Problem(f"sites[{i}].chargers", "is required for shared sites (work, public, depot)", hint))
    wear = raw.get("wear")
    sl = wear.get("second_life") if isinstance(wear, dict) else None
    if isinstance(sl, dict) and sl.get("site") is not None and sl["site"] not in kinds:
        problems.append(Problem("wear.second_life.site", f"names site {sl['site']!r}, which is not in sites", _suggest(sl["site"], site_ids)))
    from v2gsim.scenario.network_checks import network_checks
    from v2gsim.standards.checks import raw_standards_problems

    problems += network_checks(raw) + raw_standards_problems(raw)
    return problems


def resolve_paths(raw: Any, lines) -> Any:
    """Make data-file paths absolute and plugin entries absolute files or module names, each
    relative to the file that named it (cwd for --set)."""
    if not isinstance(raw, dict):
        return raw

    def base(path: tuple) -> Path:
        where = lines.lookup(path)
        origin = where[0] if where and where[0] not in (None, "--set") else None
        return Path(origin).parent if origin else Path.cwd()

    for path in (("mobility_sessions", "csv"), ("mobility_sessions", "file"), ("feeder", "base_load", "csv"), ("wear", "ambient", "csv")):
        node = raw
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(path[-1]), str):
            node[path[-1]] = str((base(path) / node[path[-1]]).resolve())
    go = raw.get("grid_operator")
    reqs = go.get("requests") if isinstance(go, dict) else None
    for i, r in enumerate(reqs if isinstance(reqs, list) else ()):
        if isinstance(r, dict) and isinstance(r.get("signal"), str):  # a regulation signal
            r["signal"] = str((base(("grid_operator", "requests", i, "signal")) / r["signal"]).resolve())
    ref = raw.get("reference")
    if isinstance(ref, str) and ref not in ("uncontrolled", "none"):
        raw["reference"] = str((base(("reference",)) / ref).resolve())
    if isinstance(raw.get("plugins"), list):
        raw["plugins"] = [resolve_entry(e, base(("plugins", i))) if isinstance(e, str) else e
                          for i, e in enumerate(raw["plugins"])]
    return raw
