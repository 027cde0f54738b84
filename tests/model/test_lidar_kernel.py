"""The compiled CPU projection (anyseg_model.lidar_kernel) against the torch path it replaces on
the CPU: the same channels, the same padded indices, bit for bit, for every camera model,
network size and poisoned point; and the torch path where numba is missing."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from anyseg_model import lidar_encoding, lidar_kernel
from anyseg_model.representations import LidarScan, project_lidar

ROOT = Path(__file__).resolve().parents[2]
H, W = 36, 52
K_CAM = np.array([[40.0, 0.0, 26], [0, 41.0, 18], [0, 0, 1]])
# LiDAR frame (x forward, y left, z up) -> a camera looking forward, 0.3 m below, turned 5 deg
C, S = np.cos(np.radians(5)), np.sin(np.radians(5))
LIDAR_TO_CAM = np.array([[-S, -C, 0, 0.1], [0, 0, -1, 0.3], [C, -S, 0, 0.05], [0, 0, 0, 1]])
DISTORTIONS = [
    (None, "plumb_bob"),
    ([-0.25, 0.08, 0.001, -0.002, -0.01], "plumb_bob"),
    ([0.4, -0.2, 0.001, 0.002, 0.05, 0.7, -0.1, 0.03], "rational_polynomial"),
    ([0.05, -0.01, 0.002, -0.0005], "equidistant"),
]
# the camera's size, downsampled by integer and odd ratios, upsampled
SIZES = [None, (H, W), (H // 2, W // 3), (H // 5, W // 7), (H - 1, W - 3), (2 * H, W + 5)]


def _cloud(columns: int) -> np.ndarray:
    """Points all round a LiDAR at the camera (about a third in front), ties, and poison."""
    rng = np.random.default_rng(columns)
    n = 6000
    azimuth, r = rng.uniform(-np.pi, np.pi, n), rng.uniform(0.05, 60, n)
    pts = np.stack(
        [r * np.cos(azimuth), r * np.sin(azimuth), rng.uniform(-3, 3, n), rng.uniform(0, 2, n)], 1
    ).astype(np.float32)
    pts[1::9] = pts[::9][: len(pts[1::9])]  # equal depths: the intensity, then the index
    pts[2::9, :3] = pts[::9, :3][: len(pts[2::9])]
    pts[::50, 3] = np.nan
    pts[3::61, 3] = np.inf
    pts[5::77, 0] = np.nan
    pts[6::77, 2] = np.inf  # a finite depth, an infinite image row
    pts[7::77, 1] = -np.inf
    pts[8::91, 0] = 0.0  # on the camera plane: x / 0
    pts[9::91, :3] = [1e30, 0.0, 0.0]  # x / z overflows nowhere, z far beyond the range
    return pts[:, :columns]


def _torch_path(monkeypatch) -> None:
    monkeypatch.setattr(lidar_kernel, "available", lambda: False)


def _encoded(pts, distortion, model, size, k=K_CAM):
    scan = LidarScan(pts, k, LIDAR_TO_CAM, (W, H), distortion, model)
    out = lidar_encoding.encode_lidar(scan, "cpu", size, max_range_m=30.0, max_intensity=1.5)
    return out, scan.projection


def test_the_cpu_projection_runs_compiled(monkeypatch):
    """numba is a dependency: on the CPU the projection is the compiled loop (else the test
    below would compare the torch path with itself)."""
    calls = []
    real = lidar_kernel.project_scan
    monkeypatch.setattr(lidar_kernel, "project_scan", lambda *a: calls.append(a[2]) or real(*a))
    assert lidar_kernel.available()
    _encoded(_cloud(4), None, "plumb_bob", (H // 2, W // 3))
    _encoded(_cloud(4), None, "plumb_bob", None)
    assert calls == [(H // 2, W // 3), (H, W)]


# a skew makes an infinite image row an infinite column too: both kinds of poisoned point
@pytest.mark.parametrize("skew", [0.0, 0.5])
@pytest.mark.parametrize("columns", [4, 3])
@pytest.mark.parametrize("distortion, model", DISTORTIONS)
def test_compiled_and_torch_paths_agree_bit_for_bit(monkeypatch, distortion, model, columns, skew):
    pts = _cloud(columns)
    k = K_CAM + [[0, skew, 0], [0, 0, 0], [0, 0, 0]]
    for size in SIZES:
        compiled, ours = _encoded(pts, distortion, model, size, k)
        with monkeypatch.context() as m:
            _torch_path(m)
            torch_made, theirs = _encoded(pts, distortion, model, size, k)
        assert torch.equal(compiled, torch_made), size
        np.testing.assert_array_equal(ours.flat, theirs.flat, err_msg=str(size))
    assert compiled[2].sum() > 600  # the last size, upsampled: about 2 x 480 pixels hit
    on = project_lidar(LidarScan(pts, k, LIDAR_TO_CAM, (W, H), distortion, model)).pixel
    assert (on[:, 0] >= 0).sum() > 900 and (on[:, 0] < 0).sum() > 4000
    # the rest of the projection is made from the same scan on demand, as on the device
    for field in ("depth", "intensity", "index", "pixel"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(theirs, field), field)


def test_read_cells_are_what_nearest_resampling_reads():
    """Each pixel of a full-size image lands, through the padded table, where
    F.interpolate(nearest) puts it; the border (off-image cells) is never read."""
    gh, gw = H // 5, W // 7
    image = torch.arange(H * W, dtype=torch.float32).view(1, 1, H, W)
    picked = torch.nn.functional.interpolate(image, size=(gh, gw), mode="nearest").view(-1)
    cells = lidar_kernel.read_cells(W, H, gw, gh).reshape(H + 2, W + 2)
    assert (cells[0] == -1).all() and (cells[-1] == -1).all()
    assert (cells[:, 0] == -1).all() and (cells[:, -1] == -1).all()
    inner = cells[1:-1, 1:-1].reshape(-1)
    read = np.flatnonzero(inner >= 0)
    assert len(read) == gh * gw
    np.testing.assert_array_equal(picked.numpy()[inner[read]], read)


def test_without_numba_the_torch_path_projects():
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "from anyseg_model import lidar_kernel\n"
        "from anyseg_model.representations import LidarScan, Representation\n"
        "pts = np.array([[10.0, 0.0, -0.5, 0.7], [-4.0, 1.0, 0.0, 0.2]], np.float32)\n"
        "K = np.array([[100.0, 0, 40], [0, 100.0, 30], [0, 0, 1]])\n"
        "T = np.array([[0, -1, 0, 0], [0, 0, -1, -0.5], [1, 0, 0, 0], [0, 0, 0, 1]], float)\n"
        "rep = Representation('lidar_projected')\n"
        "scan = LidarScan(pts, K, T, (80, 60))\n"
        "x = rep(scan)\n"
        "same = np.array_equal(x, rep.reference(LidarScan(pts, K, T, (80, 60))))\n"
        "print(lidar_kernel.available(), same, x[2].sum(), scan.projection.flat.tolist())\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    # the point 10 m ahead at the camera's height lands on its centre (40, 30); the point
    # behind has flat 0
    assert r.stdout.split() == ["False", "True", "1.0", f"[{31 * 82 + 41},", "0]"]


def test_the_loops_compile_without_a_writable_cache(monkeypatch):
    """numba refuses cache=True where no cache directory is writable (a read-only install):
    compiled uncached then, with the same answers."""
    import numba

    pts = _cloud(4)
    want, _ = _encoded(pts, None, "plumb_bob", (H // 2, W // 3))
    real, calls = numba.njit, []

    def njit(*args, **kw):
        calls.append(kw.get("cache"))
        if kw.get("cache"):
            raise RuntimeError("cannot cache function 'project': no locator available")
        return real(*args, **kw)

    monkeypatch.setattr(numba, "njit", njit)
    lidar_kernel._compiled.cache_clear()
    try:
        got, _ = _encoded(pts, None, "plumb_bob", (H // 2, W // 3))
        assert calls[:2] == [True, False]
        assert type(lidar_kernel._compiled()).__module__.startswith("numba")
    finally:
        lidar_kernel._compiled.cache_clear()  # the cached compile again for the other tests
    assert torch.equal(got, want)
