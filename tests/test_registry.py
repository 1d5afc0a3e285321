"""The shared name → object registry (edgekd/registry.py)."""

import pytest

from edgekd.errors import ConfigError, DataError
from edgekd.registry import Registry


def test_registry_register_returns_object_and_get_finds_it():
    things = Registry("thing")

    @things.register("b", size=2)
    def b():
        return "b"

    things.add("a", len)
    assert things.get("b") is b and things.get("a") is len
    assert things.names() == ["a", "b"] and list(things) == ["a", "b"] and len(things) == 2
    assert things.meta("b")["size"] == 2 and dict(things.meta("a")) == {}
    assert things.entry("b").module == __name__
    assert "a" in things and "c" not in things and ["unhashable"] not in things


def test_registry_unknown_name_lists_valid_ones():
    things = Registry("thing")
    things.add("alpha", 1)
    things.add("beta", 2)
    with pytest.raises(ConfigError) as err:
        things.get("gamma")
    assert "'gamma'" in str(err.value) and "alpha, beta" in str(err.value)


def test_registry_unknown_error_is_the_domains_class():
    things = Registry("dataset", unknown_error=DataError)
    with pytest.raises(DataError):
        things.get("nope")
    with pytest.raises(DataError):
        things.get(["unhashable"])


def test_registry_name_registered_twice_fails():
    things = Registry("thing")
    things.add("a", 1)
    with pytest.raises(ConfigError):
        things.add("a", 2)
    assert things.get("a") == 1


def test_registry_metadata_is_read_only():
    things = Registry("thing")
    things.add("a", 1, ops={"Conv"})
    with pytest.raises(TypeError):
        things.meta("a")["ops"] = set()
