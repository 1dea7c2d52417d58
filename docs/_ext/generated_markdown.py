"""What b2box's own Sphinx directives share: they write Markdown lines and let MyST turn them into the page."""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


class GeneratedMarkdown(SphinxDirective):
    """A directive whose content is generated: subclasses return Markdown lines from ``lines()``."""

    source = "generated"  # named in the messages of a line that does not parse

    def lines(self) -> list[str]:
        """The Markdown to put where the directive stands."""
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        container = nodes.section()
        container.document = self.state.document
        self.state.nested_parse(StringList(self.lines(), source=self.source), self.content_offset, container)
        return list(container.children)


def register(app: Any, name: str, directive: type[GeneratedMarkdown]) -> dict[str, Any]:
    """Adds the directive; generated pages may be read and written in parallel."""
    app.add_directive(name, directive)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
