"""Repeatable ``KEY=VALUE`` options (``--loss-opt k=5``, ``--student-opt widths=[8,16,32]``) → keyword arguments."""

from __future__ import annotations

import inspect
import json
from typing import Callable

from edgekd.errors import ConfigError


def parse_key_values(flag: str, pairs: list[str], accepted: dict, owner: str) -> dict:
    """``KEY=VALUE`` strings → kwargs; VALUE is JSON (else a string), coerced to the default's type.

    Args:
        flag: the option, as errors name it (``--loss-opt``).
        pairs: the values given, one ``KEY=VALUE`` each.
        accepted: every key ``owner`` takes, with its default (``None``: no default, JSON only).
        owner: what takes them, as errors name it (``loss 'kd'``).

    Raises:
        ConfigError: a malformed pair, an unknown key (the valid ones listed) or a value of the wrong type.
    """
    kwargs = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} {pair!r}: expected KEY=VALUE")
        if key not in accepted:
            raise ConfigError(f"{flag} {key}: {owner} takes no option {key!r}; valid: {', '.join(accepted)}")
        default = accepted[key]
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            if default is None:  # no default to say what a bare word means: JSON only
                raise ConfigError(f"{flag} {key}={text}: not JSON (quote strings: {key}='\"name\"')") from None
            value = text
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # temperature=4 and temperature=4.0 are the same run (and checkpoint)
        if default is not None and not isinstance(default, (list, tuple)) and type(value) is not type(default):
            kind = {bool: "true or false", int: "an integer", float: "a number"}.get(type(default), "a string")
            raise ConfigError(f"{flag} {key}={text}: {owner} expects {kind} (default {default!r})")
        kwargs[key] = value
    return kwargs


def parameters(fn: Callable, skip=()) -> dict:
    """``fn``'s named parameters with their defaults (``None`` where there is none), less ``skip``."""
    return {n: p.default if p.default is not inspect.Parameter.empty else None
            for n, p in inspect.signature(fn).parameters.items()
            if n not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
