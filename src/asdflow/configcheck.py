"""Configuration checks that run before any job: one short message per problem.

Snakemake's own schema validation reports a wrong key with the whole schema and config dumped
after it (hundreds of lines), and an error inside a ``oneOf`` (the ``external`` block) only as
"is not valid under any of the given schemas". :func:`check_config` instead names the key, the
file (or ``--config``) it came from and what is wrong, with a pointer to the schema; paths the
workflow will read (``dcase_root``, the external pool's files and folders,
``eval_ground_truth``) must exist, and every ensemble's members must resolve
(:func:`system_problems`). It raises :class:`ConfigError` with every problem found, so a
user fixes them in one go. After it passes, Snakemake's validation still runs (it fills the
defaults).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = ["ConfigError", "config_problems", "path_problems", "system_problems", "check_config", "key_source"]

SCHEMA_HINT = "schemas/config.schema.yaml documents every key"


class ConfigError(ValueError):
    """An invalid workflow configuration (the message lists every problem, one per line)."""


def _key(path: Sequence[Any]) -> str:
    return ".".join(str(p) for p in path) if path else "(top level)"


def key_source(path: Sequence[Any], sources: Sequence[tuple[str, Mapping]]) -> str | None:
    """The last source (name, mapping) in ``sources`` that sets the key at ``path``."""
    found = None
    for name, data in sources:
        node: Any = data
        for part in path:
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                break
        else:
            found = name
    return found


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Inside oneOf/anyOf, the error of the alternative the value was meant for (the one whose
    type matches), instead of the unhelpful "not valid under any of the given schemas"."""
    while error.validator in ("oneOf", "anyOf") and error.context:
        typed = [e for e in error.context if e.validator not in ("type", "enum", "const")]
        if not typed:
            return error
        # the deepest/most specific among the matching alternative's errors
        error = max(typed, key=lambda e: len(e.absolute_path))
    return error


def _describe(error: jsonschema.ValidationError) -> list[tuple[list, str]]:
    """(key path, message) pairs for one schema error; an unknown key is named in its own path."""
    path = list(error.absolute_path)
    v = error.validator
    if v == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = sorted((error.schema or {}).get("properties", {}))
        out = []
        for key in sorted(set(error.instance) - set(allowed), key=str):
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            out.append((path + [key], f"unknown key ({hint}allowed here: {', '.join(allowed)})"))
        if out:
            return out
    if v == "required":
        return [(path, error.message.replace("is a required property", "is required here"))]
    if v == "enum":
        return [(path, f"{error.instance!r} is not one of {list(error.validator_value)}")]
    if v == "type":
        return [(path, f"{error.instance!r} should be of type {error.validator_value}")]
    return [(path, error.message)]


def config_problems(config: Mapping, schema: Mapping) -> list[tuple[list, str]]:
    """(key path, message) for every schema violation of ``config``, oneOf errors resolved."""
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    out: list[tuple[list, str]] = []
    seen: set[tuple[str, str]] = set()
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        for path, msg in _describe(_deepest(error)):
            if (_key(path), msg) not in seen:
                seen.add((_key(path), msg))
                out.append((path, msg))
    return out


def path_problems(config: Mapping) -> list[tuple[list, str]]:
    """(key path, message) for every input path of ``config`` that does not exist."""
    out: list[tuple[list, str]] = []

    def need(path: list, value: Any, kind: str) -> None:
        if value is None:
            return
        p = Path(str(value)).expanduser()
        ok = p.is_dir() if kind == "folder" else p.is_file()
        if not ok:
            what = "folder" if kind == "folder" else "file"
            state = "is not a " + what if p.exists() else "does not exist"
            out.append((path, f"{what} {value} {state}"))

    root = config.get("dcase_root")
    need(["dcase_root"], root, "folder")
    if root is not None and Path(str(root)).expanduser().is_dir():
        datasets = list(config.get("datasets") or ["dev_data", "eval_data"])
        if not any((Path(str(root)).expanduser() / d).is_dir() for d in datasets):
            out.append((["dcase_root"], f"{root} holds none of {datasets} (expected {root}/dev_data/<machine>/"
                                        "{train,test}/*.wav, an optional raw/ level in between)"))
    need(["eval_ground_truth"], config.get("eval_ground_truth"), "folder")
    need(["beats", "checkpoint"], (config.get("beats") or {}).get("checkpoint"), "file")
    ext = config.get("external")
    if isinstance(ext, Mapping):
        for i, f in enumerate(ext.get("segments") or []):
            need(["external", "segments", i], f, "file")
        need(["external", "labels"], ext.get("labels"), "file")
        need(["external", "labels_csv"], ext.get("labels_csv"), "file")
        for i, d in enumerate(ext.get("audio_dirs") or []):
            need(["external", "audio_dirs", i], d, "folder")
        if ext.get("segments") and not ext.get("labels"):
            out.append((["external"], "an AudioSet pool (segments given) needs labels: the path of "
                                      "class_labels_indices.csv"))
        if ext.get("labels_csv") and ext.get("segments"):
            out.append((["external"], "labels_csv is for plain-folder pools; an AudioSet pool (segments given) "
                                      "takes labels: class_labels_indices.csv"))
    return out


def synth_problems(config: Mapping) -> list[tuple[list, str]]:
    """(key path, message) when ``synth.options`` do not make a valid built-in data config
    (unknown :class:`asdflow.synth.SynthConfig` field, value out of range)."""
    synth = config.get("synth") or {}
    options = synth.get("options") or {}
    if not options:
        return []
    from asdflow.synth import SynthConfig

    try:
        SynthConfig.from_preset(synth.get("preset", "demo"), seed=int(synth.get("seed", 0)), **options)
    except (TypeError, ValueError) as err:
        return [(["synth", "options"], str(err))]
    return []


def system_problems(config: Mapping) -> list[tuple[list, str]]:
    """(key path, message) for every ensemble system whose members do not resolve (unknown
    system, stage or scoring back-end, cycles; :func:`asdflow.ensemble.ensemble_problems`)."""
    from asdflow.ensemble import EMBEDDING_DEFAULT, ensemble_problems

    definitions = config.get("system_definitions") or {}
    backends = (config.get("scoring") or {}).get("backends") or [EMBEDDING_DEFAULT]
    return ensemble_problems(definitions, backends, systems=config.get("systems") or [])


def _load(path: str) -> Mapping:
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh)
        return data if isinstance(data, Mapping) else {}
    except (OSError, yaml.YAMLError):
        return {}


def check_config(
    config: Mapping,
    schema: Mapping | str | Path,
    *,
    configfiles: Iterable[str] = (),
    cli_config: Mapping | None = None,
) -> None:
    """Raise :class:`ConfigError` naming each invalid key, its source and the problem.

    ``configfiles``: the config files in the order Snakemake merged them (the workflow's
    ``config.yaml`` first, then every ``--configfile``); ``cli_config``: the ``--config`` values.
    They are only used to say where a key was set.
    """
    if not isinstance(schema, Mapping):
        with open(schema) as fh:
            schema = yaml.safe_load(fh)
    sources: list[tuple[str, Mapping]] = [(str(f), _load(str(f))) for f in configfiles]
    if cli_config:
        sources.append(("--config", cli_config))
    problems = config_problems(config, schema)
    if not problems:  # paths and ensemble members only once the shape is right
        problems = path_problems(config) + synth_problems(config) + system_problems(config)
    if not problems:
        return
    lines = []
    for path, msg in problems:
        src = key_source(path, sources) if path else None
        where = f" (set in {src})" if src else ""
        lines.append(f"config key {_key(path)}{where}: {msg}")
    raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines) + f"\n({SCHEMA_HINT})")
