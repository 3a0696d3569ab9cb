"""Pairing a checkpoint's tensors with a network's: by name, by order, or ``auto``.

The target is a network's tensors as ``(key, shape)`` in the spec's order; the source is any
mapping of key -> array (numpy arrays or torch tensors; only ``.shape`` is read here).

- Keys are first rewritten: a ``module.`` (DDP) or ``_orig_mod.`` (``torch.compile``) prefix on
  every key is stripped, then each ``--rename OLD=NEW`` rule replaces a prefix (the longest rule
  that applies wins).
- ``by="name"`` pairs equal keys. ``by="order"`` pairs the tensors in order, but in the order of
  the source's module tree rather than its flat dict order: a state dict lists a module's own
  parameters before its children's (ConvNeXt's layer scale), and a reference may register
  children in another order than it runs them (RegNet's projection before its branch). Siblings
  are tried in registration order first, and reordered only when the shapes force it.
  ``by="auto"`` takes names where they fit and the order for the rest.
- Shapes fit when they are equal up to trailing ones: a linear weight ``(out, in)`` loads into a
  1x1 convolution ``(out, in, 1, 1)`` and back, a ``(C,)`` scale into ``(C, 1, 1)``.
- Batch-norm ``num_batches_tracked`` counters are never matched on their own: they follow
  their running mean (:attr:`Match.counters`).

The outcome is one :class:`~cnndsl.weights.report.Report`, not an error per tensor.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnndsl.weights.report import Report

Shape = tuple[int, ...]
COUNTER = "num_batches_tracked"
AUTO_PREFIXES = ("module.", "_orig_mod.")
MODES = ("auto", "name", "order")
SEARCH_BUDGET = 200_000  # shape comparisons the order search may spend before giving up


@dataclass(frozen=True)
class Match:
    """Target key -> source key for every tensor that loads, with the report."""

    pairs: dict[str, str]
    report: Report
    counters: dict[str, str] = field(default_factory=dict)  # num_batches_tracked, same way

    def arrays(self, source: Mapping[str, Any], shapes: Mapping[str, Shape]) -> dict[str, Any]:
        """The source's tensors under the target's keys, reshaped where the shapes differ."""
        result: dict[str, Any] = {}
        for target, key in self.pairs.items():
            value = source[key]
            result[target] = value if tuple(value.shape) == shapes[target] else \
                value.reshape(shapes[target])
        return result


def parse_rename(rules: Sequence[str]) -> list[tuple[str, str]]:
    """``OLD=NEW`` strings as pairs; ValueError names a rule without ``=``."""
    pairs = []
    for rule in rules:
        old, sep, new = rule.partition("=")
        if not sep or not old:
            raise ValueError(f"--rename takes OLD=NEW (a key prefix and its replacement), "
                             f"got {rule!r}")
        pairs.append((old, new))
    return pairs


def fits(source: Shape, target: Shape) -> bool:
    """Equal shapes, or equal up to trailing ones (linear <-> 1x1 convolution)."""
    return source == target or _squeezed(source) == _squeezed(target)


def _squeezed(shape: Shape) -> Shape:
    end = len(shape)
    while end > 1 and shape[end - 1] == 1:
        end -= 1
    return shape[:end]


def rewrite_keys(keys: Sequence[str],
                 rename: Sequence[tuple[str, str]] = ()) -> tuple[dict[str, str], list[str]]:
    """New key -> original key after prefix stripping and renames, and notes on what was done."""
    notes = []
    current = {key: key for key in keys}
    for prefix in AUTO_PREFIXES:
        while current and all(key.startswith(prefix) for key in current):
            current = {key[len(prefix):]: old for key, old in current.items()}
            notes.append(f"stripped the prefix {prefix!r} of every key")
    if rename:
        rules = sorted(rename, key=lambda rule: -len(rule[0]))
        renamed: dict[str, str] = {}
        for key, old in current.items():
            new = next((n + key[len(o):] for o, n in rules if key.startswith(o)), key)
            renamed.setdefault(new, old)
        current = renamed
    return current, notes


def match_weights(targets: Sequence[tuple[str, Shape]], source: Mapping[str, Any], *,
                  by: str = "auto", rename: Sequence[tuple[str, str]] = (),
                  source_name: str = "weights", network: str = "network",
                  ordered: bool = True) -> Match:
    """Pair ``source``'s tensors with ``targets`` (see the module docstring for the rules).

    ``ordered=False`` says the source's order means nothing (a safetensors file sorts its
    keys); matching by order then follows the natural order of the keys, and says so.
    """
    if by not in MODES:
        raise ValueError(f"by must be one of {', '.join(MODES)}, not {by!r}")
    wanted = [(key, tuple(shape)) for key, shape in targets if not key.endswith(COUNTER)]
    shapes = {key: tuple(value.shape) for key, value in source.items()
              if not key.endswith(COUNTER)}
    names, notes = rewrite_keys(list(shapes), rename)
    if not ordered:
        names = dict(sorted(names.items(), key=lambda item: _natural(item[0])))
    renamed = {new: shapes[old] for new, old in names.items()}
    pairs: dict[str, str] = {}  # target -> new (rewritten) source key
    how = []
    misfit: tuple[str, str] | None = None  # where pairing by order stopped
    if by in ("name", "auto"):
        pairs = {key: key for key, shape in wanted if key in renamed and
                 fits(renamed[key], shape)}
        if pairs:
            how.append(f"{len(pairs)} by name")
    if by == "order" or (by == "auto" and len(pairs) < len(wanted)):
        rest_targets = [(k, s) for k, s in wanted if k not in pairs]
        used = set(pairs.values())
        rest_source = {k: s for k, s in renamed.items() if k not in used}
        ordered_pairs = _match_order(rest_targets, rest_source)
        if ordered_pairs is None and (by == "order" or not pairs):
            ordered_pairs, misfit = _prefix_order(rest_targets, rest_source)
        if ordered_pairs:
            pairs.update(ordered_pairs)
            how.append(f"{len(ordered_pairs)} by order")
            if not ordered:
                notes.append(f"{source_name} records no tensor order (safetensors sorts its "
                             "keys): the order was taken from the keys' names")
    if by == "name" and len(pairs) < len(wanted) and _match_order(wanted, renamed):
        notes.append(f"by order all {len(wanted)} tensors fit: try matching by order or auto")
    report = _report(wanted, renamed, names, pairs, misfit, how, notes, source_name, network,
                     by)
    originals = {target: names[new] for target, new in pairs.items()}
    return Match(originals, report, _counters(originals, source))


def _report(wanted: list[tuple[str, Shape]], renamed: dict[str, Shape], names: dict[str, str],
            pairs: dict[str, str], misfit: tuple[str, str] | None, how: list[str],
            notes: list[str], source_name: str, network: str, by: str) -> Report:
    used = set(pairs.values())
    missing, mismatched = [], []
    taken = set(used)
    for key, shape in wanted:
        if key in pairs:
            continue
        theirs = misfit[1] if misfit and misfit[0] == key else key if by != "order" else None
        if theirs is not None and theirs in renamed and theirs not in taken:
            mismatched.append((key, names[theirs], renamed[theirs], shape))
            taken.add(theirs)
        else:
            missing.append((key, shape))
    unexpected = [(names[k], s) for k, s in renamed.items() if k not in taken]
    reshaped = sum(renamed[new] != shape for (key, shape) in wanted
                   if (new := pairs.get(key)) is not None)
    hint: list[str] = []
    if missing and unexpected:
        hint = suggest_rename(missing, [(k, s) for k, s in renamed.items() if k not in taken])
    return Report(source=source_name, network=network, by=by, how=", ".join(how),
                  matched=len(pairs), reshaped=reshaped, missing=missing,
                  unexpected=unexpected, mismatched=mismatched, hint=tuple(hint), notes=notes)


def _counters(pairs: dict[str, str], source: Mapping[str, Any]) -> dict[str, str]:
    counters = {}
    for target, key in pairs.items():
        if target.endswith(".running_mean") and key.endswith(".running_mean"):
            theirs = key[: -len("running_mean")] + COUNTER
            if theirs in source:
                counters[target[: -len("running_mean")] + COUNTER] = theirs
    return counters


# A module's own tensors in the order PyTorch's layers register them.
LEAF_ORDER = {"weight": 0, "bias": 1, "running_mean": 2, "running_var": 3, COUNTER: 4}


def _natural(key: str) -> list[tuple[int, int | str]]:
    """A sort key in which ``layer1.10`` follows ``layer1.2`` and a weight precedes its bias."""
    path, _, leaf = key.rpartition(".")
    parts: list[tuple[int, int | str]] = [(0, int(part)) if part.isdigit() else (1, part)
                                          for part in re.split(r"(\d+)", path) if part]
    return [*parts, (2, LEAF_ORDER.get(leaf, len(LEAF_ORDER))), (3, leaf)]


# by order ---------------------------------------------------------------------------------------


@dataclass
class _Tree:
    """A module of the source: its own tensors and its children, in registration order."""

    own: list[str] = field(default_factory=list)
    children: dict[str, _Tree] = field(default_factory=dict)

    def items(self) -> list[_Tree | list[str]]:
        """What runs in order: the children, then the module's own tensors (post-order)."""
        found: list[_Tree | list[str]] = list(self.children.values())
        return [*found, self.own] if self.own else found


def _tree(keys: Sequence[str]) -> _Tree:
    root = _Tree()
    for key in keys:
        node = root
        *path, _ = key.split(".")
        for segment in path:
            node = node.children.setdefault(segment, _Tree())
        node.own.append(key)
    return root


def _flatten(item: _Tree | list[str]) -> list[str]:
    if isinstance(item, list):
        return item
    return [key for child in item.items() for key in _flatten(child)]


class _Budget(Exception):
    """The order search spent its budget."""


class _OrderSearch:
    """Depth-first search over sibling orders of the source tree that fit the target shapes.

    Reorders are allowed down to a depth that grows from the root: a reference that registers a
    block's projection before its branch differs at that block, not inside the branch, so a
    solution with shallower reorders is preferred where the shapes allow both.
    """

    def __init__(self, targets: list[Shape], shapes: dict[str, Shape]) -> None:
        self.targets = targets
        self.shapes = shapes
        self.spent = 0
        self.failed: set[tuple[int, tuple[int, ...], int, int]] = set()
        self.keys: dict[int, list[str]] = {}
        self.signatures: dict[int, tuple[Shape, ...]] = {}

    def _keys(self, item: _Tree | list[str]) -> list[str]:
        if id(item) not in self.keys:
            keys = _flatten(item)
            self.keys[id(item)] = keys
            self.signatures[id(item)] = tuple(self.shapes[k] for k in keys)
        return self.keys[id(item)]

    def _plain(self, keys: list[str], pos: int) -> bool:
        for offset, key in enumerate(keys):
            self.spent += 1
            if self.spent > SEARCH_BUDGET:
                raise _Budget
            if not fits(self.shapes[key], self.targets[pos + offset]):
                return False
        return True

    def fit(self, item: _Tree | list[str], pos: int,
            depth: int) -> Iterator[tuple[int, list[str]]]:
        """Each way ``item`` covers the targets from ``pos``, reordering siblings ``depth``
        levels down at most: (end, source keys in order)."""
        keys = self._keys(item)
        if pos + len(keys) > len(self.targets):
            return
        if isinstance(item, list) or depth < 0:
            if self._plain(keys, pos):
                yield pos + len(keys), keys
            return
        children = item.items()
        yield from self._orders(item, children, tuple(range(len(children))), pos, depth)

    def _orders(self, owner: _Tree, children: list[_Tree | list[str]],
                remaining: tuple[int, ...], pos: int,
                depth: int) -> Iterator[tuple[int, list[str]]]:
        if not remaining:
            yield pos, []
            return
        state = (id(owner), remaining, pos, depth)
        if state in self.failed:
            return
        found = False
        tried: set[tuple[Shape, ...]] = set()
        for index in remaining:
            child = children[index]
            self._keys(child)
            signature = self.signatures[id(child)]
            if signature in tried:  # an identical sibling was tried here: same outcome
                continue
            tried.add(signature)
            rest = tuple(r for r in remaining if r != index)
            for end, keys in self.fit(child, pos, depth - 1):
                for final, more in self._orders(owner, children, rest, end, depth):
                    found = True
                    yield final, keys + more
        if not found:
            self.failed.add(state)


def _depth(tree: _Tree) -> int:
    return 1 + max((_depth(child) for child in tree.children.values()), default=0)


def _match_order(targets: list[tuple[str, Shape]],
                 source: dict[str, Shape]) -> dict[str, str] | None:
    """Every target paired in the source's tree order (siblings reordered if need be)."""
    if len(targets) != len(source) or not targets:
        return None
    keys = list(source)
    tree = _tree(keys)
    plain = _flatten(tree)
    if all(fits(source[k], s) for k, (_, s) in zip(plain, targets, strict=True)):
        return {t: k for (t, _), k in zip(targets, plain, strict=True)}
    search = _OrderSearch([s for _, s in targets], source)
    try:
        for depth in range(_depth(tree)):
            for end, found in search.fit(tree, 0, depth):
                if end == len(targets):
                    return {t: k for (t, _), k in zip(targets, found, strict=True)}
    except (_Budget, RecursionError):
        return None
    return None


def _prefix_order(targets: list[tuple[str, Shape]],
                  source: dict[str, Shape]) -> tuple[dict[str, str], tuple[str, str] | None]:
    """The pairs in tree order up to the first that does not fit, and that one (target, source):
    a partial load and a report when the whole does not fit."""
    pairs: dict[str, str] = {}
    for (target, shape), key in zip(targets, _flatten(_tree(list(source))), strict=False):
        if not fits(source[key], shape):
            return pairs, (target, key)
        pairs[target] = key
    return pairs, None


# "did you mean" ---------------------------------------------------------------------------------


def suggest_rename(missing: Sequence[tuple[str, Shape]],
                   unexpected: Sequence[tuple[str, Shape]]) -> list[str]:
    """``OLD=NEW`` rules that would turn unexpected keys into missing ones (at most three).

    Each unexpected key is lined up with the one missing key of its shape that shares its
    longest tail of segments; the prefix pairs that the most keys agree on win, when they
    explain at least two keys each (or the only one).
    """
    by_tail: dict[tuple[tuple[str, ...], Shape], list[tuple[str, ...]]] = {}
    for key, shape in missing:
        parts = tuple(key.split("."))
        for cut in range(len(parts)):
            by_tail.setdefault((parts[cut:], shape), []).append(parts[:cut])
    votes: dict[tuple[str, str], int] = {}
    for key, shape in unexpected:
        parts = tuple(key.split("."))
        for cut in range(len(parts)):
            heads = by_tail.get((parts[cut:], shape))
            if heads is not None:
                if len(heads) == 1:
                    pair = (_joined(parts[:cut]), _joined(heads[0]))
                    votes[pair] = votes.get(pair, 0) + 1
                break
    rules: list[str] = []
    olds: set[str] = set()
    for (old, new), count in sorted(votes.items(), key=lambda item: -item[1]):
        if count >= min(2, len(unexpected)) and old != new and old not in olds:
            olds.add(old)
            rules.append(f"{old}={new}")
    return rules[:3]


def _joined(parts: tuple[str, ...]) -> str:
    return "".join(f"{part}." for part in parts)
