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


@dataclass
class Scope:
    """A naming scope: the path prefix and the per-word counters behind ``conv1``, ``conv2``."""

    prefix: str
    counters: dict[str, int] = field(default_factory=dict)
    block_index: int = 0
    numbered: bool = False  # block instances are 0, 1, 2 ... (a chain of blocks only)

    def child(self, name: str, numbered: bool = False) -> Scope:
        """A nested scope ``prefix.name.``."""
        return Scope(f"{self.prefix}{name}.", numbered=numbered)


class Names:
    """The paths taken so far in one network, and how new ones are chosen."""

    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        self.taken: set[str] = set()
        self.suffixes: dict[str, int] = {}  # unique(): the last suffix tried per path

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
