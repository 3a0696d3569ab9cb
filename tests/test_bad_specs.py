"""Bad specs with the diagnostics they must produce, mypy style.

Each ``tests/specs/bad/*.cnn`` file is checked with ``cnndsl.check``; the diagnostics it must
produce sit as comments on the lines that cause them::

    conv 64 3x3          # E: channel-mismatch       an error on this line, any column
    conv 64 3x3 /0       # E:14: bad-value           an error at line, column 14
    block b(w, u = 1) {  # W:12: unused-name         a warning
    a: relu 3  # E:11: too-many-arguments  # E:3: unused-name     several on one line

The codes are the slugs of ``cnndsl.diagnostics.Code``. A file passes when the set of
``(file, line, col, severity, code)`` it produces equals the annotations exactly: every
annotation is matched, and nothing unannotated is reported. Annotations in files that a bad
spec imports (``tests/specs/bad/lib/``) count too, since an import cycle or an error in a
library is reported in the imported file. Files under ``lib/`` are not checked on their own.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from cnndsl import compiler
from cnndsl.diagnostics import Code, render, render_all, source_lines

BAD = Path(__file__).parent / "specs" / "bad"
FILES = sorted(BAD.glob("*.cnn"))
ANNOTATION = re.compile(r"#\s*([EW])(?::(\d+))?:\s*([a-z][a-z-]*)")
IMPORT = re.compile(r'^\s*import\s+"([^"]+)"', re.MULTILINE)
SLUGS = {code.slug: code for code in Code}

Expected = tuple[str, int, int | None, str, str]


def annotations(path: Path, seen: set[Path] | None = None) -> list[Expected]:
    """The diagnostics a file and the files it imports announce in ``# E:`` comments."""
    seen = set() if seen is None else seen
    path = path.resolve()
    if path in seen or not path.is_file():
        return []
    seen.add(path)
    text = path.read_text(encoding="utf-8")
    found: list[Expected] = []
    for number, line in enumerate(source_lines(text), start=1):
        for kind, col, slug in ANNOTATION.findall(line):
            assert slug in SLUGS, f"{path.name}:{number}: unknown code '{slug}' in annotation"
            severity = "error" if kind == "E" else "warning"
            found.append((str(path), number, int(col) if col else None, severity, slug))
    for target in IMPORT.findall(text):
        found.extend(annotations(path.parent / target, seen))
    return found


def produced(path: Path) -> tuple[list[Expected], compiler.CheckResult]:
    """What checking the file reports, in the annotations' terms."""
    result = compiler.check(path)
    got = [
        (str(Path(d.span.file).resolve()), d.span.line, d.span.col, d.severity, d.code.slug)
        for d in result.diagnostics
    ]
    return got, result


def mismatch(expected: list[Expected], got: list[Expected]) -> tuple[list, list]:
    """Annotations left unmatched and diagnostics nobody announced."""
    remaining = Counter(got)
    missing: list[Expected] = []
    # Exact columns first, so that a column-free annotation cannot steal an exact one's match.
    for item in sorted(expected, key=lambda e: e[2] is None):
        file, line, col, severity, slug = item
        match = next((g for g in remaining if remaining[g] and g[0] == file and g[1] == line
                      and g[3] == severity and g[4] == slug and col in (None, g[2])), None)
        if match is None:
            missing.append(item)
        else:
            remaining[match] -= 1
    return missing, sorted(remaining.elements())


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_bad_spec_reports_exactly_its_annotations(path: Path) -> None:
    expected = annotations(path)
    assert expected, f"{path.name} announces no diagnostic"
    got, result = produced(path)
    missing, unexpected = mismatch(expected, got)
    shown = render_all(result.diagnostics, result.sources)
    assert not missing and not unexpected, (
        f"not reported: {missing}\nnot announced: {unexpected}\n{shown}"
    )
    errors = [e for e in expected if e[3] == "error"]
    assert result.ok is (not errors)


def test_every_user_error_code_has_a_bad_spec() -> None:
    covered = {slug for path in FILES for *_, slug in annotations(path)}
    # UNSUPPORTED is raised by backends (a node kind a target cannot express), not by specs;
    # UNFORMATTED by fmt --check (a layout, not an error in the spec); WEIGHTS by a checkpoint
    # that does not fit (tests/test_weights_*.py).
    wanted = {code.slug for code in Code} - {Code.UNSUPPORTED.slug, Code.UNFORMATTED.slug,
                                              Code.WEIGHTS.slug}
    assert wanted <= covered, f"no bad spec for {sorted(wanted - covered)}"


def test_annotation_matching_rejects_wrong_and_extra_diagnostics() -> None:
    expected: list[Expected] = [("f", 3, 5, "error", "syntax"), ("f", 4, None, "error", "io")]
    assert mismatch(expected, [("f", 3, 5, "error", "syntax"), ("f", 4, 9, "error", "io")]) == (
        [], [])
    missing, extra = mismatch(expected, [("f", 3, 6, "error", "syntax")])
    assert missing == expected and extra == [("f", 3, 6, "error", "syntax")]


def _diagnostic(name: str, code: Code) -> tuple[str, compiler.CheckResult]:
    result = compiler.check(BAD / name)
    found = [d for d in result.diagnostics if d.code is code]
    assert found, render_all(result.diagnostics, result.sources)
    return render(found[0], result.sources), result


def test_rendering_is_file_line_col_message_code_source_and_caret() -> None:
    text, _ = _diagnostic("channel_mismatch_add.cnn", Code.CHANNEL_MISMATCH)
    head, source, caret = text.splitlines()[:3]
    assert re.fullmatch(
        r".*channel_mismatch_add\.cnn:6:3: error: cannot add tensors with 16 and 32 channels "
        r".* \[channel-mismatch\]", head)
    assert source == "    add(a, b)  # E:3: channel-mismatch"
    assert caret == "    ^~~~~~~~~"  # under 'add(a, b)', two spaces of indent in the render


def test_rendering_of_a_syntax_error_points_at_the_token() -> None:
    text, _ = _diagnostic("syntax.cnn", Code.SYNTAX)
    head, source, caret = text.splitlines()[:3]
    assert head.endswith("[syntax]") and ":4:14: error: unexpected '='" in head
    assert caret.index("^") == source.index("=")


@pytest.mark.parametrize(("name", "code", "hint"), [
    ("unknown_layer.cnn", Code.UNKNOWN_LAYER, "did you mean 'maxpool'?"),
    ("unknown_parameter.cnn", Code.UNKNOWN_PARAMETER, "did you mean 'dilation'?"),
    ("undefined_name.cnn", Code.UNDEFINED_NAME, "did you mean 'width'?"),
])
def test_misspellings_come_with_a_suggestion(name: str, code: Code, hint: str) -> None:
    text, _ = _diagnostic(name, code)
    assert f"note: {hint}" in text


def test_all_errors_of_a_phase_are_collected() -> None:
    result = compiler.check(BAD / "several_errors.cnn")
    codes = [d.code for d in result.diagnostics]
    assert codes == [Code.UNKNOWN_PARAMETER, Code.UNKNOWN_LAYER, Code.KERNEL_TOO_LARGE,
                     Code.BAD_VALUE]


def test_failed_expect_shows_the_actual_value() -> None:
    text, _ = _diagnostic("expect_failed.cnn", Code.EXPECT_FAILED)
    assert "params is 314" in text
    result = compiler.check(BAD / "expect_failed.cnn")
    assert [e.ok for e in result.network.expects] == [False, False, True]  # type: ignore[union-attr]


def test_warnings_alone_leave_the_spec_ok() -> None:
    result = compiler.check(BAD / "unused_parameter.cnn")
    assert result.ok and result.network is not None
    assert [d.severity for d in result.diagnostics] == ["warning"]


def test_an_error_in_an_imported_block_names_the_call_that_led_there() -> None:
    text, result = _diagnostic("import_error_call_site.cnn", Code.CHANNEL_MISMATCH)
    (diagnostic,) = result.diagnostics
    assert Path(diagnostic.span.file).name == "grouped_unit.cnn"
    assert diagnostic.notes == (
        f"in block 'grouped_unit' called at {BAD / 'import_error_call_site.cnn'}:5:6",)
    assert "conv 7 5x5 pad 2 groups=2" in text  # the library's line is shown under the head


def test_a_tensor_used_before_its_statement_says_where_it_is_defined() -> None:
    text, _ = _diagnostic("used_before_definition.cnn", Code.UNDEFINED_NAME)
    assert "tensor 'a' is used before it is defined" in text
    assert "note: 'a' is defined later, at line 5" in text
