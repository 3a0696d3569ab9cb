"""Generated PyTorch source: same state_dict and identical outputs as the live module, golden
files for ResNet-18 and GoogLeNet, ruff-clean, imports only torch, and the compile command.

Regenerate the golden files with ``CNNDSL_REGENERATE_GOLDEN=1 pytest tests/test_torch_emit.py``.
"""

from __future__ import annotations

import ast
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from spec_helpers import SPECS, small_network  # noqa: E402
from torch import nn  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.backends.torch.emit import emit  # noqa: E402
from cnndsl.backends.torch.runtime import SpecModule  # noqa: E402
from cnndsl.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"



def load_source(source: str) -> type[nn.Module]:
    """The network class of generated source."""
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)
    return namespace[namespace["__all__"][0]]  # type: ignore[no-any-return]


def deterministic(module: nn.Module) -> nn.Module:
    module.train()  # batch statistics keep deep random nets finite
    for layer in module.modules():
        if isinstance(layer, nn.Dropout):
            layer.eval()
    return module


def equal(a: object, b: object) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(equal(a[k], b[k]) for k in a)
    return torch.equal(a, b)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_generated_module_matches_the_live_module(path: Path) -> None:
    network = small_network(path)
    live = deterministic(SpecModule(network))
    with torch.device("meta"):  # no second random initialisation: the weights come from live
        generated = load_source(emit(network))()
    ours, theirs = live.state_dict(), generated.state_dict()
    assert [(k, v.shape) for k, v in ours.items()] == [(k, v.shape) for k, v in theirs.items()]
    generated.load_state_dict(ours, assign=True)
    deterministic(generated)
    inputs = [torch.randn(2, *network.node(name).shape) for name in network.inputs]
    with torch.no_grad():
        assert equal(live(*inputs), generated(*inputs))


@pytest.mark.parametrize(("name", "param", "value", "size"), [
    ("lenet5", "classes", 7, None), ("resnet18", "classes", 10, "3x64x64"),
    ("yolo_tiny", "width", 8, "3x64x64"), ("classify_localize", "hidden", 64, None),
])
def test_the_network_class_takes_the_network_parameters(name: str, param: str, value: int,
                                                       size: str | None) -> None:
    spec = ROOT / "specs" / f"{name}.cnn"
    source = emit(cnndsl.load(spec))
    assert f"{param}: int = " in source
    network = cnndsl.load(spec, params={param: value}, input=size)
    live = deterministic(SpecModule(network))
    with torch.device("meta"):
        generated = load_source(source)(**{param: value})
    ours, theirs = live.state_dict(), generated.state_dict()
    assert [(k, v.shape) for k, v in ours.items()] == [(k, v.shape) for k, v in theirs.items()]
    generated.load_state_dict(ours, assign=True)
    deterministic(generated)
    inputs = [torch.randn(2, *network.node(n).shape) for n in network.inputs]
    with torch.no_grad():
        assert equal(live(*inputs), generated(*inputs))


def test_a_network_compiled_with_set_defaults_to_that_value(tmp_path: Path) -> None:
    out = tmp_path / "r.py"
    assert main(["compile", str(ROOT / "specs" / "lenet5.cnn"), "--to", "torch", "--set",
                 "classes=3", "-o", str(out)]) == 0
    source = out.read_text()
    assert "def __init__(self, classes: int = 3) -> None:" in source
    generated = load_source(source)()
    assert generated.state_dict()["logits.weight"].shape[0] == 3
    # a network whose spec is not at hand keeps literals
    text = (ROOT / "specs" / "lenet5.cnn").read_text()
    assert "def __init__(self) -> None:" in emit(cnndsl.load(text))


DEFAULTS_SPEC = """block down(filters, stride = 2, extra) {
  conv filters 3x3 /stride pad 1 -> relu -> conv extra 1x1
}

network defaults {
  input image: 3 x 16 x 16
  a: down(8, stride = 1, extra = 4)
  b: down(16, stride = 1, extra = 4)
  c: down(16, extra = 5)
}
"""


def test_block_classes_take_the_definitions_defaults(tmp_path: Path) -> None:
    spec = tmp_path / "defaults.cnn"
    spec.write_text(DEFAULTS_SPEC)
    source = emit(cnndsl.load(spec))
    # stride keeps the spec's default (2) though most calls pass 1; extra has none
    assert "def __init__(self, in_channels: int, filters: int, extra: int, stride: int = 2)" \
        in source
    assert "Down(3, 8, extra=4, stride=1)" in source and "Down(4, 16, extra=5)" in source
    network = cnndsl.load(spec)
    live = SpecModule(network).eval()
    generated = load_source(source)().eval()
    generated.load_state_dict(live.state_dict())
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(live(x), generated(x))


HELPERS_SPEC = """network helpers {
  input image: 3 x 15 x 16
  conv 8 4x4 /2 pad same -> relu -> channel_maxpool 2
}
"""


def test_helper_modules_are_copied_into_the_file_when_used() -> None:
    network = cnndsl.load(HELPERS_SPEC)
    source = emit(network)
    assert "class PaddedConv2d(nn.Conv2d):" in source
    assert "class ChannelMaxPool(nn.Module):" in source
    live = SpecModule(network).eval()
    generated = load_source(source)().eval()
    generated.load_state_dict(live.state_dict())
    x = torch.randn(2, 3, 15, 16)
    with torch.no_grad():
        assert torch.equal(live(x), generated(x))


def test_emitting_a_network_without_helpers_does_not_import_torch(tmp_path: Path) -> None:
    script = ("import sys\nfrom cnndsl.cli import main\n"
              f"assert main(['compile', {str(ROOT / 'specs' / 'resnet18.cnn')!r}, '--to', "
              f"'torch', '-o', {str(tmp_path / 'r.py')!r}]) == 0\n"
              "assert 'torch' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=900,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "class PaddedConv2d" not in (tmp_path / "r.py").read_text()


@pytest.mark.parametrize("name", ["resnet18", "googlenet"])
def test_golden_source(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the header names the spec by its relative path
    source = emit(cnndsl.load(f"specs/{name}.cnn"))
    golden = GOLDEN / f"torch_{name}.py"
    if os.environ.get("CNNDSL_REGENERATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(source, encoding="utf-8")
    assert source == golden.read_text(encoding="utf-8")


def test_generated_files_are_ruff_clean_and_import_only_torch(tmp_path: Path) -> None:
    for path in SPECS:
        source = emit(small_network(path))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] == "torch" for a in node.names), path
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] == "torch", path
        (tmp_path / f"{path.stem}.py").write_text(source, encoding="utf-8")
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    done = subprocess.run(
        [ruff, "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(tmp_path)],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_blocks_become_classes_with_flags_for_optional_layers() -> None:
    source = emit(cnndsl.load(ROOT / "specs" / "resnet50.cnn"))
    assert "class Bottleneck(nn.Module):" in source
    assert "downsample: bool = False" in source
    assert "Bottleneck(64, 64, downsample=True)" in source
    assert "Parameters: 25,557,032" in source


def test_compile_command_writes_atomically_or_prints(tmp_path: Path) -> None:
    spec = str(ROOT / "specs" / "lenet5.cnn")
    target = tmp_path / "lenet.py"
    out = io.StringIO()
    assert main(["compile", spec, "--to", "torch", "-o", str(target)], out) == 0
    assert "wrote" in out.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["lenet.py"]  # no temporary left behind
    printed = io.StringIO()
    assert main(["compile", spec, "--to", "torch"], printed) == 0
    assert printed.getvalue() == target.read_text(encoding="utf-8")
    model = load_source(printed.getvalue())()
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 10)
