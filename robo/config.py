"""Typed configuration: dataclass defaults < a YAML file < dotted command-line overrides.

Every config in robo is a (nested) dataclass. `load_config(Cls, path, overrides)` builds one with a
single precedence order and fails at start, naming the key, when a key is unknown or a value has the
wrong type. Field validation lives in each dataclass's `__post_init__` (one-line `ValueError` naming
field, value and allowed range). The resolved config is written next to every run and checkpoint
with `save_config`.

    cfg = load_config(BCTrainConfig, "configs/train/bc_diffusion.yaml", ["policy.horizon=16"])
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key or value is invalid. The message names the key and where it came from."""


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Convert a YAML-parsed value to the annotated type, or raise ConfigError naming the key."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, source)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{source}: '{key}' cannot be {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{source}: '{key}' = {value!r} is not one of {list(args)}")
        return value
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a mapping of {tp.__name__} fields, got {value!r}")
        return _build(tp, value, key + ".", source)
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: '{key}' must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{source}: '{key}' must have {len(args)} items, got {len(value)}")
            items = [_coerce(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [_coerce(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, vt, f"{key}.{k}", source) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: '{key}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{source}: '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            raise ConfigError(f"{source}: '{key}' must be a string, got {value!r}")
        return value
    if tp is Path:
        return Path(value)
    return value


def _build(cls: type[T], values: dict[str, Any], prefix: str, source: str) -> T:
    types_ = _field_types(cls)
    unknown = [k for k in values if k not in types_]
    if unknown:
        raise ConfigError(
            f"{source}: unknown config key '{prefix}{unknown[0]}' (valid keys: {', '.join(sorted(types_))})"
        )
    kwargs = {k: _coerce(v, types_[k], prefix + k, source) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{source}: {prefix.rstrip('.') or cls.__name__}: {e}") from None


def to_dict(cfg: Any) -> Any:
    """A plain (YAML-safe) dict of a dataclass config, recursively."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """`["policy.horizon=16", "seed=3"]` -> `{"policy": {"horizon": 16}, "seed": 3}` (values parsed as YAML)."""
    tree: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"command line: override '{item}' must look like key.sub=value")
        key, raw = item.split("=", 1)
        key = key.strip().lstrip("-")
        if not key:
            raise ConfigError(f"command line: override '{item}' has an empty key")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = tree
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"command line: override '{item}' conflicts with another override")
        node[parts[-1]] = value
    return tree


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a one-line error naming the file on failure."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: is not a text file (byte {e.start} is not UTF-8)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror or e})") from None
    except yaml.reader.ReaderError as e:  # a character YAML does not allow (a zero-filled file: NUL)
        code = e.character if isinstance(e.character, int) else ord(e.character)
        raise ConfigError(f"{path}: is not valid YAML (character {code:#06x} at position {e.position}: "
                          f"{e.reason})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())  # YAML's messages span lines
        raise ConfigError(f"{path}:{where} is not valid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of config keys")
    return data


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None, base: T | None = None
) -> T:
    """Build `cls` from defaults (or `base`) < YAML at `path` < dotted `overrides`."""
    values: dict[str, Any] = to_dict(base) if base is not None else {}
    source = "defaults"
    if path is not None:
        values = _merge(values, read_yaml(path))
        source = str(path)
    cfg = _build(cls, values, "", source)
    if overrides:
        values = _merge(to_dict(cfg), parse_overrides(overrides))
        cfg = _build(cls, values, "", "command line")
    return cfg


def build_config(cls: type[T], values: dict[str, Any], overrides: list[str] | None = None, *,
                 source: str = "config", prefix: str = "") -> T:
    """Build `cls` from a values dict (e.g. a YAML section) < dotted `overrides`; errors name `prefix`+key."""
    merged = _merge(values, parse_overrides(overrides or []))
    return _build(cls, merged, prefix, source if not overrides else f"{source} / command line")


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically: tmp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    tmp.replace(path)


def check_range(name: str, value: float, lo: float | None = None, hi: float | None = None) -> None:
    """Raise a one-line ValueError when `value` is outside [lo, hi]; for use in `__post_init__`."""
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        raise ValueError(f"{name}={value!r} is out of range {rng}")


# ------------------------------------------------------------------------------ finding and describing configs
def resolve_config_path(path: str | Path) -> Path:
    """A config file as given if it exists, else the same path inside robo's packaged configs (so
    `--config configs/train/bc_flow.yaml`, `train/bc_flow.yaml` and `bc_flow` work from any folder)."""
    import importlib.resources

    p = Path(path)
    if p.is_file():
        return p
    root = Path(str(importlib.resources.files("robo.configs")))
    rel = p.relative_to("configs") if p.parts[:1] == ("configs",) else p
    names = [rel, rel.with_suffix(".yaml")] if rel.suffix != ".yaml" else [rel]
    for name in names:
        for cand in (root / name, *(root / sub / name for sub in ("train", "cells"))):
            if cand.is_file():
                return cand
    raise ConfigError(f"config file not found: {path} (not here, nor among robo's configs in {root})")


def field_docs(cls: type) -> dict[str, str]:
    """{field: its docstring} of a dataclass (the string literal under each field, as robo writes them),
    inherited fields included."""
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass is object:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr) \
                    and isinstance(getattr(nxt, "value", None), ast.Constant) and isinstance(nxt.value.value, str):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def describe_config(cls: type, prefix: str = "", defaults: Any = None) -> list[tuple[str, str, str]]:
    """[(dotted key, default, docstring)] of every field of a (nested) dataclass config, for `--help`.
    `defaults` (an instance) gives the values shown (e.g. a profile's), else the dataclass defaults."""
    inst = defaults if defaults is not None else cls()
    docs = field_docs(cls)
    rows: list[tuple[str, str, str]] = []
    for f in dataclasses.fields(cls):
        value = getattr(inst, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            rows += describe_config(type(value), f"{prefix}{f.name}.", value)
        else:
            shown = value if not isinstance(value, tuple) else list(value)
            rows.append((prefix + f.name, yaml.safe_dump(to_dict(shown), default_flow_style=True).strip()
                         .removesuffix("...").strip(), docs.get(f.name, "")))
    return rows


def format_config_help(cls: type, title: str, defaults: Any = None, width: int = 100) -> str:
    """The config keys of `cls` as a help section: `key = default` then its docstring, indented."""
    import textwrap

    lines = [f"{title} (key=value on the command line, or in --config YAML):"]
    for key, default, doc in describe_config(cls, defaults=defaults):
        lines.append(f"  {key} = {default}")
        if doc:
            lines += textwrap.wrap(doc, width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)
