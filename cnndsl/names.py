"""Layer names a generated PyTorch module cannot hold, checked without importing torch.

A spec's paths become module attributes and ``nn.ModuleDict`` keys, so a segment that is a
Python keyword (``class``) cannot be written as an attribute, and one that is an attribute of
``nn.Module`` or of the containers the emitter uses (``training``, ``forward``, ``keys``) replaces
it: ``nn.ModuleDict`` refuses the key, a ``training`` submodule breaks ``train()``, a ``forward``
submodule makes the call recurse. Such names are refused by ``check`` rather than mangled, so
that every accepted path is also the ``state_dict`` key users load weights through.
"""

from __future__ import annotations

import keyword

from cnndsl import ir
from cnndsl.diagnostics import Code, Reporter

# dir() of nn.Module, nn.ModuleDict, nn.Sequential and nn.ModuleList instances (torch 2.13),
# dunder names aside (every ``__x__`` name is refused); tests/test_torch_names.py keeps it
# in step with the installed torch.
MODULE_ATTRIBUTES = frozenset({
    "T_destination", "_apply", "_backward_hooks", "_backward_pre_hooks", "_buffers", "_call_impl",
    "_compiled_call_impl", "_forward_hooks", "_forward_hooks_always_called",
    "_forward_hooks_with_kwargs", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
    "_get_abs_string_index", "_get_backward_hooks", "_get_backward_pre_hooks", "_get_item_by_idx",
    "_get_name", "_is_full_backward_hook", "_load_from_state_dict", "_load_state_dict_post_hooks",
    "_load_state_dict_pre_hooks", "_maybe_warn_non_full_backward_hook", "_modules",
    "_named_members", "_non_persistent_buffers_set", "_parameters",
    "_register_load_state_dict_pre_hook", "_register_state_dict_hook",
    "_replicate_for_data_parallel", "_save_to_state_dict", "_slow_forward", "_state_dict_hooks",
    "_state_dict_pre_hooks", "_version", "_wrapped_call_impl", "add_module", "append", "apply",
    "bfloat16", "buffers", "call_super_init", "children", "clear", "compile", "cpu", "cuda",
    "double", "dump_patches", "eval", "extend", "extra_repr", "float", "forward", "get_buffer",
    "get_extra_state", "get_parameter", "get_submodule", "half", "insert", "ipu", "items", "keys",
    "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules",
    "named_parameters", "parameters", "pop", "register_backward_hook", "register_buffer",
    "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
    "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "training", "type", "update", "values", "xpu", "zero_grad",
})


def reserved_reason(segment: str) -> str | None:
    """Why a path segment cannot name a module, or None when it can."""
    if keyword.iskeyword(segment):
        return "it is a Python keyword"
    if segment in MODULE_ATTRIBUTES or (segment.startswith("__") and segment.endswith("__")):
        return "it is an attribute of torch's nn.Module or its containers, which it would replace"
    return None


def check_names(network: ir.Network, reporter: Reporter) -> None:
    """Report every path segment that a generated module could not hold, once, at its first
    layer."""
    seen: set[str] = set()
    for node in network.nodes:
        if node.kind == "input":  # type: ignore[attr-defined]
            continue
        prefix = ""
        for segment in node.name.split("."):
            prefix = f"{prefix}.{segment}" if prefix else segment
            if prefix in seen:
                continue
            seen.add(prefix)
            reason = reserved_reason(segment)
            if reason is not None:
                reporter.error(Code.RESERVED_NAME, node.span,
                               f"'{segment}' cannot name a layer: {reason}",
                               f"rename the label; '{prefix}' would be a module attribute and "
                               "a state_dict key")
