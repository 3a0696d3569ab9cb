"""``cnndsl check`` for CI: directories and globs, every network of a file, libraries, ``-q``
with a tally, and the JSON that agrees with ``summary --json``; SARIF and GitHub output."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from cnndsl.cli import EXIT_OK, EXIT_SPEC, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
BAD = ROOT / "tests" / "specs" / "bad"
SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text("utf-8"))
TWO = """\
network a {
  input x: 3 x 8 x 8
  conv 4 1x1
  expect params == 16
}

network b {
  input x: 3 x 8 x 8
  conv 4 1x1 -> flatten
  expect params == 17
}
"""
LIBRARY = """\
block stem(width, stride = 1) {
  conv width 3x3 /stride pad 1 -> bn -> relu
}

block head(classes) {
  gap -> flatten -> linear classes
}
"""
BROKEN_LIBRARY = """\
block stem(width) {
  conv width 3x3 pad 1 -> bnn -> relu
}

block head(classes) {
  gap -> flatten -> linear classes strides=2
}
"""


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


def test_a_directory_is_checked_recursively_with_a_tally() -> None:
    code, out = run("check", "-q", str(SPECS))
    assert code == EXIT_OK, out
    files = len(list(SPECS.rglob("*.cnn")))
    assert out == f"{files} files, {files - 1} networks, 1 library: {files} ok, 0 failed\n"


def test_quiet_prints_only_problems_and_the_tally(tmp_path: Path) -> None:
    (tmp_path / "two.cnn").write_text(TWO)
    code, out = run("check", "-q", str(tmp_path / "two.cnn"))
    assert code == EXIT_SPEC
    lines = out.splitlines()
    assert lines[0] == (f"{tmp_path / 'two.cnn'}:10:3: error: expectation failed: params is "
                        "16 [expect-failed]")
    assert lines[-1] == "1 file, 2 networks: 1 ok, 1 failed"
    assert "network a" not in out and "path" not in out


def test_every_network_of_a_file_is_checked(tmp_path: Path) -> None:
    (tmp_path / "two.cnn").write_text(TWO)
    code, out = run("check", str(tmp_path / "two.cnn"))
    assert code == EXIT_SPEC
    assert "two.cnn: network a: ok" in out and "two.cnn: network b: FAILED" in out
    code, out = run("check", "-q", str(tmp_path / "two.cnn"), "--network", "a")
    assert code == EXIT_OK and out == "1 file, 1 network: 1 ok, 0 failed\n"


def test_globs_expand_and_a_glob_without_matches_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "two.cnn").write_text(TWO.replace("17", "16"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "lib.cnn").write_text(LIBRARY)
    code, out = run("check", "-q", str(tmp_path / "**" / "*.cnn"))
    assert code == EXIT_OK and out == "2 files, 2 networks, 1 library: 3 ok, 0 failed\n"
    code, _ = run("check", str(tmp_path / "*.nothing"))
    assert code == EXIT_USAGE
    (tmp_path / "empty").mkdir()
    assert run("check", str(tmp_path / "empty"))[0] == EXIT_USAGE


def test_hidden_directories_are_skipped(tmp_path: Path) -> None:
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "broken.cnn").write_text("network {")
    (tmp_path / "lib.cnn").write_text(LIBRARY)
    assert run("check", "-q", str(tmp_path)) == (EXIT_OK, "1 file, 0 networks, 1 library: "
                                                          "1 ok, 0 failed\n")


def test_a_file_of_blocks_is_checked_as_a_library(tmp_path: Path) -> None:
    (tmp_path / "lib.cnn").write_text(LIBRARY)
    code, out = run("check", str(tmp_path / "lib.cnn"))
    assert code == EXIT_OK
    assert f"{tmp_path / 'lib.cnn'}: library (blocks stem, head): ok" in out
    (tmp_path / "broken.cnn").write_text(BROKEN_LIBRARY)
    code, out = run("check", "-q", str(tmp_path / "broken.cnn"))
    assert code == EXIT_SPEC
    assert "broken.cnn:2:27: error: unknown layer or block 'bnn' [unknown-layer]" in out
    assert "note: did you mean 'bn'?" in out
    assert "broken.cnn:6:36: error: 'linear' has no parameter 'strides' [unknown-parameter]" \
        in out
    assert out.endswith("1 file, 0 networks, 1 library: 0 ok, 1 failed\n")


def test_library_shape_errors_wait_for_a_call_site(tmp_path: Path) -> None:
    # 64 would not divide by 3, but the block's real input is unknown: no error here
    (tmp_path / "lib.cnn").write_text("block third() {\n  conv (in / 3) 1x1\n}\n")
    assert run("check", "-q", str(tmp_path / "lib.cnn"))[0] == EXIT_OK


def test_an_empty_file_is_still_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.cnn").write_text("# nothing yet\n")
    code, out = run("check", "-q", str(tmp_path / "empty.cnn"))
    assert code == EXIT_SPEC and "[no-network]" in out


def test_check_json_agrees_with_summary_json_on_shared_fields() -> None:
    for spec in ("resnet50", "yolo_tiny", "classify_localize"):
        path = str(SPECS / f"{spec}.cnn")
        assert run("check", "--format", "json", path)[0] == EXIT_OK
        (checked,) = json.loads(run("check", "--format", "json", path)[1])
        code, out = run("summary", "--json", path)
        assert code == EXIT_OK
        summarized = json.loads(out)
        shared = set(checked) & set(summarized)
        assert {"network", "params", "trainable_params", "buffers", "input"} <= shared
        assert {k: checked[k] for k in shared} == {k: summarized[k] for k in shared}


def test_check_json_of_a_library_and_of_several_networks(tmp_path: Path) -> None:
    (tmp_path / "lib.cnn").write_text(LIBRARY)
    (tmp_path / "two.cnn").write_text(TWO)
    code, out = run("check", "--format", "json", str(tmp_path / "lib.cnn"),
                    str(tmp_path / "two.cnn"))
    library, a, b = json.loads(out)
    assert code == EXIT_SPEC
    assert library["kind"] == "library" and library["blocks"] == ["stem", "head"]
    assert library["ok"] is True and library["network"] is None
    assert (a["kind"], a["network"], a["ok"]) == ("network", "a", True)
    assert (b["network"], b["ok"]) == ("b", False)
    assert a["input"] == {"x": "N x 3 x 8 x 8"} and a["buffers"] == 0


def test_sarif_output_of_check_validates(tmp_path: Path) -> None:
    (tmp_path / "broken.cnn").write_text(BROKEN_LIBRARY)
    code, out = run("check", "--format", "sarif", str(tmp_path / "broken.cnn"),
                    str(BAD / "several_errors.cnn"), str(SPECS / "resnet50.cnn"))
    assert code == EXIT_SPEC
    log = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    results = log["runs"][0]["results"]
    assert len(results) == 6
    assert results[0]["ruleId"] == "E101"


def test_github_output_of_check(tmp_path: Path) -> None:
    (tmp_path / "broken.cnn").write_text(BROKEN_LIBRARY)
    code, out = run("check", "--format", "github", str(tmp_path / "broken.cnn"))
    assert code == EXIT_SPEC
    first, second, tally = out.splitlines()
    assert first.startswith(f"::error file={tmp_path / 'broken.cnn'},line=2,col=27,endLine=2,"
                            "endColumn=29,title=unknown-layer [E101]::unknown layer or block")
    assert second.startswith("::error ")
    assert tally == "1 file, 0 networks, 1 library: 0 ok, 1 failed"


@pytest.mark.parametrize("command", ["ir", "summary", "compile", "fcn"])
def test_every_command_reports_in_the_chosen_format(command: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--to", "torch"] if command == "compile" else []
    path = str(BAD / "channel_mismatch_add.cnn")
    code, out = run(command, path, *extra, "--format", "github")
    assert code == EXIT_SPEC
    assert out.startswith(f"::error file={path},line=6,col=3,")
    code, out = run(command, path, *extra, "--format", "json")
    assert code == EXIT_SPEC and json.loads(out)[0]["name"] == "channel-mismatch"
    code, out = run(command, path, *extra, "--format", "sarif")
    jsonschema.Draft4Validator(SCHEMA).validate(json.loads(out))
    code, out = run(command, path, *extra)
    assert code == EXIT_SPEC and out == ""
    assert "[channel-mismatch]" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from cnndsl import __version__

    assert run("--version")[0] == EXIT_OK
    assert capsys.readouterr().out == f"cnndsl {__version__}\n"
