# tests/ holds ros_env.py (shared with tests/ros_node); test folders are not packages, so put it
# on the path explicitly.
import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
