"""The reducer's check table (`announcer.core.chunked`): every version reads as the dict it
stands for, in insertion order; an edit never changes the version it came from; and a step
that changes one check's record copies one chunk, not the table."""

from hypothesis import given
from hypothesis import strategies as st

from announcer.core import ProbeDone, initial_state, reduce_probes
from announcer.core.chunked import ChunkedMap
from announcer.core.routes import base_route
from announcer.core.spec import CheckSpec, Spec, VipSpec

keys = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
operation = st.one_of(
    st.tuples(st.just("set"), keys, st.integers()),
    st.tuples(st.just("del"), keys, st.just(0)),
    st.tuples(st.just("freeze"), st.just(""), st.just(0)),
)


@given(
    start=st.dictionaries(keys, st.integers(), max_size=60),
    operations=st.lists(operation, max_size=40),
)
def test_every_version_reads_as_its_dict_and_edits_leave_the_old_one_alone(start, operations):
    current = ChunkedMap.of(start)
    model = dict(start)
    versions = [(current, dict(model))]
    editor = current.editor()
    for kind, key, value in operations:
        if kind == "set":
            editor[key] = value
            model[key] = value
        elif kind == "del" and key in model:
            del editor[key]
            del model[key]
        elif kind == "freeze":
            current = editor.freeze()
            versions.append((current, dict(model)))
            editor = current.editor()
        # the editor reads as the dict, in the dict's order, all along
        assert list(editor.items()) == list(model.items())
        assert len(editor) == len(model) and all(k in editor for k in model)
        assert editor.get(key) == model.get(key)
    versions.append((editor.freeze(), dict(model)))
    for version, expected in versions:
        assert list(version.items()) == list(expected.items())
        assert list(version) == list(expected) and list(version.values()) == list(expected.values())
        assert version == expected and len(version) == len(expected)
        for key in expected:
            assert version[key] == expected[key] and key in version
        assert version.get("zzzz") is None and "zzzz" not in version


def test_writing_while_iterating_sees_every_entry_once():
    """The stall shift rewrites every record while it walks the table."""
    table = ChunkedMap.of({f"c{i}": i for i in range(50)})
    editor = table.editor()
    for key, value in editor.items():
        editor[key] = value + 1000
    assert dict(editor.freeze()) == {f"c{i}": i + 1000 for i in range(50)}
    assert dict(table) == {f"c{i}": i for i in range(50)}


def test_a_probe_result_copies_one_chunk_of_ten_thousand_checks():
    names = [f"c{i}" for i in range(10_000)]
    prefixes = [f"198.18.{i // 256}.{i % 256}/32" for i in range(10_000)]
    spec = Spec(
        checks={name: CheckSpec() for name in names},
        vips=tuple(
            VipSpec(prefix, (name,), 1, base_route(prefix))
            for prefix, name in zip(prefixes, names, strict=True)
        ),
    )
    before = initial_state(spec, 0.0)
    after, _ = reduce_probes(before, [ProbeDone("c5000", True, "ok")], 0.1)
    old, new = before.checks, after.checks
    assert isinstance(old, ChunkedMap) and isinstance(new, ChunkedMap)
    shared = sum(a is b for a, b in zip(old._chunks, new._chunks, strict=True))
    assert shared == len(old._chunks) - 1 and len(old._chunks) == 100
    assert new["c5000"] is not old["c5000"] and new["c4999"] is old["c4999"]
