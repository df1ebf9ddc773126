import json

import pytest

from announcer.core import Ack, Info, Malformed, NeighborState, Shutdown, parse_line

STATE = {
    "exabgp": "5.0.0",
    "time": 1.0,
    "host": "lb1",
    "pid": 1,
    "ppid": 1,
    "counter": 1,
    "type": "state",
    "neighbor": {
        "address": {"local": "198.51.100.2", "peer": "198.51.100.1"},
        "asn": {"local": 65001, "peer": 65000},
        "state": "up",
    },
}


def test_acks():
    assert parse_line("done") == Ack(True)
    assert parse_line("error\n") == Ack(False)


def test_json_neighbor_state():
    assert parse_line(json.dumps(STATE)) == NeighborState("198.51.100.1", "up")


def test_text_neighbor_state():
    assert parse_line("neighbor 198.51.100.1 down - peer reset") == NeighborState(
        "198.51.100.1", "down", "peer reset"
    )


def test_shutdown_forms():
    assert isinstance(parse_line("shutdown"), Shutdown)
    event = {"exabgp": "5.0.0", "type": "notification", "notification": "shutdown"}
    assert isinstance(parse_line(json.dumps(event)), Shutdown)


@pytest.mark.parametrize(
    "line",
    [
        "{not json",
        json.dumps({"type": "state"}),
        json.dumps({"type": "state", "neighbor": "x"}),
        json.dumps({"type": "state", "neighbor": {"address": {}, "state": "up"}}),
        "",
    ],
)
def test_malformed_lines_are_reported_not_raised(line):
    assert isinstance(parse_line(line), Malformed)


def test_other_lines_are_information():
    assert isinstance(parse_line("exabgp 5.0.15"), Info)
    sent = {"address": {"peer": "198.51.100.1"}, "direction": "send", "message": {}}
    assert isinstance(parse_line(json.dumps({"type": "update", "neighbor": sent})), Info)
    assert isinstance(parse_line(json.dumps({"type": "keepalive", "neighbor": {}})), Info)


# ------------------------------------------------------------ what the routers send back
def _received(message: dict, direction: str = "receive") -> str:
    neighbor = {
        "address": {"local": "198.51.100.13", "peer": "198.51.100.1"},
        "asn": {"local": 65013, "peer": 65000},
        "direction": direction,
        "message": message,
    }
    return json.dumps({"exabgp": "5.0.0", "type": "update", "neighbor": neighbor})


def test_a_received_update_gives_each_path_with_its_id_and_communities():
    from announcer.core import ReceivedPath, RoutesReceived

    update = {
        "attribute": {
            "origin": "igp",
            "as-path": [65000, 65011],
            "community": [[65535, 0]],
            "large-community": [[65534, 3325256715, 5], [65011, 1, 2]],
        },
        "announce": {
            "ipv4 unicast": {
                # the paths' next hop (a slot, with stable next hops)
                "198.51.100.41": [
                    {"nlri": "192.0.2.10/32", "path-information": "0.0.0.3"},
                    {"nlri": "192.0.2.11/32", "path-information": "0.0.0.4"},
                ]
            },
            "ipv4 flow": {"no-nexthop": [{"nlri": "ignored"}]},
        },
        "withdraw": {"ipv4 unicast": [{"nlri": "192.0.2.12/32", "path-information": "0.0.0.2"}]},
    }
    large = ((65534, 3325256715, 5), (65011, 1, 2))
    assert parse_line(_received({"update": update})) == RoutesReceived(
        "198.51.100.1",
        (
            ReceivedPath("192.0.2.10/32", "0.0.0.3", large, ((65535, 0),), "198.51.100.41"),
            ReceivedPath("192.0.2.11/32", "0.0.0.4", large, ((65535, 0),), "198.51.100.41"),
        ),
        (("192.0.2.12/32", "0.0.0.2"),),
    )


def test_a_path_without_an_id_and_an_end_of_rib_are_read_too():
    from announcer.core import ReceivedPath, RoutesReceived

    plain = {"announce": {"ipv6 unicast": {"2001:db8:ffff::1": [{"nlri": "2001:db8:100::10/128"}]}}}
    assert parse_line(_received({"update": plain})) == RoutesReceived(
        "198.51.100.1",
        (ReceivedPath("2001:db8:100::10/128", None, next_hop="2001:db8:ffff::1"),),
    )
    eor = parse_line(_received({"eor": {"afi": "ipv4", "safi": "unicast"}}))
    assert eor == RoutesReceived("198.51.100.1", end_of_rib="ipv4 unicast")


def test_what_we_sent_is_not_taken_for_what_a_router_holds():
    assert isinstance(parse_line(_received({"update": {}}, direction="send")), Info)


def test_the_negotiated_capabilities_give_the_add_path_families():
    from announcer.core import AddPathNegotiated

    negotiated = {
        "families": ["ipv4 unicast", "ipv6 unicast"],
        "add_path": {"send": [], "receive": ["ipv4 unicast", "l2vpn evpn"]},
    }
    neighbor = {"address": {"peer": "198.51.100.1"}, "negotiated": negotiated}
    line = json.dumps({"type": "negotiated", "neighbor": neighbor})
    assert parse_line(line) == AddPathNegotiated(
        "198.51.100.1",
        frozenset({"ipv4 unicast"}),
        frozenset({"ipv4 unicast", "ipv6 unicast"}),
    )


@pytest.mark.parametrize(
    "message",
    [
        {"update": {"attribute": {"large-community": [[1, 2]]}}},
        {"update": {"attribute": {"large-community": [[1, 2, 2**32]]}}},
        {"update": {"attribute": {"community": [["a", 0]]}}},
        {"update": {"announce": {"ipv4 unicast": ["192.0.2.10/32"]}}},
        {"update": {"announce": {"ipv4 unicast": {"nh": [{"path-information": "0.0.0.1"}]}}}},
        {
            "update": {
                "withdraw": {"ipv4 unicast": [{"nlri": "192.0.2.10/32", "path-information": 1}]}
            }
        },
        {"eor": "ipv4"},
        {"neither": {}},
    ],
)
def test_a_received_update_that_is_not_what_exabgp_writes_is_malformed(message):
    assert isinstance(parse_line(_received(message)), Malformed)
