"""compressed / compressedDepth payloads (OpenCV) and the numpy RVL codec."""

from __future__ import annotations

import struct
from types import SimpleNamespace as NS

import numpy as np
import pytest

from anyseg_ros import transport
from anyseg_ros.core.decode import MODALITY_ENCODINGS, DecodeError
from anyseg_ros.core.rvl import decode_rvl, encode_rvl

RNG = np.random.default_rng(7)


def msg(fmt: str, data: bytes):
    return NS(format=fmt, data=data)


def test_rvl_uncompiled_loop_agrees():
    from anyseg_ros.core.rvl import _decode

    rng = np.random.default_rng(2)
    d = rng.integers(0, 65536, (30, 40)).astype(np.uint16)
    d[rng.random(d.shape) < 0.4] = 0
    words = np.frombuffer(encode_rvl(d), "<u4")
    out = np.zeros(d.size, np.uint16)
    assert _decode.py_func(words, out) == (0, d.size)
    np.testing.assert_array_equal(out.reshape(d.shape), d)
    assert _decode.py_func(words[:20], np.zeros(d.size, np.uint16))[0] < 0  # truncated


def test_rvl_known_answer_and_round_trip():
    # [0, 0, 3]: 2 zeros (nibble 2), 1 non-zero (1), delta 3 zig-zag 6 (6) -> one word.
    stream = encode_rvl(np.array([0, 0, 3], np.uint16))
    assert stream == struct.pack("<I", 0x21600000)
    assert decode_rvl(stream, 3).tolist() == [0, 0, 3]
    d = RNG.integers(0, 65536, (37, 29)).astype(np.uint16)
    d[RNG.random(d.shape) < 0.4] = 0
    d[0, :4] = 0
    np.testing.assert_array_equal(decode_rvl(encode_rvl(d), d.size).reshape(d.shape), d)
    with pytest.raises(DecodeError):
        decode_rvl(encode_rvl(d)[:40], d.size)  # truncated


def test_jpeg_and_png_colour_and_grey():
    img = (RNG.integers(0, 40, (24, 32, 3)) + np.arange(32)[None, :, None] * 6).astype(np.uint8)
    fmt, data = transport.encode_compressed(img, "png")
    assert fmt == "rgb8; png compressed bgr8"
    out = transport.decode_compressed(msg(fmt, data), MODALITY_ENCODINGS["rgb"])
    np.testing.assert_array_equal(out, img)  # PNG is lossless, BGR back to RGB
    fmt, data = transport.encode_compressed(img, "jpeg", quality=95)
    assert fmt == "rgb8; jpeg compressed bgr8"
    out = transport.decode_compressed(msg(fmt, data), MODALITY_ENCODINGS["rgb"])
    import cv2

    ref = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    np.testing.assert_array_equal(out, ref)  # what image_transport's subscriber gives
    assert np.abs(out.astype(int) - img).mean() < 12  # lossy, but the same picture
    grey = img[..., 0]
    fmt, data = transport.encode_compressed(grey, "png")
    out = transport.decode_compressed(msg(fmt, data), MODALITY_ENCODINGS["event"])
    np.testing.assert_array_equal(out, grey)
    with pytest.raises(DecodeError) as e:  # colour on an event input
        transport.decode_compressed(msg(*transport.encode_compressed(img, "png")), ("mono8",))
    assert e.value.reason == "encoding"


def test_compressed_payloads_are_size_checked_before_decoding():
    img = np.zeros((300, 400, 3), np.uint8)
    fmt, data = transport.encode_compressed(img, "jpeg")
    assert transport.payload_size(np.frombuffer(data, np.uint8)) == (400, 300)
    with pytest.raises(DecodeError) as e:
        transport.decode_compressed(msg(fmt, data), MODALITY_ENCODINGS["rgb"], max_pixels=1000)
    assert e.value.reason == "too_large"
    for bad in (b"", b"not an image", data[:100]):
        with pytest.raises(DecodeError):
            transport.decode_compressed(msg(fmt, bad), MODALITY_ENCODINGS["rgb"])
    # A chunk longer than the file: refused before OpenCV allocates what it claims.
    fmt, data = transport.encode_compressed(img[:8, :8], "png")
    transport.decode_compressed(msg(fmt, data), MODALITY_ENCODINGS["rgb"], max_pixels=1000)
    idat = data.index(b"IDAT") - 4
    for length in (2**32 - 1, len(data) - idat - 11):
        bad = data[:idat] + struct.pack(">I", length) + data[idat + 4 :]
        with pytest.raises(DecodeError, match="IDAT") as e:
            transport.decode_compressed(msg(fmt, bad), MODALITY_ENCODINGS["rgb"], max_pixels=1000)
        assert e.value.reason == "payload"


@pytest.mark.parametrize("codec", ["png", "rvl"])
def test_compressed_depth_16uc1(codec):
    mm = RNG.integers(0, 12000, (20, 30)).astype(np.uint16)
    fmt, data = transport.encode_compressed_depth(mm, codec)
    assert fmt == f"16UC1; compressedDepth {codec}" and len(data) > 12
    out = transport.decode_compressed_depth(msg(fmt, data))
    np.testing.assert_array_equal(out, np.where(mm > 10000, 0, mm))  # beyond depth_max: 0
    if codec == "png":  # the pre-Jazzy format string has no codec: png
        np.testing.assert_array_equal(
            transport.decode_compressed_depth(msg("16UC1; compressedDepth", data)), out
        )


@pytest.mark.parametrize("codec", ["png", "rvl"])
def test_compressed_depth_32fc1_inverse_depth_quantisation(codec):
    d = RNG.uniform(0.3, 12.0, (20, 30)).astype(np.float32)
    d[0, 0], d[0, 1] = np.nan, 0.0
    fmt, data = transport.encode_compressed_depth(d, codec)
    A, B = struct.unpack("<ff", data[4:12])
    assert (A, B) == (10100.0, -1009.0)  # the defaults (exact in float32)
    out = transport.decode_compressed_depth(msg(fmt, data))
    ok = d < 10.0
    ok[0, :2] = False
    assert np.isnan(out[~ok]).all()
    # q = A / d + B truncated: the error is below one quantisation step, d^2 / A.
    assert (np.abs(out[ok] - d[ok]) <= d[ok] ** 2 / A + 1e-4).all()


def test_broken_compressed_depth_is_a_counted_reason():
    for fmt, data, reason in [
        ("16UC1; compressedDepth jpeg", b"\0" * 20, "format"),
        ("rgb8; compressedDepth png", b"\0" * 20, "format"),
        ("16UC1; compressedDepth png", b"\0" * 8, "payload"),
        ("16UC1; compressedDepth rvl", b"\0" * 12 + struct.pack("<II", 50000, 50000), "too_large"),
        (
            "16UC1; compressedDepth rvl",
            b"\0" * 12 + struct.pack("<II", 64, 64) + b"\0" * 8,
            "payload",
        ),
    ]:
        with pytest.raises(DecodeError) as e:
            transport.decode_compressed_depth(msg(fmt, data), max_pixels=1_000_000)
        assert e.value.reason == reason, (fmt, e.value)


def test_missing_opencv_is_one_clear_line(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_cv2(name, *a, **kw):
        if name == "cv2":
            raise ImportError("No module named 'cv2'")
        return real(name, *a, **kw)

    transport.cv2_module.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_cv2)
    try:
        with pytest.raises(transport.CodecUnavailable, match="opencv-python-headless"):
            transport.require_codecs()
    finally:
        monkeypatch.undo()
        transport.cv2_module.cache_clear()
    transport.require_codecs()
