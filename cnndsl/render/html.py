"""The HTML report: one self-contained file (inline data, script and style; nothing fetched)
with the graph (shapes on edges, blocks that open and close), the per-layer table and the
memory of a training step over time."""

from __future__ import annotations

import html
import json
from importlib import resources
from string import Template

from cnndsl.analysis import memory
from cnndsl.render.view import View


def _asset(name: str) -> str:
    return resources.files("cnndsl.render").joinpath(name).read_text(encoding="utf-8")


def _script_json(value: object) -> str:
    """JSON that is safe inside a <script> element: no '</' or '<!--' can end it early."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def to_html(view: View) -> str:
    """The report as one HTML document."""
    totals = view.totals
    inputs = ", ".join(f"{name}: {shape}" for name, shape in view.inputs.items())
    outputs = ", ".join(f"{name}: {shape}" for name, shape in totals.get("outputs", {}).items())
    summary = (
        f"{html.escape(inputs)} &rarr; {html.escape(outputs)} &middot; "
        f"{totals['params']:,} parameters "
        f"({memory.format_bytes(totals['param_bytes'])}) &middot; "
        f"{totals['macs_per_image']:,} MACs per image &middot; peak memory, batch "
        f"{totals['batch']} {totals['dtype']}: inference "
        f"{memory.format_bytes(totals['inference_peak_bytes'])}, training "
        f"{memory.format_bytes(totals['training_peak_bytes'])} ({totals['optimizer']})"
    )
    return Template(_asset("report.html")).substitute(
        title=html.escape(view.network), summary=summary, css=_asset("report.css"),
        script=_asset("report.js"), data=_script_json(view.to_json()),
        batch=totals["batch"], dtype=html.escape(str(totals["dtype"])),
        optimizer=html.escape(str(totals["optimizer"])),
    )


__all__ = ["to_html"]
