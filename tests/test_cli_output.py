from edgekd.cli import print_error
from edgekd.errors import MissingExtraError


def test_cli_error_keeps_the_extra_name_in_brackets(capsys):
    print_error(MissingExtraError("openvino", "openvino"))
    assert "pip install 'edgekd[openvino]'" in capsys.readouterr().err
