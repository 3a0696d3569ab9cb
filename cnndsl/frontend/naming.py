"""Naming: the spec paths of nodes (``layer3.2.conv1``), from labels, counters and scopes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnndsl.diagnostics import Code, Reporter, Span


@dataclass
class Frame:
    """The names visible inside one body: variables and labelled tensors."""

    env: dict[str, Any]
    tensors: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    prefix: str = ""  # the path of the block instance (or network) the body belongs to
    # label -> the outputs of its statement's repeated call (``m.*``); None: several repeats
    repeats: dict[str, list[str] | None] = field(default_factory=dict)


@dataclass
class Scope:
    """A naming scope: the path prefix and the per-word counters behind ``conv1``, ``conv2``."""

    prefix: str
    counters: dict[str, int] = field(default_factory=dict)
    block_index: int = 0
    numbered: bool = False  # block instances are 0, 1, 2 ... (a chain of blocks only)
    sequence: bool = False  # every call is numbered 0, 1, 2 ... (``label[]:``)

    def child(self, name: str, numbered: bool = False, sequence: bool = False) -> Scope:
        """A nested scope ``prefix.name.``."""
        return Scope(f"{self.prefix}{name}.", numbered=numbered or sequence, sequence=sequence)

    def next_index(self) -> str:
        """The next number of a numbered scope, as a path."""
        index = self.block_index
        self.block_index += 1
        return f"{self.prefix}{index}"


class Names:
    """The paths taken so far in one network, and how new ones are chosen."""

    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        self.taken: set[str] = set()
        self.suffixes: dict[str, int] = {}  # unique(): the last suffix tried per path
        self.leaves: set[str] = set()  # node paths: nothing may nest inside one
        self.scopes: set[str] = set()  # every proper prefix of a node path

    def nesting_conflict(self, path: str) -> str | None:
        """Why a node cannot live at ``path`` (a layer there or above it), or None; the path is
        then recorded: a module cannot both be a layer and hold layers (``fc`` and ``fc.0``)."""
        if path in self.scopes:
            inside = next(s for s in sorted(self.leaves) if s.startswith(path + "."))
            return f"'{path}' already holds '{inside}'; a layer cannot also be a scope"
        position = path.find(".")
        while position != -1:
            prefix = path[:position]
            if prefix in self.leaves:
                return f"'{path}' would nest inside layer '{prefix}'"
            position = path.find(".", position + 1)
        self.leaves.add(path)
        position = path.find(".")
        while position != -1:
            self.scopes.add(path[:position])
            position = path.find(".", position + 1)
        return None

    def claim(self, label: str, span: Span, frame: Frame, scope: Scope) -> str | None:
        """The path of a label, or None (reported) when the label or path is taken."""
        path = scope.prefix + label
        if label in frame.tensors or path in self.taken:
            self.reporter.error(Code.DUPLICATE_NAME, span, f"'{label}' is already defined")
            return None
        return path

    def auto_name(self, word: str, scope: Scope) -> str:
        """The next free ``word1``, ``word2`` ... of a scope, taken."""
        count = scope.counters.get(word, 0)
        while True:
            count += 1
            path = f"{scope.prefix}{word}{count}"
            if path not in self.taken:
                scope.counters[word] = count
                self.taken.add(path)
                return path

    def unique(self, path: str) -> str:
        """``path`` itself if free, else ``path2``, ``path3`` ...; taken."""
        # Names are only ever added, so the search resumes where it last stopped for this path:
        # 20,000 `se` in one scope took minutes when every call started again at 2.
        suffix = self.suffixes.get(path, 1)
        candidate = path if suffix == 1 else f"{path}{suffix}"
        while candidate in self.taken:
            suffix += 1
            candidate = f"{path}{suffix}"
        self.suffixes[path] = suffix
        self.taken.add(candidate)
        return candidate

    def unique_child(self, scope: Scope, name: str) -> str:
        """A free child name of a scope (relative to its prefix), taken."""
        path = self.unique(scope.prefix + name)
        return path[len(scope.prefix):]
