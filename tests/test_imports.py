"""No import cycles inside v2gsim, any module can be imported first, and ``import v2gsim`` stays
light (the registries import what they hold on first use, not on import)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "v2gsim"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """Modules a module's own code imports when it is imported (not inside functions, not under
    ``if TYPE_CHECKING:``)."""
    found: set[str] = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try, ast.With)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                visit([n for h in getattr(node, "handlers", []) for n in h.body])
                visit(getattr(node, "finalbody", []))
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")[: len(name.split(".")) - node.level + is_package]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                # `from package import submodule` imports the submodule; `from module import name` the module
                found.update(f"{module}.{a.name}" for a in node.names)
                found.add(module)

    visit(tree.body)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the v2gsim modules importing it runs first. Importing ``a.b.c`` runs the
    packages ``a.b`` first (their ``__init__``), which is how a package's import list closes a
    cycle; the root package ``v2gsim`` is left out (every module is below it)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        edges = set()
        for target in _top_level_imports(ast.parse(path.read_text()), name, path.name == "__init__.py"):
            parts = target.split(".")
            for n in range(2, len(parts) + 1):  # the target and the packages above it
                prefix = ".".join(parts[:n])
                # a module's own packages are initialised before it runs, so importing a sibling
                # (`from v2gsim.report import html` inside v2gsim.report.page) adds no edge to them
                if prefix in files and prefix != name and not name.startswith(prefix + "."):
                    edges.add(prefix)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_cycle_detector_finds_a_cycle_through_a_package_import_list():
    # the shape of the old one: a package whose __init__ imports its modules, one of which imports
    # (through other packages) a module that imports the package
    graph = {"v2gsim.s": {"v2gsim.s.a"}, "v2gsim.s.a": {"v2gsim.p.f"}, "v2gsim.p.f": {"v2gsim.q"}, "v2gsim.q": {"v2gsim.s"}}
    assert cycles(graph) == [["v2gsim.p.f", "v2gsim.q", "v2gsim.s", "v2gsim.s.a"]]
    tree = ast.parse("from v2gsim.scenario.schema import Scenario\nfrom . import base\n"
                     "if TYPE_CHECKING:\n    import v2gsim.model\ndef f():\n    import v2gsim.runner\n")
    assert _top_level_imports(tree, "v2gsim.strategies.x", False) >= {"v2gsim.scenario.schema", "v2gsim.strategies.base"}
    assert not {"v2gsim.model", "v2gsim.runner"} & _top_level_imports(tree, "v2gsim.strategies.x", False)


def test_no_import_cycles_in_the_package():
    graph = import_graph()
    assert {"v2gsim.scenario.schema", "v2gsim.strategies", "v2gsim.registry"} <= set(graph)
    assert cycles(graph) == []


# the old cycle's ends, and modules that register while they are imported
FIRST = ["v2gsim.scenario.schema", "v2gsim.strategies.battery_swap", "v2gsim.physics.wear", "v2gsim.strategies.uncontrolled"]


def test_any_module_can_be_imported_first():
    """Each in a fresh interpreter (a cycle shows up as an ImportError of a partly initialised
    module), and each can then validate a scenario."""
    code = "import importlib, sys; importlib.import_module(sys.argv[1]); import v2gsim; v2gsim.load_scenario('smoke')"
    procs = {m: subprocess.Popen([sys.executable, "-c", code, m], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for m in FIRST}
    failed = {m: p.communicate(timeout=300)[1][-1500:] for m, p in procs.items()}
    assert {m: err for m, err in failed.items() if procs[m].returncode} == {}


@pytest.mark.parametrize("absent", [("mesa", "dask", "distributed", "pandapower", "scipy",
                                     "v2gsim.strategies.centralized", "v2gsim.model")])
def test_import_v2gsim_is_light(absent):
    code = "import sys, v2gsim; print(' '.join(m for m in sys.argv[1:] if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code, *absent], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == []
