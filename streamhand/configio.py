"""Load pydantic models from YAML with one-line errors (unknown keys get a "did you mean" hint), and the base of every
settings model (:class:`Settings`: no unknown keys, no NaN or infinity, no true/false for a number)."""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message is one line."""


def _takes_bool(annotation: Any) -> bool:
    """Whether a field's type admits true/false (``bool``, or a union or ``Annotated`` holding it)."""
    return annotation is bool or any(_takes_bool(a) for a in typing.get_args(annotation))


class Settings(BaseModel):
    """A settings model: unknown keys, NaN and infinity refused; true/false only where a setting is a switch (pydantic
    reads YAML's ``port: true`` as 1 and ``fps: yes`` as 1.0)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_switch_for_a_number(cls, data: Any) -> Any:
        if isinstance(data, dict):
            # a field with a validator of its own that reads the value first decides (``tracking: on``, YAML's true)
            read_first = {f for d in cls.__pydantic_decorators__.field_validators.values() if d.info.mode == "before"
                          for f in d.info.fields}  # fmt: skip
            for key, value in data.items():
                field = cls.model_fields.get(key) if isinstance(key, str) else None
                if (isinstance(value, bool) and field is not None and key not in read_first
                        and not _takes_bool(field.annotation)):  # fmt: skip
                    raise ValueError(f"{key}: {str(value).lower()} is an on/off value, which {key} is not")
        return data


def _fields_at(cls: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model at ``loc`` (the location of an unknown key)."""
    model: Any = cls
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}).keys())


def _all_keys(model: Any, prefix: str = "") -> list[str]:
    """Every setting's dotted key under ``model`` (``publish.port``, ...)."""
    keys = []
    for name, field in getattr(model, "model_fields", {}).items():
        keys.append(prefix + name)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys += _all_keys(field.annotation, f"{prefix}{name}.")
    return keys


def format_validation_error(err: ValidationError, cls: type[BaseModel], source: str) -> str:
    parts = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where = ".".join(str(p) for p in loc) or "(root)"
        if e["type"] == "extra_forbidden":
            # the same key in another section first (a top-level ``port:`` is ``publish.port``), else a near name here
            elsewhere = [k for k in _all_keys(cls) if k.rsplit(".", 1)[-1] == str(loc[-1]) and k != where]
            hint = elsewhere[:1] or difflib.get_close_matches(str(loc[-1]), _fields_at(cls, loc), n=1)
            msg = f"unknown key '{where}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
        else:
            text = e["msg"].removeprefix("Value error, ")  # a validator's own message says it all
            msg = text if not loc else f"{where}: {text}"  # a check of the whole file names its keys itself
        parts.append(msg)
    return f"{source}: " + "; ".join(parts)


def validate(cls: type[M], data: dict, source: str = "config") -> M:
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, cls, source)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (YAML keeps the last one without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:  # the mapping's own keys (a merge, ``<<:``, may be overridden by them)
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                twice = key in seen
                seen.add(key)
            except TypeError:  # a list or a mapping as a key
                raise yaml.constructor.ConstructorError(None, None, "a key that is a list or a mapping",
                                                        key_node.start_mark) from None  # fmt: skip
            if twice:
                raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is written twice",
                                                        key_node.start_mark)  # fmt: skip
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str, source: str) -> Any:
    """``text`` parsed as YAML (keys once per mapping); :class:`ConfigError` naming the line and column."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a safe loader: SafeLoader with one more check
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{source}: not valid YAML{at} ({what})") from None


def load_yaml(cls: type[M], path: str | Path, overrides: dict | None = None, empty: str | None = None) -> M:
    """Read ``path`` as YAML and validate it into ``cls``; raise :class:`ConfigError` on any problem. ``empty``: a
    file without a key is refused with this reason (after the overrides are validated)."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {p}: is a folder; give a .yaml file")
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a UTF-8 text file (a YAML config is text)") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read it ({e.strerror or type(e).__name__})") from None
    data = read_yaml(text, str(p))
    data = {} if data is None else data  # an empty file, or one of comments
    if not isinstance(data, dict):  # ``false``, ``0``, ``[]``: something, but not settings
        raise ConfigError(f"{p}: expected a mapping at the top level (key: value lines), not {type(data).__name__}")
    given = bool(data)
    if overrides:  # the file is checked as it is first: a flag must not hide a bad value in it
        validate(cls, data, str(p))
    data.update(overrides or {})
    model = validate(cls, data, str(p))
    if empty is not None and not given:
        raise ConfigError(f"{p}: {empty}")
    return model
