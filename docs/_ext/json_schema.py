"""Sphinx extension: a JSON output schema, rendered from :mod:`iommugroups.schemas`.

Usage in a MyST page::

    ```{json-schema} iommugroups.show/1
    ```

emits, for the schema of that id in :data:`iommugroups.schemas.SCHEMAS`:
a list of its top-level keys (type and meaning, from the schema's own
``type``/``description``), the same for each shared definition
(``$defs``), then the whole schema as a JSON block. ``:keys-only:`` leaves
the JSON block out. An unknown id is a build error. The page is re-read on
every build, so it cannot drift from the schemas the tests validate against.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def describe(schema: dict[str, Any]) -> str:
    """A schema's type in a few words: ``array of string``, ``integer or null``..."""
    if "const" in schema:
        return json.dumps(schema["const"])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for word in ("oneOf", "anyOf"):
        if word in schema:
            return " or ".join(describe(s) for s in schema[word])
    kinds = schema.get("type", "any")
    words = []
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        if kind == "array" and "items" in schema:
            words.append(f"array of {describe(schema['items'])}")
        elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
            words.append(f"object of {describe(schema['additionalProperties'])}")
        elif kind == "string" and "enum" in schema:
            values = [json.dumps(v) for v in schema["enum"] if v is not None]
            words.append("one of " + ", ".join(values))
        elif kind != "null" or "enum" not in schema:
            words.append(str(kind))
    return " or ".join(words)


def _object_of(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema whose keys to list below a key: itself, its items or values."""
    for sub in (schema, schema.get("items"), schema.get("additionalProperties")):
        if isinstance(sub, dict) and "properties" in sub:
            return sub
    return None


def _key_list(schema: dict[str, Any]) -> nodes.bullet_list:
    """One item per key: its name, type and description, and the keys of an inline object."""
    items = nodes.bullet_list()
    for key, sub in schema.get("properties", {}).items():
        para = nodes.paragraph()
        para += nodes.literal(key, key)
        para += nodes.Text(f" ({describe(sub)})")
        text = sub.get("description", "")
        if text:
            para += nodes.Text(f": {text}")
        item = nodes.list_item("", para)
        inner = _object_of(sub)
        if inner is not None:
            item += _key_list(inner)
        items += item
    return items


class JsonSchema(SphinxDirective):
    """``json-schema``: the keys of one output schema, then the schema itself."""

    required_arguments = 1
    has_content = False
    option_spec: ClassVar[dict[str, Any]] = {"keys-only": directives.flag}

    def run(self) -> list[nodes.Node]:
        from iommugroups.schemas import SCHEMAS

        schema_id = self.arguments[0].strip()
        schema = SCHEMAS.get(schema_id)
        if schema is None:
            raise self.error(f"json-schema: no schema {schema_id!r}; known: {sorted(SCHEMAS)}")
        self.env.note_reread()
        out: list[nodes.Node] = []
        alternatives = schema.get("oneOf", [schema])
        for alt in alternatives:
            if len(alternatives) > 1:
                out.append(nodes.paragraph("", f"{alt.get('description', '')}:".capitalize()))
            out.append(_key_list(alt))
        for name, sub in schema.get("$defs", {}).items():
            para = nodes.paragraph()
            para += nodes.Text("where ")
            para += nodes.emphasis(name, name)
            what = sub.get("description", "an object" if "properties" in sub else describe(sub))
            para += nodes.Text(f" is {what}" + (", one of:" if "oneOf" in sub else ":"))
            out.append(para)
            if "properties" in sub:
                out.append(_key_list(sub))
            for alt in sub.get("oneOf", ()):
                out += [
                    nodes.paragraph("", f"{alt.get('description', 'an object')}:"),
                    _key_list(alt),
                ]
        if "keys-only" not in self.options:
            text = json.dumps(schema, indent=2)
            block = nodes.literal_block(text, text, language="json")
            self.set_source_info(block)
            out.append(block)
        return out


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("json-schema", JsonSchema)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
