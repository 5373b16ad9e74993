"""``--config FILE``: a command's options from a TOML file, or from a run's ``.meta.json`` sidecar.

A TOML file names options as the command line does (``keep = "cleanest"``, ``date-field =
"published"`` or ``date_field``); keys at the top apply to every command, a ``[dedup]`` (or
``[query]``, …) table to that command only. Options given on the command line win. A sidecar
(:mod:`neardup.cli.sidecar`) holds the options of the run that wrote it, so ``--config
clusters.jsonl.meta.json`` repeats that run on the same inputs. Every key is checked as the command
line would check it: an unknown option, a wrong type or a value outside the choices is a usage error
naming the file and the key.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from neardup.cli.common import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the backport, before Python 3.11
    import tomli as tomllib

#: Options that never come from a file.
NOT_FROM_FILE = frozenset({"help", "config", "version"})


def config_path(argv: Sequence[str]) -> str | None:
    """The value of ``--config`` in ``argv`` (wherever it stands), or None."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(list(argv))
    path: str | None = known.config
    return path


def load_options(path: str, command: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The options ``path`` gives every command (its top-level keys) and ``command`` (its
    ``[command]`` table, or a sidecar's options)."""
    data = _read(path)
    if "neardup" in data and isinstance(data.get("options"), dict):  # a sidecar: the options of its run
        if data.get("command") != command:
            raise UsageError(f"--config {path}: written by 'neardup {data.get('command')}', not 'neardup {command}'")
        return {}, dict(data["options"])
    own = data.get(command, {})
    if not isinstance(own, dict):
        raise UsageError(f"--config {path}: [{command}] must be a table of options")
    return {k: v for k, v in data.items() if not isinstance(v, dict)}, own


def apply_options(commands: Mapping[str, argparse.ArgumentParser], command: str, shared: Mapping[str, Any],
                  own: Mapping[str, Any], path: str) -> None:
    """Make the options the defaults of ``command``'s parser (so the command line still wins),
    each checked; a shared key that only other commands have is left to them."""
    def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
        return {action.dest: action for action in parser._actions
                if action.option_strings and action.dest not in NOT_FROM_FILE}

    actions = options(commands[command])
    elsewhere = {dest for name, parser in commands.items() if name != command for dest in options(parser)}
    for key, value in [*((k, v) for k, v in shared.items() if k not in own), *own.items()]:
        dest = str(key).replace("-", "_")
        action = actions.get(dest)
        if action is None and key in shared and key not in own and dest in elsewhere:
            continue
        if action is None:
            known = ", ".join(sorted(name.replace("_", "-") for name in actions))
            raise UsageError(f"--config {path}: 'neardup {command}' has no option {key!r} (options: {known})")
        commands[command].set_defaults(**{dest: _checked(action, value, f"--config {path}: {key}")})
        action.required = False


def _checked(action: argparse.Action, value: Any, where: str) -> Any:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+"):
        items = value if isinstance(value, list) else [value]
        return [_one(action, item, where) for item in items]
    return _one(action, value, where)


def _one(action: argparse.Action, value: Any, where: str) -> Any:
    if isinstance(value, (dict, list)) or value is None:
        raise UsageError(f"{where}: expected a single value, got {value!r}")
    if isinstance(value, bool):
        raise UsageError(f"{where}: expected a value like the command line's, got {value!r}")
    converted = value
    if action.type is not None and callable(action.type):
        try:
            converted = action.type(str(value))
        except (ValueError, TypeError, argparse.ArgumentTypeError) as err:
            raise UsageError(f"{where}: {err}") from None
    elif not isinstance(value, str):
        converted = str(value)
    if action.choices is not None and converted not in action.choices:
        raise UsageError(f"{where}: {converted!r} is not one of {', '.join(map(str, action.choices))}")
    return converted


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as err:
        raise UsageError(f"--config {path}: {err.strerror or err}") from None
    try:
        data = json.loads(raw) if path.endswith(".json") else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise UsageError(f"--config {path}: not valid {'JSON' if path.endswith('.json') else 'TOML'}: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a table of options")
    return data
