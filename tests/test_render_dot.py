"""DOT text (golden file), the SVG path with and without Graphviz, and ``cnndsl graph``.

Regenerate the golden file after an intended change with
``CNNDSL_REGENERATE_GOLDEN=1 pytest tests/test_render_dot.py`` and review the diff.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cnndsl
from cnndsl import cli
from cnndsl.render import dot, svg, view

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
SPECS = sorted((ROOT / "specs").glob("*.cnn"))


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(args), out=out), out.getvalue()


def test_golden_dot() -> None:
    code, text = run("graph", str(ROOT / "specs" / "resnet18.cnn"))
    assert code == 0
    path = GOLDEN / "graph_resnet18.dot"
    if os.environ.get("CNNDSL_REGENERATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_one_dot_node_per_ir_node_and_one_edge_per_input(path: Path) -> None:
    network = cnndsl.load(path)
    text = dot.to_dot(view.build(network, with_timeline=False))
    declared = re.findall(r'^\s*"([^"]+)" \[label=', text, re.MULTILINE)
    assert sorted(declared) == sorted(node.name for node in network.nodes)
    edges = re.findall(r'^\s*"([^"]+)" -> "([^"]+)" \[label="([^"]+)"\]', text, re.MULTILINE)
    assert sorted(edges[i][:2] for i in range(len(edges))) == sorted(
        (source, node.name) for node in network.nodes for source in node.inputs)
    assert text.count("{") == text.count("}")


def test_edges_carry_the_source_shape() -> None:
    text = dot.to_dot(view.build(cnndsl.load(ROOT / "specs" / "resnet18.cnn"),
                                 with_timeline=False))
    assert '"conv1" -> "bn1" [label="64x112x112"];' in text
    assert 'subgraph "cluster_layer2.0" {' in text and 'label="layer2: 2 x basic"' in text


def test_quote_escapes() -> None:
    assert dot.quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_svg_through_graphviz(tmp_path: Path) -> None:
    target = tmp_path / "resnet18.svg"
    code, out = run("graph", str(ROOT / "specs" / "resnet18.cnn"), "-o", str(target))
    assert code == 0 and "svg" in out
    text = target.read_text(encoding="utf-8")
    assert "<svg" in text and "layer4.1.conv2" in text


def test_svg_without_graphviz_says_how_to_install_it(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nowhere to find dot
    target = tmp_path / "out.svg"
    code, _ = run("graph", str(ROOT / "specs" / "resnet18.cnn"), "-o", str(target))
    assert code == 2 and not target.exists()
    error = capsys.readouterr().err
    assert "apt-get install graphviz" in error and "-o graph.dot" in error
    with pytest.raises(svg.GraphvizMissing):
        svg.to_svg("digraph {}")


def test_graph_writes_each_format_by_suffix(tmp_path: Path) -> None:
    spec = str(ROOT / "specs" / "lenet5.cnn")
    assert run("graph", spec, "-o", str(tmp_path / "a.dot"))[0] == 0
    assert (tmp_path / "a.dot").read_text(encoding="utf-8").startswith('digraph "lenet5" {')
    assert run("graph", spec, "-o", str(tmp_path / "a.html"))[0] == 0
    assert (tmp_path / "a.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert run("graph", spec, "-o", str(tmp_path / "b.txt"), "--to", "dot")[0] == 0
    assert run("graph", spec, "-o", str(tmp_path / "b.png"))[0] == 2
    assert run("graph", str(tmp_path / "missing.cnn"))[0] == 2
    assert run("graph", spec, "--batch", "0")[0] == 2


def test_graph_of_a_symbolic_spec_needs_sizes(tmp_path: Path) -> None:
    spec = tmp_path / "open.cnn"
    spec.write_text("network t {\n input x: 3 x H x W\n conv 4 3x3\n}\n", encoding="utf-8")
    assert run("graph", str(spec))[0] == 2
    assert run("graph", str(spec), "--input", "H=16,W=16")[0] == 0


def test_graph_of_a_bad_spec_is_a_spec_error() -> None:
    code, _ = run("graph", str(ROOT / "tests" / "specs" / "bad" / "unknown_layer.cnn"))
    assert code == 1


def test_graph_runs_as_a_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cnndsl", "graph", str(ROOT / "specs" / "lenet5.cnn")],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stdout.startswith('digraph "lenet5"')
