"""Only the project's own error types are user errors; anything else keeps its traceback."""

import pytest
import typer
from typer.testing import CliRunner

from islr.cli import build_app
from islr.cli.common import user_errors
from islr.errors import USER_ERRORS, UnknownModelError
from islr.landmarks import LayoutError, get_layout
from tests.conftest import need_torch


def test_user_errors_are_only_islr_types():
    assert all(t.__module__.startswith("islr.") for t in USER_ERRORS)
    assert KeyError not in USER_ERRORS and FileNotFoundError not in USER_ERRORS


def test_a_user_mistake_is_one_line_and_an_internal_key_error_keeps_its_traceback():
    with pytest.raises(typer.Exit) as exit_info, user_errors():
        get_layout("no-such-layout")
    assert exit_info.value.exit_code == 2
    with pytest.raises(KeyError, match="internal"), user_errors():
        {}["internal"]  # a bug, not a user mistake: it must not be hidden
    assert issubclass(UnknownModelError, USER_ERRORS) and issubclass(LayoutError, USER_ERRORS)


def test_an_unknown_model_name_is_a_user_mistake():
    need_torch()
    from islr.models import create_model

    with pytest.raises(typer.Exit), user_errors():
        create_model("no-such-model", n_features=4, n_classes=2, seq_len=8)


def test_missing_input_folder_is_a_one_line_cli_error(tmp_path):
    result = CliRunner().invoke(
        build_app(), ["extract", str(tmp_path / "nope"), "--out", str(tmp_path / "c")]
    )
    assert result.exit_code == 2 and "no such video file or folder" in " ".join(
        result.output.split()
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)
