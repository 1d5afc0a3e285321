"""`edgekd search` on the command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgekd.cli import app


def test_cli_search_unknown_space_is_bad_input(tmp_path):
    result = CliRunner().invoke(app, ["search", "--dataset", "digits", "--space", "vgg", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "valid: mobilenetv2" in result.output


@pytest.mark.slow  # trains the default digits teacher first
def test_cli_search_writes_log_and_plot(tmp_path):
    result = CliRunner().invoke(app, ["search", "--dataset", "digits", "--space", "resnet-compact", "--population",
                                      "3", "--iterations", "3", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "chosen {'name': 'resnet'" in result.output
    records = [json.loads(line) for line in (tmp_path / "search.jsonl").read_text().splitlines()]
    assert len(records) >= 6 and (tmp_path / "search.png").exists()
