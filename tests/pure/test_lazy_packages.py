"""The packages that import their modules on first use (`healthchecks`, `announcer.core`):
every name they export resolves, to the object its module defines."""

import importlib

import pytest


@pytest.mark.parametrize("package", ["healthchecks", "announcer.core"])
def test_every_exported_name_resolves(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert sorted(module.__all__) == dir(module)


def test_a_name_not_exported_is_an_attribute_error():
    import healthchecks
    from announcer import core

    for module in (healthchecks, core):
        with pytest.raises(AttributeError):
            module.NoSuchName  # noqa: B018


def test_lazy_names_are_the_modules_objects():
    import healthchecks
    from announcer import core
    from announcer.core.machine import step
    from healthchecks.watch import Watcher

    assert core.reduce is step
    assert healthchecks.Watcher is Watcher
