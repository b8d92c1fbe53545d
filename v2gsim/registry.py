"""Open registries: names a scenario uses, mapped to the classes that implement them.

Three registries, each defined next to what it holds:

==========================================  ==========================  ================================
registry                                    decorator                   entry-point group
==========================================  ==========================  ================================
``v2gsim.strategies.base.STRATEGIES``       ``register_strategy``       ``v2gsim.strategies``
``v2gsim.physics.wear.WEAR_MODELS``         ``register_wear_model``     ``v2gsim.wear_models``
``v2gsim.physics.networks.NETWORK_SOURCES`` ``register_network_source`` ``v2gsim.network_sources``
==========================================  ==========================  ================================

A registry fills itself on first use: it imports its built-in modules (whose decorators register
what they define, exactly as a user's module does), then loads the installed entry points of its
group (installed packages are trusted). A user's module adds to it at any time by being imported:
named in a scenario's ``plugins:`` (see :mod:`v2gsim.plugins`), or imported by the user's own code.

Nothing here imports numpy or the modules it registers until a registry is used, so
``import v2gsim`` stays light.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import re
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["REGISTRIES", "Registry"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Every registry created, by entry-point group (a failed plugin import is rolled back in each).
REGISTRIES: dict[str, Registry] = {}


@functools.cache
def _installed_entry_points():
    """Every installed package's entry points, read once per process (one scan of the
    installed distributions for all three registries)."""
    from importlib.metadata import entry_points

    return entry_points()


def _origin(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


class Registry(Mapping[str, Any]):
    """Names to classes for one kind of extension (business models, wear models, network sources).

    A read-only mapping: ``name in registry``, ``registry[name]``, ``list(registry)`` (in
    registration order, built-ins first). Add with the :meth:`register` decorator.

    Args:
        what: what a name names, in messages ("business model", "wear model").
        group: the entry-point group installed packages extend it through.
        builtins: modules that register the built-in names when imported.
        check: called as ``check(name, obj)`` before ``obj`` is registered; raises TypeError or
            ValueError with a sentence saying what is wrong.
        reserved: names with a meaning of their own in a scenario, never registrable.
        display: how a name is shown in the lists of known names (``simbench:<code>``).
    """

    def __init__(self, what: str, group: str, builtins: tuple[str, ...], *,
                 check: Callable[[str, Any], None] | None = None, reserved: tuple[str, ...] = (),
                 display: Callable[[str, Any], str] | None = None):
        self.what = what
        self._display = display
        self.group = group
        self.builtins = builtins
        self.reserved = reserved
        self._check = check
        self._items: dict[str, Any] = {}
        self._builtins_loaded = False
        self._entry_points_loaded = False
        #: increases with every change, so that what is built from a registry can be rebuilt
        self.version = 0
        REGISTRIES[group] = self

    # ------------------------------------------------------------------ filling
    def _load_builtins(self) -> None:
        if self._builtins_loaded:
            return
        self._builtins_loaded = True  # first: the built-in modules call register() while they load
        for module in self.builtins:
            importlib.import_module(module)

    def _ensure_loaded(self) -> None:
        """Built-ins, then entry points: on the first read, not on a registration (a built-in
        module registers while it is being imported, before an entry point may import it)."""
        if self._entry_points_loaded:
            return
        self._load_builtins()
        self._entry_points_loaded = True
        self._load_entry_points()

    def _load_entry_points(self) -> None:
        for ep in _installed_entry_points().select(group=self.group):
            try:
                obj = ep.load()  # a module registers by being imported; an object is registered here
                if not isinstance(obj, types.ModuleType) and obj not in self._items.values():
                    self.register(ep.name)(obj)
            except Exception as exc:  # noqa: BLE001 - one broken package must not stop every run
                dist = getattr(getattr(ep, "dist", None), "name", None) or "an installed package"
                warnings.warn(f"v2gsim: entry point {ep.name} = {ep.value} (group {self.group}, from {dist}) "
                              f"was not loaded: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=3)

    def register(self, name: str) -> Callable[[Any], Any]:
        """Class decorator: make ``obj`` available to scenarios under ``name``.

        Raises:
            TypeError: used without a name (``@register_strategy`` instead of
                ``@register_strategy("name")``), or the object does not fit this registry.
            ValueError: the name is taken by another object, reserved, or not an identifier.
        """
        if not isinstance(name, str):
            raise TypeError(f"give the {self.what}'s name: @register...({'my_name'!r}), not a bare decorator; got {name!r}")
        if not _NAME.fullmatch(name):
            raise ValueError(f"{self.what} name {name!r} must be an identifier (letters, digits, _; not starting with a digit)")
        if name in self.reserved:
            raise ValueError(f"{name!r} is reserved in scenarios and cannot name a {self.what}")

        def deco(obj: Any) -> Any:
            self._load_builtins()  # so that a name taken by a built-in is refused here
            old = self._items.get(name)
            if old is obj:
                return obj  # the same class again (a module imported twice under one name)
            if old is not None:
                raise ValueError(f"{self.what} {name!r} is already registered by {_origin(old)}; "
                                 f"choose another name for {_origin(obj)}")
            if self._check is not None:
                self._check(name, obj)
            self._items[name] = obj
            self.version += 1
            return obj

        return deco

    def unregister(self, name: str) -> None:
        """Remove a name (for tests and for rolling back a plugin that failed to import)."""
        if self._items.pop(name, None) is not None:
            self.version += 1

    def forget_module(self, module: str) -> None:
        """Remove every name registered by objects defined in ``module`` (or its submodules)."""
        for name, obj in list(self._items.items()):
            origin = getattr(obj, "__module__", "")
            if origin == module or origin.startswith(module + "."):
                self.unregister(name)

    # ------------------------------------------------------------------ reading
    def __getitem__(self, name: str) -> Any:
        self._ensure_loaded()
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self.what} {name!r}; {self.hint(name)}") from None

    def __iter__(self) -> Iterator[str]:
        """Built-in names in the order of ``builtins``, then the others as they were registered:
        the same listing whichever module a program happened to import first."""
        self._ensure_loaded()
        rank = {m: i for i, m in enumerate(self.builtins)}
        return iter(sorted(self._items, key=lambda n: rank.get(getattr(self._items[n], "__module__", None), len(rank))))

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._items

    def names(self, *extra: str) -> list[str]:
        """``extra`` names (reserved words such as ``auto``) followed by the registered ones, as
        a scenario writes them."""
        shown = [self._display(n, obj) if self._display else n for n, obj in self.items()]
        return [*extra, *shown]

    def hint(self, name: object, *extra: str) -> str:
        """``did you mean 'x'? known: a, b, c`` for an unknown name (``extra``: other valid words)."""
        close = difflib.get_close_matches(str(name), [*extra, *self], n=1)
        listing = f"known {self.what}s: {', '.join(self.names(*extra))}"
        return f"did you mean {close[0]!r}? {listing}" if close else listing

    def __repr__(self) -> str:
        state = ", ".join(self._items) if self._entry_points_loaded else "not loaded yet"
        return f"<{type(self).__name__} of {self.what}s ({self.group}): {state}>"
