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
