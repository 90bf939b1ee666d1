"""Strict loading of frozen dataclasses from TOML/JSON dicts.

Every problem names the file and the dotted key: unknown keys, missing keys, wrong types and values outside a
`Literal`. Dataclasses may validate cross-field consistency in `__post_init__` by raising `ValueError`; the
message is then prefixed with the file name.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import HarnessError, unknown_name
from harness.resources import resource_dir

T = TypeVar("T")


class ConfigError(HarnessError):
    """A configuration file that does not match its schema."""


def doc(text: str, **kwargs: Any) -> Any:
    """A dataclass field carrying its documentation: `lr: float = doc("Peak learning rate.")`."""
    return dataclasses.field(metadata={"doc": text}, **kwargs)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def from_dict(cls: type[T], data: Any, source: str, prefix: str = "") -> T:
    """Build `cls` from `data`, rejecting unknown keys, missing keys and wrong types."""
    return _build(cls, data, source, prefix)


#: Converts one value: (value, source, parent key, name or list index) -> value. Keys are only spelled out for
#: an error or a nested table: formatting every dotted key eagerly was a fifth of the time to load a record.
Converter = Callable[[Any, str, str, "str | int"], Any]


def _key(prefix: str, name: str | int) -> str:
    if type(name) is int:
        return f"{prefix}[{name}]"
    return f"{prefix}.{name}" if prefix else str(name)


@functools.cache
def _schema(cls: type) -> tuple[tuple[tuple[str, Converter, bool, str], ...], frozenset[str]]:
    """Per field of `cls`: name, converter, required, doc; and the allowed keys. Built once per class."""
    hints = typing.get_type_hints(cls)  # resolving string annotations is slow; schemas are loaded many times
    fields = [f for f in dataclasses.fields(cls) if f.init]
    specs = tuple(
        (
            f.name, _converter(hints[f.name]),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, f.metadata.get("doc", ""),
        )
        for f in fields
    )  # fmt: skip
    return specs, frozenset(f.name for f in fields)


def _build(cls: type[T], data: Any, source: str, prefix: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix or 'top level'}: expected a table, got {type(data).__name__}")
    specs, allowed = _schema(cls)
    if not allowed.issuperset(data):
        unknown = sorted(set(data) - allowed)
        raise ConfigError(
            f"{source}: unknown key {_key(prefix, unknown[0])!r}"
            + (f" (and {', '.join(unknown[1:])})" if len(unknown) > 1 else "")
            + f"; allowed keys here: {', '.join(sorted(allowed))}"
        )
    kwargs = {}
    for name, convert, required, text in specs:
        if name in data:
            kwargs[name] = convert(data[name], source, prefix, name)
        elif required:
            raise ConfigError(f"{source}: missing key {_key(prefix, name)!r}: {text}".rstrip(": "))
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _to_float(value: Any, source: str, prefix: str, name: str | int) -> float:
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{source}: {_key(prefix, name)!r} must be a number, got {value!r}")
    return float(value)


def _to_int(value: Any, source: str, prefix: str, name: str | int) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{source}: {_key(prefix, name)!r} must be an integer, got {value!r}")
    return value


def _any(value: Any, source: str, prefix: str, name: str | int) -> Any:
    return value


@functools.cache
def _converter(tp: Any) -> Converter:
    """The converter of type `tp`, built once per type."""
    if tp is float:
        return _to_float
    if tp is int:
        return _to_int
    if tp is Any:
        return _any
    if tp is str or tp is bool:

        def scalar(value: Any, source: str, prefix: str, name: str | int) -> Any:
            if not isinstance(value, tp):
                raise ConfigError(f"{source}: {_key(prefix, name)!r} must be a {tp.__name__}, got {value!r}")
            return value

        return scalar
    if dataclasses.is_dataclass(tp):
        return lambda value, source, prefix, name: _build(tp, value, source, _key(prefix, name))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return _union([_converter(a) for a in args if a is not type(None)], type(None) in args)
    if origin is typing.Literal:

        def literal(value: Any, source: str, prefix: str, name: str | int) -> Any:
            if value not in args:
                raise ConfigError(
                    f"{source}: {_key(prefix, name)!r} must be one of {', '.join(map(repr, args))}, got {value!r}"
                )
            return value

        return literal
    if origin in (tuple, list):
        item = _converter(args[0] if args else Any)

        def sequence(value: Any, source: str, prefix: str, name: str | int) -> tuple[Any, ...]:
            if not isinstance(value, list | tuple):
                raise ConfigError(f"{source}: {_key(prefix, name)!r} must be a list, got {type(value).__name__}")
            key = _key(prefix, name)
            return tuple(item(v, source, key, i) for i, v in enumerate(value))

        return sequence
    if origin is dict:

        def table(value: Any, source: str, prefix: str, name: str | int) -> dict[Any, Any]:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {_key(prefix, name)!r} must be a table, got {type(value).__name__}")
            return dict(value)

        return table
    raise TypeError(f"unsupported field type {tp!r}")  # a schema bug, not a user error


def _union(options: list[Converter], optional: bool) -> Converter:
    def union(value: Any, source: str, prefix: str, name: str | int) -> Any:
        if value is None and optional:
            return None
        errors = []
        for option in options:
            try:
                return option(value, source, prefix, name)
            except ConfigError as exc:
                errors.append(str(exc))
        message = f"{source}: {_key(prefix, name)!r}: {value!r} matches no allowed type"
        raise ConfigError(errors[0] if len(errors) == 1 else message)

    return union


_SCALARS = frozenset({str, int, float, bool, type(None)})


def to_dict(obj: Any) -> Any:
    """A dataclass as plain JSON-compatible data (tuples become lists)."""
    if type(obj) in _SCALARS:  # most values; the checks below cost far more (10,000 records are written at once)
        return obj
    if dataclasses.is_dataclass(obj):
        return {name: to_dict(getattr(obj, name)) for name in _field_names(obj if isinstance(obj, type) else type(obj))}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def shipped_names(folder: str) -> list[str]:
    """Names of the shipped `<folder>/<name>.toml` files (tracks, pools, evaluation suites)."""
    return sorted(p.stem for p in resource_dir(folder).glob("*.toml"))


def shipped_file(folder: str, kind: str, name: str) -> Path:
    """The shipped `<folder>/<name>.toml`; an unknown name answers with the closest known names."""
    path = resource_dir(folder) / f"{name}.toml"
    if not path.is_file():
        raise unknown_name(kind, name, shipped_names(folder))
    return path


def check_named_after_file(path: Path, key: str, value: str) -> None:
    """A registry file's own name (`name` or `id`) must equal its file name."""
    if value != path.stem:
        raise ConfigError(f"{path}: {key!r} is {value!r} but the file is named {path.stem!r}")
