"""The node's ROS parameters: declared once from :data:`~anyseg_ros.core.settings.PARAMETERS`,
unknown overrides refused, runtime changes validated through the settings.

- Arrays are declared with their real types (``lidar_extrinsic`` double_array, ``palette``
  integer_array, ...; an empty default needs the type spelled out, rclpy would infer a byte
  array from ``[]``). Doubles are dynamically typed so ``slop_ms: 15`` (an int) is accepted and
  :class:`~anyseg_ros.core.settings.Settings` judges the value; other scalars are typed.
- Parameters that cannot change while the node runs (``Param.live`` false: checkpoint, device,
  modalities, calibration_file) are read-only in the plain node; the managed node refuses them
  only while configured (they are what configure loads).
- After declaring, overrides the node never declared are unknown names: addressed to this node
  (its own params-file key, ``-p``) they stop it with one line naming the closest valid name;
  ones that only came through a key shared by every node (``/**``) get one warning.

Every refusal is a :class:`~anyseg_ros.core.settings.SettingsError` (one line, exit 2).
"""

from __future__ import annotations

import array
from collections.abc import Callable, Sequence
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.node import Node
from rclpy.parameter import Parameter

from .core.overrides import classify_unknown, override_sources, parse_ros_args
from .core.settings import (
    PARAMETER_NAMES,
    PARAMETERS,
    Param,
    Settings,
    SettingsError,
    unknown_name_hint,
)
from .subscriptions import tf_available

_TYPES = {
    "bool": Parameter.Type.BOOL,
    "integer": Parameter.Type.INTEGER,
    "string": Parameter.Type.STRING,
    "integer_array": Parameter.Type.INTEGER_ARRAY,
    "double_array": Parameter.Type.DOUBLE_ARRAY,
    "string_array": Parameter.Type.STRING_ARRAY,
}
_LIVE = {p.name for p in PARAMETERS if p.live}
_SPEC = {p.name: p for p in PARAMETERS}


def _descriptor(p: Param, read_only: bool) -> ParameterDescriptor:
    changes = "changes apply from the next frame set" if p.live else "fixed while running"
    return ParameterDescriptor(
        description=p.description,
        additional_constraints=f"type: {p.type}; {changes}",
        read_only=read_only and not p.live,
        dynamic_typing=p.type == "double",
    )


def _type_error(p: Param, value: Any) -> SettingsError:
    hint = " (write 1.0, not 1)" if p.type in ("double_array",) else ""
    return SettingsError(p.name, value, f"must be a ROS {p.type}{hint}")


def declare(node: Node, read_only: bool = True) -> None:
    """Declare every parameter of the table on ``node`` (typed, with its description)."""
    overrides = node._parameter_overrides  # noqa: SLF001 (rclpy keeps no public view of them)
    for p in PARAMETERS:
        desc = _descriptor(p, read_only)
        if p.type == "double":
            default: Any = p.default
        elif isinstance(p.default, list) and not p.default:
            default = _TYPES[p.type]  # [] would be inferred as a byte array
        else:
            default = p.default
        try:
            node.declare_parameter(p.name, default, desc)
        except InvalidParameterTypeException:
            override = overrides.get(p.name)
            raise _type_error(p, None if override is None else override.value) from None


def value(param: Parameter) -> Any:
    """A parameter's value as Settings takes it (arrays as lists; an unset array is [])."""
    v = param.value
    if v is None and param.name in _SPEC:
        return _SPEC[param.name].default
    return list(v) if isinstance(v, (array.array, tuple, list)) else v


def values(node: Node) -> dict[str, Any]:
    """The current value of every table parameter."""
    # get_parameter_or: an empty typed array is "uninitialised" to rclpy (get_parameter raises)
    return {name: value(node.get_parameter_or(name)) for name in PARAMETER_NAMES}


def check_unknown(node: Node, argv: Sequence[str], read_yaml: Callable[[str], Any]) -> list[str]:
    """Refuse overrides the node does not declare that were addressed to it; returns the names
    that only reached it through a ``/**``-like key (to be warned about once)."""
    declared = set(node._parameters)  # noqa: SLF001
    unknown = set(node._parameter_overrides) - declared  # noqa: SLF001
    if not unknown:
        return []
    args = parse_ros_args(argv, node.get_name())
    try:
        sources = override_sources(args, node.get_fully_qualified_name(), read_yaml)
    except Exception:  # unreadable now (rclpy read it at init): judge every name as our own
        sources = override_sources(args, node.get_fully_qualified_name(), lambda p: {})
    refused, warned = classify_unknown(unknown, sources)
    if refused:
        name = refused[0]
        value = node._parameter_overrides[name].value  # noqa: SLF001
        raise SettingsError(
            name,
            value,
            f"unknown parameter of {node.get_name()}; {unknown_name_hint(name)}"
            f"valid: {list(PARAMETER_NAMES)}",
        )
    return warned


def settings_of(
    node: Node, read_yaml: Callable[[str], Any], changes: dict[str, Any] | None = None
) -> Settings:
    """The node's settings from its parameter values (plus ``changes``); raises SettingsError.
    Without a LiDAR extrinsic parameter the extrinsic comes from tf where tf2_msgs exists."""
    return Settings.from_parameters(
        {**values(node), **(changes or {})}, read_yaml, tf_available=tf_available()
    )


class ParameterChanges:
    """Validates runtime changes through the settings and hands valid ones to ``apply``.

    ``frozen()`` tells whether non-live parameters are fixed right now (always for the plain
    node, where they are read-only anyway; while configured for the managed one). ``check``
    adds checks that need the model (e.g. palette length); it raises SettingsError."""

    def __init__(
        self,
        node: Node,
        read_yaml: Callable[[str], Any],
        apply: Callable[[Settings], None],
        frozen: Callable[[], bool] = lambda: True,
        check: Callable[[Settings], None] = lambda s: None,
    ) -> None:
        self.node, self.read_yaml, self.apply = node, read_yaml, apply
        self.frozen, self.check = frozen, check
        node.add_on_set_parameters_callback(self._validate)
        node.add_post_set_parameters_callback(self._applied)

    def _validate(self, params: list[Parameter]) -> SetParametersResult:
        changes = {p.name: value(p) for p in params if p.name in _SPEC}
        if not changes:
            return SetParametersResult(successful=True)
        fixed = sorted(n for n in changes if n not in _LIVE)
        if fixed and self.frozen():
            return SetParametersResult(
                successful=False,
                reason=f"{fixed} cannot change while the model is configured "
                "(deactivate and clean up first)",
            )
        try:
            settings = settings_of(self.node, self.read_yaml, changes)
            self.check(settings)
        except SettingsError as e:
            # Unconfigured (managed node): only the changed values are judged now; configure
            # judges the whole set (a missing checkpoint must not block setting slop_ms first).
            if e.name in changes or self.frozen():
                return SetParametersResult(successful=False, reason=str(e))
        return SetParametersResult(successful=True)

    def _applied(self, params: list[Parameter]) -> None:
        live = [p for p in params if p.name in _LIVE]
        if not live:
            return
        try:
            settings = settings_of(self.node, self.read_yaml)
        except SettingsError:
            return  # unconfigured and incomplete: configure will say what is wrong
        self.apply(settings)
        changed = ", ".join(f"{p.name}={value(p)!r}" for p in live)
        self.node.get_logger().info(f"parameters changed: {changed} (from the next frame set)")
