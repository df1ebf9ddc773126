"""The hand-over rule of managed addresses, simulated: reloads that change what is managed or
configured, withdraws acknowledged or not, time passing, stop. What an operator relies on:
an address is removed only after its route's withdraw was acknowledged and `linger` passed
without a break; a managed or still configured address is never removed; and nothing that
may go lingers for ever."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from announcer.core.address_release import OwnedAddress, at_stop, due

ADDRESSES = ("192.0.2.10", "192.0.2.11", "192.0.2.12", "2001:db8::10")
LINGER = 1.0
subsets = st.frozensets(st.sampled_from(ADDRESSES))


class HandOver(RuleBasedStateMachine):
    @initialize(managed=subsets)
    def start(self, managed: frozenset[str]) -> None:
        self.now = 0.0
        self.managed = managed
        self.configured = managed
        self.withdrawn: frozenset[str] = frozenset()
        self.owned = {a: OwnedAddress("lo") for a in managed}  # assigned at start
        self.removed: list[tuple[float, str]] = []
        self.handed: set[str] = set()
        # the model: since when each address has been unwanted and withdrawn, at each look
        self.clear_since: dict[str, float] = {}
        self.stopped = False

    @rule(managed=subsets, unmanaged_but_configured=subsets)
    def reload(self, managed: frozenset[str], unmanaged_but_configured: frozenset[str]) -> None:
        self.managed = managed
        self.configured = managed | unmanaged_but_configured
        for address in managed:  # a reload assigns what it manages
            self.owned.setdefault(address, OwnedAddress("lo"))

    @rule(withdrawn=subsets)
    def exabgp_answers(self, withdrawn: frozenset[str]) -> None:
        self.withdrawn = withdrawn

    @rule(dt=st.floats(0.05, 0.8))
    def look(self, dt: float) -> None:
        """The keeper's periodic look (every 0.25 s in the plugin; here at random gaps)."""
        self.now += dt
        before = dict(self.owned)
        for address in before:  # the model's account, from what the keeper can see
            clear = address not in self.configured and address in self.withdrawn
            if not clear:
                self.clear_since.pop(address, None)
            else:
                self.clear_since.setdefault(address, self.now)
        release = due(before, self.managed, self.configured, self.withdrawn, self.now, LINGER)
        removed = {address for address, _ in release.remove}
        for address in removed:
            assert address not in self.managed, "a managed address was removed"
            assert address not in self.configured, "a configured address was removed"
            assert address in self.withdrawn, "removed while its route may be out there"
            assert self.now - self.clear_since[address] >= LINGER - 1e-9, "removed too soon"
            self.removed.append((self.now, address))
        for address, since in self.clear_since.items():
            if address in before and self.now - since >= LINGER:
                assert address in removed, f"{address} lingers for ever"
        for address in release.handed_over:
            assert address in self.configured and address not in self.managed
            assert address not in removed
            self.handed.add(address)
        # nothing appears or is lost: every owned address is kept, removed or handed over
        assert set(before) == set(release.owned) | removed | set(release.handed_over)
        self.owned = dict(release.owned)
        for address in removed | set(release.handed_over):
            self.clear_since.pop(address, None)

    @rule(exabgp_gone=st.booleans())
    def stop(self, exabgp_gone: bool) -> None:
        release = at_stop(self.owned, self.withdrawn, exabgp_gone)
        for address, _ in release.remove:
            assert exabgp_gone or address in self.withdrawn
        if exabgp_gone:
            assert not release.owned
        assert set(release.owned) == {a for a in self.owned if a not in self.withdrawn} - (
            set(self.owned) if exabgp_gone else set()
        )

    @invariant()
    def managed_addresses_stay_ours(self) -> None:
        assert self.managed <= set(self.owned)


TestHandOver = HandOver.TestCase
TestHandOver.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


def test_the_linger_restarts_when_the_withdraw_is_in_doubt_again():
    """A route acknowledged withdrawn, then unknown (a failed command, a session restated),
    then withdrawn again: the linger counts from the second acknowledgement."""
    owned = {"192.0.2.10": OwnedAddress("lo")}
    first = due(owned, set(), set(), {"192.0.2.10"}, 0.0, LINGER)
    doubt = due(first.owned, set(), set(), set(), 0.8, LINGER)
    again = due(doubt.owned, set(), set(), {"192.0.2.10"}, 1.2, LINGER)
    assert not again.remove
    assert due(again.owned, set(), set(), {"192.0.2.10"}, 2.2, LINGER).remove == (
        ("192.0.2.10", "lo"),
    )
