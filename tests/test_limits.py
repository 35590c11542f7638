"""The server's bounds as bookkeeping: waiting logins and slow readers."""

import pytest

from chatsh.limits import (
    BACKED_UP,
    PRESSED_HANDSHAKE_TIMEOUT,
    BacklogBound,
    LoginQuota,
    PendingGate,
    address_block,
    fitted_pending,
)


def test_each_address_gets_its_share_of_waiting_connections():
    gate = PendingGate(max_pending=10, per_address=2, grace=0)
    assert gate.admit("a1", "10.0.0.1") == []
    assert gate.admit("a2", "10.0.0.1") == []
    assert gate.admit("b1", "10.0.0.2") == []
    assert gate.admit("a3", "10.0.0.1") == ["a1"]
    gate.release("a2")
    assert gate.admit("a4", "10.0.0.1") == []
    assert gate.admit("a5", "10.0.0.1") == ["a3"]
    assert len(gate) == 3


def test_a_full_gate_pushes_out_the_oldest():
    gate = PendingGate(max_pending=3, per_address=10, grace=0)
    for conn in ("c1", "c2", "c3"):
        assert gate.admit(conn, conn) == []
    assert gate.admit("c4", "c4") == ["c1"]
    gate.release("c2")
    assert gate.admit("c5", "c5") == []
    assert gate.admit("c6", "c6") == ["c3"]
    gate.release("unknown")  # a connection never admitted: nothing happens
    assert len(gate) == 3


def test_the_login_deadline_shortens_under_pressure():
    gate = PendingGate(max_pending=4, per_address=10, grace=0)
    assert gate.handshake_timeout(60) == 60
    for conn in ("c1", "c2", "c3"):
        gate.admit(conn, conn)
    assert gate.handshake_timeout(60) == PRESSED_HANDSHAKE_TIMEOUT
    assert gate.handshake_timeout(1) == 1


def test_slow_readers_together_stay_under_the_bound_slowest_first():
    queued = {"fast": 10, "slow": 3 * BACKED_UP, "slower": 5 * BACKED_UP, "slowest": 9 * BACKED_UP}
    bound = BacklogBound(queued.__getitem__, max_total=10 * BACKED_UP)
    assert bound.note("fast") == []
    assert bound.note("slow") == []
    assert bound.note("slower") == []
    assert bound.note("slowest") == ["slowest"]  # 17 MiB: dropping 9 leaves 8
    queued["slow"] = 0  # it caught up
    queued["slower"] = 20 * BACKED_UP
    queued["late"] = 2 * BACKED_UP
    assert bound.note("late") == ["slower"]
    queued["again"] = 9 * BACKED_UP
    queued["late"] = 4 * BACKED_UP
    assert bound.note("again") == ["again"]
    bound.forget("late")
    assert bound.note("fast") == []


def test_nobody_is_pushed_out_before_the_grace_period():
    now = [100.0]
    gate = PendingGate(max_pending=2, per_address=1, grace=2.0, clock=lambda: now[0])
    assert gate.admit("a1", "a") == []
    assert gate.admit("a2", "a") == []  # a burst: a1 has not waited long yet
    assert gate.admit("b1", "b") == []
    now[0] += 1.9
    assert gate.admit("a3", "a") == []
    now[0] += 0.1
    assert gate.admit("a4", "a") == ["a1", "a2", "b1"]  # its address's share, then all's
    assert gate.admit("c1", "c") == []  # a3 and a4 are too new to push out
    assert len(gate) == 3


def test_with_no_descriptor_left_the_oldest_waiting_goes_however_new():
    gate = PendingGate(max_pending=8, per_address=8, grace=2.0, clock=lambda: 100.0)
    assert gate.admit("a1", "a") == [] and gate.admit("b1", "b") == []
    assert gate.admit("c1", "c", crowded=True) == ["a1"]
    assert len(gate) == 2
    assert PendingGate().admit("d1", "d", crowded=True) == []  # nobody waits: nobody goes


@pytest.mark.parametrize(("asked", "users", "free", "fitted"), [
    (256, 64, 1000, 256),   # all fits: as asked
    (256, 64, 200, 100),    # what the users leave, at most half of what is free
    (256, 20, 47, 23),      # half of what is free
    (256, 64, 47, 11),      # the users alone do not fit: a quarter
    (256, 64, 3, 4),        # never fewer than MIN_PENDING
    (8, 64, 100, 8),        # never more than asked
])
def test_the_login_queue_fits_the_descriptors(asked, users, free, fitted):
    assert fitted_pending(asked, users, free) == fitted


@pytest.mark.parametrize(("address", "block"), [
    ("10.0.0.1", "10.0.0.1"),
    ("127.0.0.1", "127.0.0.1"),  # loopback is an address like any other
    ("::ffff:10.0.0.1", "10.0.0.1"),  # IPv4 on a dual-stack listener: the same client
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),  # one host of IPv6 holds a /64
    ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("::1", "::/64"),
    ("not an address", "not an address"),
])
def test_an_address_is_counted_by_its_block(address, block):
    assert address_block(address) == block


def test_each_address_gets_its_share_of_users():
    quota = LoginQuota(per_address=2)
    assert quota.take("10.0.0.1") and quota.take("10.0.0.1")
    assert not quota.take("10.0.0.1")
    assert not quota.take("::ffff:10.0.0.1")
    assert quota.take("10.0.0.2")
    quota.give_back("10.0.0.1")
    assert quota.take("::ffff:10.0.0.1")
    assert not quota.take("10.0.0.1")


def test_one_ipv6_host_cannot_take_more_than_its_share_by_changing_address():
    """An IPv6 host picks any address of its /64 for each connection."""
    quota = LoginQuota(per_address=2)
    assert quota.take("2001:db8::1") and quota.take("2001:db8::2")
    assert not quota.take("2001:db8::ffff:3")
    assert quota.take("2001:db8:0:1::1")


def test_giving_back_every_share_forgets_the_address():
    quota = LoginQuota(per_address=1)
    for _ in range(3):
        assert quota.take("10.0.0.1")
        quota.give_back("10.0.0.1")
    assert len(quota) == 0


def test_a_waiting_ipv6_host_is_one_address_whatever_address_of_its_64_it_uses():
    gate = PendingGate(max_pending=10, per_address=2, grace=0)
    assert gate.admit("a1", "2001:db8::1") == []
    assert gate.admit("a2", "2001:db8::2") == []
    assert gate.admit("a3", "2001:db8::3") == ["a1"]
