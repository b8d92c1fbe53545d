"""Load YAML scenario files into any pydantic v2 model, reporting every problem at once.

The loader knows nothing about the scenario schema. It reads YAML safely while remembering the
file and line of every mapping key and list item (`LineMap`), follows ``extends:`` chains with a
deep merge, applies ``--set path=value`` overrides, validates with the given model class and
turns each pydantic error into a `Problem` with a YAML path, file, line, a plain message and a
hint.

Typical use::

    scenario = load("smoke.yaml", Scenario, overrides=["fleet.size=1000"])
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import enum
import os
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from v2gsim.errors import Problem, ScenarioError

__all__ = [
    "LineMap",
    "format_path",
    "load",
    "parse_override",
    "parse_path",
    "read_yaml",
    "resolve",
    "validate",
]

PathT = tuple[str | int, ...]
OVERRIDE_FILE = "--set"
_GOT_MAX = 60


# --------------------------------------------------------------------------------------------
# paths


def format_path(path: Sequence[Any]) -> str:
    """Format ``("population", 0, "count")`` as ``"population[0].count"``; ``()`` as ``""``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]|(\.)")
_INDEX = re.compile(r"-?\d+")


def parse_path(text: str) -> PathT:
    """Parse ``"population[0].count"`` or ``"population.0.count"`` into a path tuple.

    Parts made of digits only become list indices (ints); a leading minus counts from the end
    of the list, as in Python (``population.-1.count``).

    Raises:
        ValueError: on empty parts or unbalanced brackets.
    """
    text = text.strip()
    if not text:
        return ()
    parts: list[str | int] = []
    pos = 0
    expect_part = True  # at start or right after a dot
    while pos < len(text):
        m = _PATH_TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"cannot read path {text!r} at position {pos}")
        name, index, dot = m.groups()
        if dot:
            if expect_part:
                raise ValueError(f"empty part in path {text!r}")
            expect_part = True
        elif index is not None:
            if expect_part and parts:
                raise ValueError(f"empty part in path {text!r}")
            parts.append(int(index))
            expect_part = False
        else:
            if not expect_part:
                raise ValueError(f"missing '.' in path {text!r}")
            name = name.strip()
            parts.append(int(name) if _INDEX.fullmatch(name) else name)
            expect_part = False
        pos = m.end()
    if expect_part:
        raise ValueError(f"path {text!r} ends with '.'")
    return tuple(parts)


# --------------------------------------------------------------------------------------------
# line map


class LineMap:
    """Where each value of a loaded scenario came from.

    Maps a path tuple such as ``("population", 0, "count")`` to ``(file, line)``. Values set by a
    command-line override map to ``("--set", None)``.

    Args:
        root_file: The top scenario file, used in error headers and as the last fallback.
    """

    def __init__(self, root_file: str | None = None, entries: Mapping[PathT, tuple] | None = None):
        self.root_file = root_file
        self._entries: dict[PathT, tuple[str | None, int | None]] = dict(entries or {})

    def set(self, path: Sequence[str | int], file: str | None, line: int | None) -> None:
        """Record that the value at ``path`` came from ``file`` at ``line`` (1-based)."""
        self._entries[tuple(path)] = (file, line)

    def get(self, path: Sequence[str | int]) -> tuple[str | None, int | None] | None:
        """Return the exact entry for ``path`` or None (no fallback)."""
        return self._entries.get(tuple(path))

    def lookup(self, path: Sequence[str | int]) -> tuple[str | None, int | None]:
        """Return ``(file, line)`` for ``path``, falling back to the nearest recorded ancestor.

        A path that does not exist in the data (a missing field, say) gets the line of the
        mapping or list item that should contain it.
        """
        path = tuple(path)
        for n in range(len(path), -1, -1):
            entry = self._entries.get(path[:n])
            if entry is not None:
                return entry
        return (self.root_file, None)

    def drop_below(self, path: Sequence[str | int]) -> None:
        """Forget every entry strictly below ``path`` (its value was replaced)."""
        path = tuple(path)
        n = len(path)
        for key in [k for k in self._entries if len(k) > n and k[:n] == path]:
            del self._entries[key]

    def items(self) -> Iterator[tuple[PathT, tuple[str | None, int | None]]]:
        return iter(self._entries.items())

    def __contains__(self, path: object) -> bool:
        return tuple(path) in self._entries  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"LineMap(root_file={self.root_file!r}, {len(self._entries)} entries)"


def _walk_paths(data: Any, prefix: PathT = ()) -> Iterator[PathT]:
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _walk_paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _walk_paths(v, prefix + (i,))


# --------------------------------------------------------------------------------------------
# reading YAML


_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _Builder:
    """Turns a composed YAML node tree into Python data while recording lines."""

    def __init__(self, file: str):
        self.file = file
        self.lines = LineMap(root_file=file)
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")
        self._active: set[int] = set()

    def scalar(self, node: yaml.Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def build(self, node: yaml.Node | None, path: PathT) -> Any:
        if node is None:
            return None
        if id(node) in self._active:
            self.problems.append(
                Problem(format_path(path), "refers to itself through a YAML alias",
                        file=self.file, line=node.start_mark.line + 1))
            return None
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
            self.problems.append(Problem(
                format_path(path), f"unsupported YAML tag {node.tag!r}",
                hint="scenario files hold plain mappings, lists and values",
                file=self.file, line=node.start_mark.line + 1))
            return None
        if isinstance(node, yaml.MappingNode):
            self._active.add(id(node))
            try:
                return self._mapping(node, path)
            finally:
                self._active.discard(id(node))
        if isinstance(node, yaml.SequenceNode):
            self._active.add(id(node))
            try:
                out = []
                for i, item in enumerate(node.value):
                    self.lines.set(path + (i,), self.file, item.start_mark.line + 1)
                    out.append(self.build(item, path + (i,)))
                return out
            finally:
                self._active.discard(id(node))
        return self.scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: PathT) -> dict:
        out: dict = {}
        first_line: dict = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merged.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(Problem(format_path(path), "a key must be a plain value, "
                                             "not a list or mapping", file=self.file, line=line))
                continue
            key = self.scalar(key_node)
            if key in first_line:
                self.problems.append(Problem(
                    format_path(path + (key,)), f"duplicate key {key!r}",
                    hint=f"first given on line {first_line[key]}; remove one of them",
                    file=self.file, line=line))
                continue
            first_line[key] = line
            self.lines.set(path + (key,), self.file, line)
            out[key] = self.build(value_node, path + (key,))
        # YAML merge keys (`<<: *base`) supply defaults; explicit keys win.
        for value_node in merged:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    self.problems.append(Problem(format_path(path), "'<<' must merge a mapping",
                                                 file=self.file, line=src.start_mark.line + 1))
                    continue
                sub = _Builder(self.file)
                sub._active = self._active
                data = sub.build(src, path)
                self.problems.extend(sub.problems)
                for key, value in data.items():
                    if key not in out:
                        out[key] = value
                for p, entry in sub.lines.items():
                    if len(p) > len(path) and p[len(path)] in data and p[len(path)] not in first_line:
                        self.lines.set(p, *entry)
        return out


def read_yaml(path: str | os.PathLike) -> tuple[Any, LineMap]:
    """Read one YAML file safely, remembering the line of every mapping key and list item.

    Args:
        path: File to read.

    Returns:
        ``(data, lines)``: plain Python data (dicts, lists, scalars) and its `LineMap`.

    Raises:
        ScenarioError: the file is missing or unreadable, has a YAML syntax error (with file and
            line), or a mapping repeats a key (all repeats are reported).
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(Problem("", f"file not found: {file}", file=file), file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(Problem("", f"cannot read file: {exc}", file=file), file=file) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ScenarioError(_yaml_problem(exc, file), file=file) from None
    builder = _Builder(file)
    try:
        data = builder.build(node, ())
    except yaml.YAMLError as exc:  # e.g. a bad explicit tag met while constructing scalars
        raise ScenarioError(_yaml_problem(exc, file), file=file) from None
    if node is not None:
        builder.lines.set((), file, None)  # a problem "at the top" has no single line
    if builder.problems:
        raise ScenarioError(builder.problems, file=file)
    return data, builder.lines


def _yaml_problem(exc: yaml.YAMLError, file: str) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    what = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"YAML syntax error: {what}"
    if context:
        message += f" ({context})"
    hint = None
    if "'\\t'" in what or "\t" in what:
        hint = "indent with spaces, not tabs"
    elif "mapping values are not allowed" in what:
        hint = "a ':' inside a value needs quotes, or the indentation is off"
    return Problem("", message, hint=hint, file=file, line=line)


# --------------------------------------------------------------------------------------------
# extends + overrides


def _deep_merge(parent: Any, child: Any) -> Any:
    """Mappings merge recursively (child wins); anything else, lists included, is replaced."""
    if isinstance(parent, dict) and isinstance(child, dict):
        out = dict(parent)
        for key, value in child.items():
            out[key] = _deep_merge(parent[key], value) if key in parent else value
        return out
    return child


def _merge_lines(merged: Any, parent: LineMap, child: LineMap) -> LineMap:
    out = LineMap(root_file=child.root_file)
    for path in _walk_paths(merged):
        entry = child.get(path)
        if entry is None:
            entry = parent.get(path)
        if entry is not None:
            out.set(path, *entry)
    return out


def _folder_problem(path: Path, referrer: Problem | None) -> Problem:
    found = sorted(p.name for p in path.glob("*.yaml")) + sorted(p.name for p in path.glob("*.yml"))
    hint = (f"give one of its scenario files, e.g. {path / found[0]} (it holds {', '.join(found[:5])}"
            f"{' ...' if len(found) > 5 else ''})" if found else "give the path of a scenario .yaml file")
    if referrer is not None:
        return dataclasses.replace(referrer, message=f"extends a folder, not a scenario file: {path}", hint=hint)
    return Problem("", f"{path} is a folder, not a scenario file", hint=hint, file=str(path))


def _resolve_file(path: Path, chain: list[Path], referrer: Problem | None) -> tuple[Any, LineMap]:
    if path.is_dir():
        raise ScenarioError(_folder_problem(path, referrer), file=str(chain[0] if chain else path))
    if not path.is_file():
        if referrer is not None:
            raise ScenarioError(dataclasses.replace(
                referrer, message=f"extends a file that does not exist: {path}"),
                file=str(chain[0]))
        raise ScenarioError(Problem("", f"scenario file not found: {path}", file=str(path)),
                            file=str(path))
    data, lines = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        file, line = lines.lookup(())
        raise ScenarioError(Problem(
            "", f"the top level must be a mapping of field: value; got {_got(data)}",
            file=file, line=line), file=str(chain[0] if chain else path))
    if "extends" not in data:
        return data, lines
    target = data.pop("extends")
    file, line = lines.lookup(("extends",))
    where = Problem("extends", "", file=file, line=line)
    if not isinstance(target, str) or not target.strip():
        raise ScenarioError(dataclasses.replace(
            where, message=f"must be the name of a YAML file; got {_got(target)}"),
            file=str(chain[0] if chain else path))
    parent_path = (path.parent / target).resolve()
    seen = chain + [path.resolve()]
    if parent_path in seen:
        cycle = " -> ".join(p.name for p in seen + [parent_path])
        raise ScenarioError(dataclasses.replace(
            where, message=f"extends cycle: {cycle}",
            hint="a file cannot extend itself, directly or through its parents"),
            file=str(seen[0]))
    parent_data, parent_lines = _resolve_file(parent_path, seen, where)
    merged = _deep_merge(parent_data, data)
    # `extends` was popped from `data`, so the walk over `merged` never asks for its line.
    return merged, _merge_lines(merged, parent_lines, lines)


def parse_override(text: str) -> tuple[PathT, Any]:
    """Parse a command-line override ``"dotted.path=value"``.

    The value is read as a YAML scalar or flow collection: ``"3"`` -> 3, ``"0.5"`` -> 0.5,
    ``"true"`` -> True, ``"[1, 2]"`` -> [1, 2], ``"{a: 1}"`` -> {"a": 1}. Anything else stays
    a string (so ``name=Guangzhou: week 1`` keeps its colon). Digit-only path parts are list
    indices: ``population.0.count=5`` (``population[0].count=5`` works too; ``population.-1`` is
    the last group).

    Raises:
        ScenarioError: no ``=``, an empty or malformed path, or an unreadable flow value.
    """
    def fail(message: str, hint: str = "use --set path.to.field=value") -> ScenarioError:
        return ScenarioError(Problem("", message, hint=hint, file=OVERRIDE_FILE))

    if not isinstance(text, str) or "=" not in text:
        raise fail(f"override {text!r} has no '='")
    key, _, value_text = text.partition("=")
    try:
        path = parse_path(key)
    except ValueError as exc:
        raise fail(f"override {text!r}: {exc}") from None
    if not path:
        raise fail(f"override {text!r} names no field")
    stripped = value_text.strip()
    try:
        value = yaml.safe_load(value_text) if stripped else None
    except yaml.YAMLError as exc:
        if stripped[:1] in "[{":
            what = getattr(exc, "problem", None) or "cannot be read as YAML"
            raise fail(f"override {text!r}: value {stripped!r} {what}",
                       hint="quote the value, or fix the [list] / {mapping}") from None
        value = stripped
    else:
        if isinstance(value, (dict, list)) and stripped[:1] not in "[{":
            value = stripped  # "a: b" or "- x" typed on a command line means the text itself
    return path, value


def _apply_override(data: dict, path: PathT, value: Any, lines: LineMap, text: str) -> Problem | None:
    def problem(message: str, hint: str | None = None) -> Problem:
        return Problem(format_path(path), f"override {text!r}: {message}", hint=hint,
                       file=OVERRIDE_FILE)

    cur: Any = data
    done: PathT = ()
    for n, part in enumerate(path):
        last = n == len(path) - 1
        here = format_path(done) or "the top level"
        if isinstance(cur, dict):
            if isinstance(part, int) and part not in cur:
                part = str(part)
            if last:
                cur[part] = value
            else:
                if cur.get(part) is None:  # missing or empty (`outputs:` with nothing after it)
                    cur[part] = {}
                    lines.drop_below(done + (part,))
                    lines.set(done + (part,), OVERRIDE_FILE, None)
                cur = cur[part]
        elif isinstance(cur, list):
            if not isinstance(part, int):
                def example(i: int) -> str:
                    return ".".join(str(x) for x in done + (i,) + path[n:])

                return problem(f"{here} is a list; index it with a number",
                               hint=f"e.g. {example(0)} (the first item) or {example(-1)} (the last)")
            if not -len(cur) <= part < len(cur):
                return problem(f"index {part} is out of range; {here} has {len(cur)} item(s)",
                               hint=f"valid indices: 0..{len(cur) - 1}, or -{len(cur)}..-1 from the end"
                               if cur else "the list is empty")
            part %= len(cur)  # -1 is the last item, as in Python
            if last:
                cur[part] = value
            else:
                cur = cur[part]
        else:
            return problem(f"{here} is a single value ({_got(cur)}), not a mapping or list")
        done = done + (part,)
    lines.drop_below(done)
    lines.set(done, OVERRIDE_FILE, None)
    return None


def resolve(path: str | os.PathLike, overrides: Sequence[str] = ()) -> tuple[dict, LineMap]:
    """Read a scenario file, follow its ``extends:`` chain and apply overrides.

    Args:
        path: The scenario file.
        overrides: ``"dotted.path=value"`` texts, applied in order.

    Returns:
        ``(raw, lines)``: the merged plain dict, and where each value came from (parent files
        for inherited values, ``"--set"`` for overridden ones).

    Raises:
        ScenarioError: missing files, YAML errors, duplicate keys, extends cycles, or bad
            overrides (all bad overrides are reported together).
    """
    top = Path(path)
    data, lines = _resolve_file(top, [], None)
    problems: list[Problem] = []
    for text in overrides:
        try:
            key, value = parse_override(text)
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        p = _apply_override(data, key, value, lines, text)
        if p is not None:
            problems.append(p)
    if problems:
        raise ScenarioError(problems, file=str(top))
    return data, lines


# --------------------------------------------------------------------------------------------
# walking a model type alongside a pydantic `loc`


@dataclasses.dataclass
class _Located:
    path: PathT  # path in the YAML data
    owner: Any = None  # model class holding the last field (for "did you mean")
    field: FieldInfo | None = None  # FieldInfo of the last step, if it is a model field
    tp: Any = Any  # annotation at the end of the walk
    discriminator: Any = None  # discriminator in force for `tp`
    is_key: bool = False  # the error is about a mapping key, not its value
    union_at: PathT | None = None  # data path of the last smart-mode union passed through


def _fields_of(tp: Any) -> dict[str, FieldInfo] | None:
    if isinstance(tp, type):
        fields = getattr(tp, "__pydantic_fields__", None)
        if isinstance(fields, dict):
            return fields
    return None


def _unwrap(tp: Any, disc: Any) -> tuple[Any, Any]:
    """Strip Annotated/NewType/TypeAliasType, picking up a discriminator on the way."""
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            for meta in tp.__metadata__:
                d = getattr(meta, "discriminator", None)
                if d is not None:
                    disc = d
                elif type(meta).__name__ == "Discriminator":
                    disc = meta
            tp = tp.__origin__
        elif isinstance(tp, typing.TypeAliasType):
            tp = tp.__value__
        elif hasattr(tp, "__supertype__"):  # NewType
            tp = tp.__supertype__
        else:
            return tp, disc


def _union_members(tp: Any) -> list | None:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return None


def _disc_name(disc: Any) -> str | None:
    if isinstance(disc, str):
        return disc
    inner = getattr(disc, "discriminator", None)
    return inner if isinstance(inner, str) else None


def _tags_of(member: Any, disc_field: str) -> list:
    member, _ = _unwrap(member, None)
    fields = _fields_of(member)
    if not fields or disc_field not in fields:
        return []
    ann, _ = _unwrap(fields[disc_field].annotation, None)
    tags: list = []
    for t in _union_members(ann) or [ann]:
        t, _ = _unwrap(t, None)
        if typing.get_origin(t) is typing.Literal:
            tags.extend(v.value if isinstance(v, enum.Enum) else v for v in typing.get_args(t))
    return tags


def _member_label(member: Any) -> str:
    member, _ = _unwrap(member, None)
    return getattr(member, "__name__", None) or repr(member)


def _locate(model_cls: Any, loc: Sequence[Any]) -> _Located:
    tp: Any = model_cls
    disc: Any = None
    out = _Located(path=())
    path: list = []
    i = 0
    loc = list(loc)
    while i < len(loc):
        part = loc[i]
        tp, disc = _unwrap(tp, disc)
        members = _union_members(tp)
        if members is not None:
            if len(members) == 1:
                tp = members[0]
                continue
            name = _disc_name(disc)
            if disc is not None:
                # The loc holds the tag value that picked the member.
                chosen = Any
                if name is not None:
                    chosen = next((m for m in members if part in _tags_of(m, name)), Any)
                tp, disc = chosen, None
                i += 1
                continue
            # Smart-mode union: the loc holds a label naming the member tried.
            chosen = next((m for m in members if part in (_member_label(m), repr(m))), Any)
            out.union_at = tuple(path)
            tp, disc = chosen, None
            i += 1
            continue
        disc = None
        fields = _fields_of(tp)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if fields is not None:
            out.owner, out.field = tp, None
            field = fields.get(part) if isinstance(part, str) else None
            if field is None:
                field = next((f for f in fields.values()
                              if part in (f.alias, f.validation_alias)), None)
            path.append(part)
            if field is None:
                tp = Any
            else:
                out.field = field
                tp, disc = field.annotation, field.discriminator
        elif origin in (list, set, frozenset) or (
                isinstance(origin, type) and issubclass(origin, Sequence) and origin is not tuple
                and origin is not str):
            path.append(part)
            tp = args[0] if args else Any
            out.owner, out.field = None, None
        elif origin is tuple:
            path.append(part)
            if len(args) == 2 and args[1] is Ellipsis:
                tp = args[0]
            elif isinstance(part, int) and part < len(args):
                tp = args[part]
            else:
                tp = Any
            out.owner, out.field = None, None
        elif origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
            path.append(part)
            if i + 1 < len(loc) and loc[i + 1] == "[key]":
                tp = args[0] if args else Any
                out.is_key = True
                i += 1
            else:
                tp = args[1] if len(args) == 2 else Any
            out.owner, out.field = None, None
        else:
            # Unknown territory (Any, plain dict, custom types): keep data keys, drop validator
            # labels such as "function-after[...]" that are not part of the YAML path.
            if not (isinstance(part, str) and part.startswith("function-")):
                path.append(part)
            out.owner, out.field = None, None
            tp = Any
        i += 1
    out.path = tuple(path)
    out.tp, out.discriminator = _unwrap(tp, disc)
    return out


# --------------------------------------------------------------------------------------------
# pydantic errors -> Problems


def _got(value: Any) -> str:
    if value is None:
        text = "nothing (null)"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (_dt.date, _dt.time)):
        text = value.isoformat()
    elif isinstance(value, str):
        text = repr(value)
    elif isinstance(value, enum.Enum):
        text = repr(value.value)
    else:
        text = repr(value)
    if len(text) > _GOT_MAX:
        text = text[: _GOT_MAX - 1] + "…"
    return text


def _suggest(key: str, names: Sequence[str]) -> str | None:
    """Closest field name to a misspelt ``key``, also matching unit-less stems.

    Field names carry units (``reward_cny_per_kwh``), so ``rewrd`` or ``reward`` is compared with
    the name's leading words too, not only with the whole name.
    """
    candidates: dict[str, str] = {name: name for name in names}
    for name in names:
        words = name.split("_")
        for n in range(len(words), 0, -1):
            candidates.setdefault("_".join(words[:n]), name)
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    if close:
        return candidates[close[0]]
    lowered = key.lower()
    for name in names:
        if lowered in name.lower() and len(lowered) >= 3:
            return name
    return None


def _num(value: Any) -> str:
    """Show a bound as the user would write it: 0.0 -> "0", 0.5 -> "0.5"."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _fmt_list(values: Sequence[Any]) -> str:
    return ", ".join(repr(v.value if isinstance(v, enum.Enum) else v) for v in values)


def _allowed_values(tp: Any) -> list | None:
    if typing.get_origin(tp) is typing.Literal:
        return list(typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [m.value for m in tp]
    return None


def _union_tags(tp: Any, disc: Any) -> list:
    name = _disc_name(disc)
    members = _union_members(tp) or []
    if not name:
        return []
    tags: list = []
    for m in members:
        tags.extend(_tags_of(m, name))
    return tags


_TYPE_WORDS = {
    "int": "an integer", "float": "a number", "bool": "true or false", "string": "a text string",
    "list": "a list", "tuple": "a list", "set": "a list", "frozen_set": "a list",
    "dict": "a mapping (key: value)", "model": "a mapping (key: value)",
    "model_attributes": "a mapping (key: value)", "dataclass": "a mapping (key: value)",
    "decimal": "a number", "complex": "a complex number", "bytes": "text",
    "url": "a URL", "uuid": "a UUID", "path": "a file path", "enum": "one of the listed values",
    "none": "empty (null)",
}
_COMPARE = {"greater_than": (">", "gt"), "greater_than_equal": ("≥", "ge"),
            "less_than": ("<", "lt"), "less_than_equal": ("≤", "le")}
_TIME_WORDS = {
    "datetime": "a date-time like 2026-07-06T00:00",
    "date": "a date like 2026-07-06",
    "time": "a time like 18:00",
    "timedelta": "a duration like 01:30:00 or PT1H30M",
}


def _message(err: Mapping[str, Any], where: _Located) -> tuple[str, str | None]:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    value = err.get("input")
    got = f"; got {_got(value)}"
    field = where.field

    if "hint" in ctx:  # a validator's own sentence and hint (PydanticCustomError with a "hint" in its context)
        return str(err.get("msg", kind)), str(ctx["hint"])
    if kind == "missing":
        hint = field.description if field is not None and field.description else None
        return "is required", hint
    if kind == "extra_forbidden":
        key = where.path[-1] if where.path else value
        names: list[str] = []
        fields = _fields_of(where.owner)
        if fields:
            for name, f in fields.items():
                names.append(f.alias if isinstance(f.alias, str) else name)
        close = _suggest(str(key), names)
        if close:
            hint = f"did you mean {close!r}?"
        elif names:
            hint = f"allowed fields: {', '.join(names)}"
        else:
            hint = None
        return f"unknown field {str(key)!r}", hint
    if kind in _COMPARE:
        sym, key = _COMPARE[kind]
        return f"must be {sym} {_num(ctx.get(key))}{got}", None
    if kind == "multiple_of":
        return f"must be a multiple of {_num(ctx.get('multiple_of'))}{got}", None
    if kind in ("literal_error", "enum"):
        allowed = _allowed_values(where.tp)
        expected = _fmt_list(allowed) if allowed else str(ctx.get("expected", "")).replace(" or ", ", ")
        hint = None
        if allowed and isinstance(value, str):
            close = difflib.get_close_matches(value, [str(a) for a in allowed], n=1, cutoff=0.6)
            if close:
                hint = f"did you mean {close[0]!r}?"
        return f"must be one of {expected}{got}", hint
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        name = _disc_name(where.discriminator) or str(ctx.get("discriminator", "kind")).strip("'")
        tags = _union_tags(where.tp, where.discriminator)
        known = ", ".join(str(t) for t in tags) if tags else str(ctx.get("expected_tags", ""))
        known = known.replace("'", "") if not tags else known
        hint = f"known {name}s: {known}" if known else None
        if kind == "union_tag_invalid":
            tag = ctx.get("tag")
            close = difflib.get_close_matches(str(tag), [str(t) for t in tags], n=1, cutoff=0.75)
            if close:
                hint = f"did you mean {close[0]!r}? {hint}"
            return f"unknown {name} {str(tag)!r}", hint
        if not isinstance(value, Mapping):
            return f"must be a mapping with a '{name}:' field{got}", hint
        return f"needs a '{name}:' field", hint
    if kind in ("value_error", "assertion_error"):
        msg = str(err.get("msg", ""))
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix):]
        return msg, None
    if kind.endswith(("_parsing", "_type", "_object_invalid")):
        stem = "timedelta" if kind.startswith("time_delta") else kind.split("_")[0]
        if stem in _TIME_WORDS:
            return f"must be {_TIME_WORDS[stem]}{got}", None
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        unit = "character" if kind.startswith("string") else "item"
        if kind.endswith("short"):
            n = ctx.get("min_length")
            return f"must have at least {n} {unit}{'' if n == 1 else 's'}{got}", None
        n = ctx.get("max_length")
        return f"must have at most {n} {unit}{'' if n == 1 else 's'}{got}", None
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx.get('pattern')}{got}", None
    if kind in ("finite_number",):
        return f"must be a finite number{got}", None
    if kind == "int_from_float":
        return f"must be a whole number{got}", None
    for suffix in ("_type", "_parsing"):
        if kind.endswith(suffix):
            words = _TYPE_WORDS.get(kind[: -len(suffix)])
            if words:
                return f"must be {words}{got}", None
    msg = str(err.get("msg", kind))
    if "input" in err and kind not in ("missing",):
        msg += got
    return msg, None


def _to_problem(err: Mapping[str, Any], where: _Located, lines: LineMap) -> Problem:
    message, hint = _message(err, where)
    if where.is_key:
        message = f"key {_got(err.get('input'))} {message.split('; got')[0]}"
    file, line = lines.lookup(where.path)
    return Problem(format_path(where.path), message, hint=hint, file=file, line=line)


def _place(problem: Problem, lines: LineMap) -> Problem:
    """Fill in file and line of a problem from its path, unless it has them already."""
    if problem.file is not None or problem.line is not None:
        return problem
    try:
        path = parse_path(problem.path)
    except ValueError:
        path = ()
    file, line = lines.lookup(path)
    return dataclasses.replace(problem, file=file, line=line)


def validate(raw: dict, model_cls: type[BaseModel], lines: LineMap,
             extra_checks: Callable[[dict], list[Problem]] | None = None,
             model_checks: Callable[[BaseModel], list[Problem]] | None = None) -> BaseModel:
    """Validate resolved scenario data with ``model_cls``, collecting every problem.

    Args:
        raw: Data from `resolve`.
        model_cls: Any pydantic v2 model class.
        lines: Line map from `resolve` (or `read_yaml`).
        extra_checks: Optional cross-field checks run on ``raw`` even when pydantic failed
            (so they must cope with missing or malformed values). Their problems get file and
            line from ``lines`` when they do not carry them.
        model_checks: Optional checks on the validated instance (typed, so simpler to write),
            run only when nothing else was found; their problems are placed the same way.

    Returns:
        The validated model instance.

    Raises:
        ScenarioError: with all pydantic problems followed by all extra-check problems (or the
            model-check problems).
    """
    problems: list[Problem] = []
    result = None
    try:
        result = model_cls.model_validate(raw)
    except ValidationError as exc:
        errors = [(e, _locate(model_cls, e.get("loc", ()))) for e in exc.errors(include_url=False)]
        # In a plain (non-discriminated) union pydantic reports a failure for every member. When
        # a member got further into the value (a model whose field is wrong), the "must be an
        # integer" from the scalar members is noise.
        deeper = {w.union_at for _, w in errors
                  if w.union_at is not None and len(w.path) > len(w.union_at)}
        for e, w in errors:
            if (w.union_at in deeper and w.path == w.union_at
                    and str(e.get("type", "")).endswith(("_type", "_parsing"))):
                continue
            problems.append(_to_problem(e, w, lines))
    if extra_checks is not None:
        try:
            extra = extra_checks(raw) or []
        except Exception:
            if not problems:
                raise
            extra = []  # the check tripped over data pydantic already reported as wrong
        problems.extend(_place(p, lines) for p in extra)
    if not problems and model_checks is not None:
        problems.extend(_place(p, lines) for p in model_checks(result))
    if problems:
        unique = list(dict.fromkeys(problems))
        raise ScenarioError(unique, file=lines.root_file)
    assert result is not None
    return result


def load(path: str | os.PathLike, model_cls: type[BaseModel], overrides: Sequence[str] = (),
         extra_checks: Callable[[dict], list[Problem]] | None = None) -> BaseModel:
    """Resolve and validate a scenario file; see `resolve` and `validate`."""
    raw, lines = resolve(path, overrides)
    return validate(raw, model_cls, lines, extra_checks)
