"""The synchroniser against sensors that lie about time: label rate and wait per frame.

    python bench/bench_sync.py [--seconds 60]

Simulated time (integer stamps, a poll every 10 ms as in the node, payloads ignored), so the
figures do not depend on the machine: camera and depth at 20 Hz, LiDAR at 10 Hz, slop 15 ms,
wait 50 ms, each message arriving 2-6 ms after its stamp. Per scenario: frame sets per second,
the share of them with LiDAR, and how long each anchor message waited before its set went out
(mean and p95). Scenarios are the ones of issues 10 and 14: one extra camera message a second
stamped 0.9 s ahead, 150 extra LiDAR messages between sweeps, a LiDAR stamped 5 s behind or
ahead or on its own clock (from 0), a LiDAR 100 ms behind (never within slop: unsynchronised),
and max_age letting the 10 Hz LiDAR serve the 20 Hz camera.

Only the constructor arguments every version has are used, so the same script measures an older
checkout: ``PYTHONPATH=<checkout> python bench/bench_sync.py`` (max_age rows need the new one).
"""

from __future__ import annotations

import argparse
import inspect
import random
import statistics

from anyseg_ros.core.sync import ModalitySynchronizer

MS = 1_000_000
S = 1_000_000_000
T0 = 1_700_000_000 * S
POLL = 10 * MS
RATES = {"rgb": 20, "depth": 20, "lidar": 10}


def streams(seconds: float, offset_s: float = 0.0, own_clock: bool = False, seed: int = 0):
    rng = random.Random(seed)
    out = []
    for m, hz in RATES.items():
        for k in range(int(seconds * hz)):
            t = T0 + k * S // hz
            stamp = t
            if m == "lidar":
                stamp = t - T0 if own_clock else t + int(offset_s * S)
            out.append((t + int(rng.uniform(2, 6) * MS), m, stamp))
    return out


def scenarios(seconds: float) -> dict[str, tuple[list, dict]]:
    base = streams(seconds)
    ahead = [(T0 + k * S + 17 * MS, "rgb", T0 + k * S + 917 * MS) for k in range(1, int(seconds))]
    n_extra = 150
    extra = [
        (
            T0 + k * int(seconds * S / n_extra) + 34 * MS,
            "lidar",
            T0 + k * int(seconds * S / n_extra) + 30 * MS,
        )
        for k in range(n_extra)
    ]
    return {
        "normal": (base, {}),
        "rgb: 1 msg/s stamped 0.9 s ahead": (base + ahead, {}),
        "lidar: 150 extra msgs between sweeps": (base + extra, {}),
        "lidar stamped -5 s": (streams(seconds, offset_s=-5.0), {}),
        "lidar stamped +5 s": (streams(seconds, offset_s=5.0), {}),
        "lidar on its own clock (from 0)": (streams(seconds, own_clock=True), {}),
        "lidar stamped -100 ms (never in slop)": (streams(seconds, offset_s=-0.1), {}),
        "normal, lidar.max_age_ms = 100": (
            base,
            {"max_age_ns": {"rgb": 0, "depth": 0, "lidar": 100 * MS}},
        ),
    }


def run(arrivals: list, **kw) -> tuple[int, float, list[int]]:
    sync = ModalitySynchronizer(tuple(RATES), 15 * MS, 500 * MS, 50 * MS, **kw)
    arrivals = sorted(arrivals)
    arrived: dict = {}
    sets, waits = 0, []
    lidar = 0

    def take(out, now):
        nonlocal sets, lidar
        for fs in out:
            sets += 1
            lidar += "lidar" in fs.items
            waits.append(now - arrived[(fs.anchor, fs.stamp_ns)])

    next_poll = arrivals[0][0]
    for now, m, stamp in arrivals:
        while next_poll < now:
            take(sync.poll(next_poll), next_poll)
            next_poll += POLL
        arrived.setdefault((m, stamp), now)
        take(sync.push(m, stamp, None, now), now)
    end = arrivals[-1][0] + 100 * MS
    while next_poll <= end:
        take(sync.poll(next_poll), next_poll)
        next_poll += POLL
    return sets, lidar / max(sets, 1), waits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    has_max_age = "max_age_ns" in inspect.signature(ModalitySynchronizer).parameters
    print("| scenario | sets/s | with LiDAR | wait mean ms | wait p95 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, (arrivals, kw) in scenarios(args.seconds).items():
        if kw and not has_max_age:
            print(f"| {name} | (not in this version) | | | |")
            continue
        sets, lidar, waits = run(arrivals, **kw)
        p95 = statistics.quantiles(waits, n=20)[-1] / MS
        print(
            f"| {name} | {sets / args.seconds:.1f} | {100 * lidar:.0f}% | "
            f"{statistics.mean(waits) / MS:.1f} | {p95:.1f} |"
        )


if __name__ == "__main__":
    main()
