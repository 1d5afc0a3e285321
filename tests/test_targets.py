import pytest
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.errors import ConfigError
from edgekd.targets import list_targets, load_recipe, load_target

GOOD = (
    'name = "{name}"\nbackend = "onnxruntime"\ndevice = "cpu"\nops = ["conv"]\n'
    '[format]\nweights = "int8"\nactivations = "uint8"\n'
)


def test_load_target_by_name_and_path_give_the_same_target():
    by_name = load_target("x86-cpu-onnxruntime")
    by_path = load_target(by_name.source_path)
    assert by_name == by_path
    assert by_name.format.is_quantized and by_name.gate.max_accuracy_drop == 1.0


def test_every_target_file_validates():
    names = [t.name for t in list_targets()]
    assert "x86-cpu-onnxruntime" in names


def test_load_target_names_file_and_field_when_key_is_unknown(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.format(name="bad") + "colour = 3\n")
    with pytest.raises(ConfigError, match=r"bad.toml: field 'format.colour': unknown key"):
        load_target(path)


def test_load_target_names_field_when_type_is_wrong(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.format(name="bad") + "[gate]\nmax_accuracy_drop = \"lots\"\n")
    with pytest.raises(ConfigError, match=r"field 'gate.max_accuracy_drop'"):
        load_target(path)


def test_load_target_lists_valid_names_when_unknown():
    with pytest.raises(ConfigError, match="x86-cpu-onnxruntime"):
        load_target("no-such-device")


def test_recipe_loads_with_its_name():
    recipe = load_recipe("minmax-256")
    assert recipe.samples == 256 and recipe.method == "minmax" and recipe.selection == "stratified"


def test_cli_build_exits_2_and_writes_nothing_for_bad_target(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.format(name="bad") + "[latency]\nthreads = \"two\"\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", "--target", str(path), "--out", str(out)])
    assert result.exit_code == 2
    assert "latency.threads" in result.output
    assert not out.exists()


def test_cli_targets_lists_one_line_each():
    result = CliRunner().invoke(app, ["targets"])
    assert result.exit_code == 0
    assert any(line.startswith("x86-cpu-onnxruntime") for line in result.output.splitlines())
