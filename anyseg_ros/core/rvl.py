"""RVL, the lossless depth codec of compressed_depth_image_transport (Wilson 2017).

Stream layout (what ``rvl_codec.cpp`` writes after the ``uint32 cols, uint32 rows`` it is
prefixed with): 32-bit little-endian words, each holding 8 nibbles, most significant first.
Values are variable-length: 3-bit groups, least significant first, bit 0x8 set on every group
but the last. The values repeat ``[number of zeros, number of non-zeros, the non-zeros as
zig-zag deltas from the previous non-zero value]`` until every pixel is covered; the last word
is padded with zero nibbles. The decoder is one compiled loop over the nibbles
(:mod:`.compiled`); the encoder, used for recordings and tests, is vectorised numpy.
"""

from __future__ import annotations

import numpy as np

from .compiled import kernel, readonly
from .decode import DecodeError

_SHIFTS = np.arange(28, -4, -4, dtype=np.uint32)  # nibble order inside a word
_ENDS, _TOO_LONG, _TOO_MANY = -1, -2, -3  # the decoder's failures


@kernel
def _decode(words: np.ndarray, out: np.ndarray) -> tuple[int, int]:
    """Fills ``out`` (zeros, uint16) from ``words`` -> (0 or a failure, pixels covered).

    One pass over the nibbles: each completed value is, by ``phase``, a run of zeros (0), the
    length of the run of non-zeros after it (1), or one of those non-zeros (2, ``left`` to go).
    At most 11 groups (33 bits) make a value this codec writes."""
    pixels, covered, prev = out.size, 0, 0
    phase, left, value, shift = 0, 0, 0, 0
    for pos in range(8 * words.size):
        if covered == pixels and phase == 0:
            return 0, covered
        nib = (np.int64(words[pos >> 3]) >> (28 - 4 * (pos & 7))) & 0xF
        value |= (nib & 0x7) << shift
        shift += 3
        if nib & 0x8:  # more groups follow
            if shift == 33:
                return _TOO_LONG, covered
            continue
        if phase == 2:  # a non-zero: zig-zag delta from the previous non-zero value
            prev += (value >> 1) ^ -(value & 1)
            out[covered] = prev & 0xFFFF
            covered += 1
            left -= 1
            phase = 2 if left else 0
        elif value > pixels - covered:
            return _TOO_MANY, covered
        elif phase == 0:
            covered += value
            phase = 1
        else:
            left = value
            phase = 2 if left else 0
        value = shift = 0
    return (0 if covered == pixels and phase == 0 else _ENDS), covered


def decode_rvl(data: bytes | np.ndarray, pixels: int) -> np.ndarray:
    """An RVL stream (without the cols/rows prefix) -> (pixels,) uint16."""
    raw = np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else data
    raw = raw.reshape(-1).view(np.uint8)
    words = np.ascontiguousarray(raw[: raw.size - raw.size % 4]).view("<u4")
    out = np.zeros(pixels, np.uint16)
    failure, covered = _decode(readonly(words), out)
    if failure == _ENDS:
        raise DecodeError("rvl", f"stream ends after {covered} of {pixels} pixels")
    if failure == _TOO_LONG:
        raise DecodeError("rvl", "a value longer than 11 nibbles")
    if failure == _TOO_MANY:
        raise DecodeError("rvl", f"runs cover more than the {pixels} pixels")
    return out


def encode_rvl(depth: np.ndarray) -> bytes:
    """uint16 image -> RVL stream (without the cols/rows prefix), as rvl_codec.cpp writes it."""
    flat = np.ascontiguousarray(depth, np.uint16).reshape(-1).astype(np.int64)
    nz = flat != 0
    if not flat.size:
        return b""
    change = np.flatnonzero(np.diff(nz.astype(np.int8))) + 1
    starts = np.concatenate([[0], change])
    lens = np.diff(np.concatenate([starts, [flat.size]]))
    kinds = nz[starts]
    if kinds[0]:  # runs alternate zeros, non-zeros, starting with (possibly no) zeros
        lens, kinds = np.concatenate([[0], lens]), np.concatenate([[False], kinds])
    if not kinds[-1]:
        lens, kinds = np.concatenate([lens, [0]]), np.concatenate([kinds, [True]])
    pairs = lens.reshape(-1, 2)
    nonzero = flat[nz]
    delta = np.diff(np.concatenate([[0], nonzero]))
    zig = np.where(delta >= 0, delta << 1, (-delta << 1) - 1)
    counts = pairs[:, 1]
    head = 2 * np.arange(len(pairs)) + np.cumsum(counts) - counts
    values = np.empty(2 * len(pairs) + nonzero.size, np.int64)
    is_value = np.ones(values.size, bool)
    is_value[head] = is_value[head + 1] = False
    values[head], values[head + 1] = pairs[:, 0], pairs[:, 1]
    values[is_value] = zig
    # Each value -> 3-bit groups, low first, 0x8 on all but the last.
    bits = np.maximum(1, np.ceil(np.log2(values + 1) / 3).astype(np.int64))
    bits = np.where(values >> (3 * bits) > 0, bits + 1, bits)  # guard float rounding
    owner = np.repeat(np.arange(values.size), bits)
    k = np.arange(owner.size) - np.repeat(np.cumsum(bits) - bits, bits)
    nib = (values[owner] >> (3 * k)) & 0x7
    nib |= np.where(k < bits[owner] - 1, 0x8, 0)
    pad = (-nib.size) % 8
    nib = np.concatenate([nib, np.zeros(pad, np.int64)]).reshape(-1, 8)
    words = (nib << _SHIFTS.astype(np.int64)).sum(axis=1).astype("<u4")
    return words.tobytes()
