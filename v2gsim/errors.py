"""Errors raised by v2gsim.

`ScenarioError` carries every problem found in a scenario (never just the first), each one a
`Problem` with the YAML path, the file and line it came from, a plain message and a hint.
`SimulationError` is for failures while a model runs; `OutputError` for a result folder that
cannot be written as asked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["OutputError", "Problem", "ScenarioError", "SimulationError"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario.

    Attributes:
        path: Dotted YAML path with list indices in brackets, e.g. ``"population[0].count"``;
            ``""`` for the top level of the file.
        message: Short sentence, e.g. ``"must be > 0; got -5"``.
        hint: Optional help, e.g. ``"did you mean 'count'?"``.
        file: File the value came from, or ``"--set"`` for a command-line override.
        line: 1-based line in that file, if known.
    """

    path: str
    message: str
    hint: str | None = None
    file: str | None = None
    line: int | None = None

    def where(self) -> str:
        """Return ``"smoke.yaml line 7"``, ``"smoke.yaml"``, ``"line 7"`` or ``""``."""
        parts = []
        if self.file:
            parts.append(self.file if self.file == "--set" else os.path.basename(self.file))
        if self.line is not None:
            parts.append(f"line {self.line}")
        return " ".join(parts)

    def __str__(self) -> str:
        head = self.path or "(top level)"
        where = self.where()
        if where:
            head += f" ({where})"
        text = f"{head}: {self.message}"
        if self.hint:
            text += f" — hint: {self.hint}"
        return text


class ScenarioError(Exception):
    """A scenario could not be loaded; `problems` lists everything found wrong.

    Args:
        problems: One problem or several.
        file: The scenario file named in the header line (the top file, not a parent).
    """

    def __init__(self, problems: Problem | Iterable[Problem], file: str | None = None):
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        self.file = None if file is None else str(file)
        super().__init__(self.problems, self.file)

    def __str__(self) -> str:
        n = len(self.problems)
        noun = "problem" if n == 1 else "problems"
        name = f" {os.path.basename(self.file)}" if self.file else ""
        lines = [f"{n} {noun} in scenario{name}:"]
        lines.extend(f"  {p}" for p in self.problems)
        return "\n".join(lines)


class SimulationError(Exception):
    """A model failed while running (bad state, solver failure, inconsistent data)."""


class OutputError(OSError):
    """A result folder cannot be written as asked; the message names the folder and what to do.

    Attributes:
        refused: True when v2gsim declined (the folder holds other files, is a file, holds a
            previous result without overwrite) and wrote nothing; False when writing failed.
    """

    def __init__(self, message: str, *, refused: bool = True):
        super().__init__(message)
        self.refused = refused
