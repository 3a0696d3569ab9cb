"""The ``cnndsl check`` and ``cnndsl ir`` commands: output, JSON forms and exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnndsl.cli import EXIT_OK, EXIT_SPEC, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parent.parent
RESNET = ROOT / "specs" / "resnet50.cnn"
BAD = ROOT / "tests" / "specs" / "bad"
GOOD = "network small {\n  input image: 3 x H x W\n  conv 8 3x3 pad 1 -> bn -> relu\n  fc: gap -> flatten -> linear 4\n  expect params == 268\n}\n"  # noqa: E501


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "small.cnn"
    path.write_text(GOOD)
    return path


def test_check_prints_the_table_and_totals(good: Path) -> None:
    code, out = run("check", str(good), "--input", "H=16,W=16")
    assert code == EXIT_OK
    assert f"{good}: network small: ok" in out
    assert "fc.linear1" in out and "N x 4" in out
    assert "params 268 (trainable 268)" in out
    assert "expect params == 268: ok" in out


def test_quiet_check_prints_only_the_tally(good: Path) -> None:
    code, out = run("check", "-q", str(good))
    assert code == EXIT_OK and out == "1 file, 1 network: 1 ok, 0 failed\n"


def test_check_of_a_spec_with_errors_exits_1_and_renders_them(capsys: pytest.CaptureFixture[str],
                                                              ) -> None:
    path = BAD / "channel_mismatch_add.cnn"
    code, out = run("check", str(path))
    assert code == EXIT_SPEC
    first, source, caret = out.splitlines()[:3]
    assert first == (f"{path}:6:3: error: cannot add tensors with 16 and 32 channels "
                     "(N x 16 x 32 x 32 and N x 32 x 32 x 32) [channel-mismatch]")
    assert source.strip().startswith("add(a, b)") and caret.strip().startswith("^~")


def test_failed_expect_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "wrong.cnn"
    path.write_text(GOOD.replace("268", "269"))
    code, out = run("check", str(path))
    assert code == EXIT_SPEC and "expectation failed: params is 268" in out


@pytest.mark.parametrize("argv", [
    ("check", "no/such/file.cnn"),
    ("check", "--no-such-flag", "x.cnn"),
    ("check",),
    ("frobnicate",),
    ("ir",),
    ("check", "{good}", "--input", "H=x"),
    ("check", "{good}", "--input", "3x0x4"),
    ("check", "{good}", "--set", "classes"),
])
def test_usage_and_io_errors_exit_2(argv: tuple[str, ...], good: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(*(a.replace("{good}", str(good)) for a in argv))
    assert code == EXIT_USAGE


def test_a_directory_without_specs_is_a_usage_error(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("check", str(tmp_path))
    assert code == EXIT_USAGE and "no .cnn files" in capsys.readouterr().err


def test_worst_result_of_several_files_wins(good: Path) -> None:
    assert run("check", "-q", str(good), str(BAD / "syntax.cnn"))[0] == EXIT_SPEC
    assert run("check", "-q", str(good), "missing.cnn")[0] == EXIT_USAGE


def test_check_json_format(good: Path) -> None:
    code, out = run("check", "--format", "json", str(good), str(BAD / "several_errors.cnn"))
    assert code == EXIT_SPEC
    ok, bad = json.loads(out)
    assert {"file", "ok", "params", "trainable_params", "outputs", "diagnostics"} <= set(ok)
    assert ok["file"] == str(good) and ok["ok"] is True
    assert ok["params"] == ok["trainable_params"] == 268
    assert ok["outputs"] == {"fc": "N x 4"}
    assert ok["diagnostics"] == []
    assert ok["network"] == "small"
    assert ok["expects"] == [{"text": "params == 268", "actual": "268", "ok": True, "line": 5}]
    assert bad["ok"] is False and bad["params"] is None and bad["outputs"] == {}
    first = bad["diagnostics"][0]
    assert {"file", "line", "col", "end_line", "end_col", "severity", "code", "message"} <= set(
        first)
    assert (first["line"], first["col"], first["end_line"], first["end_col"]) == (4, 17, 4, 24)
    assert first["severity"] == "error" and first["code"] == "E102"
    assert first["name"] == "unknown-parameter" and isinstance(first["notes"], list)
    assert first["message"] == "'conv' has no parameter 'dilaton'"
    assert [d["line"] for d in bad["diagnostics"]] == [4, 5, 6, 7]


def test_json_of_a_symbolic_spec_shows_size_expressions(tmp_path: Path) -> None:
    path = tmp_path / "strided.cnn"
    path.write_text("network s {\n  input image: 3 x H x W\n  conv 8 3x3 /2 pad 1\n}\n")
    code, out = run("check", "--format", "json", str(path))
    (result,) = json.loads(out)
    assert code == EXIT_OK and result["outputs"] == {"output": "N x 8 x (H + 1)//2 x (W + 1)//2"}
    code, out = run("ir", str(path))
    shapes = [n["shape"] for n in json.loads(out)["nodes"]]
    assert shapes == [[3, "H", "W"], [8, "(H + 1)//2", "(W + 1)//2"]]


def test_check_json_missing_file_is_still_json() -> None:
    code, out = run("check", "--format", "json", "missing.cnn")
    (result,) = json.loads(out)
    assert code == EXIT_USAGE and result["ok"] is False
    assert result["diagnostics"][0]["code"] == "E003"


def test_ir_prints_the_network_as_json(good: Path) -> None:
    code, out = run("ir", str(good), "--input", "3x16x16")
    data = json.loads(out)
    assert code == EXIT_OK and data["name"] == "small"
    kinds = [n["kind"] for n in data["nodes"]]
    assert kinds == ["input", "conv", "batchnorm", "activation", "global_pool", "flatten",
                     "linear"]
    conv = data["nodes"][1]
    assert conv["name"] == "conv1" and conv["shape"] == [8, 16, 16] and conv["inputs"] == ["image"]
    assert conv["span"]["line"] == 3


def test_ir_of_a_bad_spec_exits_1_with_diagnostics_on_stderr(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run("ir", str(BAD / "rank_mismatch.cnn"))
    assert code == EXIT_SPEC and out == ""
    assert "[rank-mismatch]" in capsys.readouterr().err


def test_ir_schema_describes_the_node_kinds() -> None:
    code, out = run("ir", "--schema")
    schema = json.loads(out)
    assert code == EXIT_OK and schema["title"] == "Network"
    text = json.dumps(schema)
    for kind in ("conv", "batchnorm", "pool", "linear", "concat", "detect_head"):
        assert f'"{kind}"' in text


def test_network_choice_and_parameter_override(good: Path) -> None:
    code, out = run("check", "-q", str(RESNET), "--set", "classes=10", "--input", "3x64x64")
    # The expect params line no longer holds with 10 classes: under overrides that is a warning.
    assert code == EXIT_OK
    assert "warning: expectation failed: params is 23,528,522" in out
    assert run("check", "-q", str(good), "--network", "nope")[0] == EXIT_SPEC


def test_check_never_imports_torch() -> None:
    script = (
        "import sys\n"
        "from cnndsl.cli import main\n"
        f"code = main(['check', '-q', {str(RESNET)!r}])\n"
        "heavy = sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'numpy.testing')"
        " if m in sys.modules)\n"
        "print('loaded:', heavy)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "loaded: []" in done.stdout


def test_console_entry_point_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "cnndsl.cli", "check", str(RESNET)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "params 25,557,032" in done.stdout


def test_an_endless_file_is_refused_at_the_size_limit(tmp_path: Path) -> None:
    # /dev/zero never ends: it is not a regular file, so it is not read at all; a regular file
    # past the limit is read no further than the limit (a sparse 5 GB file costs nothing)
    code, out = run("check", "/dev/zero")
    assert code == EXIT_USAGE
    assert "/dev/zero:1:1: error: cannot read /dev/zero: not a regular file [io]" in out
    huge = tmp_path / "huge.cnn"
    with open(huge, "wb") as stream:
        stream.truncate(5 * 1024**3)
    code, out = run("check", str(huge))
    assert code == EXIT_SPEC
    assert f"{huge}:1:1: error: file is larger than 8 MiB [resource-limit]" in out
    spec = tmp_path / "imports.cnn"
    spec.write_text('import "huge.cnn"\nnetwork n {\n  input x: 3 x 8 x 8\n}\n')
    code, out = run("check", str(spec))
    assert code == EXIT_SPEC
    assert f"{spec}:1:1: error: cannot import 'huge.cnn': file is larger than 8 MiB" in out
    done = subprocess.run([sys.executable, "-m", "cnndsl.cli", "check", "-"],
                          input=b"\0" * (9 * 1024 * 1024), capture_output=True, timeout=900,
                          check=False)
    assert done.returncode == EXIT_SPEC
    assert b"<stdin>:1:1: error: file is larger than 8 MiB" in done.stdout + done.stderr


def test_an_error_in_an_imported_file_shows_its_line(tmp_path: Path) -> None:
    (tmp_path / "blk.cnn").write_text("block blk() {\n  conv 8 3x3 -> add\n}\n")
    spec = tmp_path / "main.cnn"
    spec.write_text('import "blk.cnn"\nnetwork n {\n  input x: 3 x 8 x 8\n  blk()\n}\n')
    code, out = run("check", str(spec))
    assert code == EXIT_SPEC
    assert "blk.cnn:2:17: error: 'add' needs at least two tensors" in out
    assert "    conv 8 3x3 -> add\n" in out and "^~~" in out  # the imported line and a caret


def test_network_chooses_one_of_several(tmp_path: Path) -> None:
    two = tmp_path / "two.cnn"
    second = GOOD.replace("network small", "network b").replace("linear 4", "linear 5")
    two.write_text(GOOD.replace("network small", "network a") + second.replace("268", "277"))
    code, out = run("check", "-q", str(two), "--input", "H=8,W=8")
    assert code == EXIT_OK and out == "1 file, 2 networks: 2 ok, 0 failed\n"  # both checked
    code, out = run("check", "--format", "json", str(two), "--network", "b")
    (result,) = json.loads(out)
    assert code == EXIT_OK and result["network"] == "b" and result["outputs"] == {"fc": "N x 5"}


def test_a_dash_reads_the_spec_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(GOOD.encode())))
    code, out = run("check", "-", "--input", "H=8,W=8")
    assert code == EXIT_OK and "<stdin>: network small: ok" in out
