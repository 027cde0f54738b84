"""Camera models of sensor_msgs/CameraInfo: distortion of normalised image coordinates.

Three ``distortion_model`` values, with OpenCV's equations and coefficient order (what ROS
camera_calibration writes):

- ``plumb_bob``: D = (k1, k2, p1, p2[, k3]), radial-tangential (``cv2.projectPoints``).
- ``rational_polynomial``: D = (k1, k2, p1, p2, k3, k4, k5, k6), the radial factor a ratio of
  two cubics in r^2 (``cv2.projectPoints`` with 8 coefficients).
- ``equidistant``: D = (k1, k2, k3, k4), the fisheye model theta_d = theta (1 + k1 theta^2 +
  k2 theta^4 + k3 theta^6 + k4 theta^8) (``cv2.fisheye.projectPoints``).

D = None (or all zeros) is an undistorted, rectified camera. :func:`distort` is written once with
the array module passed in (numpy or torch), so the numpy reference projection and the torch
one on the model's device run the same operations in the same order.

Points past the fold of the distortion polynomial (where the distorted radius stops growing with
the undistorted one) are reported as invalid: OpenCV would wrap them back into the image, and a
360-degree LiDAR has many points there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# model -> number of coefficients it uses (shorter D is zero-padded, as OpenCV does)
DISTORTION_MODELS: dict[str, int] = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}


def distortion_coefficients(d: Any, model: str = "plumb_bob") -> tuple[float, ...] | None:
    """Validate D for ``model`` -> its coefficients zero-padded to the model's length, or None
    for an undistorted camera. Raises ValueError naming the bad value and what is allowed."""
    if model not in DISTORTION_MODELS:
        raise ValueError(
            f"distortion_model {model!r} not supported; valid: {sorted(DISTORTION_MODELS)}"
        )
    if d is None:
        return None
    try:
        c = np.asarray(d, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"distortion must be a sequence of numbers, got {d!r}") from None
    if not np.isfinite(c).all():
        raise ValueError(f"distortion {c.tolist()} has a non-finite coefficient")
    n = DISTORTION_MODELS[model]
    if np.any(c[n:]):
        raise ValueError(
            f"distortion_model {model!r} takes at most {n} coefficients, got D={c.tolist()}"
        )
    if not np.any(c):
        return None
    return tuple(float(v) for v in np.pad(c[:n], (0, max(0, n - c.size))))


def distort(x: Any, y: Any, coeffs: tuple[float, ...], model: str, xp: Any) -> tuple[Any, Any, Any]:
    """Distort normalised coordinates (x, y) = (X/Z, Y/Z): -> (xd, yd, valid).

    ``xp`` is the array module of x and y (numpy or torch); ``coeffs`` come from
    :func:`distortion_coefficients`. ``valid`` is False past the fold of the model.
    """
    r2 = x * x + y * y
    if model == "equidistant":
        k1, k2, k3, k4 = coeffs
        r = xp.sqrt(r2)
        theta = xp.arctan(r)
        t2 = theta * theta
        poly = 1.0 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))
        slope = 1.0 + t2 * (3.0 * k1 + t2 * (5.0 * k2 + t2 * (7.0 * k3 + t2 * 9.0 * k4)))
        # theta_d / r, and its limit 1 on the optical axis (OpenCV uses 1 below r = 1e-8)
        scale = xp.where(r > 1e-8, theta * poly / xp.where(r > 1e-8, r, 1.0), 1.0)
        return x * scale, y * scale, slope > 0
    k1, k2, p1, p2, k3 = coeffs[:5]
    num = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    dnum = k1 + r2 * (2.0 * k2 + r2 * 3.0 * k3)  # d num / d r2
    if model == "rational_polynomial":
        k4, k5, k6 = coeffs[5:]
        den = 1.0 + r2 * (k4 + r2 * (k5 + r2 * k6))
        dden = k4 + r2 * (2.0 * k5 + r2 * 3.0 * k6)
        radial = num / den
        dradial = (dnum * den - num * dden) / (den * den)
        valid = (den > 0) & (radial + 2.0 * r2 * dradial > 0)
    else:
        radial = num
        valid = radial + 2.0 * r2 * dnum > 0  # d(r * radial)/dr > 0: before the fold
    xy = x * y
    xd = x * radial + 2.0 * p1 * xy + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * xy
    return xd, yd, valid
