"""Path escape and data loss: names are safe slugs, nothing outside --out is written or deleted."""

from __future__ import annotations

import pytest
from pydantic import ValidationError as SchemaError

import edgekd
from edgekd import outdir
from edgekd.errors import ConfigError, OutputError
from edgekd.targets import Target, is_slug, load_target

from conftest import tiny_data, tiny_model

BAD_NAMES = ["..", ".", "../../x", "a/b", "a\\b", "/abs", ".hidden", "", "a b", "x" * 101, "naïve", "a\x00b",
             "~", "..toml"]
GOOD_NAMES = ["x86-cpu-onnxruntime", "a", "A_1", "v1.2", "9lives"]


def _target(name="t1", **changes) -> Target:
    base = load_target("x86-cpu-onnxruntime").model_dump()
    return Target.model_validate({**base, "name": name, **changes})


@pytest.mark.parametrize("name", BAD_NAMES)
def test_is_slug_rejects_unsafe_name(name):
    assert not is_slug(name)


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_is_slug_accepts_safe_name(name):
    assert is_slug(name)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_target_schema_rejects_unsafe_name(name):
    with pytest.raises(SchemaError):
        _target(name)


@pytest.mark.parametrize("backend", ["../../evil", "a/b", ".."])
def test_target_schema_rejects_unsafe_backend(backend):
    with pytest.raises(SchemaError):
        _target(backend=backend)


@pytest.mark.parametrize("stem", ["..", ".", ".x"])
def test_load_target_rejects_file_whose_stem_is_unsafe(tmp_path, stem):
    text = (load_target("x86-cpu-onnxruntime").source_path and
            open(load_target("x86-cpu-onnxruntime").source_path, encoding="utf-8").read())
    path = tmp_path / f"{stem}.toml"
    path.write_text(text.replace('name = "x86-cpu-onnxruntime"', f'name = "{stem}"'), encoding="utf-8")
    with pytest.raises(ConfigError):
        load_target(path)


@pytest.mark.parametrize("name", ["../../x", "..", "a/b"])
def test_load_target_rejects_unvalidated_target_object(name):
    sneaky = _target().model_copy(update={"name": name})  # model_copy skips validation
    with pytest.raises(ConfigError):
        load_target(sneaky)


@pytest.mark.parametrize("name", ["../../x", ".."])
def test_compile_writes_nothing_outside_out_for_unsafe_target_object(tmp_path, name):
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    sneaky = _target().model_copy(update={"name": name})
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError):
        edgekd.compile(tiny_model(), sneaky, tiny_data(), out)
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_compile_refuses_to_replace_folder_edgekd_did_not_make(tmp_path):
    out = tmp_path / "out"
    mine = out / "x86-cpu-onnxruntime"
    mine.mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputError):
        edgekd.compile(tiny_model(), "x86-cpu-onnxruntime", tiny_data(), out)
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert [p.name for p in out.iterdir()] == ["x86-cpu-onnxruntime"]  # no staging folder left


def test_compile_refuses_to_follow_link_to_outside(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    outdir.mark_created(elsewhere)
    (elsewhere / "keep.txt").write_text("keep")
    (out / "x86-cpu-onnxruntime").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(OutputError):
        edgekd.compile(tiny_model(), "x86-cpu-onnxruntime", tiny_data(), out)
    assert (elsewhere / "keep.txt").read_text() == "keep"


def test_compile_replaces_its_own_folder_on_rebuild(compiled):
    artifact, out = compiled
    (artifact.folder / "stale.bin").write_bytes(b"old")
    again = edgekd.compile(tiny_model(), "x86-cpu-onnxruntime", tiny_data(), out)
    assert again.folder == artifact.folder and not (again.folder / "stale.bin").exists()


@pytest.mark.parametrize("path", ["..", "../sibling", "/", "a/../../b"])
def test_inside_rejects_path_outside_root(tmp_path, path):
    with pytest.raises(OutputError):
        outdir.inside(tmp_path / "out", tmp_path / "out" / path)


def test_remove_created_refuses_root_itself(tmp_path):
    outdir.mark_created(tmp_path)
    with pytest.raises(OutputError):
        outdir.remove_created(tmp_path, tmp_path)
    assert (tmp_path / outdir.MARKER).exists()
