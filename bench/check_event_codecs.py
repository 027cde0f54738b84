"""Check the event decoders against event_camera_codecs' own test recordings and checksums.

    .venv/bin/python bench/check_event_codecs.py DIR

DIR is the ``test/`` folder of a checkout of ros-event-camera/event_camera_codecs (its bags are
not part of this repository). Every packet of each recording is decoded with the stream's state
kept, and the sums of t (ns), x, y and polarity over all events are compared with the values
its ``decoder_test.cpp`` asserts (t modulo 2^64, as its uint64 sum wraps).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from anyseg_ros.core.events import Evt3Decoder, decode_libcaer, decode_mono
from anyseg_tools.bag import deserialize, read_bag

EXPECTED = {  # decoder_test.cpp: verifyCheckSumCD(t, x, y, p)
    "test_data_evt3_trigger": (1222326831810000, 42078718, 31656267, 41439),
    "test_data_mono_cd": (4950000, 34450, 26450, 50),
    "test_data_libcaer_rollover": (15762826572202229126, 111651612, 82801007, 181908),
}


def checksums(bag_dir: Path) -> tuple[int, int, int, int]:
    evt3 = Evt3Decoder()
    sums = [0, 0, 0, 0]
    for rec in read_bag(bag_dir).records:
        m = deserialize(rec)
        if m.encoding == "evt3":
            ev = evt3.decode(m.events, m.width, m.height)
        else:
            decode = {"mono": decode_mono, "libcaer": decode_libcaer}[m.encoding]
            ev = decode(m.events, m.time_base)
            ev = ev.keep((ev.x < m.width) & (ev.y < m.height))
        for i, a in enumerate((ev.t, ev.x, ev.y, ev.p)):
            sums[i] += int(a.astype(np.int64).sum())
    sums[0] %= 2**64
    return tuple(sums)


def main() -> int:
    root = Path(sys.argv[1])
    ok = True
    for name, want in EXPECTED.items():
        got = checksums(root / name)
        ok &= got == want
        print(f"{name}: {'match' if got == want else 'MISMATCH'} {got} (expected {want})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
