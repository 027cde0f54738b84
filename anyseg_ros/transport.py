"""image_transport's ``compressed`` and ``compressedDepth`` payloads <-> numpy, with OpenCV.

sensor_msgs/CompressedImage (``<base>/compressed``): ``format`` is ``"<encoding>; <jpeg|png>
compressed [<pixel format>]"`` (legacy: no ``;``, mono8 / bgr8 by channel count); the payload is
a JPEG or PNG file. ``compressedDepth`` (``<base>/compressedDepth``): ``format`` is ``"16UC1;
compressedDepth png|rvl"`` or ``"32FC1; ..."`` (before Jazzy no codec, meaning png); the
payload is a 12-byte header (int32 format = 0 inverse depth, float32 A, float32 B, little
endian) and a 16-bit PNG or ``uint32 cols, uint32 rows`` + RVL (:mod:`anyseg_ros.core.rvl`).
16UC1 carries millimetres as they are (the header's A, B are not initialised: ignored); 32FC1
carries q = A / d + B, decoded as d = A / (q - B), q = 0 -> NaN (no measurement).

Why OpenCV (``opencv-python-headless``): image_transport's own plugins use it, it decodes JPEG,
8- and 16-bit PNG in one maintained wheel, and the tests compare the colour conversions with it.
simplejpeg has no PNG and Pillow no 16-bit greyscale PNG writer. It is imported lazily: a node
with raw inputs never needs it, one configured for a compressed transport without it stops at
start-up with one line (:class:`CodecUnavailable`).

Every image size in a payload's header (PNG IHDR, JPEG SOF, RVL cols x rows) is checked against
``max_pixels`` before anything is decoded, so a small file cannot claim a huge image; so is every
PNG chunk's length against the bytes that follow it (OpenCV 5 allocates a chunk's claimed length
before reading it: a 656-byte file claiming a 4 GB IDAT took 3.8 GB).
"""

from __future__ import annotations

import struct
from functools import cache
from typing import Any

import numpy as np

from .core.decode import DecodeError, _byte_view
from .core.images import mono16_to_mono8
from .core.rvl import decode_rvl, encode_rvl

INSTALL_HINT = "pip install 'opencv-python-headless>=4.8' (the [codecs] extra of anyseg_ros)"
DEPTH_ENCODINGS = ("16UC1", "32FC1")
DEPTH_HEADER = struct.Struct("<iff")  # format (0 = INV_DEPTH), depthParam[0] A, depthParam[1] B
DEPTH_QUANTIZATION, DEPTH_MAX = 100.0, 10.0  # compressed_depth_image_transport's defaults


class CodecUnavailable(RuntimeError):
    """OpenCV is not installed; the message says how to install it."""


@cache
def cv2_module() -> Any:
    """OpenCV, imported on first use; :class:`CodecUnavailable` (one line) when missing."""
    try:
        import cv2
    except ImportError as e:
        raise CodecUnavailable(f"compressed transport needs OpenCV ({e}); {INSTALL_HINT}") from None
    # A corrupt payload is counted by reason on /diagnostics; OpenCV's own warning per message
    # would only flood the log (libjpeg still prints its one line).
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return cv2


def require_codecs() -> None:
    """Raise :class:`CodecUnavailable` now (at start-up) rather than on the first message."""
    cv2_module()


# ---------------------------------------------------------------- payload headers


def payload_size(data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's SOF marker, without decoding; None when
    the payload is neither."""
    b = data[:65536].tobytes()
    if b[:8] == b"\x89PNG\r\n\x1a\n" and len(b) >= 24 and b[12:16] == b"IHDR":
        return struct.unpack(">II", b[16:24])
    if b[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(b):
        if b[i] != 0xFF:
            return None
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", b[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", b[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def _check_png_chunks(data: np.ndarray, what: str) -> None:
    """Every chunk's claimed length fits in the bytes after it (the walk stops at IEND)."""
    view, i = memoryview(data), 8
    while i + 8 <= len(view):
        (length,) = struct.unpack_from(">I", view, i)
        if length > len(view) - i - 12:
            chunk = bytes(view[i + 4 : i + 8])
            raise DecodeError(
                "payload", f"{what} PNG chunk {chunk!r} claims {length} bytes, {len(view)} in all"
            )
        if view[i + 4 : i + 8] == b"IEND":
            return
        i += 12 + length


def _checked_size(data: np.ndarray, max_pixels: int | None, what: str) -> None:
    size = payload_size(data)
    if size is None:
        raise DecodeError("payload", f"{what} payload is not a PNG or JPEG file")
    w, h = size
    if w <= 0 or h <= 0:
        raise DecodeError("payload", f"{what} payload claims a {w}x{h} image")
    if max_pixels is not None and w * h > max_pixels:
        raise DecodeError("too_large", f"{w}x{h} {what} exceeds max_image_pixels={max_pixels}")
    if data[:1].tobytes() == b"\x89":
        _check_png_chunks(data, what)


def _imdecode(data: np.ndarray, what: str) -> np.ndarray:
    cv2 = cv2_module()
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        raise DecodeError("payload", f"{what} payload does not decode ({e})") from None
    if img is None:
        raise DecodeError("payload", f"{what} payload does not decode")
    return img


# ---------------------------------------------------------------- compressed


def decode_compressed(
    msg: Any, allowed: tuple[str, ...], max_pixels: int | None = None
) -> np.ndarray:
    """sensor_msgs/CompressedImage (``compressed`` transport) -> what :func:`decode_image` gives
    for the original encoding: (H, W, 3) RGB uint8 for colour, (H, W) uint8 for grey (16-bit
    grey is brought to 8 bits as for raw mono16)."""
    fmt = str(msg.format)
    data = _byte_view(msg.data)
    encoding, sep, rest = fmt.partition(";")
    encoding = encoding.strip()
    if sep and "compressedDepth" in rest:
        raise DecodeError("format", f"{fmt!r} is compressedDepth; set <m>.transport accordingly")
    if sep and encoding not in allowed:
        raise DecodeError("encoding", f"{encoding!r} in format {fmt!r}; accepted: {list(allowed)}")
    _checked_size(data, max_pixels, "compressed")
    img = _imdecode(data, "compressed")
    if img.dtype == np.uint16:  # 16-bit PNG of mono16 / rgb16: to 8 bits as raw mono16 is
        img = mono16_to_mono8(img)
    if img.dtype != np.uint8:
        raise DecodeError("payload", f"compressed payload of {img.dtype} pixels")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    colour_ok = any(e in allowed for e in ("rgb8", "bgr8"))
    if img.ndim == 3:
        if not colour_ok:
            raise DecodeError("encoding", f"colour payload ({fmt!r}) on a grey input")
        img = img[..., ::-1]  # OpenCV decodes colour as BGR whatever the original encoding was
    elif "mono8" not in allowed:
        raise DecodeError("encoding", f"grey payload ({fmt!r}); accepted: {list(allowed)}")
    return np.ascontiguousarray(img)


def encode_compressed(img: np.ndarray, codec: str = "jpeg", quality: int = 95) -> tuple[str, bytes]:
    """(H, W, 3) RGB or (H, W) grey uint8 -> (format, payload) as compressed_image_transport's
    publisher writes them (colour is stored as BGR)."""
    cv2 = cv2_module()
    a = np.ascontiguousarray(img)
    if a.dtype != np.uint8 or a.ndim not in (2, 3):
        raise ValueError(f"encode_compressed needs uint8 (H, W[, 3]), got {a.dtype} {a.shape}")
    colour = a.ndim == 3
    enc = "rgb8" if colour else "mono8"
    if codec == "jpeg":
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        fmt = f"{enc}; jpeg compressed {'bgr8' if colour else 'mono8'}"
    elif codec == "png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
        fmt = f"{enc}; png compressed {'bgr8' if colour else ''}"
    else:
        raise ValueError(f"codec must be jpeg or png, got {codec!r}")
    ok, buf = cv2.imencode(
        "." + ("jpg" if codec == "jpeg" else "png"), a[..., ::-1] if colour else a, params
    )
    if not ok:
        raise ValueError(f"OpenCV could not encode a {a.shape} image as {codec}")
    return fmt, buf.tobytes()


# ---------------------------------------------------------------- compressedDepth


def decode_compressed_depth(msg: Any, max_pixels: int | None = None) -> np.ndarray:
    """sensor_msgs/CompressedImage (``compressedDepth`` transport) -> (H, W) uint16 millimetres
    (16UC1, 0 = invalid) or float32 metres (32FC1, NaN = invalid)."""
    fmt = str(msg.format)
    encoding, sep, rest = fmt.partition(";")
    encoding, rest = encoding.strip(), rest.strip()
    if encoding not in DEPTH_ENCODINGS or (sep and not rest.startswith("compressedDepth")):
        raise DecodeError("format", f"{fmt!r}; expected '<16UC1|32FC1>; compressedDepth [png|rvl]'")
    codec = rest[len("compressedDepth") :].strip() or "png"
    if codec not in ("png", "rvl"):
        raise DecodeError("format", f"compressedDepth codec {codec!r}; known: png, rvl")
    data = _byte_view(msg.data)
    if data.size <= DEPTH_HEADER.size:
        raise DecodeError("payload", f"compressedDepth payload of {data.size} bytes")
    kind, A, B = DEPTH_HEADER.unpack(data[: DEPTH_HEADER.size].tobytes())
    payload = data[DEPTH_HEADER.size :]
    if codec == "png":
        _checked_size(payload, max_pixels, "compressedDepth")
        q = _imdecode(payload, "compressedDepth")
        if q.dtype != np.uint16 or q.ndim != 2:
            raise DecodeError(
                "payload", f"compressedDepth PNG of {q.dtype} {q.shape}, not 16-bit grey"
            )
    else:
        if payload.size < 8:
            raise DecodeError("payload", "RVL payload without its size")
        cols, rows = struct.unpack("<II", payload[:8].tobytes())
        if cols == 0 or rows == 0 or (max_pixels is not None and cols * rows > max_pixels):
            raise DecodeError(
                "too_large" if cols and rows else "payload", f"RVL image {cols}x{rows}"
            )
        # RVL's best ratio is 4 bits per 16-bit pixel run... a claim far beyond it is corrupt.
        if cols * rows > 64 * payload.size:
            raise DecodeError("payload", f"RVL image {cols}x{rows} from {payload.size} bytes")
        q = decode_rvl(payload[8:], cols * rows).reshape(rows, cols)
    if encoding == "16UC1":
        return q
    if kind != 0 or not (np.isfinite(A) and np.isfinite(B)):
        raise DecodeError("payload", f"compressedDepth header format {kind}, A {A}, B {B}")
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (np.float32(A) / (q.astype(np.float32) - np.float32(B))).astype(np.float32)
    d[q == 0] = np.nan
    return d


def encode_compressed_depth(
    depth: np.ndarray,
    codec: str = "png",
    depth_max: float = DEPTH_MAX,
    depth_quantization: float = DEPTH_QUANTIZATION,
) -> tuple[str, bytes]:
    """uint16 mm or float32 m (H, W) -> (format, payload) as compressed_depth_image_transport's
    publisher writes them (Jazzy and later format strings)."""
    a = np.ascontiguousarray(depth)
    if a.ndim != 2 or a.dtype not in (np.uint16, np.float32):
        raise ValueError(f"depth must be (H, W) uint16 or float32, got {a.dtype} {a.shape}")
    if a.dtype == np.uint16:
        encoding, A, B = "16UC1", 0.0, 0.0
        q = np.where(a > np.uint16(depth_max * 1000.0), 0, a).astype(np.uint16)
    else:
        encoding = "32FC1"
        A = np.float32(depth_quantization * (depth_quantization + 1.0))
        B = np.float32(1.0 - A / np.float32(depth_max))
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = A / a + B
        ok = np.isfinite(a) & (a < depth_max) & (a > 0)
        q = np.where(ok, np.clip(inv, 0, 65535), 0).astype(np.uint16)  # truncates like C++
    if codec == "png":
        cv2 = cv2_module()
        ok, buf = cv2.imencode(".png", q, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise ValueError("OpenCV could not encode the depth PNG")
        body = buf.tobytes()
    elif codec == "rvl":
        body = struct.pack("<II", q.shape[1], q.shape[0]) + encode_rvl(q)
    else:
        raise ValueError(f"codec must be png or rvl, got {codec!r}")
    return f"{encoding}; compressedDepth {codec}", DEPTH_HEADER.pack(0, A, B) + body
