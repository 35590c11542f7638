"""A refusal is true: a SEND told BAD-DEST-USER is never delivered, and a SEND whose route
acted in the engine is told SEND-OK, whatever became of the route's answer (a real
Valkey, nodes as processes)."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from cluster import Node, Nodes, Relay, crosses_again, user
from conftest import RawClient

from chatsh.cluster import calls
from chatsh.cluster.calls import BASE_DEADLINE, UNKNOWN


@pytest.fixture
def relay(engine):
    """A relay in front of the engine, closed afterwards."""
    link = Relay(engine)
    yield link
    link.close()


def linked(nodes: Nodes, relay: Relay) -> tuple[RawClient, RawClient]:
    """ann on a node that reaches the engine through ``relay``, bob on one that reaches it
    directly (leases of 20 s: no lapse while the relay loses what passes); a message has
    crossed."""
    here = Node(relay, "here", "--lease", "20")
    (there,) = nodes(1, "--lease", "20")
    nodes.started.append(here)
    ann, bob = user(nodes, here, "ann"), user(nodes, there, "bob")
    crosses_again(ann, bob, "before")
    return ann, bob


@pytest.mark.timeout(90)
def test_a_route_whose_answer_was_lost_is_answered_by_what_it_did(nodes, relay):
    """The route is stored (bob gets the message) but its answer never comes back, past
    its deadline: the node asks the engine what the route did once it can, and says
    SEND-OK. It said BAD-DEST-USER at the deadline, for a message that was delivered."""
    ann, bob = linked(nodes, relay)
    relay.lose_replies()
    lost_at = time.monotonic()
    ann.write(b"SEND bob answer lost\n")
    assert bob.read_line() == b"DELIVERY ann answer lost"
    time.sleep(max(0.0, lost_at + BASE_DEADLINE + 1 - time.monotonic()))  # the fault lasts
    relay.restore()
    assert ann.read_line(timeout=30) == b"SEND-OK"
    crosses_again(ann, bob, "after")


@pytest.mark.timeout(90)
def test_a_route_given_up_is_fenced_so_that_it_never_acts_later(nodes, relay):
    """The route is held on its way and its connection cut: the node cannot know whether
    it ran, so it marks the route as refused in the engine and says BAD-DEST-USER, well
    before the route's deadline. The route then reaches the engine in time, and does
    nothing: it was delivered before, after its sender was told it was refused."""
    ann, bob = linked(nodes, relay)
    relay.hold()
    sent_at = time.monotonic()
    ann.write(b"SEND bob held back\n")
    deadline = time.monotonic() + BASE_DEADLINE
    while not relay.held and time.monotonic() < deadline:
        time.sleep(0.01)
    relay.cut()
    assert ann.read_line() == b"BAD-DEST-USER"
    assert time.monotonic() - sent_at < BASE_DEADLINE - 1.5  # the route could run still
    relay.release()
    crosses_again(ann, bob, "after")  # what is delivered late would come before this


class FlakyEngine:
    """A client whose pipelines fail ``failures`` times, then answer every call ``answer``."""

    def __init__(self, failures: int, answer: bytes) -> None:
        self.failures, self.answer = failures, answer

    async def execute_command(self, *args: object) -> object:
        return None  # SCRIPT LOAD

    def pipeline(self, transaction: bool):
        engine, calls = self, []

        class Pipeline:
            def execute_command(self, *args) -> None:
                calls.append(args)

            async def execute(self, raise_on_error: bool):
                if engine.failures:
                    engine.failures -= 1
                    raise redis.ConnectionError("Connection refused")
                return [engine.answer for _ in calls]
        return Pipeline()


@pytest.mark.parametrize(("failures", "answer", "told"), [
    (3, b"101", [0, 1]), (1000, b"101", [UNKNOWN, UNKNOWN]), (0, b"?", [UNKNOWN, UNKNOWN]),
    (0, b"1", [UNKNOWN, UNKNOWN]), (0, b"1x1", [UNKNOWN, UNKNOWN])])  # junk: no answer
def test_what_a_route_did_is_asked_until_the_engine_tells_for_a_bounded_time(
        monkeypatch, failures, answer, told):
    """The engine out of reach: the node asks again until it answers (this route's part of
    a call that answered three), or says it never could tell, after OUTCOME_WAIT, or at
    once when the engine says nobody can (it lost its data since)."""
    monkeypatch.setattr(calls, "OUTCOME_WAIT", 1.0)

    async def scenario() -> tuple[list[int], float]:
        queue = calls.ScriptCalls(FlakyEngine(failures, answer), ["k1", "k2"], "c:")
        runner = asyncio.create_task(queue.run_forever())
        started = asyncio.get_running_loop().time()
        try:
            got = await queue.outcome(calls.SentRoute("r1", 0, slice(1, 3)), "c:inbox:n",
                                      "e1")
        finally:
            queue.stop()
            runner.cancel()
        return got, asyncio.get_running_loop().time() - started

    found, took = asyncio.run(scenario())
    assert found == told
    assert took < calls.OUTCOME_WAIT + 1


@pytest.mark.timeout(90)
def test_a_route_whose_engine_lost_everything_after_it_acted_gets_no_reply(
        engine, nodes, relay):
    """The route stored the message and bob's node read it; then the engine restarted
    empty before the answer came back: nothing in the engine tells what the route did,
    so neither reply would be true. The replies before it go out, and the connection
    ends, as if lost. The sender was told BAD-DEST-USER for a message that arrived."""
    ann, bob = linked(nodes, relay)
    relay.lose_replies()
    ann.write(b"SEND echobot first\nSEND bob answer lost\n")
    assert bob.read_line() == b"DELIVERY ann answer lost"
    engine.kill()
    engine.start(same_port=True)
    relay.restore()
    assert [ann.read_line(timeout=30) for _ in range(3)] == [
        b"SEND-OK", b"DELIVERY echobot first", None]
    assert any("the cluster engine never told whether a SEND of it was stored" in line
               for line in nodes.started[-1].log), nodes.started[-1].log[-5:]


@pytest.mark.timeout(90)
def test_routes_merged_in_one_call_each_get_their_own_part_of_what_it_did(nodes, relay):
    """Two senders' routes of the same moment go as one call, its answer lost: each SEND
    is answered by its own part of what the call recorded, in order. (When cid's lines
    come after ann's call went, as on a loaded machine, his call waits behind the lost
    answer and may pass its deadline unsent: then 'five' is refused, and never
    delivered.)"""
    ann, bob = linked(nodes, relay)
    here = nodes.started[-1]
    cid = user(nodes, here, "cid")
    relay.lose_replies()
    lost_at = time.monotonic()
    ann.write(b"SEND bob one\nSEND nobody two\nSEND bob three\n")
    cid.write(b"SEND nobody four\nSEND bob five\n")
    time.sleep(max(0.0, lost_at + BASE_DEADLINE + 1 - time.monotonic()))
    relay.restore()
    assert [ann.read_line(timeout=30) for _ in range(3)] == [
        b"SEND-OK", b"BAD-DEST-USER", b"SEND-OK"]
    four, five = (cid.read_line(timeout=30) for _ in range(2))
    assert four == b"BAD-DEST-USER" and five in (b"SEND-OK", b"BAD-DEST-USER")
    delivered = {b"DELIVERY ann one", b"DELIVERY ann three"}
    if five == b"SEND-OK":
        delivered.add(b"DELIVERY cid five")
    assert {bob.read_line() for _ in delivered} == delivered
    crosses_again(ann, bob, "after")  # nothing else was delivered
