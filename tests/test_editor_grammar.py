"""The editor package: the TextMate grammar knows every layer word, and its node test passes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cnndsl import layers

ROOT = Path(__file__).resolve().parent.parent
VSCODE = ROOT / "editors" / "vscode"
GRAMMAR = json.loads((VSCODE / "syntaxes" / "cnn.tmLanguage.json").read_text())


def _words(rule: str) -> set[str]:
    match = re.search(r"\(\?:([a-z0-9_|]+)\)", GRAMMAR["repository"][rule]["match"])
    assert match, rule
    return set(match.group(1).split("|"))


def test_the_grammar_colours_every_layer_word() -> None:
    missing = set(layers.LAYERS) - _words("layer")
    assert not missing, f"add {sorted(missing)} to the 'layer' rule of {VSCODE}/syntaxes/"
    assert set(layers.TENSOR_OPS) - set(layers.COMPOSITES) <= _words("layer")
    assert set(layers.COMPOSITES) <= _words("composite")


def test_the_extension_declares_the_grammar_and_the_language() -> None:
    package = json.loads((VSCODE / "package.json").read_text())
    [language] = package["contributes"]["languages"]
    [grammar] = package["contributes"]["grammars"]
    assert language["extensions"] == [".cnn"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"] == "source.cnn"
    assert (VSCODE / grammar["path"]).is_file()
    assert (VSCODE / language["configuration"]).is_file()
    assert "vscode-languageclient" in package["dependencies"]


def test_the_grammar_tokenizes_every_spec() -> None:
    """The node test (vscode-textmate with oniguruma): `.ci/run` installs it with `npm ci`."""
    node = shutil.which("node")
    if node is None or not (VSCODE / "node_modules" / "vscode-textmate").is_dir():
        if os.environ.get("CNNDSL_REQUIRE_EDITOR"):  # set by .ci/run: there it must run
            pytest.fail("node or editors/vscode/node_modules missing; .ci/run installs them")
        pytest.skip("run `npm ci` in editors/vscode for the grammar test")
    done = subprocess.run([node, "--test", "test/"], cwd=VSCODE, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
