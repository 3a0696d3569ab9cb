"""Layer names checked against Python and nn.Module: the static list agrees with torch's."""

from __future__ import annotations

import keyword

import pytest

import cnndsl
from cnndsl.diagnostics import Code
from cnndsl.names import MODULE_ATTRIBUTES, reserved_reason


def spec(label: str, inner: bool = False) -> str:
    layer = f"  b: residual {{\n    {label}: relu\n  }}" if inner else f"  {label}: conv 4 3x3"
    return f"network n {{\n  input image: 3 x 8 x 8\n{layer}\n}}\n"


@pytest.mark.parametrize("label", ["class", "lambda", "training", "forward", "state_dict",
                                   "keys", "update", "_modules", "__dict__", "to"])
@pytest.mark.parametrize("inner", [False, True])
def test_reserved_labels_are_refused_by_check(label: str, inner: bool) -> None:
    result = cnndsl.check(spec(label, inner))
    assert [d.code for d in result.diagnostics] == [Code.RESERVED_NAME]
    assert not result.ok and f"'{label}' cannot name a layer" in result.diagnostics[0].message


@pytest.mark.parametrize("label", ["features", "classifier", "fc", "layer1", "downsample",
                                   "match", "case", "type_", "x", "input_"])
def test_ordinary_labels_pass(label: str) -> None:
    assert reserved_reason(label) is None
    assert cnndsl.check(spec(label)).ok


def test_checking_names_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, cnndsl; r = cnndsl.check('network n {\\n input i: 3 x 8 x 8\\n"
            " forward: relu\\n}\\n'); assert not r.ok; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_static_list_covers_torch_modules_and_containers() -> None:
    nn = pytest.importorskip("torch.nn")
    found: set[str] = set()
    for module in (nn.Module(), nn.ModuleDict(), nn.Sequential(), nn.ModuleList()):
        found |= {n for n in dir(module) if not (n.startswith("__") and n.endswith("__"))}
    assert found <= MODULE_ATTRIBUTES, sorted(found - MODULE_ATTRIBUTES)
    assert not set(keyword.kwlist) & found  # keywords are refused on their own


def test_every_accepted_name_builds_in_the_generated_module() -> None:
    torch = pytest.importorskip("torch")
    from cnndsl.backends.torch.emit import emit

    text = ("network n {\n  input image: 3 x 8 x 8\n  features: conv 4 3x3\n"
            "  b: residual {\n    match: relu\n    items_: relu\n  }\n}\n")
    namespace: dict[str, object] = {}
    exec(compile(emit(cnndsl.load(text)), "<emitted>", "exec"), namespace)
    (cls,) = [v for k, v in namespace.items() if isinstance(v, type)
              and issubclass(v, torch.nn.Module) and v.__module__ != "torch.nn"]
    module = cls().eval()
    assert module(torch.zeros(1, 3, 8, 8)).shape == (1, 4, 6, 6)
    assert {k.split(".")[0] for k in module.state_dict()} == {"features"}
