"""XML: one element per text; attributes and child elements become fields.

    <event id="7" level="warn"><msg>disk low</msg><tag>a</tag><tag>b</tag></event>
    -> {"id": "7", "level": "WARN", "message": "disk low", "tag": ["a", "b"]}

A child with neither attributes nor children becomes its text; one with either
becomes a nested dict (its own text under `text`); a repeated name becomes a
list; the root's own text goes under `text`. Namespaces are dropped from names
(`{urn:x}Event` and `e:Event` are both `Event`); values stay text.

Safety. Log text is untrusted. Entity attacks (billion laughs, quadratic
blow-up, external entities) all need a DOCTYPE to declare their entities, and a
DOCTYPE is refused at its first byte: expat calls the doctype handler before it
reads the internal subset, and the handler aborts the parse. Without a DTD only
the five predefined entities and character references exist, so expansion is
bounded by the text's own length. That holds whatever expat version Python was
built against (the Python docs list expat < 2.6.0 (this build: 2.5.0) as open
to billion laughs and quadratic blow-up when a DTD is allowed), so no
dependency (defusedxml) is needed. The text is parsed in one `Parse` call,
which also sidesteps expat's "large tokens" slowdown (it needs many small
feeds). The tree is built by handlers with an explicit stack: no recursion.
"""

from __future__ import annotations

from typing import Any
from xml.parsers import expat

from chalicelib.normalise import normalise
from chalicelib.parsers import MAX_FIELDS
from chalicelib.parsers.registry import failed, simple

# Glue/Athena read nested structs to a few dozen levels and orjson refuses to
# write past 254: a deeper document is refused rather than crash the archive.
MAX_DEPTH = 64


class _Refused(Exception):
    """What the parser will not process: a DOCTYPE, entity declarations, deep nesting."""


def _refuse_doctype(*_args: Any) -> None:
    raise _Refused("DOCTYPE not allowed")


def _refuse_entity(*_args: Any) -> None:
    raise _Refused("entity declarations not allowed")


def _local(name: str) -> str:
    """`urn:x Event` (expat's namespace-qualified name) -> `Event`."""
    return name.rpartition(" ")[2]


def _add(fields: dict[str, Any], name: str, value: Any) -> None:
    prior = fields.get(name, _MISSING)
    if prior is _MISSING:
        fields[name] = value
    elif type(prior) is list:
        prior.append(value)
    else:
        fields[name] = [prior, value]


_MISSING = object()


def parse_element(text: str) -> dict[str, Any]:
    """One XML element -> its fields. Raises _Refused, expat.ExpatError or ValueError."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True  # one text callback per run of character data
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    # (name, fields, text pieces) per open element
    stack: list[tuple[str, dict[str, Any], list[str]]] = []
    root: dict[str, Any] = {}
    counted = [0]  # elements and attributes so far, every depth

    def start(name: str, attrs: dict[str, str]) -> None:
        if len(stack) >= MAX_DEPTH:
            raise _Refused(f"nested over {MAX_DEPTH} levels")
        counted[0] += 1 + len(attrs)
        if counted[0] > MAX_FIELDS:
            raise _Refused(f"over {MAX_FIELDS} fields")
        fields: dict[str, Any] = {}
        for key, value in attrs.items():
            _add(fields, _local(key), value)
        stack.append((_local(name), fields, []))

    def end(_name: str) -> None:
        name, fields, pieces = stack.pop()
        content = "".join(pieces).strip()
        if not stack:
            if content:
                _add(fields, "text", content)
            root.update(fields)
            return
        if fields:
            if content:
                _add(fields, "text", content)
            _add(stack[-1][1], name, fields)
        else:
            _add(stack[-1][1], name, content)

    def chars(data: str) -> None:
        if stack:
            stack[-1][2].append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.Parse(text, True)
    return root


@simple("xml", description="one XML element; attributes and children become fields")
def parse_xml(text: str) -> dict[str, Any]:
    if text.lstrip("\ufeff \t\r\n")[:1] != "<":
        return failed(text, "xml", "not an XML element")
    try:
        rec = parse_element(text)
    except _Refused as e:
        return failed(text, "xml", str(e))
    except expat.ExpatError as e:
        return failed(text, "xml", str(e))
    except ValueError as e:  # text expat cannot take as UTF-8 (lone surrogates)
        return failed(text, "xml", f"not encodable: {e}")
    return normalise(rec)[0]
