import pytest
from hypothesis import given
from hypothesis import strategies as st

from announcer.core import Route, UnsafeToken, announce_command, batch_commands, withdraw_command
from announcer.core.exabgp_commands import (
    MAX_PREFIXES_PER_COMMAND,
    announce_commands,
    withdraw_commands,
)


def test_announce_renders_every_attribute_in_a_fixed_order():
    route = Route(
        "192.0.2.10/32",
        med=50,
        as_path=(65001, 65001),
        communities=("65001:100", "no-export"),
        large_communities=("65001:1:2",),
        extended_communities=("target:65001:7",),
    )
    assert announce_command(route) == (
        "announce route 192.0.2.10/32 next-hop self med 50 origin igp as-path [ 65001 65001 ] "
        "community [ 65001:100 no-export ] large-community [ 65001:1:2 ] "
        "extended-community [ target:65001:7 ]"
    )
    assert withdraw_command("2001:db8::1/128") == "withdraw route 2001:db8::1/128"


@pytest.mark.parametrize(
    "route",
    [
        Route("192.0.2.10/32\nannounce route 0.0.0.0/0"),
        Route("192.0.2.10/32", communities=("65001:1 ]\nwithdraw",)),
        Route("192.0.2.10/32", next_hop="self\r"),
        Route("192.0.2.10/32", large_communities=("1:2:3\x00",)),
    ],
)
def test_control_characters_never_reach_exabgp(route):
    with pytest.raises(UnsafeToken):
        announce_command(route)


@given(st.text())
def test_any_rendered_command_is_one_printable_line(text):
    try:
        line = announce_command(Route("192.0.2.1/32", communities=(text,)))
    except UnsafeToken:
        return
    assert line.isprintable() and "\n" not in line


def test_routes_with_equal_attributes_share_one_command():
    routes = [Route(f"192.0.2.{i}/32") for i in range(1, 4)] + [Route("192.0.2.9/32", med=7)]
    commands = batch_commands(routes, ["192.0.2.20/32", "2001:db8::1/128", "192.0.2.21/32"])
    covered = [prefixes for _, prefixes in commands]
    assert ("192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32") in covered
    assert ("192.0.2.9/32",) in covered
    assert ("192.0.2.20/32", "192.0.2.21/32") in covered
    assert ("2001:db8::1/128",) in covered
    lines = dict((p, line) for line, p in commands)
    assert lines[("192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32")].startswith(
        "announce attributes next-hop self med 100 origin igp nlri 192.0.2.1/32 "
    )


def test_large_batches_are_split():
    routes = [Route(f"198.18.{i // 256}.{i % 256}/32") for i in range(250)]
    commands = batch_commands(routes, [])
    assert all(len(p) <= MAX_PREFIXES_PER_COMMAND for _, p in commands)
    assert sum(len(p) for _, p in commands) == 250


@pytest.mark.parametrize("separator", [" ", "\t", ",", ";", "[", "]", "{", "(", "\\"])
def test_a_token_that_could_split_or_extend_a_command_is_refused(separator):
    """A space (or any of ExaBGP's separators) inside one value would make it two words of the
    command: `community [ 65001:1 65535:0 ]` smuggled in as one community."""
    with pytest.raises(UnsafeToken):
        announce_command(Route("192.0.2.10/32", communities=(f"65001:1{separator}65535:0",)))


# ---------------------------------------------------------------- stable next hops (ADD-PATH)
SLOTS = ((41, "198.51.100.41"), (43, "198.51.100.43"))


def test_a_route_with_stable_next_hops_is_one_path_per_slot():
    route = Route("192.0.2.10/32", paths=SLOTS)
    assert announce_commands(route) == [
        "announce route 192.0.2.10/32 path-information 41 next-hop 198.51.100.41 med 100 "
        "origin igp",
        "announce route 192.0.2.10/32 path-information 43 next-hop 198.51.100.43 med 100 "
        "origin igp",
    ]
    assert withdraw_commands("192.0.2.10/32", (41, 43)) == [
        "withdraw route 192.0.2.10/32 path-information 41",
        "withdraw route 192.0.2.10/32 path-information 43",
    ]
    assert announce_commands(Route("192.0.2.10/32")) == [announce_command(Route("192.0.2.10/32"))]


def test_many_vips_through_the_slots_take_one_command_per_slot():
    routes = [Route(f"192.0.2.{i}/32", paths=SLOTS) for i in range(1, 4)]
    path_ids = {f"192.0.2.{i}/32": (41, 43) for i in range(7, 9)}
    commands = batch_commands(routes, ["192.0.2.7/32", "192.0.2.8/32"], path_ids=path_ids)
    assert [line for line, _ in commands] == [
        "announce attributes path-information 41 next-hop 198.51.100.41 med 100 origin igp "
        "nlri 192.0.2.1/32 192.0.2.2/32 192.0.2.3/32",
        "announce attributes path-information 43 next-hop 198.51.100.43 med 100 origin igp "
        "nlri 192.0.2.1/32 192.0.2.2/32 192.0.2.3/32",
        "withdraw attributes path-information 41 next-hop 0.0.0.0 nlri 192.0.2.7/32 192.0.2.8/32",
        "withdraw attributes path-information 43 next-hop 0.0.0.0 nlri 192.0.2.7/32 192.0.2.8/32",
    ]
    # every command covers its prefixes: the ledger knows a route only once all its paths went
    assert all(covered for _, covered in commands)


def test_a_stale_path_is_withdrawn_by_its_own_id():
    commands = batch_commands(
        [Route("192.0.2.10/32", paths=SLOTS[:1])], [], stale=[("192.0.2.10/32", 43)]
    )
    assert [line for line, _ in commands][-1] == "withdraw route 192.0.2.10/32 path-information 43"


def test_a_slot_address_is_checked_like_any_token():
    with pytest.raises(UnsafeToken):
        announce_commands(Route("192.0.2.10/32", paths=((41, "198.51.100.41\nannounce"),)))
