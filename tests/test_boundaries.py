"""Import boundaries between the packages, proved in subprocesses with imports blocked:
anyseg_model is torch + numpy (numba and onnx on use only); nothing but the node (and the live
tools) needs rclpy; the synthetic world needs no torch; the robot side imports nothing from the
tools, the world or the training recipe."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = ("training", "anyseg_tools", "anyseg_sim")  # what the robot side must not import
ALLOWED_THIRD_PARTY = {"torch", "numpy"}
# The [deploy] extra, imported only inside the functions that export or run ONNX graphs; numba
# only where the CPU's LiDAR projection is compiled (torch passes without it).
DEPLOY_ONLY = {"onnx", "onnxruntime"}
ON_USE = DEPLOY_ONLY | {"numba"}

BLOCK_RCLPY = "import sys; sys.modules['rclpy'] = None\n"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def _modules(package: str, exclude: tuple[str, ...] = ()) -> list[str]:
    base = ROOT / package.replace(".", "/")
    mods = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in sorted(base.rglob("*.py"))
    ]
    return [m for m in mods if m not in exclude and not m.endswith("__main__")]


def _imported_roots(package: str) -> set[str]:
    """Top-level names of every module an import statement in ``package`` names (not relative)."""
    roots = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots.add(node.module.split(".")[0])
    return roots


def test_anyseg_model_imports_only_torch_and_numpy():
    third_party = (
        _imported_roots("anyseg_model")
        - set(sys.stdlib_module_names)
        - {"__future__", "anyseg_model"}
    )
    assert third_party <= ALLOWED_THIRD_PARTY | ON_USE, third_party
    # ... and those only when used: every module imports with them blocked.
    _imports_with_blocked(_modules("anyseg_model"), tuple(sorted(ON_USE)))


def _imports_with_blocked(mods: list[str], blocked: tuple[str, ...]) -> None:
    assert mods, "no modules to import"
    code = (
        "import sys\n"
        f"for name in {list(blocked)!r}: sys.modules[name] = None\n"
        f"for m in {mods!r}: __import__(m)\nprint('ok')"
    )
    r = _run(code)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]


@pytest.mark.parametrize("package", ["anyseg_model", "anyseg_ros.core", "training", "anyseg_tools"])
def test_no_rclpy_outside_the_node(package):
    # anyseg_tools' replay and live evaluation import rclpy when they run, not when imported.
    _imports_with_blocked(_modules(package), ("rclpy",))


def test_the_synthetic_world_needs_neither_rclpy_nor_torch():
    # Its live rig publishes ROS topics, so it alone must import rclpy.
    _imports_with_blocked(
        _modules("anyseg_sim", exclude=("anyseg_sim.live_rig",)), ("rclpy", "torch")
    )


def test_the_robot_side_imports_nothing_offline():
    assert not _imported_roots("anyseg_ros") & set(OFFLINE)
    _imports_with_blocked(_modules("anyseg_ros"), OFFLINE)


def test_the_boundary_check_can_fail():
    """Sanity: with rclpy blocked, importing it really fails in the subprocess."""
    r = _run(BLOCK_RCLPY + "import rclpy")
    assert r.returncode != 0 and "rclpy" in r.stderr


def test_torch_free_parts_load_without_torch():
    """Tools that only need names, classes or representations do not pay for torch."""
    mods = ["anyseg_model.modalities", "anyseg_model.classes", "anyseg_model.representations"]
    r = _run(f"import sys\nfor m in {mods!r}: __import__(m)\nprint('torch' in sys.modules)")
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
