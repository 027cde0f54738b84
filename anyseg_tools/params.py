"""Node parameter files (``--params-file`` YAML) read and written by the offline tools.

A params file nests parameter names (``lidar: {timeout_ms: 300}``) under a node key and
``ros__parameters``; the tools work with the flat ROS names (``lidar.timeout_ms``), converted by
:func:`~anyseg_ros.core.settings.flatten_parameters` / ``nest_parameters``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from anyseg_ros.core.settings import SettingsError, flatten_parameters, nest_parameters

NODE_NAME = "anyseg_node"


def read_params_file(path: Path) -> dict[str, Any]:
    """The parameter values of every node key in a params file, flattened."""
    doc = yaml.safe_load(Path(path).read_text()) or {}
    values: dict[str, Any] = {}
    for node in doc.values():
        values.update(flatten_parameters((node or {}).get("ros__parameters", {})))
    return values


def parameter_values(params_file: Path | None, overrides: Sequence[str]) -> dict[str, Any]:
    """Values from a params file and ``name=value`` overrides (values parsed as YAML)."""
    values = read_params_file(params_file) if params_file else {}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep:
            raise SettingsError(item, item, "overrides are name=value")
        values[name.strip()] = yaml.safe_load(value)
    return values


def params_yaml(values: Mapping[str, Any], node: str = NODE_NAME) -> str:
    """Parameter values as a ``--params-file`` YAML for ``node`` (names as given: the node is
    the one to judge them)."""
    tree = {node: {"ros__parameters": nest_parameters(values)}}
    return yaml.safe_dump(tree, sort_keys=False)


def write_params(path: Path, values: Mapping[str, Any], node: str = NODE_NAME) -> Path:
    """Write :func:`params_yaml` to ``path``."""
    Path(path).write_text(params_yaml(values, node))
    return Path(path)
