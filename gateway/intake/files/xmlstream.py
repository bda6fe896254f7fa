"""A streaming XML reader for track files: local element names, text, and line numbers.

GPX and KML are read with expat directly (not ElementTree) for two reasons: every track point
gets the line it starts on, so a row error names a line a person can open; and a file is read as
a stream whatever its size. A document type declaration is refused outright: no GPX or KML
writer emits one, and entity expansion is how a small hostile file becomes a huge one.
"""

from __future__ import annotations

from collections.abc import Callable
from xml.parsers import expat

from gateway.intake.files import FileImportError

Start = Callable[[str, dict[str, str], int], None]
End = Callable[[str, str, int], None]


def local(name: str) -> str:
    """``gx:Track`` / ``{uri} Track`` -> ``Track``."""
    return name.rsplit(" ", 1)[-1].rsplit(":", 1)[-1]


def read(data: bytes, name: str, on_start: Start, on_end: End) -> None:
    """Parse ``data``, calling ``on_start(tag, attrs, line)`` and ``on_end(tag, text, line)``
    with local names; ``text`` is the element's own text, stripped.

    :raises FileImportError: not well-formed XML (with the line), or a DOCTYPE
    """
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    texts: list[list[str]] = []

    def doctype(*_args) -> None:
        raise FileImportError(f"{name}: a DOCTYPE is not accepted in a track file"
                              f" (line {parser.CurrentLineNumber})")

    def start(tag: str, attrs: dict[str, str]) -> None:
        texts.append([])
        on_start(local(tag), {local(k): v for k, v in attrs.items()},
                 parser.CurrentLineNumber)

    def end(tag: str) -> None:
        text = "".join(texts.pop()).strip()
        on_end(local(tag), text, parser.CurrentLineNumber)

    def chars(text: str) -> None:
        if texts:
            texts[-1].append(text)

    parser.StartDoctypeDeclHandler = doctype
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise FileImportError(f"{name}: not well-formed XML at line {exc.lineno}, column"
                              f" {exc.offset}: {expat.ErrorString(exc.code)}") from None
