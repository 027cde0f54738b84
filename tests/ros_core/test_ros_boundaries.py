"""anyseg_ros.core is stdlib + numpy (+ numba, optional) only (no rclpy, torch, yaml,
anyseg_model), proved in a subprocess where those imports are blocked; plus the shared constants
it cannot import."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = sorted(p.stem for p in (ROOT / "anyseg_ros" / "core").glob("*.py") if p.stem != "__init__")
BLOCKED = ["rclpy", "torch", "yaml", "anyseg_model", "sensor_msgs", "rosbags"]


def _python(code: str) -> str:
    """stdout of ``code`` run in a fresh interpreter (which must succeed)."""
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_core_imports_without_rclpy_torch_yaml_or_the_model():
    code = (
        "import sys\n"
        f"for name in {BLOCKED!r}: sys.modules[name] = None\n"
        "import numba\n"  # and what numba itself imports (llvmlite, cython runtime, ...)
        "before = set(sys.modules)\n"
        + "".join(f"import anyseg_ros.core.{m}\n" for m in CORE)
        + "new = {n.split('.')[0] for n in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names)))\n"
    )
    out = _python(code)
    assert set(eval(out)) <= {"anyseg_ros", "numpy"}, out


def test_numba_is_loaded_only_when_a_compiled_decoder_runs():
    code = (
        "import sys\n"
        "import anyseg_ros.core.events, anyseg_ros.core.rvl\n"
        "before = 'numba' in sys.modules\n"
        "anyseg_ros.core.events.Evt3Decoder().decode(b'', 1, 1)\n"
        "print(before, 'numba' in sys.modules)\n"
    )
    assert _python(code) == "False True"


def test_core_decodes_without_numba():
    """Where numba is not installed the decoders run uncompiled, with the same answers."""
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "from anyseg_ros.core import compiled\n"
        "from anyseg_ros.core.events import Evt3Decoder\n"
        "from anyseg_ros.core.rvl import decode_rvl, encode_rvl\n"
        "w = np.array([0x8005, 0x6003, 0x000A, 0x2805, 0x3064, 0x4005], '<u2').tobytes()\n"
        "ev = Evt3Decoder().decode(w, 640, 480)\n"
        "d = np.array([0, 0, 7, 9, 0, 65535], np.uint16)\n"
        "print(compiled.available(), ev.x.tolist(), decode_rvl(encode_rvl(d), 6).tolist())\n"
    )
    assert _python(code) == "False [5, 100, 102] [0, 0, 7, 9, 0, 65535]"


def test_every_core_module_is_checked():
    assert {"sync", "health", "mailbox", "decode", "settings", "topics"} <= set(CORE)


def test_modalities_match_the_model_package():
    from anyseg_model import MODALITIES as MODEL_MODALITIES
    from anyseg_ros.core.sync import MODALITIES

    assert MODALITIES == MODEL_MODALITIES


def test_a_kernel_compiles_without_a_writable_cache(monkeypatch):
    """numba refuses cache=True where no cache directory is writable: compiled uncached then."""
    import numba
    import numpy as np

    from anyseg_ros.core import compiled

    real = numba.njit
    calls = []

    def njit(*args, **kw):  # numba calls it too, without ``cache``
        if "cache" in kw:
            calls.append(kw["cache"])
            if kw["cache"]:
                raise RuntimeError("cannot cache function: no locator available")
        return real(*args, **kw)

    monkeypatch.setattr(numba, "njit", njit)

    @compiled.kernel
    def total(a):
        s = 0
        for v in a:
            s += v
        return s

    assert total(np.arange(5)) == 10 and calls == [True, False]
    assert type(total._run).__module__.startswith("numba")
