"""Mailbox: single slot, drop-oldest, counted, blocking get with timeout, close()."""

import threading
import time

import pytest

from anyseg_ros.core.mailbox import Mailbox, MailboxClosed


def test_newest_wins_and_drops_are_counted():
    box = Mailbox()
    assert box.put(1) is False
    assert box.put(2) is True
    assert box.put(3) is True
    assert len(box) == 1
    assert box.get(0) == 3
    assert (box.put_count, box.taken, box.dropped) == (3, 1, 2)
    assert box.get(0.01) is None  # empty: times out


def test_get_blocks_until_a_put_from_another_thread():
    box = Mailbox()
    threading.Timer(0.05, box.put, args=("frame",)).start()
    t0 = time.monotonic()
    assert box.get(timeout=5) == "frame"
    assert 0.03 < time.monotonic() - t0 < 2


def test_close_wakes_a_waiting_get_and_drops_later_puts():
    box = Mailbox()
    errors = []

    def worker():
        try:
            box.get(timeout=10)
        except MailboxClosed as e:
            errors.append(e)

    th = threading.Thread(target=worker)
    th.start()
    time.sleep(0.05)
    box.close()
    th.join(2)
    assert not th.is_alive() and len(errors) == 1
    box.put("late")
    assert box.dropped == 1 and box.closed


def test_item_waiting_at_close_is_still_delivered():
    box = Mailbox()
    box.put("last")
    box.close()
    assert box.get(0) == "last"
    with pytest.raises(MailboxClosed):
        box.get(0)


def test_many_producers_one_consumer_account_for_everything():
    box = Mailbox()
    got = []
    done = threading.Event()

    def consumer():
        while True:
            try:
                item = box.get(timeout=0.01)
            except MailboxClosed:
                return
            if item is not None:
                got.append(item)

    c = threading.Thread(target=consumer)
    c.start()
    producers = [
        threading.Thread(target=lambda i=i: [box.put((i, k)) for k in range(2000)])
        for i in range(4)
    ]
    for p in producers:
        p.start()
    for p in producers:
        p.join()
    done.set()
    time.sleep(0.05)
    box.close()
    c.join(2)
    assert box.put_count == 8000
    assert len(got) == box.taken and box.taken + box.dropped == 8000
    for i in range(4):  # per producer, what got through is in order
        ks = [k for j, k in got if j == i]
        assert ks == sorted(ks)
