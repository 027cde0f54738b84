"""Seeded fuzzing of every input path: a mutated message is decoded or refused with a
DecodeError (counted by the node), never another exception out of a callback."""

from __future__ import annotations

import copy
import zlib
from types import SimpleNamespace as NS

import numpy as np
import pytest

from anyseg_ros import transport
from anyseg_ros.core.decode import DecodeError, build_image
from anyseg_ros.core.events import Evt3Encoder
from anyseg_ros.core.settings import InputSettings
from anyseg_ros.pipeline import Pipeline

CASES = 300  # per message kind


def header():
    return NS(stamp=NS(sec=1_700_000_000, nanosec=5), frame_id="f")


def valid_messages():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    fmt, jpg = transport.encode_compressed(img, "jpeg")
    dfmt, dpng = transport.encode_compressed_depth(np.full((12, 16), 900, np.uint16), "rvl")
    cloud_rec = np.zeros(8, [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])
    cloud_rec["x"] = np.arange(8) + 1.0
    t = np.arange(50) * 7 + 1_000
    words = Evt3Encoder().encode(t, t % 16, t % 12, t % 2)
    return {
        "rgb": NS(header=header(), **build_image(img, "rgb8")),
        "rgb/compressed": NS(header=header(), format=fmt, data=jpg),
        "depth/compressedDepth": NS(header=header(), format=dfmt, data=dpng),
        "lidar": NS(
            header=header(),
            height=1,
            width=8,
            is_bigendian=False,
            point_step=16,
            row_step=128,
            data=cloud_rec.tobytes(),
            is_dense=True,
            fields=[
                NS(name=n, offset=4 * i, datatype=7, count=1)
                for i, n in enumerate(("x", "y", "z", "intensity"))
            ],
        ),
        "event/packet": NS(
            header=header(),
            width=16,
            height=12,
            seq=0,
            time_base=0,
            encoding="evt3",
            is_bigendian=False,
            events=words.tobytes(),
        ),
        "camera_info": NS(
            header=header(),
            k=[10.0, 0, 8, 0, 10.0, 6, 0, 0, 1],
            d=[0.0] * 5,
            p=[10.0, 0, 8, 0, 0, 10.0, 6, 0, 0, 0, 1, 0],
            width=16,
            height=12,
            distortion_model="plumb_bob",
            binning_x=0,
            binning_y=0,
            roi=NS(x_offset=0, y_offset=0, width=0, height=0, do_rectify=False),
        ),
    }


NUMBERS = [0, 1, -1, 3, 7, 255, 65535, 2**31 - 1, 2**32 + 5, -(2**40), 10**9]


def mutate(msg, rng):
    """Change one field: a number to an edge value, bytes cut / extended / flipped, a string."""
    m = copy.deepcopy(msg)
    names = [k for k in vars(m) if k != "header"]
    name = names[rng.integers(len(names))]
    v = getattr(m, name)
    if isinstance(v, (bytes, bytearray)):
        b = bytearray(v)
        op = rng.integers(4)
        if op == 0 and b:
            b = b[: rng.integers(len(b))]
        elif op == 1:
            b += bytes(rng.integers(0, 256, rng.integers(1, 64), dtype=np.uint8))
        elif b:
            for i in rng.integers(0, len(b), rng.integers(1, 8)):
                b[i] = rng.integers(256)
        setattr(m, name, bytes(b))
    elif isinstance(v, bool):
        setattr(m, name, not v)
    elif isinstance(v, int):
        setattr(m, name, NUMBERS[rng.integers(len(NUMBERS))])
    elif isinstance(v, str):
        setattr(
            m,
            name,
            [
                "",
                "rgb8; png compressed",
                "16UC1; compressedDepth",
                "mono",
                "bgra8",
                "libcaer_cmp",
                "bayer_gbrg8",
                "x" * 300,
            ][rng.integers(8)],
        )
    elif isinstance(v, list) and v and isinstance(v[0], float):
        w = list(v)
        w[rng.integers(len(w))] = [float("nan"), 0.0, -5.0, 1e30][rng.integers(4)]
        setattr(m, name, w if rng.random() < 0.8 else w[:-1])
    elif isinstance(v, list):  # point fields
        f = copy.deepcopy(v)
        f[rng.integers(len(f))].__dict__[
            ["offset", "datatype", "count", "name"][rng.integers(4)]
        ] = [0, 2, 9, 13, "x", "z"][rng.integers(6)]
        setattr(m, name, f)
    elif isinstance(v, NS):  # roi
        v.__dict__[["x_offset", "width", "height"][rng.integers(3)]] = NUMBERS[
            rng.integers(len(NUMBERS))
        ]
    return m


@pytest.mark.parametrize("kind", sorted(valid_messages()))
def test_mutated_messages_decode_or_raise_decode_error(kind):
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    base = valid_messages()[kind]
    settings = InputSettings.from_parameters(
        {
            "rgb.transport": "compressed" if kind == "rgb/compressed" else "raw",
            "depth.transport": "compressedDepth",
            "event.format": "event_packet",
            "max_image_pixels": 100_000,
        }
    )
    refused = 0
    for _ in range(CASES):
        pipe = Pipeline(settings, [])
        msg = mutate(base, rng)
        try:
            if kind == "camera_info":
                pipe.set_camera_info(msg)
            else:
                pipe.decode(kind.split("/")[0], msg)
        except DecodeError:
            refused += 1
    assert 0 < refused < CASES  # the mutations reach both outcomes
