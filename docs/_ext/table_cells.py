"""A table cell for the docs' generated tables (``orders-table``, ``strategy-table``,
``kernel-versions-table``, ``quirk-versions-table``): one paragraph of text or a node."""

from __future__ import annotations

from docutils import nodes


def entry(content: nodes.Node | str) -> nodes.entry:
    """A table entry holding ``content`` (text, or an inline node such as a reference)."""
    cell = nodes.entry()
    para = nodes.paragraph()
    para += nodes.Text(content) if isinstance(content, str) else content
    cell += para
    return cell
