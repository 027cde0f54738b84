"""launch/segment.launch.py evaluated against stand-ins for `launch` / `launch_ros` (not
installable here), the way `ros2 launch` would: launch arguments resolved, conditions decided,
and the node's command line built as launch_ros builds it. The launch tests check what it
describes; the namespace node test runs the command it gives."""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / "launch" / "segment.launch.py"


class Recorded:
    """Any launch object: remembers its constructor arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


KINDS = {
    "launch": ["LaunchDescription"],
    "launch.actions": ["DeclareLaunchArgument", "EmitEvent", "RegisterEventHandler"],
    "launch.conditions": ["IfCondition", "UnlessCondition"],
    "launch.events": [],
    "launch.substitutions": ["LaunchConfiguration", "PathJoinSubstitution"],
    "launch_ros": [],
    "launch_ros.actions": ["Node", "LifecycleNode"],
    "launch_ros.event_handlers": ["OnStateTransition"],
    "launch_ros.events": [],
    "launch_ros.events.lifecycle": ["ChangeState"],
    "launch_ros.parameter_descriptions": ["ParameterValue"],
    "launch_ros.substitutions": ["FindPackageShare"],
}


def standins() -> dict[str, types.ModuleType]:
    mods = {}
    for name, classes in KINDS.items():
        mod = types.ModuleType(name)
        for cls in classes:
            setattr(mod, cls, type(cls, (Recorded,), {}))
        mods[name] = mod
    mods["launch.events"].matches_action = lambda action: ("matches_action", action)
    return mods


def load(monkeypatch) -> list[Any]:
    """The entities of generate_launch_description(), built from the stand-ins."""
    for name, mod in standins().items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location("segment_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert type(description).__name__ == "LaunchDescription"
    return description.args[0]


def kind(x: Any) -> str:
    return type(x).__name__


class Resolver:
    """Evaluates substitutions and conditions as launch would for given launch arguments."""

    def __init__(self, entities: list[Any], launch_args: dict[str, str]) -> None:
        declared = {
            e.args[0]: e.kwargs["default_value"]
            for e in entities
            if kind(e) == "DeclareLaunchArgument"
        }
        unknown = set(launch_args) - set(declared)
        assert not unknown, f"launch arguments {unknown} are not declared"
        self.values = {**declared, **launch_args}
        self.entities = entities

    def __call__(self, x: Any) -> Any:
        k = kind(x)
        if isinstance(x, (str, int, float, bool)) or x is None:
            return x
        if isinstance(x, list):
            return [self(v) for v in x]
        if isinstance(x, dict):
            return {key: self(v) for key, v in x.items()}
        if k == "FindPackageShare":
            return str(REPO)  # setup.py's data_files make the share mirror the repository
        if k == "PathJoinSubstitution":
            return str(Path(*(self(p) for p in x.args[0])))
        if k == "LaunchConfiguration":
            return self(self.values[x.args[0]])
        if k == "ParameterValue":
            value = yaml.safe_load(self(x.args[0]))  # launch_ros parses the text as YAML
            assert isinstance(value, x.kwargs["value_type"]), (value, x.kwargs)
            return value
        raise AssertionError(f"unexpected substitution {k}")

    def condition(self, entity: Any) -> bool:
        cond = entity.kwargs.get("condition")
        if cond is None:
            return True
        text = str(self(cond.args[0])).strip().lower()
        if text not in ("true", "false", "1", "0"):  # launch raises on anything else
            raise ValueError(f"invalid condition value {text!r}")
        return (text in ("true", "1")) is (kind(cond) == "IfCondition")

    def launched(self) -> list[Any]:
        """The entities that run: nodes and events whose condition holds."""
        return [
            e for e in self.entities if kind(e) != "DeclareLaunchArgument" and self.condition(e)
        ]

    def node(self) -> Any:
        (node,) = [e for e in self.launched() if kind(e) in ("Node", "LifecycleNode")]
        return node


def console_scripts() -> dict[str, str]:
    """``{script: module:function}`` of setup.py."""
    return dict(re.findall(r'"([\w-]+) = ([\w.]+:\w+)"', (REPO / "setup.py").read_text()))


def command(monkeypatch, launch_args: dict[str, str], workdir: Path) -> list[str]:
    """The node process launch_ros would start: the console script (as ``python -m``), its
    arguments, then --ros-args with the node name, namespace and parameter files (dict
    parameters written to a file under ``/**``, as launch_ros does)."""
    r = Resolver(load(monkeypatch), launch_args)
    node = r.node()
    kw = node.kwargs
    module = console_scripts()[kw["executable"]].split(":")[0]
    argv = [sys.executable, "-m", module, *r(kw["arguments"]), "--ros-args"]
    argv += ["-r", f"__node:={kw['name']}"]
    namespace = r(kw["namespace"])
    if namespace:
        argv += ["-r", f"__ns:={namespace if namespace.startswith('/') else '/' + namespace}"]
    for i, p in enumerate(r(kw["parameters"])):
        if isinstance(p, dict):
            path = workdir / f"launch_params_{i}.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": p}}))
            p = str(path)
        argv += ["--params-file", p]
    return argv
