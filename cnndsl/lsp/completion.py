"""Completion: what may be typed at the cursor, read from the text before it.

The text being typed rarely parses, so the context comes from the current line (which word
starts the call after the last ``->``, what it has been given, whether a ``name=`` waits for its
value) and the names from the document's last parse that worked: its blocks, the tensors
labelled above the cursor, the parameters and constants in scope.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lsprotocol import types

from cnndsl import ir, layers
from cnndsl.expectations import SUBJECTS
from cnndsl.lsp import features, index
from cnndsl.lsp.workspace import Analysis
from cnndsl.syntax import ast

TOP_KEYWORDS = ("network", "block", "import", "const")
BODY_KEYWORDS = ("input", "output", "expect", "const")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IMPORT = re.compile(r'^\s*import\s+"([^"]*)$')
_KEYWORD_VALUE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([A-Za-z0-9_.]*)$")


def completion(analysis: Analysis, position: types.Position,
               snippets: bool = False) -> types.CompletionList:
    """The completion items at a position of the document."""
    lines = analysis.text.split("\n")
    line = lines[position.line] if position.line < len(lines) else ""
    prefix = line[: features.code_point(line, position.character) - 1]
    items = _items(analysis, position.line + 1, prefix, snippets)
    return types.CompletionList(is_incomplete=False, items=items)


def _items(analysis: Analysis, line: int, prefix: str,
           snippets: bool) -> list[types.CompletionItem]:
    code = _strip_strings(prefix)
    if "#" in code:
        return []  # in a comment
    found = _IMPORT.match(prefix)
    if found:
        return _files(analysis, found.group(1))
    if '"' in code.replace('""', ""):
        return []  # inside a string
    depth = _depth(analysis.text, line, prefix)
    if depth == 0:
        if re.fullmatch(r"\s*[A-Za-z_]*", prefix):
            return [_keyword(word) for word in TOP_KEYWORDS]
        return []
    scope = _scope(analysis, line)
    statement = code.lstrip()
    head = _WORD.match(statement)
    if head and head.group() in ("input", "const") and statement[head.end():].strip():
        return _values(analysis, scope, line)
    if head and head.group() == "output" and statement[head.end():].strip(" ,") != "":
        return _tensors(analysis, scope, line)
    if head and head.group() == "output" and statement.endswith(" "):
        return _tensors(analysis, scope, line)
    if head and head.group() == "expect" and statement[head.end():].startswith(" "):
        return _expect_subjects(analysis, scope, line)
    parts = re.split(r"->|\{|\|", statement)
    segment = parts[-1]
    at_start = len(parts) == 1
    label = re.match(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*:(?!=)", segment)
    if label and at_start:
        segment = segment[label.end():]
        at_start = False
    words = segment.lstrip()
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*|", words):
        items = _calls(analysis, scope, line, snippets)
        if at_start:
            items += [_keyword(word) for word in BODY_KEYWORDS]
        return items
    first = _WORD.match(words)
    if first is None:
        return []
    word = first.group()
    rest = words[first.end():]
    if rest.startswith("("):
        inside = rest[1:]
        if inside.count("(") >= inside.count(")") + 1 or ")" not in inside:
            if word in layers.TENSOR_OPS:
                return _tensors(analysis, scope, line)
            block = _known(analysis).definitions.blocks.get(word)
            if block is not None:
                return _block_params(analysis, block, inside, scope, line)
        return []
    waiting = _KEYWORD_VALUE.search(rest)
    layer = layers.LAYERS.get(word)
    if waiting and (rest.endswith("=") or not rest.endswith(" ")):
        name = waiting.group(1)
        return _param_values(analysis, layer, name, scope, line)
    if layer is not None and (rest.startswith((" ", "\t")) or rest == ""):
        if rest == "":
            return []
        return _layer_params(layer, rest)
    if word in ("residual", "se", "concat", "scale"):
        options = {"residual": ("project",), "se": ("reduction", "channels")}.get(word, ())
        return [_param_item(name, "", f"{word} option") for name in options]
    return []


# The context ----------------------------------------------------------------------------------


def _strip_strings(text: str) -> str:
    return re.sub(r'"[^"\n]*"', '""', text)


def _depth(text: str, line: int, prefix: str) -> int:
    """How deep in braces the cursor is (comments and strings skipped)."""
    lines = text.split("\n")
    before = "\n".join([*lines[: line - 1], prefix])
    depth = 0
    for match in re.finditer(r'#[^\n]*|"[^"\n]*"|[{}]', before):
        token = match.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth = max(depth - 1, 0)
    return depth


def _module(analysis: Analysis) -> ast.Module | None:
    return analysis.module or analysis.last_module


def _known(analysis: Analysis) -> Analysis:
    """The analysis to take names from: this one, or while it does not parse the last that did."""
    if analysis.module is None and analysis.last_good is not None:
        return analysis.last_good
    return analysis


def _scope(analysis: Analysis, line: int) -> str:
    """The network or block whose body holds the line (the nearest one above while typing)."""
    module = _module(analysis)
    if module is None:
        return ""
    best = ""
    for item in module.items:
        if isinstance(item, ast.NetworkDef | ast.BlockDef) and item.span.line <= line:
            best = item.name
    return best


def _names(analysis: Analysis) -> list[index.Occurrence]:
    module = _module(analysis)
    return features.occurrences_of(analysis, module) if module is not None else []


# Items ----------------------------------------------------------------------------------------


def _keyword(word: str) -> types.CompletionItem:
    return types.CompletionItem(label=word, kind=types.CompletionItemKind.Keyword)


def _calls(analysis: Analysis, scope: str, line: int,
           snippets: bool) -> list[types.CompletionItem]:
    items = []
    for word, layer in layers.LAYERS.items():
        usage = features.usage(layer)
        insert = None
        if snippets and layer.positional:
            fields = " ".join(f"${{{i}:{name}}}" for i, name in enumerate(layer.positional, 1))
            insert = f"{word} {fields}"
        items.append(types.CompletionItem(
            label=word, kind=types.CompletionItemKind.Function, detail=usage,
            documentation=_layer_doc(layer), insert_text=insert,
            insert_text_format=types.InsertTextFormat.Snippet if insert else None,
        ))
    for word in layers.COMPOSITES:
        body = snippets and word != "se"
        items.append(types.CompletionItem(
            label=word, kind=types.CompletionItemKind.Keyword,
            detail=features.COMPOSITE_HELP.get(word),
            insert_text=f"{word} {{\n\t$0\n}}" if body else None,
            insert_text_format=types.InsertTextFormat.Snippet if body else None,
        ))
    for word in layers.TENSOR_OPS:
        if word in layers.COMPOSITES:
            continue
        items.append(types.CompletionItem(
            label=word, kind=types.CompletionItemKind.Operator,
            detail=features.COMPOSITE_HELP.get(word),
            insert_text=f"{word}($1)" if snippets else None,
            insert_text_format=types.InsertTextFormat.Snippet if snippets else None,
        ))
    for name, block in _known(analysis).definitions.blocks.items():
        items.append(types.CompletionItem(
            label=name, kind=types.CompletionItemKind.Module,
            detail=features.signature(analysis, block),
            insert_text=f"{name}($1)" if snippets and block.params else None,
            insert_text_format=(types.InsertTextFormat.Snippet
                                if snippets and block.params else None),
        ))
    module = _module(analysis)
    known = _known(analysis).definitions.blocks
    if module is not None:
        for item in module.items:
            if isinstance(item, ast.BlockDef) and item.name not in known:
                items.append(types.CompletionItem(label=item.name,
                                                  kind=types.CompletionItemKind.Module))
    return items + _tensors(analysis, scope, line)


def _layer_doc(layer: layers.Layer) -> str:
    keywords = ", ".join(name for name in layer.params if name not in layer.positional)
    return layer.summary + (f"; keywords: {keywords}" if keywords else "")


def _tensors(analysis: Analysis, scope: str, line: int) -> list[types.CompletionItem]:
    shapes = _shapes(analysis, scope)
    items: dict[str, types.CompletionItem] = {}
    for occurrence in _names(analysis):
        if (occurrence.kind == index.TENSOR and occurrence.defines and occurrence.scope == scope
                and occurrence.span.line < line):
            items[occurrence.name] = types.CompletionItem(
                label=occurrence.name, kind=types.CompletionItemKind.Variable,
                detail=shapes.get(occurrence.name, "tensor"))
    return list(items.values())


def _shapes(analysis: Analysis, scope: str) -> dict[str, str]:
    for result in _known(analysis).results:
        network = result.network
        if network is not None and network.name == scope:
            by_name = network.by_name()
            return {label: ir.shape_str(by_name[path].shape)
                    for label, path in network.tensors.items() if path in by_name}
    return {}


def _values(analysis: Analysis, scope: str, line: int) -> list[types.CompletionItem]:
    items: dict[str, types.CompletionItem] = {}
    for occurrence in _names(analysis):
        if (occurrence.kind == index.VALUE and occurrence.defines
                and occurrence.scope in ("", scope)):
            items[occurrence.name] = types.CompletionItem(
                label=occurrence.name, kind=types.CompletionItemKind.Constant,
                detail="parameter" if occurrence.scope else "constant")
    for const in _known(analysis).definitions.constants:
        items.setdefault(const.name, types.CompletionItem(
            label=const.name, kind=types.CompletionItemKind.Constant, detail="constant"))
    if _known(analysis).definitions.blocks.get(scope) is not None:
        items["in"] = types.CompletionItem(label="in", kind=types.CompletionItemKind.Constant,
                                           detail="the block input's channel count")
    return list(items.values())


def _param_item(name: str, default: str, detail: str) -> types.CompletionItem:
    return types.CompletionItem(
        label=f"{name}=", kind=types.CompletionItemKind.Property, insert_text=f"{name}=",
        detail=f"{detail} (default {default})" if default else detail,
        filter_text=name,
    )


def _given(rest: str) -> tuple[int, set[str], set[str]]:
    """How many bare arguments, which keywords and which bare words a call has been given."""
    text = re.sub(r"\([^()]*\)", "0", rest)  # tuples count as one argument
    keywords = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*=", text))
    text = re.sub(r"[A-Za-z_][A-Za-z0-9_]*\s*=\s*\S*", " ", text)
    if re.search(r"/\s*\S+", text):
        keywords.add("stride")
    text = re.sub(r"/\s*\S+", " ", text)
    if re.search(r"\bpad\s+\S+", text):
        keywords.add("padding")
    text = re.sub(r"\bpad\s+\S+", " ", text)
    tokens = text.split()
    return len(tokens), keywords, {t for t in tokens if _WORD.fullmatch(t)}


def _layer_params(layer: layers.Layer, rest: str) -> list[types.CompletionItem]:
    if not rest.endswith((" ", "\t")):
        rest = rest.rsplit(None, 1)[0] if len(rest.split()) > 1 else ""  # drop the partial word
    count, keywords, words = _given(rest)
    flags = [w for w in words if w in layer.flags]
    count -= len(flags)
    filled = set(layer.positional[:count]) | keywords
    filled |= {layer.flags[w][0] for w in flags}
    items = []
    for name, param in layer.params.items():
        if name in filled:
            continue
        required = param.default is layers.REQUIRED
        detail = f"{layer.word} {name}" + (" (required)" if required else "")
        items.append(_param_item(name, _DEFAULTS.get(name, features.default_text(param.default)),
                                 detail))
    if "padding" in layer.params and "padding" not in filled:
        items.append(types.CompletionItem(label="pad", kind=types.CompletionItemKind.Property,
                                          detail="pad P: the padding, like padding=P"))
    for flag, (target, _value) in layer.flags.items():
        if target not in filled:
            items.append(types.CompletionItem(label=flag, kind=types.CompletionItemKind.EnumMember,
                                              detail=f"{layer.word} {target}"))
    return items


_DEFAULTS = {"bias": "true, or false before bn"}


def _param_values(analysis: Analysis, layer: layers.Layer | None, name: str, scope: str,
                  line: int) -> list[types.CompletionItem]:
    items = _values(analysis, scope, line)
    if layer is None:
        return items
    param = layer.params.get({"pad": "padding"}.get(name, name))
    if param is None:
        return items
    options: tuple[str, ...] = ()
    if param.coerce is layers.padding:
        options = ("same", "valid")
    elif param.default in (True, False) or name in ("bias", "ceil", "count_include_pad"):
        options = ("true", "false")
    else:
        options = tuple(w for w, (target, _v) in layer.flags.items() if target == name)
    return [types.CompletionItem(label=o, kind=types.CompletionItemKind.EnumMember)
            for o in options] + items


def _block_params(analysis: Analysis, block: ast.BlockDef, inside: str, scope: str,
                  line: int) -> list[types.CompletionItem]:
    given = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*=", inside))
    text = analysis.sources.get(block.span.file, "")
    items = [types.CompletionItem(
        label=f"{p.name} = ", kind=types.CompletionItemKind.Property, filter_text=p.name,
        insert_text=f"{p.name} = ", detail=features.source_text(text, p.span) or p.name)
        for p in block.params if p.name not in given]
    return items + _values(analysis, scope, line)


def _expect_subjects(analysis: Analysis, scope: str, line: int) -> list[types.CompletionItem]:
    items = [types.CompletionItem(label=" ".join(words), kind=types.CompletionItemKind.Keyword)
             for words in SUBJECTS]
    return items + _tensors(analysis, scope, line)


def _files(analysis: Analysis, typed: str) -> list[types.CompletionItem]:
    base = Path(analysis.file).parent if os.path.isabs(analysis.file) else Path.cwd()
    folder = base / typed.rsplit("/", 1)[0] if "/" in typed else base
    head = typed.rsplit("/", 1)[0] + "/" if "/" in typed else ""
    items = []
    try:
        entries = sorted(folder.iterdir())[:500]
    except OSError:
        return []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            items.append(types.CompletionItem(label=entry.name + "/",
                                              kind=types.CompletionItemKind.Folder,
                                              insert_text=head + entry.name + "/"))
        elif entry.suffix == ".cnn" and str(entry) != analysis.file:
            items.append(types.CompletionItem(label=entry.name,
                                              kind=types.CompletionItemKind.File,
                                              insert_text=head + entry.name))
    return items
