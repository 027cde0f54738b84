"""RVL, the lossless depth codec of compressed_depth_image_transport (Wilson 2017), in numpy.

Stream layout (what ``rvl_codec.cpp`` writes after the ``uint32 cols, uint32 rows`` it is
prefixed with): 32-bit little-endian words, each holding 8 nibbles, most significant first.
Values are variable-length: 3-bit groups, least significant first, bit 0x8 set on every group
but the last. The values repeat ``[number of zeros, number of non-zeros, the non-zeros as
zig-zag deltas from the previous non-zero value]`` until every pixel is covered; the last word
is padded with zero nibbles. Decoding is vectorised except for one step per zero / non-zero run.
"""

from __future__ import annotations

import numpy as np

from .decode import DecodeError

_SHIFTS = np.arange(28, -4, -4, dtype=np.uint32)  # nibble order inside a word


def _varints(words: np.ndarray) -> np.ndarray:
    """uint32 words -> every variable-length value they hold, in order (int64)."""
    nib = ((words[:, None] >> _SHIFTS) & 0xF).reshape(-1).astype(np.int64)
    ends = (nib & 0x8) == 0
    end_idx = np.flatnonzero(ends)
    if not end_idx.size:
        return np.zeros(0, np.int64)
    nib = nib[: end_idx[-1] + 1]
    ends = ends[: end_idx[-1] + 1]
    ident = np.cumsum(ends) - ends  # which value each nibble belongs to
    starts = np.concatenate([[0], end_idx[:-1] + 1])
    k = np.arange(nib.size) - starts[ident]
    if k.max(initial=0) > 10:  # more than 33 bits: not a value this codec writes
        raise DecodeError("rvl", "a value longer than 11 nibbles")
    return np.bincount(ident, weights=(nib & 0x7) << (3 * k)).astype(np.int64)


def decode_rvl(data: bytes | np.ndarray, pixels: int) -> np.ndarray:
    """An RVL stream (without the cols/rows prefix) -> (pixels,) uint16."""
    raw = np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else data
    raw = raw.reshape(-1).view(np.uint8)
    usable = raw.size - raw.size % 4
    values = _varints(raw[:usable].view("<u4")).tolist()
    runs_at, runs_len = [], []
    covered = pos = 0
    n_values = len(values)
    while covered < pixels:  # one step per run; the values themselves are not touched here
        if pos + 2 > n_values:
            raise DecodeError("rvl", f"stream ends after {covered} of {pixels} pixels")
        zeros, nonzeros = values[pos], values[pos + 1]
        covered += zeros
        if nonzeros:
            runs_at.append((covered, pos + 2))
            runs_len.append(nonzeros)
        covered += nonzeros
        pos += 2 + nonzeros
        if covered > pixels or pos > n_values:
            raise DecodeError("rvl", f"runs cover more than the {pixels} pixels")
    out = np.zeros(pixels, np.uint16)
    if not runs_len:
        return out
    lens = np.asarray(runs_len, np.int64)
    at = np.asarray(runs_at, np.int64)
    total = int(lens.sum())
    first = np.cumsum(lens) - lens
    within = np.arange(total) - np.repeat(first, lens)
    src = np.repeat(at[:, 1], lens) + within
    dst = np.repeat(at[:, 0], lens) + within
    z = np.asarray(values, np.int64)[src]
    delta = (z >> 1) ^ -(z & 1)
    out[dst] = (np.cumsum(delta) & 0xFFFF).astype(np.uint16)
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
