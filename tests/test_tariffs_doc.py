"""docs/tariffs.md: every YAML example validates as a tariff and every Python example runs."""

import re
from pathlib import Path

import yaml

from v2gsim.market.tariffs import Tariff, TariffConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "tariffs.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text("utf-8"), flags=re.S)


def test_yaml_examples_are_valid_tariffs():
    blocks = _blocks("yaml")
    assert len(blocks) >= 5
    for text in blocks:
        cfg = TariffConfig.model_validate(yaml.safe_load(text)["tariff"])
        Tariff.from_config(cfg)


def test_python_examples_run():
    for code in _blocks("python"):
        exec(compile(code, str(DOC), "exec"), {})
