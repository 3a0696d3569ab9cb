"""The language server's answers as functions of an analysis and a position.

Nothing here talks to a client: each function takes the ``Analysis`` of a document (and, where
shapes or references may come from other open documents, their analyses) and returns the
``lsprotocol`` value that the server sends back. Positions in and out are LSP's: 0-based lines
and UTF-16 columns; spans are 1-based with code-point columns.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types

from cnndsl import ir, layers
from cnndsl.analysis import flops, receptive
from cnndsl.diagnostics import Diagnostic, Span
from cnndsl.lsp import index
from cnndsl.lsp.index import Occurrence
from cnndsl.lsp.workspace import Analysis, file_to_uri
from cnndsl.syntax import ast

SOURCE = "cnndsl"
MAX_LISTED = 8  # instances listed in a hover before "... and N more"

# Positions ------------------------------------------------------------------------------------


def _lines(analysis: Analysis, file: str) -> list[str]:
    key = f"lines:{file}"
    if key not in analysis.cache:
        text = analysis.text if file == analysis.file else analysis.sources.get(file, "")
        analysis.cache[key] = text.split("\n")
    lines = analysis.cache[key]
    assert isinstance(lines, list)
    return lines


def _utf16(line: str, col: int) -> int:
    """The UTF-16 offset of a 1-based code-point column."""
    prefix = line[: max(col - 1, 0)]
    if prefix.isascii():
        return len(prefix) + max(col - 1 - len(line), 0)
    return len(prefix.encode("utf-16-le")) // 2


def code_point(line: str, character: int) -> int:
    """The 1-based code-point column of a UTF-16 offset."""
    if line.isascii():
        return character + 1
    units = 0
    for position, char in enumerate(line):
        if units >= character:
            return position + 1
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line) + 1


def to_range(analysis: Analysis, span: Span) -> types.Range:
    """A span as an LSP range in its own file."""
    lines = _lines(analysis, span.file)

    def position(line: int, col: int) -> types.Position:
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return types.Position(line=max(line - 1, 0), character=_utf16(text, col))

    start = position(span.line, span.col)
    end = position(span.end_line, span.end_col)
    if (end.line, end.character) < (start.line, start.character):
        end = start
    return types.Range(start=start, end=end)


def from_position(analysis: Analysis, position: types.Position) -> tuple[int, int]:
    """An LSP position as a 1-based (line, column) of the document."""
    lines = _lines(analysis, analysis.file)
    text = lines[position.line] if position.line < len(lines) else ""
    return position.line + 1, code_point(text, position.character)


def location(analysis: Analysis, span: Span) -> types.Location:
    """A span as an LSP location."""
    uri = analysis.uri if span.file == analysis.file else file_to_uri(span.file)
    return types.Location(uri=uri, range=to_range(analysis, span))


# Diagnostics ----------------------------------------------------------------------------------

_SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning}
_DID_YOU_MEAN = re.compile(r"did you mean '([^']+)'\?")


def diagnostics(analysis: Analysis) -> list[types.Diagnostic]:
    """The document's diagnostics; those inside imported files are shown where they are used."""
    result = []
    for diagnostic in analysis.diagnostics:
        span = diagnostic.span
        message = diagnostic.message
        related = []
        if span.file != analysis.file:
            where = _relative(span.file, analysis.file)
            related.append(types.DiagnosticRelatedInformation(
                location=location(analysis, span), message=f"{message} (here)"))
            message = f"{message} (in {where}:{span.line}:{span.col})"
            span = _where_used(analysis, span)
        own = location(analysis, span)
        related.extend(types.DiagnosticRelatedInformation(location=own, message=note)
                       for note in diagnostic.notes)
        result.append(types.Diagnostic(
            range=own.range, message=message, severity=_SEVERITY.get(diagnostic.severity),
            code=diagnostic.code.slug, source=SOURCE, related_information=related or None,
            data={"id": diagnostic.code.id, "notes": list(diagnostic.notes)},
        ))
    return result


def _relative(file: str, base: str) -> str:
    try:
        return str(Path(file).relative_to(Path(base).resolve().parent))
    except ValueError:
        return file


def _where_used(analysis: Analysis, span: Span) -> Span:
    """The place in the document that leads to a span of an imported file: the first call of
    the block that holds it (or of a block that calls that one), else the first import."""
    module = analysis.module
    if module is None:
        return Span(file=analysis.file)
    holders = {name for name, block in analysis.definitions.blocks.items()
               if block.span.file == span.file and index.contains(block.span, span.line,
                                                                   span.col)}
    callers = _callers(analysis)
    reached = set(holders)
    while True:
        more = {caller for name in reached for caller in callers.get(name, ())} - reached
        if not more:
            break
        reached |= more
    calls = [o for o in occurrences_of(analysis, module)
             if o.kind == index.LAYER and o.name in reached and o.span.file == analysis.file]
    if calls:
        return calls[0].span
    imports = [item for item in module.items if isinstance(item, ast.Import)]
    return imports[0].span if imports else Span(file=analysis.file)


def _callers(analysis: Analysis) -> dict[str, set[str]]:
    """For each block, the blocks whose bodies call it."""
    callers: dict[str, set[str]] = {}
    for module in analysis.modules.values():
        for occurrence in occurrences_of(analysis, module):
            if occurrence.kind == index.LAYER and occurrence.name in analysis.definitions.blocks:
                callers.setdefault(occurrence.name, set()).add(occurrence.scope)
    return callers


def occurrences_of(analysis: Analysis, module: ast.Module) -> list[Occurrence]:
    key = f"occurrences:{module.file}:{id(module)}"
    if key not in analysis.cache:
        analysis.cache[key] = index.occurrences(module)
    found = analysis.cache[key]
    assert isinstance(found, list)
    return found


# Resolving names ------------------------------------------------------------------------------


def _target(analysis: Analysis, position: types.Position) -> Occurrence | None:
    if analysis.module is None:
        return None
    line, col = from_position(analysis, position)
    return index.at(occurrences_of(analysis, analysis.module), line, col)


def _definition_of(analysis: Analysis, occurrence: Occurrence) -> Span | None:
    """Where the name of an occurrence is defined."""
    if occurrence.defines:
        return occurrence.span
    if occurrence.kind == index.LAYER:
        block = analysis.definitions.blocks.get(occurrence.name)
        return block.name_span if block is not None else None
    module = analysis.modules.get(occurrence.span.file)
    if module is None:
        return None
    found = occurrences_of(analysis, module)
    if occurrence.kind in (index.TENSOR, index.VALUE):
        for other in found:
            if (other.defines and other.kind == occurrence.kind and other.name == occurrence.name
                    and other.scope == occurrence.scope and occurrence.scope):
                return other.span
    if occurrence.kind == index.VALUE:
        for const in analysis.definitions.constants:
            if const.name == occurrence.name:
                return const.name_span
    return None


def _import_file(analysis: Analysis, occurrence: Occurrence) -> str | None:
    base = Path(occurrence.span.file).parent
    try:
        path = (base / occurrence.name).resolve()
    except (OSError, ValueError, RuntimeError):
        return None
    return str(path) if path.is_file() else None


def definition(analysis: Analysis, position: types.Position) -> list[types.Location]:
    """Go to definition: of a block, a tensor label, a constant or parameter, an import."""
    occurrence = _target(analysis, position)
    if occurrence is None:
        return []
    if occurrence.kind == index.IMPORT:
        path = _import_file(analysis, occurrence)
        if path is None:
            return []
        start = types.Position(line=0, character=0)
        return [types.Location(uri=file_to_uri(path), range=types.Range(start=start, end=start))]
    span = _definition_of(analysis, occurrence)
    return [location(analysis, span)] if span is not None else []


def references(analysis: Analysis, position: types.Position, include_declaration: bool,
               others: Sequence[Analysis] = ()) -> list[types.Location]:
    """Find references: every use of the block, tensor or value under the cursor."""
    occurrence = _target(analysis, position)
    if occurrence is None or occurrence.kind in (index.IMPORT, index.NETWORK):
        return []
    defined = _definition_of(analysis, occurrence)
    is_block = occurrence.kind == index.LAYER or (
        occurrence.kind == index.BLOCK and occurrence.defines)
    if is_block and occurrence.name not in analysis.definitions.blocks:
        return []  # a built-in layer word
    found: dict[tuple[str, int, int, int, int], types.Location] = {}
    for owner in [analysis, *others]:
        if is_block:
            block = owner.definitions.blocks.get(occurrence.name)
            if block is None or block.name_span != defined:
                continue
        for module in owner.modules.values():
            if not is_block and module.file != occurrence.span.file:
                continue
            for other in occurrences_of(owner, module):
                if other.name != occurrence.name:
                    continue
                if is_block:
                    same = other.kind == index.LAYER or (other.kind == index.BLOCK
                                                         and other.defines)
                else:
                    same = (other.kind == occurrence.kind and other.scope == occurrence.scope
                            and _definition_of(owner, other) == defined)
                if not same or (other.defines and not include_declaration):
                    continue
                span = other.span
                key = (span.file, span.line, span.col, span.end_line, span.end_col)
                found.setdefault(key, location(owner, span))
    return [found[key] for key in sorted(found)]


# Hover ----------------------------------------------------------------------------------------


def hover(analysis: Analysis, position: types.Position,
          others: Sequence[Analysis] = ()) -> types.Hover | None:
    """What the cursor is on: a tensor's shape and counts, a layer's, a block's signature."""
    occurrence = _target(analysis, position)
    if occurrence is None:
        return None
    lines: list[str] = []
    if occurrence.kind == index.TENSOR:
        lines = _tensor_hover(analysis, occurrence, others)
    elif occurrence.kind in (index.LAYER, index.BLOCK):
        if occurrence.name in analysis.definitions.blocks:
            lines = _block_hover(analysis, occurrence, others)
        else:
            lines = _word_hover(analysis, occurrence, others)
    elif occurrence.kind == index.NETWORK:
        lines = _network_hover(analysis, occurrence.name)
    elif occurrence.kind == index.VALUE:
        lines = _value_hover(analysis, occurrence)
    elif occurrence.kind == index.IMPORT:
        path = _import_file(analysis, occurrence)
        lines = [f"import `{path}`" if path else f"`{occurrence.name}` is not found"]
    if not lines:
        return None
    content = types.MarkupContent(kind=types.MarkupKind.Markdown, value="\n".join(lines))
    return types.Hover(contents=content, range=to_range(analysis, occurrence.span))


def _networks(analysis: Analysis, others: Sequence[Analysis]) -> list[ir.Network]:
    networks = [r.network for r in analysis.results if r.network is not None]
    for other in others:
        networks.extend(r.network for r in other.results if r.network is not None)
    return networks


class _Table:
    """A network's nodes by path and its paths in order, for hovers (built once per network)."""

    def __init__(self, network: ir.Network):
        self.network = network
        self.by_name = network.by_name()
        self.paths = sorted(self.by_name)
        # The server's check leaves receptive fields out (they are most of a re-check of a long
        # spec); the first hover computes them. annotate sets every input's own field, so an
        # input without one means they were not computed.
        if any(self.by_name[name].receptive_field is None for name in network.inputs
               if name in self.by_name):
            receptive.annotate(network)

    def under(self, path: str) -> list[ir.Node]:
        """The nodes a path names: its own node, or every node below it (a block, a chain)."""
        if path in self.by_name:
            return [self.by_name[path]]
        # The paths below `path.` are one run of the sorted list: '/' follows '.'.
        start = bisect.bisect_left(self.paths, path + ".")
        end = bisect.bisect_left(self.paths, path + "/", start)
        nodes: list[ir.Node] = [self.by_name[name] for name in self.paths[start:end]]
        target = self.network.tensors.get(path, path)
        return nodes or ([self.by_name[target]] if target in self.by_name else [])

    def output(self, path: str) -> ir.AnyNode | None:
        """The node whose tensor a path (or a label) names."""
        return self.by_name.get(self.network.tensors.get(path, path))


def _table(analysis: Analysis, network: ir.Network) -> _Table:
    key = f"table:{id(network)}"
    kept = analysis.cache.get(key)
    if not isinstance(kept, _Table) or kept.network is not network:  # an id reused
        kept = _Table(network)
        analysis.cache[key] = kept
    return kept


def _by_span(analysis: Analysis, others: Sequence[Analysis]) -> dict[Any, list[Any]]:
    """Nodes and block instances keyed by their source span, from every checked network."""
    key = "by_span"
    if key not in analysis.cache:
        table: dict[Any, list[Any]] = {}
        for network in _networks(analysis, others):
            for node in network.nodes:
                table.setdefault(_key(node.span), []).append((network, node))
            for instance in network.instances:
                table.setdefault(("instance", *_key(instance.span)), []).append(
                    (network, instance))
        analysis.cache[key] = table
    kept = analysis.cache[key]
    assert isinstance(kept, dict)
    return kept


def _key(span: Span) -> tuple[str, int, int, int, int]:
    return (span.file, span.line, span.col, span.end_line, span.end_col)


def _shape(shape: ir.Shape | None) -> str:
    return ir.shape_str(shape)


def _macs(network: ir.Network, nodes: Iterable[ir.Node]) -> int | None:
    try:
        return sum(flops.node_macs(node, network) for node in nodes)
    except ValueError:  # symbolic sizes: MACs need concrete ones
        return None


def _counts(network: ir.Network, nodes: list[ir.Node]) -> str:
    params = sum(node.params for node in nodes)
    macs = _macs(network, nodes)
    text = f"{params:,} params"
    return text + (f", {_count(macs)} MACs" if macs is not None else "")


def _count(value: int) -> str:
    for prefix, scale in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}"
    return str(value)


def _listed(rows: list[str]) -> list[str]:
    if len(rows) <= MAX_LISTED:
        return rows
    return [*rows[:MAX_LISTED], f"- ... and {len(rows) - MAX_LISTED} more"]


def _tensor_hover(analysis: Analysis, occurrence: Occurrence,
                  others: Sequence[Analysis]) -> list[str]:
    lines = [f"**tensor** `{occurrence.name}`"]
    rows = []
    networks = _networks(analysis, others)
    for network in networks:
        table = _table(analysis, network)
        for path in _tensor_paths(analysis, network, occurrence):
            output = table.output(path)
            if output is None:
                continue
            rows.append(f"- `{path}`: **{_shape(output.shape)}**, "
                        f"{_counts(network, table.under(path))}{_field(network, output)}"
                        + (f" (network `{network.name}`)" if len(networks) > 1 else ""))
    if not rows:
        return [*lines, "", "no shape: the network does not check"]
    return [*lines, "", *_listed(rows)]


def _field(network: ir.Network, node: ir.AnyNode) -> str:
    """``, receptive field 35 (jump 4)``: the window of input pixels one output reads."""
    record = node.receptive_field
    if record is None:
        return ""
    text = f", receptive field {receptive.size_text(record)}"
    if record.jump is not None:
        text += f" (jump {receptive.pair_text(record.jump)})"
    if len(network.inputs) > 1:
        text += f" of `{record.input}`"
    return text


def _tensor_paths(analysis: Analysis, network: ir.Network, occurrence: Occurrence) -> list[str]:
    """The paths a tensor label names in a network: one, or one per instance of its block."""
    if occurrence.scope == network.name and network.file == occurrence.span.file:
        return [occurrence.name] if occurrence.name in network.tensors else []
    return [f"{instance.path}.{occurrence.name}" for instance in network.instances
            if instance.block == occurrence.scope
            and analysis.definitions.blocks.get(instance.block) is not None
            and analysis.definitions.blocks[instance.block].span.file == occurrence.span.file]


def _layer_rows(analysis: Analysis, occurrence: Occurrence,
                others: Sequence[Analysis]) -> list[str]:
    assert occurrence.call is not None
    spans = _by_span(analysis, others)
    rows = []
    for network, node in spans.get(_key(occurrence.call.span), []):
        if not isinstance(node, ir.Node):
            continue
        _table(analysis, network)  # the receptive fields, on the first hover
        rows.append(f"- `{node.name}` ({node.kind}): **{_shape(node.shape)}**, "  # type: ignore[attr-defined]
                    f"{_counts(network, [node])}{_field(network, node)}")
    return rows


def _word_hover(analysis: Analysis, occurrence: Occurrence,
                others: Sequence[Analysis]) -> list[str]:
    word = occurrence.name
    layer = layers.LAYERS.get(word)
    if layer is not None:
        lines = [f"```cnn\n{usage(layer)}\n```", layer.summary]
        keywords = []
        for name, param in layer.params.items():
            if name not in layer.positional:
                default = default_text(param.default)
                keywords.append(f"`{name}`" + (f" = {default}" if default else ""))
        if keywords:
            lines.append("keywords: " + ", ".join(keywords))
    elif word in layers.COMPOSITES or word in layers.TENSOR_OPS:
        lines = [f"**{word}**: {COMPOSITE_HELP.get(word, 'a composite')}"]
    else:
        return []
    if occurrence.call is not None:
        rows = _layer_rows(analysis, occurrence, others)
        if rows:
            lines += ["", *_listed(rows)]
    return lines


COMPOSITE_HELP = {
    "residual": "the body's output plus its input (a 1x1 projection is added where the shape "
                "changes); `shortcut { ... }` writes the other path",
    "concat": "the branches of the body (separated by `|` or new lines), joined along channels",
    "scale": "the input multiplied by the body's output (a gate)",
    "se": "squeeze-and-excitation: `se reduction=16`",
    "add": "element-wise sum of tensors: `add(a, b)`",
    "mul": "element-wise product of tensors: `mul(a, b)`",
}


def usage(layer: layers.Layer) -> str:
    """``conv FILTERS KERNEL [stride=...]``: how a layer word is written."""
    positional = " ".join(name.upper() for name in layer.positional)
    return f"{layer.word} {positional}".rstrip()


def default_text(value: Any) -> str:
    if value is None or value is layers.REQUIRED:
        return ""
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def signature(analysis: Analysis, block: ast.BlockDef | ast.NetworkDef) -> str:
    """``block bottleneck(width, stride = 1)`` as written."""
    text = analysis.sources.get(block.span.file, "")
    params = ", ".join(source_text(text, p.span) or p.name for p in block.params)
    word = "block" if isinstance(block, ast.BlockDef) else "network"
    return f"{word} {block.name}({params})" if block.params else f"{word} {block.name}"


def source_text(text: str, span: Span) -> str:
    lines = text.split("\n")
    if span.line != span.end_line or not 0 < span.line <= len(lines):
        return ""
    return lines[span.line - 1][span.col - 1: span.end_col - 1]


def _doc_comment(analysis: Analysis, definition: ast.BlockDef) -> str:
    lines = analysis.sources.get(definition.span.file, "").split("\n")
    comment: list[str] = []
    line = definition.span.line - 2
    while line >= 0 and lines[line].lstrip().startswith("#"):
        comment.insert(0, lines[line].lstrip()[1:].strip())
        line -= 1
    return " ".join(comment)


def _block_hover(analysis: Analysis, occurrence: Occurrence,
                 others: Sequence[Analysis]) -> list[str]:
    block = analysis.definitions.blocks[occurrence.name]
    where = _relative(block.span.file, analysis.file)
    lines = [f"```cnn\n{signature(analysis, block)}\n```"]
    doc = _doc_comment(analysis, block)
    if doc:
        lines.append(doc)
    lines.append(f"defined in `{where}` line {block.span.line}")
    if occurrence.call is not None:
        rows = []
        table = _by_span(analysis, others)
        for network, instance in table.get(("instance", *_key(occurrence.call.span)), []):
            nodes = _table(analysis, network)
            output = nodes.by_name.get(instance.output)
            rows.append(f"- `{instance.path}`: **{_shape(output.shape if output else None)}**, "
                        f"{_counts(network, nodes.under(instance.path))}"
                        + (_field(network, output) if output else ""))
        if rows:
            lines += ["", *_listed(rows)]
    return lines


def _network_hover(analysis: Analysis, name: str) -> list[str]:
    definition = analysis.definitions.networks.get(name)
    if definition is None:
        return []
    lines = [f"```cnn\n{signature(analysis, definition)}\n```"]
    for result in analysis.results:
        network = result.network
        if network is None or network.name != name:
            continue
        outputs = ", ".join(f"`{k}`: {_shape(v)}" for k, v in network.output_shapes().items())
        macs = _macs(network, network.nodes)
        lines.append(f"{len(network.nodes):,} layers, {network.total_params:,} params"
                     + (f", {_count(macs)} MACs" if macs is not None else ""))
        lines.append(f"outputs {outputs}")
    return lines


def _value_hover(analysis: Analysis, occurrence: Occurrence) -> list[str]:
    span = _definition_of(analysis, occurrence)
    if span is None:
        return []
    text = analysis.sources.get(span.file, analysis.text)
    line = text.split("\n")[span.line - 1].strip() if span.line else ""
    return [f"```cnn\n{line}\n```"]


# Outline --------------------------------------------------------------------------------------


def document_symbols(analysis: Analysis) -> list[types.DocumentSymbol]:
    """The outline: networks and blocks, with their inputs, labelled layers and constants."""
    module = analysis.module or analysis.last_module
    if module is None:
        return []
    symbols = []
    for item in module.items:
        if isinstance(item, ast.Const):
            symbols.append(_symbol(analysis, item.name, types.SymbolKind.Constant, item.span,
                                   item.name_span))
        elif isinstance(item, ast.NetworkDef | ast.BlockDef):
            kind = (types.SymbolKind.Class if isinstance(item, ast.NetworkDef)
                    else types.SymbolKind.Function)
            symbol = _symbol(analysis, item.name, kind, item.span, item.name_span,
                             signature(analysis, item))
            symbol.children = list(_body_symbols(analysis, item.body))
            symbols.append(symbol)
    return symbols


def _body_symbols(analysis: Analysis, body: ast.Body) -> Iterable[types.DocumentSymbol]:
    for statement in body.statements:
        if isinstance(statement, ast.Input):
            yield _symbol(analysis, statement.name, types.SymbolKind.Variable, statement.span,
                          statement.name_span, "input")
        elif isinstance(statement, ast.Const):
            yield _symbol(analysis, statement.name, types.SymbolKind.Constant, statement.span,
                          statement.name_span)
        elif isinstance(statement, ast.ChainStatement):
            nested = [s for call in statement.chain.calls for b in (call.body, call.shortcut)
                      if b is not None for s in _body_symbols(analysis, b)]
            if statement.label is not None and statement.label_span is not None:
                words = " -> ".join(call.name for call in statement.chain.calls)
                symbol = _symbol(analysis, statement.label, types.SymbolKind.Field,
                                 statement.span, statement.label_span, words)
                symbol.children = nested or None
                yield symbol
            else:
                yield from nested


def _symbol(analysis: Analysis, name: str, kind: types.SymbolKind, span: Span,
            name_span: Span, detail: str | None = None) -> types.DocumentSymbol:
    whole = to_range(analysis, span)
    selection = to_range(analysis, name_span)
    return types.DocumentSymbol(name=name, kind=kind, range=whole, selection_range=selection,
                                detail=detail)


# Quick fixes ----------------------------------------------------------------------------------


def code_actions(analysis: Analysis, wanted: types.Range) -> list[types.CodeAction]:
    """A quick fix for each "did you mean" diagnostic that touches the range."""
    actions = []
    for diagnostic, lsp in zip(analysis.diagnostics, diagnostics(analysis), strict=True):
        if diagnostic.span.file != analysis.file or not _overlaps(lsp.range, wanted):
            continue
        replacement = _suggestion(diagnostic)
        current = source_text(analysis.text, diagnostic.span)
        if replacement is None or not current.isidentifier():
            continue
        edit = types.TextEdit(range=lsp.range, new_text=replacement)
        actions.append(types.CodeAction(
            title=f"Change '{current}' to '{replacement}'", kind=types.CodeActionKind.QuickFix,
            diagnostics=[lsp], is_preferred=True,
            edit=types.WorkspaceEdit(changes={analysis.uri: [edit]}),
        ))
    return actions


def _suggestion(diagnostic: Diagnostic) -> str | None:
    for note in diagnostic.notes:
        match = _DID_YOU_MEAN.search(note)
        if match:
            return match.group(1)
    return None


def _overlaps(a: types.Range, b: types.Range) -> bool:
    def key(p: types.Position) -> tuple[int, int]:
        return (p.line, p.character)

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)
