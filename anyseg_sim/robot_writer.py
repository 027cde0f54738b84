"""Messages of a recording that looks like a robot's (``write_bag(..., robot=True)``).

What real drivers publish instead of the node's raw test topics:

    topic                              type                         from
    /rgb/image/compressed              CompressedImage jpeg         compressed_image_transport
    /depth/image/compressedDepth       CompressedImage 16UC1 png    compressed_depth_image_transport
    /event/events                      EventPacket evt3, 5 ms packets (metavision_driver)
    /lidar/points                      PointCloud2, Ouster "original" 48-byte points, organised
    /{rgb,depth,event}/camera_info     CameraInfo, each camera's own optical frame
    /tf_static                         base_link -> camera_link -> *_optical_frame (REP 103),
                                       base_link -> os_lidar

The event camera's clock is its own: microseconds from an arbitrary origin that wraps at 2^24
(16.77 s) 0.58 s into the drive; each packet's header.stamp is the ROS time of its first event,
from which the node recovers the offset (as event_camera_renderer does). The world renders a
whole sweep at one instant, so the Ouster ``t`` field is 0 for every point.
"""

from __future__ import annotations

import numpy as np

from anyseg_ros.core.decode import stamp_parts
from anyseg_ros.core.events import Evt3Encoder
from anyseg_ros.core.tf import OPTICAL_IN_BODY, matrix_quaternion, quaternion_matrix
from anyseg_ros.transport import encode_compressed, encode_compressed_depth
from anyseg_tools.bag import typestore

RGB_FRAME = "camera_color_optical_frame"
DEPTH_FRAME = "camera_depth_optical_frame"
EVENT_FRAME = "event_camera_optical_frame"
LIDAR_FRAME = "os_lidar"
EVENT_PACKET_S = 0.005
SENSOR_ORIGIN_US = 16_200_000  # the event clock reads this at the drive's start
JPEG_QUALITY = 95  # compressed_image_transport's default
OUSTER_FIELDS = (  # name, offset, PointField datatype (7 float32, 6 uint32, 4 uint16)
    ("x", 0, 7),
    ("y", 4, 7),
    ("z", 8, 7),
    ("intensity", 16, 7),
    ("t", 20, 6),
    ("reflectivity", 24, 4),
    ("ring", 26, 4),
    ("ambient", 28, 4),
    ("range", 32, 6),
)
OUSTER_STEP = 48


def compressed_msg(header, img: np.ndarray):
    fmt, data = encode_compressed(img, "jpeg", JPEG_QUALITY)
    return typestore().types["sensor_msgs/msg/CompressedImage"](
        header=header, format=fmt, data=np.frombuffer(data, np.uint8)
    )


def compressed_depth_msg(header, depth_mm: np.ndarray):
    fmt, data = encode_compressed_depth(depth_mm, "png", depth_max=65.535)
    return typestore().types["sensor_msgs/msg/CompressedImage"](
        header=header, format=fmt, data=np.frombuffer(data, np.uint8)
    )


def ouster_cloud_msg(header, grid: np.ndarray):
    """(rings, columns, 4) x, y, z, intensity with NaN rows -> an Ouster-like organised cloud."""
    T = typestore().types
    rows, cols = grid.shape[:2]
    dt = np.dtype(
        {
            "names": [f[0] for f in OUSTER_FIELDS],
            "formats": ["<f4", "<f4", "<f4", "<f4", "<u4", "<u2", "<u2", "<u2", "<u4"],
            "offsets": [f[1] for f in OUSTER_FIELDS],
            "itemsize": OUSTER_STEP,
        }
    )
    rec = np.zeros((rows, cols), dt)
    valid = np.isfinite(grid[..., 0])
    for i, n in enumerate("xyz"):
        rec[n] = grid[..., i]
    inten = np.where(valid, grid[..., 3], 0.0)
    rec["intensity"] = inten
    rec["reflectivity"] = np.round(np.clip(inten, 0, 1) * 255).astype(np.uint16)
    rec["ring"] = np.arange(rows, dtype=np.uint16)[:, None]
    rng = np.linalg.norm(np.where(valid[..., None], grid[..., :3], 0), axis=-1)
    rec["range"] = np.round(rng * 1000).astype(np.uint32)
    field = T["sensor_msgs/msg/PointField"]
    return T["sensor_msgs/msg/PointCloud2"](
        header=header,
        height=rows,
        width=cols,
        fields=[field(name=n, offset=o, datatype=d, count=1) for n, o, d in OUSTER_FIELDS],
        is_bigendian=False,
        point_step=OUSTER_STEP,
        row_step=OUSTER_STEP * cols,
        data=rec.reshape(-1).view(np.uint8).reshape(-1).copy(),
        is_dense=False,
    )


def frame_events(frame: np.ndarray, t0: float, t1: float) -> tuple[np.ndarray, ...]:
    """A mono8 event frame (128 + net count over ``[t0, t1]``) -> the events it counts, spread
    evenly over the window: (t seconds, x, y, polarity), in time order. Accumulating them over
    the same window gives the frame back."""
    n = frame.astype(np.int64) - 128
    ys, xs = np.nonzero(n)
    k = np.abs(n[ys, xs])
    rep = np.repeat(np.arange(k.size), k)
    j = np.arange(rep.size) - np.repeat(np.cumsum(k) - k, k)
    t = t0 + (j + 1) / (k[rep] + 1) * (t1 - t0)
    order = np.argsort(t, kind="stable")
    return t[order], xs[rep][order], ys[rep][order], (n[ys, xs][rep][order] > 0).astype(np.int64)


class EventRecorder:
    """Turns the world's event frames into evt3 EventPackets of :data:`EVENT_PACKET_S`."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.encoder = Evt3Encoder()
        self.seq = 0
        self._pending: list[tuple[np.ndarray, ...]] = []
        self._next = 0.0  # start of the next packet, seconds of drive time

    def add(self, frame: np.ndarray, t0: float, t1: float) -> None:
        self._pending.append(frame_events(frame, max(t0, 0.0), t1))

    def packets(self, until: float, to_ns) -> list[tuple[int, object]]:
        """(ROS stamp ns, EventPacket) for every packet that ends by ``until`` (drive seconds)."""
        if not self._pending:
            return []
        t, x, y, p = (np.concatenate(c) for c in zip(*self._pending, strict=True))
        out = []
        while self._next + EVENT_PACKET_S <= until + 1e-12:
            a, b = self._next, self._next + EVENT_PACKET_S
            sel = (t >= a) & (t < b)
            us = np.round(t[sel] * 1e6).astype(np.int64) + SENSOR_ORIGIN_US
            order = np.argsort(us, kind="stable")
            end_us = int(round(b * 1e6)) + SENSOR_ORIGIN_US
            words = self.encoder.encode(
                us[order], x[sel][order], y[sel][order], p[sel][order], end_us
            )
            first = (us[order][0] - SENSOR_ORIGIN_US) * 1e-6 if us.size else b
            out.append((to_ns(first), self._packet(to_ns(first), words)))
            self._next = b
        keep = t >= self._next
        self._pending = [(t[keep], x[keep], y[keep], p[keep])]
        return out

    def _packet(self, stamp: int, words: np.ndarray):
        T = typestore().types
        sec, nanosec = stamp_parts(stamp)
        header = T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=EVENT_FRAME
        )
        self.seq += 1
        return T["event_camera_msgs/msg/EventPacket"](
            header=header,
            height=self.height,
            width=self.width,
            seq=self.seq,
            time_base=0,
            encoding="evt3",
            is_bigendian=False,
            events=words.view(np.uint8).copy(),
        )


def tf_static_msg(stamp: int, rig) -> object:
    """/tf_static of the rig: base_link -> camera_link (the camera body, pitched) -> the three
    optical frames (REP 103), base_link -> os_lidar."""
    T = typestore().types
    sec, nanosec = stamp_parts(stamp)
    time = T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
    body = rig.R_base_cam @ np.linalg.inv(_optical_rotation())  # camera body axes in base

    def ts(parent: str, child: str, t, R):
        q = matrix_quaternion(R)
        return T["geometry_msgs/msg/TransformStamped"](
            header=T["std_msgs/msg/Header"](stamp=time, frame_id=parent),
            child_frame_id=child,
            transform=T["geometry_msgs/msg/Transform"](
                translation=T["geometry_msgs/msg/Vector3"](x=t[0], y=t[1], z=t[2]),
                rotation=T["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]),
            ),
        )

    opt = _optical_rotation()
    return T["tf2_msgs/msg/TFMessage"](
        transforms=[
            ts("base_link", "camera_link", rig.T_base_cam[:3, 3], body),
            ts("camera_link", RGB_FRAME, (0.0, 0.0, 0.0), opt),
            ts("camera_link", DEPTH_FRAME, (0.0, 0.0, 0.0), opt),
            ts("camera_link", EVENT_FRAME, (0.0, 0.0, 0.0), opt),
            ts("base_link", LIDAR_FRAME, rig.T_base_lidar[:3, 3], rig.R_base_lidar),
        ]
    )


def _optical_rotation() -> np.ndarray:
    return quaternion_matrix(OPTICAL_IN_BODY)
