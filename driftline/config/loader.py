"""Load the YAML configuration: ``${ENV}`` substitution, then validation.

Every problem is reported with its YAML path, e.g.
``models[0].features.amount: unknown kind 'numerc' (expected numeric, categorical, boolean)``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from driftline.config.settings import Settings
from driftline.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def yaml_path(loc: tuple[Any, ...]) -> str:
    """``('models', 0, 'features', 'amount')`` → ``models[0].features.amount``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def substitute_env(tree: Any, env: Mapping[str, str], loc: tuple = ()) -> tuple[Any, list]:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of ``tree``."""
    problems: list[tuple[str, str]] = []

    def one(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append((yaml_path(loc), f"environment variable {name} is not set"))
        return ""

    if isinstance(tree, str):
        return _VAR.sub(one, tree), problems
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out[key], sub = substitute_env(value, env, (*loc, key))
            problems += sub
        return out, problems
    if isinstance(tree, list):
        items = []
        for i, value in enumerate(tree):
            item, sub = substitute_env(value, env, (*loc, i))
            items.append(item)
            problems += sub
        return items, problems
    return tree, problems


def _lookup(tree: Any, loc: tuple) -> Any:
    for part in loc:
        try:
            tree = tree[part]
        except (KeyError, IndexError, TypeError):
            return None
    return tree


def _message(err: dict, raw: Any) -> tuple[str, str]:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
    loc += getattr(err.get("ctx", {}).get("error"), "loc", ())  # a PathError: a path below the model
    kind = err["type"]
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "").replace("'", "").replace(" or ", ", ")
        field = loc[-1] if loc else "value"
        if loc and loc[-1] == "kind" and isinstance(_lookup(raw, loc[:-1]), str):
            loc = loc[:-1]  # the shorthand `amount: numerc` has no `kind` key to point at
        return yaml_path(loc), f"unknown {field} {err['input']!r} (expected {expected})"
    if kind == "extra_forbidden":
        return yaml_path(loc), "unknown key"
    if kind == "missing":
        return yaml_path(loc), "required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    shown = err.get("input")
    if kind not in ("value_error", "assertion_error") and not isinstance(shown, (dict, list)):
        msg = f"{msg} (got {shown!r})"
    return yaml_path(loc), msg


def parse_settings(raw: Any, env: Mapping[str, str] | None = None, source: str = "config") -> Settings:
    """Validate an already-parsed YAML tree."""
    if not isinstance(raw, dict):
        raise ConfigError([("", "the file must hold a mapping at the top level")], source)
    tree, problems = substitute_env(raw, os.environ if env is None else env)
    if problems:
        raise ConfigError(problems, source)
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError([_message(e, tree) for e in exc.errors()], source) from exc


def load_settings(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read, substitute and validate a YAML file; raise :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([("", f"not UTF-8 text: invalid byte at position {exc.start}")], str(path)) from exc
    except OSError as exc:
        raise ConfigError([("", f"cannot read {path}: {exc.strerror}")], str(path)) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([("", f"not valid YAML: {exc}")], str(path)) from exc
    return parse_settings(raw, env, str(path))


def masked(settings: Settings) -> dict:
    """The settings as plain data with every secret shown as ``**********``, and the
    password of the store's URL as ``***``."""
    data = settings.model_dump(mode="json")
    data["store"]["url"] = _hide_password(data["store"]["url"])
    return data


def _hide_password(url: str) -> str:
    """``postgresql://u:pw@h/db`` → ``postgresql://u:***@h/db`` (without parsing what is not a URL)."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@/]*@", r"\1:***@", url)
