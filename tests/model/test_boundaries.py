"""Import boundaries: anyseg_model is torch+numpy only; nothing outside the node needs rclpy."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED_THIRD_PARTY = {"torch", "numpy"}

BLOCK_RCLPY = "import sys; sys.modules['rclpy'] = None\n"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def _modules(package: str) -> list[str]:
    base = ROOT / package.replace(".", "/")
    return [
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in sorted(base.rglob("*.py"))
    ]


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
    assert third_party <= ALLOWED_THIRD_PARTY, third_party


@pytest.mark.parametrize("package", ["anyseg_model", "anyseg_ros.core", "training"])
def test_no_rclpy_outside_the_node(package):
    mods = _modules(package)
    if not mods:
        pytest.fail(f"{package} has no modules")
    code = BLOCK_RCLPY + f"for m in {mods!r}: __import__(m)\nprint('ok')"
    r = _run(code)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]


def test_the_boundary_check_can_fail():
    """Sanity: with rclpy blocked, importing it really fails in the subprocess."""
    r = _run(BLOCK_RCLPY + "import rclpy")
    assert r.returncode != 0 and "rclpy" in r.stderr


def test_torch_free_parts_load_without_torch():
    """Tools that only need names, classes or representations do not pay for torch."""
    mods = ["anyseg_model.modalities", "anyseg_model.classes", "anyseg_model.representations"]
    r = _run(f"import sys\nfor m in {mods!r}: __import__(m)\nprint('torch' in sys.modules)")
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
