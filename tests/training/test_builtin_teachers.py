"""``--teacher dreamsim``: listed in the help everywhere; without the teachers extra a clear error, not a traceback.

With the extra, ``tests/teachers`` (``tox -e teachers``) builds and distils the teacher from random weights.
"""

from __future__ import annotations

from importlib.util import find_spec

import pytest

from lipsim_tm.cli import main
from lipsim_tm.training.teachers import BUILT_IN_TEACHERS


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_distill_help_lists_the_built_in_teachers(capsys):
    code, out, _ = run(["train", "distill", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    branches = {"dreamsim:dino_vitb16", "dreamsim:clip_vitb32", "dreamsim:open_clip_vitb32"}
    assert set(BUILT_IN_TEACHERS) == {"dreamsim", *branches}
    for name in BUILT_IN_TEACHERS:
        assert f"'{name}'" in text
    assert "1792-d" in text


@pytest.mark.skipif(find_spec("dreamsim") is not None, reason="the dreamsim package is installed here")
def test_without_the_extra_the_error_says_what_to_install(tmp_path, capsys):
    argv = ["train", "distill", "--data-dir", str(tmp_path), "--teacher", "dreamsim", "--out", f"{tmp_path}/o"]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert 'pip install "lipsim-tm[teachers]"' in err
    assert "Traceback" not in err
