from announcer.core import Route, plan

A = Route("192.0.2.10/32")
A_MED = Route("192.0.2.10/32", med=200)
B = Route("192.0.2.11/32")


def test_nothing_to_do_when_acked_matches():
    assert not plan({A.prefix: A, B.prefix: None}, {A.prefix: A, B.prefix: None})


def test_undecided_prefixes_are_left_alone():
    assert not plan({}, {A.prefix: A})


def test_unknown_prefix_desired_withdrawn_is_withdrawn_anyway():
    changes = plan({A.prefix: None}, {})
    assert changes.withdraw == (A.prefix,) and not changes.announce


def test_attribute_change_reannounces():
    changes = plan({A.prefix: A_MED}, {A.prefix: A})
    assert changes.announce == (A_MED,)


def test_mixed_changes():
    changes = plan({A.prefix: A, B.prefix: None}, {A.prefix: None, B.prefix: B})
    assert changes.announce == (A,) and changes.withdraw == (B.prefix,)


def test_answers_to_commands_sent_before_a_restate_do_not_count():
    """A session came up (restate: ExaBGP's RIB for it is new) while a batch was out: its
    `done`s describe the old RIB, so the prefixes stay unknown and are sent again."""
    from announcer.core import Ledger, answered, restated

    ledger = Ledger()
    sent_at = ledger.epoch
    ledger = restated(ledger)
    ledger = answered(ledger, [[(A.prefix, A)]], [True], sent_at)
    assert dict(ledger.acked) == {}
    assert plan({A.prefix: A}, ledger.acked).announce == (A,)


SLOTTED = Route("192.0.2.10/32", paths=((41, "198.51.100.41"), (43, "198.51.100.43")))


def test_a_slot_dropped_by_a_reload_has_its_path_withdrawn():
    fewer = Route("192.0.2.10/32", paths=((41, "198.51.100.41"),))
    changes = plan({A.prefix: fewer}, {A.prefix: SLOTTED})
    assert changes.announce == (fewer,) and changes.stale == ((A.prefix, 43),)
    # from a plain next hop to the slots: the plain path goes
    assert plan({A.prefix: SLOTTED}, {A.prefix: A}).stale == ((A.prefix, None),)
    # not known: nothing to compare with
    assert plan({A.prefix: SLOTTED}, {}).stale == ()


def test_a_route_is_known_only_when_every_one_of_its_commands_was_done():
    """A route with two paths takes two commands: one error makes the prefix unknown, whatever
    order the answers came in, so the next plan sends it again."""
    from announcer.core import Ledger, answered

    for results in ([True, False], [False, True]):
        ledger = answered(
            Ledger(), [[(A.prefix, SLOTTED)], [(A.prefix, SLOTTED)]], results, Ledger().epoch
        )
        assert A.prefix not in ledger.acked
        assert plan({A.prefix: SLOTTED}, ledger.acked).announce == (SLOTTED,)
