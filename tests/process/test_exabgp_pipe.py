"""The ExaBGP pipe matches answers to commands so that one lost answer costs one batch.

An in-memory ExaBGP answers like the real 5.0 one (asynchronous commands in order; the
barrier with its header line, then `done`) and can lose or hold back the answer to any line.
The property: a command is reported `done` or `error` only when that is what ExaBGP answered
to that very command, and once the faults stop, every batch is answered correctly again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from announcer.core import BARRIER_COMMAND
from announcer.exabgp.pipe import AckResult, ExabgpSession
from tests.fakes import BARRIER_HEADER

TIMEOUT_S = 0.05


class ModelExabgp:
    """Answers each line as ExaBGP 5.0 does; `lose` and `hold` name lines (by the order they
    were written, from 0) whose whole answer is lost, or held until `release`."""

    def __init__(self, barrier_header: bool = True) -> None:
        self.to_plugin: asyncio.Queue[str | None] = asyncio.Queue()
        self.written: list[str] = []
        self.lose: set[int] = set()
        self.hold: set[int] = set()
        self.held: list[str] = []
        self.rib: list[str] = []
        self.barrier_header = barrier_header

    @staticmethod
    def truth(line: str) -> AckResult:
        return AckResult.ERROR if "bad" in line else AckResult.DONE

    def answer(self, line: str) -> list[str]:
        if line == BARRIER_COMMAND:
            return [BARRIER_HEADER, "done"] if self.barrier_header else ["done"]
        if line == "show adj-rib out json":
            return [*self.rib, "done"]
        return [str(self.truth(line))]

    async def read_line(self) -> str | None:
        return await self.to_plugin.get()

    async def write_lines(self, lines: Sequence[str]) -> None:
        for line in lines:
            index = len(self.written)
            self.written.append(line)
            if index in self.lose:
                continue
            answer = self.answer(line)
            if index in self.hold or self.held:  # what is held back keeps its place
                self.held.extend(answer)
                continue
            for out in answer:
                self.to_plugin.put_nowait(out)

    def release(self) -> None:
        for out in self.held:
            self.to_plugin.put_nowait(out)
        self.held.clear()

    def close(self) -> None:
        self.to_plugin.put_nowait(None)


async def _session(model: ModelExabgp) -> tuple[ExabgpSession, asyncio.Task[None]]:
    session = ExabgpSession(model, expect_acks=True, ack_timeout_s=TIMEOUT_S)
    reader = asyncio.create_task(session.read_forever())
    await session.probe_barrier()
    return session, reader


async def _close(reader: asyncio.Task[None]) -> None:
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)


async def test_a_lost_ack_makes_its_batch_unknown_at_once_and_the_next_batch_is_exact():
    model = ModelExabgp()
    session, reader = await _session(model)
    assert session.barriers is True
    first = len(model.written)
    model.lose = {first + 1}  # the second command's ack never comes
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await session.send(["announce a", "announce b", "announce c"], timeout_s=5.0)
    # every command of the batch is unknown (which answer went missing cannot be told), and
    # that is known from the barrier, long before the 5 s timeout
    assert results == [AckResult.TIMEOUT] * 3
    assert loop.time() - started < 1.0
    assert await session.send(["withdraw a", "announce bad"]) == [
        AckResult.DONE,
        AckResult.ERROR,
    ]
    await _close(reader)


async def test_an_unanswered_query_times_out_alone_and_the_next_one_answers():
    model = ModelExabgp()
    model.rib = ['{"198.51.100.1": {"routes": [{"prefix": "192.0.2.10/32"}]}}']
    session, reader = await _session(model)
    model.lose = {len(model.written)}  # the start-up `show adj-rib out json`
    assert await session.adj_rib_out() is None
    assert await session.send(["announce x"]) == [AckResult.DONE]
    assert await session.adj_rib_out() == frozenset({"192.0.2.10/32"})
    await _close(reader)


async def test_late_answers_after_a_timeout_are_never_taken_for_a_later_batch():
    model = ModelExabgp()
    session, reader = await _session(model)
    model.hold = {len(model.written)}  # ExaBGP busy: everything from here on waits
    assert await session.send(["announce bad-1", "announce a"]) == [AckResult.TIMEOUT] * 2
    release = asyncio.get_running_loop().call_later(TIMEOUT_S / 2, model.release)
    model.hold = set()
    # the late `error`, `done`, ... arrive while the pipe re-aligns: none is credited to the
    # new commands, and the pipe is back in step by the batch after
    batch = ["announce b", "announce bad-2"]
    first = await session.send(batch)
    assert first in ([AckResult.DONE, AckResult.ERROR], [AckResult.TIMEOUT] * 2)
    assert await session.send(batch) == [AckResult.DONE, AckResult.ERROR]
    release.cancel()
    assert session.resyncs >= 1
    await _close(reader)


async def test_a_lost_barrier_costs_one_timeout_then_the_pipe_realigns():
    model = ModelExabgp()
    session, reader = await _session(model)
    model.lose = {len(model.written) + 1}  # the batch's barrier itself
    assert await session.send(["announce a"]) == [AckResult.TIMEOUT]
    assert await session.send(["announce bad", "announce b"]) == [
        AckResult.ERROR,
        AckResult.DONE,
    ]
    assert session.pending == 0
    await _close(reader)


async def test_an_exabgp_without_the_barrier_header_gets_in_order_matching():
    model = ModelExabgp(barrier_header=False)
    session, reader = await _session(model)
    assert session.barriers is False
    assert await session.send(["announce a", "announce bad"]) == [
        AckResult.DONE,
        AckResult.ERROR,
    ]
    assert all(line != BARRIER_COMMAND for line in model.written[1:])
    await _close(reader)


_BATCH = st.lists(st.sampled_from(["announce a", "withdraw a", "announce bad"]), min_size=1)


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(_BATCH.map(lambda b: b[:4]), min_size=1, max_size=6),
    faults=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["lose", "hold"])), max_size=4),
)
def test_answers_are_never_credited_to_the_wrong_command(batches, faults):
    async def scenario() -> None:
        model = ModelExabgp()
        session, reader = await _session(model)
        base = len(model.written)
        for offset, kind in faults:
            (model.lose if kind == "lose" else model.hold).add(base + offset)
        for batch in batches:
            results = await session.send(batch)
            for line, result in zip(batch, results, strict=True):
                assert result in (AckResult.TIMEOUT, model.truth(line)), (line, result)
            model.release()
        # the faults are over: after the leftovers are worked off, every answer is exact again
        model.lose.clear()
        model.hold.clear()
        model.release()
        batch = ["announce a", "announce bad", "withdraw a"]
        truth = [model.truth(line) for line in batch]
        attempts = [await session.send(batch) for _ in range(3)]
        assert truth in attempts, attempts
        await _close(reader)

    asyncio.run(scenario())


async def test_the_last_withdraw_is_acknowledged_in_every_routers_ledger():
    from announcer.core import base_route
    from announcer.exabgp.reconciler import Reconciler

    model = ModelExabgp()
    session, reader = await _session(model)
    reconciler = Reconciler(session)
    route = base_route("192.0.2.10/32")
    views = {peer: {route.prefix: route} for peer in ("198.51.100.1", "198.51.100.2")}
    reconciler.set(views)
    assert await reconciler.sync_once()
    assert reconciler.acked == {route.prefix: route}
    assert await reconciler.withdraw_all([route.prefix], timeout_s=1.0) == []
    # what the address keeper asks before it removes a `manage` address
    assert reconciler.acked == {route.prefix: None}
    await _close(reader)
