"""``cnndsl fmt``: rewrites in place (atomically), ``--check`` lists, ``-`` pipes; the
pre-commit hooks run the same commands."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cnndsl.cli import EXIT_OK, EXIT_SPEC, EXIT_USAGE, main
from cnndsl.syntax.format import format_source

ROOT = Path(__file__).resolve().parent.parent
MESSY = "network  n{\n input x:3x8x8\n  conv 4 1x1->relu   # why\n}\n"
TIDY = "network n {\n  input x: 3 x 8 x 8\n  conv 4 1x1 -> relu  # why\n}\n"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


def test_fmt_rewrites_files_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messy, tidy = tmp_path / "messy.cnn", tmp_path / "tidy.cnn"
    messy.write_text(MESSY)
    tidy.write_text(TIDY)
    before = tidy.stat().st_mtime_ns
    assert run("fmt", str(tmp_path)) == (EXIT_OK, "")
    assert messy.read_text() == TIDY and tidy.read_text() == TIDY
    assert tidy.stat().st_mtime_ns == before  # an unchanged file is not rewritten
    assert capsys.readouterr().err == f"reformatted {messy}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["messy.cnn", "tidy.cnn"]  # no temp


def test_fmt_check_lists_and_changes_nothing(tmp_path: Path) -> None:
    messy, tidy = tmp_path / "messy.cnn", tmp_path / "tidy.cnn"
    messy.write_text(MESSY)
    tidy.write_text(TIDY)
    assert run("fmt", "--check", str(messy), str(tidy)) == (EXIT_SPEC,
                                                           f"would reformat {messy}\n")
    assert messy.read_text() == MESSY
    assert run("fmt", "--check", str(tidy)) == (EXIT_OK, "")


def test_fmt_check_for_ci(tmp_path: Path) -> None:
    messy = tmp_path / "messy.cnn"
    messy.write_text(MESSY)
    code, out = run("fmt", "--check", "--format", "github", str(messy))
    assert code == EXIT_SPEC
    assert out == (f"::warning file={messy},line=1,col=1,endLine=1,endColumn=1,"
                   f"title=unformatted [E501]::would reformat {messy}\n")
    code, out = run("fmt", "--check", "--format", "json", str(messy))
    assert json.loads(out)[0]["name"] == "unformatted"


def test_fmt_of_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(MESSY.encode())))
    assert run("fmt", "-") == (EXIT_OK, TIDY)


def test_fmt_reports_syntax_errors_and_leaves_the_file(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.cnn"
    broken.write_text("network n {\n  conv 64 3x3 )\n}\n")
    assert run("fmt", str(broken))[0] == EXIT_SPEC
    assert broken.read_text() == "network n {\n  conv 64 3x3 )\n}\n"
    err = capsys.readouterr().err
    assert f"{broken}:2:15: error: " in err and "^" in err
    assert run("fmt", str(tmp_path / "missing.cnn"))[0] == EXIT_USAGE


def test_the_project_specs_format_without_changing_meaning(tmp_path: Path) -> None:
    for spec in (ROOT / "specs").rglob("*.cnn"):
        formatted = format_source(spec.read_text(encoding="utf-8"))
        assert format_source(formatted) == formatted, spec


def test_pre_commit_hooks_run_the_commands(tmp_path: Path) -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    by_id = {hook["id"]: hook for hook in hooks}
    assert set(by_id) == {"cnndsl-check", "cnndsl-fmt"}
    spec = tmp_path / "messy.cnn"
    spec.write_text(MESSY)
    for hook in hooks:
        assert hook["language"] == "python" and hook["files"] == r"\.cnn$"
        command, *arguments = shlex.split(hook["entry"])
        assert command == "cnndsl"
        # pre-commit appends the staged file names to the entry
        done = subprocess.run([sys.executable, "-m", "cnndsl", *arguments, str(spec)],
                              capture_output=True, text=True, timeout=900, cwd=ROOT)
        assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert spec.read_text() == TIDY
