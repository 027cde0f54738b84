# tests/ holds ros_env.py (shared with tests/ros_node); test folders are not packages, so put it
# on the path explicitly.
import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained anyseg_tiny checkpoint for all four modalities (fast on CPU)."""
    from anyseg_model import create_model, save_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "anyseg_tiny.pt"
    save_checkpoint(
        create_model("anyseg_tiny", num_classes=25, modalities=("rgb", "depth", "event", "lidar")),
        path,
    )
    return path
