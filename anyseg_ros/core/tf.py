"""A tf tree without tf2_ros: static and dynamic transforms, chains composed via the common root.

Fed with tf2_msgs/TFMessage contents (``transforms[]`` of geometry_msgs/TransformStamped: the
child's pose in the parent, p_parent = R p_child + t), live from /tf and /tf_static or from a
bag's. :meth:`TfTree.lookup` returns ``T_target<-source`` (4x4, p_target = T p_source): both
frames are walked up to their common ancestor and T = (T_root<-target)^-1 T_root<-source, as
tf2's BufferCore does. Dynamic links are interpolated at the requested stamp (linear translation,
slerp rotation) within a 10 s cache; static links have no time. Every frame has one parent.

REP 103: a camera's ``*_optical`` frame is z forward, x right, y down; ``camera_link ->
camera_optical`` is the quaternion (x, y, z, w) = (-0.5, 0.5, -0.5, 0.5) (:data:`OPTICAL_IN_BODY`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .decode import stamp_ns

OPTICAL_IN_BODY = (-0.5, 0.5, -0.5, 0.5)  # REP 103 body -> optical rotation, (x, y, z, w)
CACHE_NS = 10_000_000_000  # tf2's default buffer length
EXTRAPOLATION_NS = 100_000_000  # a stamp this close outside the cached range takes the end


class TfError(LookupError):
    """A transform that cannot be looked up; the message names both frames."""


def quaternion_matrix(q: Iterable[float]) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> 3x3 rotation (normalised; a zero quaternion is refused)."""
    x, y, z, w = (float(v) for v in q)
    n = x * x + y * y + z * z + w * w
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError(f"quaternion {(x, y, z, w)} is not a rotation")
    s = 2.0 / n
    return np.array(
        [
            [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
            [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
            [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
        ]
    )


def matrix_quaternion(R: np.ndarray) -> tuple[float, float, float, float]:
    """3x3 rotation -> unit quaternion (x, y, z, w) with w >= 0."""
    R = np.asarray(R, np.float64)
    w = np.sqrt(max(0.0, 1 + R[0, 0] + R[1, 1] + R[2, 2])) / 2
    x = np.sqrt(max(0.0, 1 + R[0, 0] - R[1, 1] - R[2, 2])) / 2
    y = np.sqrt(max(0.0, 1 - R[0, 0] + R[1, 1] - R[2, 2])) / 2
    z = np.sqrt(max(0.0, 1 - R[0, 0] - R[1, 1] + R[2, 2])) / 2
    x = np.copysign(x, R[2, 1] - R[1, 2])
    y = np.copysign(y, R[0, 2] - R[2, 0])
    z = np.copysign(z, R[1, 0] - R[0, 1])
    return float(x), float(y), float(z), float(w)


def transform(translation: Iterable[float], rotation: Iterable[float]) -> np.ndarray:
    """(tx, ty, tz) and quaternion (x, y, z, w) -> 4x4."""
    T = np.eye(4)
    T[:3, :3] = quaternion_matrix(rotation)
    T[:3, 3] = [float(v) for v in translation]
    return T


def _slerp(q0: np.ndarray, q1: np.ndarray, a: float) -> np.ndarray:
    if np.dot(q0, q1) < 0:
        q1 = -q1
    d = float(np.clip(np.dot(q0, q1), -1.0, 1.0))
    if d > 0.9995:
        q = q0 + a * (q1 - q0)
    else:
        th = np.arccos(d)
        q = (np.sin((1 - a) * th) * q0 + np.sin(a * th) * q1) / np.sin(th)
    return q / np.linalg.norm(q)


@dataclass
class _Link:
    parent: str
    static: bool
    stamps: list[int] = field(default_factory=list)
    poses: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (t, q xyzw)
    matrix: np.ndarray | None = None  # a static link's 4x4, exactly as given

    def at(self, stamp: int | None, child: str) -> np.ndarray:
        if self.static and self.matrix is not None:
            return self.matrix
        if self.static or stamp is None or len(self.stamps) == 1:
            i = -1 if stamp is None or self.static else 0
            if (
                not self.static
                and stamp is not None
                and abs(stamp - self.stamps[0]) > EXTRAPOLATION_NS
            ):
                raise TfError(self._range_error(stamp, child))
            t, q = self.poses[i]
            return transform(t, q)
        if stamp <= self.stamps[0] or stamp >= self.stamps[-1]:
            end = 0 if stamp <= self.stamps[0] else -1
            if abs(stamp - self.stamps[end]) > EXTRAPOLATION_NS:
                raise TfError(self._range_error(stamp, child))
            t, q = self.poses[end]
            return transform(t, q)
        j = bisect.bisect_right(self.stamps, stamp)
        s0, s1 = self.stamps[j - 1], self.stamps[j]
        a = (stamp - s0) / (s1 - s0)
        (t0, q0), (t1, q1) = self.poses[j - 1], self.poses[j]
        return transform(t0 + a * (t1 - t0), _slerp(q0, q1, a))

    def _range_error(self, stamp: int, child: str) -> str:
        return (
            f"transform {self.parent!r} -> {child!r} at {stamp / 1e9:.3f} s is outside the "
            f"buffered {self.stamps[0] / 1e9:.3f} .. {self.stamps[-1] / 1e9:.3f} s"
        )


class TfTree:
    """Transforms from /tf_static and /tf (see the module docstring)."""

    def __init__(self, cache_ns: int = CACHE_NS) -> None:
        self.cache_ns = cache_ns
        self._links: dict[str, _Link] = {}  # child -> link to its parent
        self.rejected = 0  # transforms refused (non-finite, self-parent, a second parent)

    def __len__(self) -> int:
        return len(self._links)

    def frames(self) -> set[str]:
        return set(self._links) | {lk.parent for lk in self._links.values()}

    def add(
        self,
        parent: str,
        child: str,
        T: np.ndarray | None = None,
        *,
        stamp: int = 0,
        static: bool = True,
        translation: Any = None,
        rotation: Any = None,
    ) -> bool:
        """Add one transform (the child's pose in the parent) as a 4x4 or translation +
        quaternion; False (and counted in ``rejected``) when it is refused."""
        parent, child = parent.strip("/"), child.strip("/")
        try:
            if T is not None:
                T = np.asarray(T, np.float64).reshape(4, 4)
                t, q = T[:3, 3].copy(), np.array(matrix_quaternion(T[:3, :3]))
            else:
                t = np.array([float(v) for v in translation])
                q = np.array([float(v) for v in rotation])
                quaternion_matrix(q)  # refuses a zero quaternion
                q = q / np.linalg.norm(q)
        except (TypeError, ValueError):
            self.rejected += 1
            return False
        old = self._links.get(child)
        if (
            not parent
            or not child
            or parent == child
            or not (np.isfinite(t).all() and np.isfinite(q).all())
            or (old is not None and old.parent != parent)
            or self._is_ancestor(child, parent)
        ):
            self.rejected += 1
            return False
        if old is None or old.static != static:
            old = self._links[child] = _Link(parent, static)
        if static:
            old.stamps, old.poses = [stamp], [(t, q)]
            old.matrix = T if T is not None else transform(t, q)
            return True
        i = bisect.bisect_right(old.stamps, stamp)
        if i and old.stamps[i - 1] == stamp:
            old.poses[i - 1] = (t, q)
        else:
            old.stamps.insert(i, stamp)
            old.poses.insert(i, (t, q))
        while len(old.stamps) > 2 and old.stamps[-1] - old.stamps[0] > self.cache_ns:
            old.stamps.pop(0)
            old.poses.pop(0)
        return True

    def add_message(self, msg: Any, static: bool) -> int:
        """A tf2_msgs/TFMessage (rclpy or rosbags); returns how many transforms were taken."""
        taken = 0
        for ts in getattr(msg, "transforms", []):
            try:
                tr, rot = ts.transform.translation, ts.transform.rotation
                taken += self.add(
                    str(ts.header.frame_id),
                    str(ts.child_frame_id),
                    stamp=stamp_ns(ts.header),
                    static=static,
                    translation=(tr.x, tr.y, tr.z),
                    rotation=(rot.x, rot.y, rot.z, rot.w),
                )
            except (AttributeError, ValueError):
                self.rejected += 1
        return taken

    def _is_ancestor(self, frame: str, of: str) -> bool:
        """True if ``frame`` is ``of`` or one of its ancestors (adding would close a loop)."""
        seen = 0
        while of and seen <= len(self._links):
            if of == frame:
                return True
            link = self._links.get(of)
            of = link.parent if link else ""
            seen += 1
        return False

    def _chain(self, frame: str) -> list[str]:
        out = [frame]
        while frame in self._links and len(out) <= len(self._links):
            frame = self._links[frame].parent
            out.append(frame)
        return out

    def lookup(self, target: str, source: str, stamp: int | None = None) -> np.ndarray:
        """T_target<-source (4x4) at ``stamp`` (ns; None: the latest). Raises :class:`TfError`
        naming both frames when they are not connected or a link has no data at ``stamp``."""
        target, source = target.strip("/"), source.strip("/")
        if target == source:
            return np.eye(4)
        up_s, up_t = self._chain(source), self._chain(target)
        common = next((f for f in up_s if f in set(up_t)), None)
        if common is None:
            known = sorted(self.frames())
            raise TfError(
                f"no transform from {source!r} to {target!r}: they are not connected in the tf "
                f"tree (frames known: {known or 'none'})"
            )
        try:
            T_root_source = self._to_ancestor(up_s, common, stamp)
            T_root_target = self._to_ancestor(up_t, common, stamp)
        except TfError as e:
            raise TfError(f"no transform from {source!r} to {target!r}: {e}") from None
        return np.linalg.inv(T_root_target) @ T_root_source

    def _to_ancestor(self, chain: list[str], ancestor: str, stamp: int | None) -> np.ndarray:
        T = np.eye(4)
        for frame in chain:
            if frame == ancestor:
                break
            T = self._links[frame].at(stamp, frame) @ T
        return T
