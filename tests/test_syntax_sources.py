"""Imports read only *.cnn files inside the spec's tree (or allowed ones), only regular files,
and no diagnostic quotes a file that is not a spec."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnndsl import check
from cnndsl.diagnostics import Code, render_all

ROOT = Path(__file__).resolve().parent.parent
NETWORK = "network n {\n  input x: 3 x 8 x 8\n  relu\n}\n"
SECRET = "TOKEN=hunter2-must-not-leak"


def _render(result) -> str:  # type: ignore[no-untyped-def]
    return render_all(result.diagnostics, result.sources)


def _codes(result) -> list[Code]:  # type: ignore[no-untyped-def]
    return [d.code for d in result.diagnostics]


def test_an_import_of_a_file_that_is_not_a_spec_is_refused_unread(tmp_path: Path) -> None:
    secret = tmp_path / "tree" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    spec = tmp_path / "tree" / "a.cnn"
    for target in ("secret.txt", str(secret), "/etc/passwd"):
        spec.write_text(f'import "{target}"\n' + NETWORK)
        result = check(spec)
        assert _codes(result) == [Code.IMPORT_DENIED]
        assert "only files named *.cnn can be imported" in _render(result)
        assert SECRET not in _render(result) and "root:" not in _render(result)
        assert set(result.sources) == {str(spec)}  # the refused file was never read


def test_a_spec_named_link_to_another_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    (tmp_path / "lib.cnn").symlink_to(tmp_path / "secret.txt")
    spec = tmp_path / "a.cnn"
    spec.write_text('import "lib.cnn"\n' + NETWORK)
    result = check(spec)
    assert _codes(result) == [Code.IMPORT_DENIED] and SECRET not in _render(result)
    assert "it is a link to one that does not" in _render(result)


def test_imports_stay_in_the_spec_tree_unless_allowed(tmp_path: Path) -> None:
    library = tmp_path / "shared"
    library.mkdir()
    (library / "blocks.cnn").write_text("block b() {\n  relu\n}\n")
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / "sub" / "inner.cnn").write_text("block c() {\n  relu\n}\n")
    (project / "linked.cnn").symlink_to(library / "blocks.cnn")
    body = "network n {\n  input x: 3 x 8 x 8\n  b()\n}\n"
    for written in ("../shared/blocks.cnn", str(library / "blocks.cnn"), "linked.cnn"):
        spec = project / "a.cnn"
        spec.write_text(f'import "{written}"\n' + body)
        denied = check(spec)
        assert _codes(denied) == [Code.IMPORT_DENIED], written
        assert "outside the directory tree of the spec" in denied.diagnostics[0].message
        assert "--allow-import" in denied.diagnostics[0].message
        assert check(spec, allow_imports=[library]).ok, written
        assert check(spec, allow_imports=[str(tmp_path)]).ok, written
    # below the spec's directory, and back up within it, is inside
    (project / "sub" / "up.cnn").write_text('import "../sub/inner.cnn"\nblock d() {\n  c()\n}\n')
    spec.write_text('import "sub/up.cnn"\nnetwork n {\n  input x: 3 x 8 x 8\n  d()\n}\n')
    assert check(spec).ok


def test_spec_text_imports_relative_to_the_working_directory(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.chdir(ROOT)
    assert check('import "specs/blocks/resnet.cnn"\n' + NETWORK).ok
    denied = check('import "../x.cnn"\n' + NETWORK)
    assert _codes(denied) == [Code.IMPORT_DENIED]


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    # Run in a child: a regression would hang open() forever; the timeout turns that into a fail.
    os.mkfifo(tmp_path / "pipe.cnn")
    (tmp_path / "a.cnn").write_text('import "pipe.cnn"\n' + NETWORK)
    done = subprocess.run([sys.executable, "-m", "cnndsl.cli", "check", "a.cnn", "pipe.cnn"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "a.cnn:1:1: error: cannot import 'pipe.cnn': not a regular file [io]" in done.stdout
    assert "pipe.cnn:1:1: error: cannot read pipe.cnn: not a regular file [io]" in done.stdout
    assert done.returncode == 2


def test_a_file_that_is_not_a_spec_is_never_quoted(tmp_path: Path) -> None:
    # /proc/self/environ holds the environment: CI secrets. Given directly or through a link
    # named *.cnn, a syntax error there says where, not what.
    (tmp_path / "env.cnn").symlink_to("/proc/self/environ")
    (tmp_path / "notes.txt").write_text(SECRET + " {\n")
    for name in ("env.cnn", "/proc/self/environ", "notes.txt"):
        done = subprocess.run([sys.executable, "-m", "cnndsl.cli", "check", name],
                              cwd=tmp_path, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "LEAKED": SECRET})
        output = done.stdout + done.stderr
        assert done.returncode == 1, output
        assert "error: not a cnndsl spec: syntax error here [syntax]" in output
        assert SECRET not in output and "hunter2" not in output
        assert "TOKEN" not in output and "LEAKED" not in output


def test_a_file_that_parses_as_a_spec_is_quoted_whatever_its_name(tmp_path: Path) -> None:
    spec = tmp_path / "model.txt"
    spec.write_text("network n {\n  input x: 3 x 8 x 8\n  cnov 8 3x3\n}\n")
    result = check(spec)
    assert _codes(result) == [Code.UNKNOWN_LAYER]
    assert "    cnov 8 3x3\n" in _render(result)
    syntax = tmp_path / "broken.cnn"
    syntax.write_text("network n {\n  input x: 3 x 8 x 8\n  conv 8 3x3 ))\n}\n")
    assert "conv 8 3x3 ))" in _render(check(syntax))  # a spec's own syntax error is quoted
