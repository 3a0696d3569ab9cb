"""``cnndsl weights`` and the --weights/--match/--rename/--strict options of compile and fcn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
from reference_modules import MIXED, TINY, Mixed, TinyResNet, randomized  # noqa: E402

from cnndsl.cli import main  # noqa: E402
from cnndsl.weights import read_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def outputs(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


def expected(reference: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return reference(x).reshape(len(x), -1).numpy()  # type: ignore[no-any-return]


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    (tmp_path / "tiny.cnn").write_text(TINY)
    return tmp_path / "tiny.cnn", randomized(TinyResNet())


def test_compile_loads_a_ddp_checkpoint_and_says_so(tmp_path: Path, tiny: tuple[Path, object],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    spec, reference = tiny
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}},
               tmp_path / "ddp.pth")
    onnx_file = tmp_path / "tiny.onnx"
    assert main(["compile", str(spec), "--to", "onnx", "--weights", str(tmp_path / "ddp.pth"),
                 "--strict", "-o", str(onnx_file)]) == 0
    out = capsys.readouterr().out
    assert "weights from" in out and "ddp.pth['state_dict']: 42 of 42 tensors loaded" in out
    x = torch.randn(2, 3, 32, 32)
    np.testing.assert_allclose(outputs(onnx_file, x), expected(reference, x), rtol=1e-5,
                               atol=1e-5)


def test_a_wrong_checkpoint_warns_or_fails_in_at_most_15_lines(
        tmp_path: Path, tiny: tuple[Path, object], capsys: pytest.CaptureFixture[str]) -> None:
    spec, _ = tiny
    wrong = randomized(Mixed())
    torch.save(wrong.state_dict(), tmp_path / "wrong.pt")
    args = ["compile", str(spec), "--to", "onnx", "--weights", str(tmp_path / "wrong.pt"),
            "-o", str(tmp_path / "t.onnx")]
    for by in ("auto", "name", "order"):
        assert main([*args, "--match", by]) == 0  # lenient: the rest keeps its seeded values
        err = capsys.readouterr().err
        assert "warning: weights from" in err and "[weights]" in err
        assert 3 <= len(err.splitlines()) <= 15, err
        assert main([*args, "--match", by, "--strict"]) == 1
        err = capsys.readouterr().err
        assert "error: weights from" in err and len(err.splitlines()) <= 15, err
        assert err.startswith(f"{spec}:")  # positioned at the first layer left unloaded


@pytest.mark.parametrize("format", ["json", "sarif"])
def test_the_weights_report_follows_format(tmp_path: Path, tiny: tuple[Path, object],
                                           capsys: pytest.CaptureFixture[str],
                                           format: str) -> None:
    # stdout is one parseable document holding the warning; progress lines go to stderr
    spec, _ = tiny
    torch.save(randomized(Mixed()).state_dict(), tmp_path / "wrong.pt")
    assert main(["compile", str(spec), "--to", "onnx", "--weights", str(tmp_path / "wrong.pt"),
                 "-o", str(tmp_path / "t.onnx"), "--format", format]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    if format == "sarif":
        [result] = document["runs"][0]["results"]
        assert result["level"] == "warning" and result["ruleId"] == "E502"
    else:
        [diagnostic] = document if isinstance(document, list) else document["diagnostics"]
        assert diagnostic["severity"] == "warning" and diagnostic["name"] == "weights"
    assert "wrote " in captured.err and "weights from" not in captured.err


def test_rename_and_usage_errors(tmp_path: Path, tiny: tuple[Path, object],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    spec, reference = tiny
    torch.save({f"backbone.{k}": v for k, v in reference.state_dict().items()},
               tmp_path / "b.pt")
    args = ["compile", str(spec), "--to", "onnx", "-o", str(tmp_path / "t.onnx"), "--strict",
            "--match", "name", "--weights", str(tmp_path / "b.pt")]
    assert main(args) == 1
    assert "did you mean --rename backbone.=?" in capsys.readouterr().err
    assert main([*args, "--rename", "backbone.="]) == 0
    assert main([*args, "--rename", "backbone."]) == 2
    assert "--rename takes OLD=NEW" in capsys.readouterr().err
    args[-1] = str(tmp_path / "absent.pt")
    assert main(args) == 2


def test_weights_converts_a_reference_checkpoint_and_onnx_needs_no_torch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mixed.cnn").write_text(MIXED)
    reference = randomized(Mixed())
    torch.save({"model": reference.state_dict(), "epoch": 9}, tmp_path / "ref.pt")
    converted = tmp_path / "mixed.safetensors"
    assert main(["weights", str(tmp_path / "mixed.cnn"), "--from", str(tmp_path / "ref.pt"),
                 "-o", str(converted), "--strict"]) == 0
    assert "29 by order" in capsys.readouterr().out
    keys = list(read_checkpoint(converted).tensors)
    assert keys[:2] == ["stem.conv1.weight", "stem.bn1.weight"]
    assert "stem.bn1.num_batches_tracked" in keys  # kept for load_state_dict
    # compile the converted file where torch cannot be imported
    code = ("import sys; sys.modules['torch'] = None\n"
            "from cnndsl.cli import main\n"
            "code = main(sys.argv[1:])\n"
            "assert not [m for m, v in sys.modules.items() if m.startswith('torch') and v]\n"
            "sys.exit(code)\n")
    onnx_file = tmp_path / "mixed.onnx"
    subprocess.run([sys.executable, "-c", code, "compile", str(tmp_path / "mixed.cnn"), "--to",
                    "onnx", "--weights", str(converted), "--strict", "-o", str(onnx_file)],
                   cwd=ROOT, check=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    x = torch.randn(2, 3, 16, 16)
    np.testing.assert_allclose(outputs(onnx_file, x).reshape(2, -1), expected(reference, x),
                               rtol=1e-5, atol=1e-5)
    # and back: the spec's keys under the reference's, in its order, with its dtypes
    back = tmp_path / "back.pt"
    assert main(["weights", str(tmp_path / "mixed.cnn"), "--from", str(converted),
                 "--to-reference", str(tmp_path / "ref.pt"), "-o", str(back), "--strict"]) == 0
    state = torch.load(back, weights_only=True)
    assert list(state) == list(reference.state_dict())
    for key, value in reference.state_dict().items():
        assert torch.equal(state[key], value), key
    fresh = Mixed()
    fresh.load_state_dict(state)


def test_fcn_takes_the_same_matching(tmp_path: Path, tiny: tuple[Path, object],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    spec, reference = tiny
    torch.save({f"net.{k}": v for k, v in reference.state_dict().items()}, tmp_path / "n.pt")
    args = ["fcn", str(spec), "--to", "onnx", "--weights", str(tmp_path / "n.pt"), "-o",
            str(tmp_path / "f.onnx"), "--strict", "--match", "name"]
    assert main(args) == 1
    assert "did you mean --rename net.=?" in capsys.readouterr().err
    assert main([*args, "--rename", "net.="]) == 0
    x = torch.randn(1, 3, 32, 32)
    np.testing.assert_allclose(outputs(tmp_path / "f.onnx", x).reshape(1, -1),
                               expected(reference, x), rtol=1e-5, atol=1e-5)
