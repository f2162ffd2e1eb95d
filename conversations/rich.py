"""Rich text without markup: spans with a style, escaped by each surface when rendered.

Code never writes HTML or mrkdwn by hand, so a lead named `<b>Evil</b>` or `<!channel>` is
always shown as typed: every span is escaped by the channel that renders it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

STYLES = ("plain", "bold", "italic", "code", "link")


@dataclass(frozen=True)
class Span:
    text: str
    style: str = "plain"
    url: str | None = None  # for style "link"


@dataclass(frozen=True)
class Rich:
    spans: tuple[Span, ...] = ()

    @classmethod
    def of(cls, *parts: "str | Span | Rich") -> "Rich":
        """Build from plain strings, spans and other Rich values, in order."""
        spans: list[Span] = []
        for part in parts:
            if isinstance(part, Rich):
                spans.extend(part.spans)
            elif isinstance(part, Span):
                spans.append(part)
            elif part:
                spans.append(Span(str(part)))
        return cls(tuple(spans))

    def __add__(self, other: "str | Span | Rich") -> "Rich":
        return Rich.of(self, other)

    def __radd__(self, other: "str | Span") -> "Rich":
        return Rich.of(other, self)

    def __bool__(self) -> bool:
        return any(s.text for s in self.spans)

    @property
    def plain(self) -> str:
        """The text with no styling (console, notifications' fallback text, tests)."""
        return "".join(s.text for s in self.spans)

    @staticmethod
    def lines(parts: Iterable["str | Span | Rich"]) -> "Rich":
        """Join parts with newlines."""
        out: list[str | Span | Rich] = []
        for i, part in enumerate(parts):
            if i:
                out.append("\n")
            out.append(part)
        return Rich.of(*out)

    def render(self, escape, styles: dict[str, str], link) -> str:
        """Render with a surface's `escape(text)`, `styles[style] = "<open>{}<close>"` templates
        and `link(label, url)`; used by the channels."""
        out = []
        for span in self.spans:
            if span.style == "link" and span.url:
                out.append(link(escape(span.text), span.url))
            else:
                out.append(styles.get(span.style, "{}").format(escape(span.text)))
        return "".join(out)


def bold(text: str) -> Span:
    return Span(str(text), "bold")


def italic(text: str) -> Span:
    return Span(str(text), "italic")


def code(text: str) -> Span:
    return Span(str(text), "code")


def link(text: str, url: str) -> Span:
    return Span(str(text), "link", url)
