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


# every domain registry is one Registry, and an unknown name names the valid ones through its thin wrapper

def _domains():
    from edgekd.calibrate import calibrator_for
    from edgekd.calibrate.methods import CALIBRATORS
    from edgekd.data.builtin import _DATASETS, load_dataset
    from edgekd.distill.losses import create_loss
    from edgekd.distill.losses.base import LOSSES
    from edgekd.models import create_student
    from edgekd.models.registry import STUDENTS
    from edgekd.search import get_score
    from edgekd.search.scores.registry import SCORES

    return {"student": (STUDENTS, create_student, ConfigError), "loss": (LOSSES, create_loss, ConfigError),
            "score": (SCORES, get_score, ConfigError), "calibrator": (CALIBRATORS, calibrator_for, ConfigError),
            "dataset": (_DATASETS, load_dataset, DataError)}


@pytest.mark.parametrize("kind", ["student", "loss", "score", "calibrator", "dataset"])
def test_registry_domain_wrapper_unknown_name_lists_every_valid_one(kind):
    registry, wrapper, error = _domains()[kind]
    assert isinstance(registry, Registry) and registry.kind == kind and len(registry.names()) >= 2
    with pytest.raises(error) as err:
        wrapper("no-such-name")
    assert "'no-such-name'" in str(err.value)
    assert all(name in str(err.value) for name in registry.names())


def test_registry_student_metadata_is_its_info_record():
    from edgekd.models import list_students, student_info
    from edgekd.models.registry import STUDENTS, StudentInfo

    assert list_students() == STUDENTS.names()
    for name in list_students():
        info = student_info(name)
        assert isinstance(info, StudentInfo) and info.name == name and info.ops


def test_registry_student_registered_twice_fails():
    from edgekd.models import list_students, register_student

    with pytest.raises(ConfigError):
        register_student(list_students()[0], ops={"Conv"})(lambda input_shape, num_classes: None)
