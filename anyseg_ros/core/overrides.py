"""Where a node's parameter overrides came from: its own params-file key, ``-p``, or a key
shared by every node.

rclpy silently ignores overrides the node never declares, so a misspelled name in a params file
goes unnoticed. After declaring everything the node compares its overrides with the declared
names (:func:`classify_unknown`). To tell a typo addressed to this node (refused) from a name
another node owns that only reached it through a ``/**`` key (one warning), it needs to know which
key each value came from: :func:`parse_ros_args` finds the params files and ``-p`` names in the
process arguments, and :func:`override_sources` matches a params file's keys against the node's
fully qualified name the way rcl does (docs/architecture.md section 5):

- a top-level key is a node name, prefixed with ``/`` if it has none; nested keys build a
  namespace (``robot1: {anyseg_node: {ros__parameters: ...}}`` is ``/robot1/anyseg_node``);
- ``/*`` matches one namespace level, ``/**`` any number (``/**/anyseg_node`` is that node under
  any namespace, ``/**`` every node).

A key whose last part is a wildcard addresses every node (in some namespace): *shared*.
Stdlib only; the caller loads the YAML (``read_yaml``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PARAMS_KEY = "ros__parameters"


@dataclass
class RosArgs:
    """The parameter sources among a process's ROS arguments."""

    params_files: list[str] = field(default_factory=list)
    param_names: list[str] = field(default_factory=list)  # -p NAME:=VALUE (this node or any)


def parse_ros_args(argv: Sequence[str], node_name: str) -> RosArgs:
    """``--params-file FILE`` and ``-p [node:]NAME:=VALUE`` inside ``--ros-args ... [--]``
    sections; a ``-p`` prefixed with another node's name is not this node's."""
    out = RosArgs()
    ros, i = False, 0
    while i < len(argv):
        a = argv[i]
        if a == "--ros-args":
            ros = True
        elif a == "--":
            ros = False
        elif ros and a == "--params-file" and i + 1 < len(argv):
            out.params_files.append(argv[i + 1])
            i += 1
        elif ros and a in ("-p", "--param") and i + 1 < len(argv):
            name = argv[i + 1].split(":=", 1)[0]
            node, sep, rest = name.rpartition(":")
            if not sep or node == node_name:
                out.param_names.append(rest)
            i += 1
        i += 1
    return out


def key_pattern(key: str) -> re.Pattern[str]:
    """The regular expression rcl makes of a params-file node key."""
    key = key if key.startswith("/") else "/" + key
    parts = re.split(r"(/\*\*|/\*)", key)
    regex = "".join({"/**": r"(/\w+)*", "/*": r"(/\w+)"}.get(p, re.escape(p)) for p in parts if p)
    return re.compile(regex)


def key_matches(key: str, fqn: str) -> bool:
    return key_pattern(key).fullmatch(fqn) is not None


def key_is_shared(key: str) -> bool:
    """True if the key addresses every node (its last part is a wildcard)."""
    return key.rstrip("/").rsplit("/", 1)[-1] in ("*", "**")


def node_keys(doc: Any, prefix: str = "") -> list[tuple[str, Mapping[str, Any]]]:
    """``(key, ros__parameters)`` for every node key in a params-file document."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    if not isinstance(doc, Mapping):
        return out
    for k, v in doc.items():
        if not isinstance(v, Mapping):
            continue
        key = f"{prefix}/{str(k).strip('/')}" if prefix else str(k)
        if PARAMS_KEY in v:
            params = v[PARAMS_KEY]
            out.append((key, params if isinstance(params, Mapping) else {}))
        else:
            out.extend(node_keys(v, key))
    return out


def flat_names(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    """ROS parameter names of a ``ros__parameters`` block (nested keys joined by dots)."""
    out = []
    for k, v in tree.items():
        name = f"{prefix}{k}"
        out += flat_names(v, name + ".") if isinstance(v, Mapping) else [name]
    return out


@dataclass
class Sources:
    """Names addressed to this node specifically, and names from keys shared by every node."""

    own: set[str] = field(default_factory=set)
    shared: set[str] = field(default_factory=set)


def override_sources(
    args: RosArgs, fqn: str, read_yaml: Callable[[str], Any], *, param_names: bool = True
) -> Sources:
    """Which parameter names reach the node ``fqn`` through which kind of key."""
    src = Sources(own=set(args.param_names) if param_names else set())
    for path in args.params_files:
        for key, params in node_keys(read_yaml(path)):
            if key_matches(key, fqn):
                (src.shared if key_is_shared(key) else src.own).update(flat_names(params))
    return src


def classify_unknown(unknown: Iterable[str], sources: Sources) -> tuple[list[str], list[str]]:
    """``(refused, warned)``: undeclared names addressed to this node (or of unknown origin)
    are refused; those that only came through a shared key are warned about."""
    unknown = sorted(set(unknown))
    warned = [n for n in unknown if n in sources.shared and n not in sources.own]
    refused = [n for n in unknown if n not in warned]
    return refused, warned
