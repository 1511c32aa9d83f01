"""Config files and their keys: ``Field`` declares a key in one place (default, type, allowed
values, range, help); ``read_config_file`` reads a TOML or YAML file.

Every section of a training config (``afvsr.train.config``: ``[run]``, ``[train]``, ``[log]``;
the task's ``[data]``, ``[val]`` and its own ``[train]`` keys; ``afvsr.data.build`` for the VSR
``[data]`` section) is a ``dict[str, Field]``, checked by :func:`check_section`. Errors read
``<file>: [<section>] <key>: expected <what>, got <value>``.

"Not set" is spelled ``""`` (TOML has no null) for optional paths and names; a YAML ``null`` (or
Python None) given for such a key reads as ``""``.
"""

from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afvsr.errors import AfvsrError
from afvsr.io_utils import read_utf8

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # the default of a key that must be given


class ConfigError(AfvsrError, ValueError):
    """A config value that does not fit its key (one line: file, section, key, what was wrong)."""


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


@dataclass(frozen=True)
class Field:
    """One config key.

    Attributes:
        default: its value when not given (``REQUIRED``: must be given; a list is copied).
        type: ``bool``, ``int``, ``float`` (integers accepted), ``str`` or ``list``; None = the
            default's type.
        item: the type of a list's items (same rules as ``type``).
        choices: the allowed values (of the key, or of each item of a list).
        ge / gt / le / lt: bounds of a number (of each item of a list).
        length: a list's allowed length, ``(min, max)``.
        help: one line for ``afvsr train --print-config`` and the docs.
    """

    default: Any = REQUIRED
    type: type | None = None
    item: type | None = None
    choices: tuple = ()
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    length: tuple[int, int] | None = None
    help: str = ""

    @property
    def kind(self) -> type:
        """The type the value must have."""
        if self.type is not None:
            return self.type
        if self.default is REQUIRED or self.default is None:
            raise TypeError("a Field without a default needs a type")
        return list if isinstance(self.default, tuple) else type(self.default)

    @property
    def types(self) -> tuple[type, ...]:
        """Python types a checked value has (``isinstance(value, field.types)``)."""
        return (self.kind,)

    def initial(self) -> Any:
        """A fresh copy of the default."""
        return copy.deepcopy(
            list(self.default) if isinstance(self.default, tuple) else self.default
        )

    def check(self, value: Any, where: str) -> Any:
        """``value`` converted to the key's type and checked, else ConfigError ``where: …``."""
        kind = self.kind
        if value is None and kind is str:
            return ""  # YAML null / Python None: "not set"
        if kind is list:
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where}: expected a list, got {value!r}")
            if self.length and not self.length[0] <= len(value) <= self.length[1]:
                lo, hi = self.length
                count = str(lo) if lo == hi else f"{lo} to {hi}"
                raise ConfigError(f"{where}: expected {count} items, got {list(value)!r}")
            item = self.item or _item_type(self.default)
            if item is None:
                return list(value)
            return [self._scalar(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return self._scalar(value, kind, where)

    def _scalar(self, value: Any, kind: type, where: str) -> Any:
        ok = {
            bool: lambda v: isinstance(v, bool),
            int: lambda v: isinstance(v, int) and not isinstance(v, bool),
            float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        }.get(kind, lambda v: isinstance(v, kind))(value)
        if not ok:
            name = _TYPE_NAMES.get(kind, f"a {kind.__name__}")
            raise ConfigError(f"{where}: expected {name}, got {value!r}")
        if kind is float:
            value = float(value)
        if self.choices and value not in self.choices:
            raise ConfigError(f"{where}: expected one of {list(self.choices)}, got {value!r}")
        for bound, text, fails in (
            (self.gt, ">", lambda v, b: not v > b),
            (self.ge, ">=", lambda v, b: not v >= b),
            (self.lt, "<", lambda v, b: not v < b),
            (self.le, "<=", lambda v, b: not v <= b),
        ):
            if bound is not None and fails(value, bound):
                raise ConfigError(f"{where}: expected a value {text} {bound:g}, got {value!r}")
        return value

    def describe(self) -> str:
        """``type, constraint`` in a few words (for the config reference)."""
        kind = self.kind
        text = kind.__name__
        if kind is list:
            text = f"list of {(self.item or _item_type(self.default) or object).__name__}"
        rules = [f"one of {', '.join(map(repr, self.choices))}"] if self.choices else []
        for bound, sign in ((self.gt, ">"), (self.ge, ">="), (self.lt, "<"), (self.le, "<=")):
            if bound is not None:
                rules.append(f"{sign} {bound:g}")
        if self.length:
            lo, hi = self.length
            rules.append(f"{lo} items" if lo == hi else f"{lo}-{hi} items")
        return ", ".join([text, *rules])


def _item_type(default: Any) -> type | None:
    if isinstance(default, (list, tuple)) and default:
        return type(default[0])
    return None


def defaults(fields: dict[str, Field]) -> dict[str, Any]:
    """``{key: default}`` of the keys that have one."""
    return {k: f.initial() for k, f in fields.items() if f.default is not REQUIRED}


def check_section(
    values: Any, fields: dict[str, Field], section: str, source: str | None = None
) -> dict[str, Any]:
    """The section with defaults filled in and every key checked; ConfigError naming the key
    (prefixed with ``source:`` when given) for an unknown key, a missing required key, a wrong
    type or a value out of range."""
    prefix = f"{source}: " if source else ""
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix}[{section}] must be a table of keys, got {values!r}")
    for key in values:
        if key not in fields:
            raise ConfigError(
                f"{prefix}[{section}] unknown key '{key}' (known keys: {', '.join(fields)})"
            )
    out: dict[str, Any] = {}
    for key, field in fields.items():
        if key in values:
            out[key] = field.check(values[key], f"{prefix}[{section}] {key}")
        elif field.default is REQUIRED:
            raise ConfigError(f"{prefix}[{section}] missing required key '{key}'")
        else:
            out[key] = field.initial()
    return out


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file into a dict of sections."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no config file {path}")
    text = read_utf8(path, expected="a TOML or YAML config file")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # here: only YAML configs need it

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise AfvsrError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    elif path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise AfvsrError(f"{path}: not valid TOML ({exc})") from None
    else:
        raise AfvsrError(f"{path}: expected a .toml, .yaml or .yml config file")
    if not isinstance(data, dict):
        raise AfvsrError(f"{path}: expected a table of sections, got {type(data).__name__}")
    return data
