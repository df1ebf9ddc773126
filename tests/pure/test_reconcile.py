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
