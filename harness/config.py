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
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import HarnessError, unknown_name
from harness.resources import resource_dir

T = TypeVar("T")


class ConfigError(HarnessError):
    """A configuration file that does not match its schema."""


def field_docs(cls: type) -> dict[str, str]:
    """Each field's documentation (the `doc` metadata of `dataclasses.field`)."""
    return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}


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
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix or 'top level'}: expected a table, got {type(data).__name__}")
    hints = _type_hints(cls)
    fields = _init_fields(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {_key(prefix, unknown[0])!r}"
            + (f" (and {', '.join(unknown[1:])})" if len(unknown) > 1 else "")
            + f"; allowed keys here: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, f in fields.items():
        key = _key(prefix, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: missing key {key!r}: {f.metadata.get('doc', '')}".rstrip(": "))
            continue
        kwargs[name] = _convert(hints[name], data[name], source, key)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)  # resolving string annotations is slow; schemas are loaded many times


@functools.cache
def _init_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


@functools.cache
def _origin_args(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    return typing.get_origin(tp), typing.get_args(tp)


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _convert(tp: Any, value: Any, source: str, key: str) -> Any:
    # Plain scalars first: they are most of the values in a record, and the checks below cost far more.
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: {key!r} must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key!r} must be an integer, got {value!r}")
        return value
    if tp is str or tp is bool:
        if not isinstance(value, tp):
            raise ConfigError(f"{source}: {key!r} must be a {tp.__name__}, got {value!r}")
        return value
    origin, args = _origin_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, source, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert(option, value, source, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{source}: {key!r}: {value!r} matches no allowed type")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{source}: {key!r} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{source}: {key!r} must be a list, got {type(value).__name__}")
        item = args[0] if args else Any
        return tuple(_convert(item, v, source, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key!r} must be a table, got {type(value).__name__}")
        return dict(value)
    if tp is Any:
        return value
    raise TypeError(f"unsupported field type {tp!r} for {key}")  # a schema bug, not a user error


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
