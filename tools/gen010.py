#!/usr/bin/env python3
"""Generates gofer's AMQP 0-10 protocol module (``spec010.py``) from the specification's XML.

Usage::

    python tools/gen010.py            # rewrite the committed module from the Debian spec
    python tools/gen010.py --check    # exit 1 when the committed module differs
    python tools/gen010.py --spec amqp.0-10.xml --output /tmp/spec010.py

The XML comes from Debian's ``amqp-specs`` package
(``/usr/share/amqp/specs/0-10/amqp.0-10.stripped.xml``). It is read only
here, never when gofer runs: the output is a plain Python module with one
class per struct, control and command, an ``enum.IntEnum`` per enumerated
domain and lookup tables by code, all documented from what the XML says
(codes, fields and their types, roles, responses, rules, exceptions, and
``label``/``<doc>`` text when the XML has them; the stripped file has none).

The output is deterministic and already laid out the way ``ruff format``
lays it out, so regenerating gives the committed file byte for byte
(``tests/unit/qpid/test_generator.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import keyword
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = Path("/usr/share/amqp/specs/0-10/amqp.0-10.stripped.xml")
OUTPUT = ROOT / "gofer/messaging/adapter/qpid/engine/spec010.py"
WIDTH = 100

# Python types of the primitive types, for the generated annotations.
PYTHON_TYPES = {
    "bit": "bool",
    "boolean": "bool",
    "float": "float",
    "double": "float",
    "uuid": "uuid.UUID",
    "char": "str",
    "char-utf32": "str",
    "map": "dict[str, Any]",
    "list": "list[Any]",
    "array": "list[Any]",
    "struct32": "Struct",
    "sequence-set": "RangeSet",
    "byte-ranges": "RangeSet",
    "void": "None",
}
INTEGERS = {"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}
INTEGERS |= {"sequence-no", "datetime"}


# -- the model read from the XML ------------------------------------------------------


@dataclasses.dataclass
class Doc:
    """What the XML says about one element besides its structure."""

    label: str = ""
    text: list[str] = dataclasses.field(default_factory=list)
    rules: list[str] = dataclasses.field(default_factory=list)
    exceptions: list[tuple[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class FieldDef:
    name: str
    type: str
    required: bool
    default: str | None
    doc: Doc


@dataclasses.dataclass
class Definition:
    """A struct, control or command."""

    kind: str  # "struct", "control" or "command"
    klass: str
    name: str
    code: int | None
    size: int
    pack: int
    fields: list[FieldDef]
    doc: Doc
    implements: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    responses: list[str] = dataclasses.field(default_factory=list)
    result: str | None = None  # the qualified name of the result struct
    header: list[str] = dataclasses.field(default_factory=list)
    body: bool = False

    @property
    def qualified(self) -> str:
        return f"{self.klass}.{self.name}" if self.klass else self.name


@dataclasses.dataclass
class Domain:
    klass: str
    name: str
    type: str
    choices: list[tuple[str, int]]
    doc: Doc

    @property
    def qualified(self) -> str:
        return f"{self.klass}.{self.name}" if self.klass else self.name


@dataclasses.dataclass
class AmqpClass:
    name: str
    code: int
    doc: Doc
    roles: list[tuple[str, str]]


@dataclasses.dataclass
class Spec:
    major: int
    minor: int
    port: int
    types: list[tuple[str, int | None, int, int]]
    constants: list[tuple[str, int]]
    domains: dict[str, Domain]
    classes: list[AmqpClass]
    structs: dict[str, Definition]
    methods: list[Definition]  # controls and commands, in spec order


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, tag: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == tag]


def _doc(element: ET.Element) -> Doc:
    doc = Doc(label=" ".join((element.get("label") or "").split()))
    for child in _children(element, "doc"):
        if child.get("type") in (None, "", "picture"):
            text = "".join(child.itertext())
            doc.text.extend(p for p in (" ".join(b.split()) for b in text.split("\n\n")) if p)
    doc.rules = [rule.get("name", "") for rule in _children(element, "rule")]
    doc.exceptions = [
        (e.get("name", ""), e.get("error-code", "")) for e in _children(element, "exception")
    ]
    return doc


def _int(text: str | None, default: int = 0) -> int:
    return int(text, 0) if text else default


def read_spec(path: Path) -> Spec:
    """Read the specification's XML into the generator's model."""
    root = ET.parse(path).getroot()  # noqa: S314 - our own trusted spec file
    spec = Spec(
        major=_int(root.get("major")),
        minor=_int(root.get("minor")),
        port=_int(root.get("port")),
        types=[],
        constants=[],
        domains={},
        classes=[],
        structs={},
        methods=[],
    )
    for element in root:
        tag = _local(element.tag)
        if tag == "type":
            code = element.get("code")
            spec.types.append(
                (
                    element.get("name", ""),
                    int(code, 0) if code else None,
                    _int(element.get("fixed-width")),
                    _int(element.get("variable-width")),
                )
            )
        elif tag == "constant":
            spec.constants.append((element.get("name", ""), _int(element.get("value"))))
        elif tag == "domain":
            _read_domain(spec, "", element)
        elif tag == "struct":
            _read_definition(spec, "", "struct", element)
        elif tag == "class":
            _read_class(spec, element)
    return spec


def _read_domain(spec: Spec, klass: str, element: ET.Element) -> None:
    choices = [
        (choice.get("name", ""), _int(choice.get("value")))
        for enum in _children(element, "enum")
        for choice in _children(enum, "choice")
    ]
    domain = Domain(klass, element.get("name", ""), element.get("type", ""), choices, _doc(element))
    spec.domains[domain.qualified] = domain


def _read_class(spec: Spec, element: ET.Element) -> None:
    name = element.get("name", "")
    roles = [
        (role.get("name", ""), role.get("implement", "")) for role in _children(element, "role")
    ]
    spec.classes.append(AmqpClass(name, _int(element.get("code")), _doc(element), roles))
    for child in element:
        tag = _local(child.tag)
        if tag == "domain":
            _read_domain(spec, name, child)
        elif tag in ("struct", "control", "command"):
            _read_definition(spec, name, tag, child)


def _read_definition(spec: Spec, klass: str, kind: str, element: ET.Element) -> Definition:
    definition = Definition(
        kind=kind,
        klass=klass,
        name=element.get("name", ""),
        code=_int(element.get("code")) if element.get("code") else None,
        size=_int(element.get("size")),
        pack=_int(element.get("pack"), 2 if kind != "struct" else 0),
        fields=[
            FieldDef(
                name=field.get("name", ""),
                type=field.get("type", ""),
                required=field.get("required") == "true",
                default=field.get("default"),
                doc=_doc(field),
            )
            for field in _children(element, "field")
        ],
        doc=_doc(element),
        implements=[
            (i.get("role", ""), i.get("handle", "")) for i in _children(element, "implement")
        ],
        responses=[response.get("name", "") for response in _children(element, "response")],
    )
    for result in _children(element, "result"):
        inner = _children(result, "struct")
        if inner:
            definition.result = _read_definition(spec, klass, "struct", inner[0]).qualified
        else:
            definition.result = _qualify(spec, klass, result.get("type", ""))
    for segments in _children(element, "segments"):
        for header in _children(segments, "header"):
            definition.header = [
                _qualify(spec, klass, e.get("type", "")) for e in _children(header, "entry")
            ]
        definition.body = bool(_children(segments, "body"))
    if kind == "struct":
        spec.structs[definition.qualified] = definition
    else:
        spec.methods.append(definition)
    return definition


def _qualify(spec: Spec, klass: str, name: str) -> str:
    """The qualified name of a struct or domain named from inside ``klass``."""
    if "." in name:
        return name
    local = f"{klass}.{name}"
    if local in spec.structs or local in spec.domains:
        return local
    return name


# -- resolving names ------------------------------------------------------------------


def primitive(spec: Spec, klass: str, name: str) -> str:
    """The primitive type (or ``struct``) a type name used in ``klass`` comes down to."""
    qualified = _qualify(spec, klass, name)
    if qualified in spec.structs:
        return "struct"
    if qualified in spec.domains:
        domain = spec.domains[qualified]
        return primitive(spec, domain.klass, domain.type)
    if name in {t[0] for t in spec.types}:
        return name
    raise SystemExit(f"unknown type {name!r} in class {klass!r}")


def camel(*parts: str) -> str:
    return "".join(word.capitalize() for part in parts for word in part.split("-"))


def class_name(klass: str, name: str) -> str:
    """The Python class name: ``queue`` + ``queue-query-result`` gives ``QueueQueryResult``."""
    if not klass:
        return camel(name)
    if name.startswith(f"{klass}-"):
        return camel(name)
    return camel(klass, name)


def attribute(name: str) -> str:
    python = name.replace("-", "_")
    return f"{python}_" if keyword.iskeyword(python) else python


def constant(name: str) -> str:
    return name.replace("-", "_").upper()


# -- writing Python ------------------------------------------------------------------


class Writer:
    """Collects lines of the module."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, text: str = "", indent: int = 0) -> None:
        self.lines.append(f"{' ' * indent}{text}" if text else "")

    def docstring(self, paragraphs: list[list[str] | str], indent: int) -> None:
        """A docstring: each paragraph is wrapped text, or a list of ready lines."""
        pad = " " * indent
        rendered: list[str] = []
        for paragraph in paragraphs:
            if rendered:
                rendered.append("")
            if isinstance(paragraph, str):
                rendered.extend(textwrap.wrap(paragraph, WIDTH - indent, break_on_hyphens=False))
            else:
                rendered.extend(paragraph)
        if len(rendered) == 1 and len(pad) + len(rendered[0]) + 6 <= WIDTH:
            self.add(f'"""{rendered[0]}"""', indent)
            return
        self.add(f'"""{rendered[0]}', indent)
        for line in rendered[1:]:
            self.add(line, indent if line else 0)
        self.add('"""', indent)

    def sequence(
        self, head: str, items: list[str], close: str, indent: int, tail: str = ""
    ) -> None:
        """``head item, item close`` on one line when it fits, else one item a line."""
        comma = "," if len(items) == 1 and close == ")" else ""
        one = f"{head}{', '.join(items)}{comma}{close}{tail}"
        if items and len(one) + indent <= WIDTH:
            self.add(one, indent)
            return
        if not items:
            self.add(f"{head}{close}{tail}", indent)
            return
        self.add(head, indent)
        for item in items:
            self.add(f"{item},", indent + 4)
        self.add(f"{close}{tail}", indent)


def hanging(label: str, text: str, indent: int) -> list[str]:
    """``label: text`` wrapped with a hanging indent, Google style."""
    first = f"{' ' * indent}{label}: "
    return textwrap.wrap(
        text,
        WIDTH - 4,
        initial_indent=first,
        subsequent_indent=" " * (indent + 4),
        break_on_hyphens=False,
    )


class Generator:
    """Renders the module from a :class:`Spec`."""

    def __init__(self, spec: Spec, source: Path, digest: str) -> None:
        self.spec = spec
        self.source = source
        self.digest = digest
        self.out = Writer()
        self.names: dict[str, str] = {}  # Python name -> what it stands for
        self.struct_names = {
            qualified: self._claim(class_name(s.klass, s.name), f"struct {qualified}")
            for qualified, s in spec.structs.items()
        }
        self.method_names = {
            id(m): self._claim(class_name(m.klass, m.name), f"{m.kind} {m.qualified}")
            for m in spec.methods
        }
        self.enum_names = {
            qualified: self._claim(class_name(d.klass, d.name), f"domain {qualified}")
            for qualified, d in spec.domains.items()
            if d.choices
        }
        error_codes = spec.domains.get("execution.error-code")
        self.error_codes = dict(error_codes.choices) if error_codes else {}

    def _claim(self, name: str, what: str) -> str:
        if name in self.names:
            raise SystemExit(f"name clash: {name} is {self.names[name]} and {what}")
        self.names[name] = what
        return name

    def render(self) -> str:
        self._preamble()
        self._types()
        self._enums()
        for qualified in self._struct_order():
            self._definition(self.spec.structs[qualified], self.struct_names[qualified])
        for method in self.spec.methods:
            self._definition(method, self.method_names[id(method)])
        self._tables()
        return "\n".join(self.out.lines) + "\n"

    # -- parts of the module -------------------------------------------------------

    def _preamble(self) -> None:
        spec = self.spec
        summary = (
            f"AMQP {spec.major}-{spec.minor} protocol definitions, generated by tools/gen010.py: "
            "do not edit."
        )
        classes = [
            f"- ``{c.name}`` ({c.code}): {self._roles(c.roles)}."
            + (f" {c.doc.label}." if c.doc.label else "")
            for c in spec.classes
        ]
        self.out.docstring(
            [
                [summary],
                f"Source: {self.source.name} (its sha256 is SPEC_SHA256). Every struct, "
                "control and command of the specification is a class below, documented from the "
                "specification; the codec (codec.py) encodes and decodes them from their "
                "FIELDS. Fields hold None (False for bits) when absent.",
                f"The protocol classes ({len(spec.classes)}):",
                classes,
            ],
            0,
        )
        self.out.add()
        self.out.add("from __future__ import annotations")
        self.out.add()
        self.out.add("import enum")
        self.out.add("import uuid")
        self.out.add("from typing import Any")
        self.out.add()
        names = ["Command", "Control", "Field", "RangeSet", "Struct", "TypeDef"]
        self.out.sequence("from gofer.messaging.adapter.qpid.engine.base import (", names, ")", 0)
        self.out.add()
        self.out.add(f"VERSION = ({spec.major}, {spec.minor})")
        self.out.add(f"PORT = {spec.port}")
        for name, value in spec.constants:
            self.out.add(f"{constant(name)} = {value}")
        self.out.add(f'SPEC_SHA256 = "{self.digest}"')

    def _types(self) -> None:
        self.out.add()
        self.out.add("#: The primitive types, by name.")
        self.out.add("TYPES: dict[str, TypeDef] = {")
        for name, code, width, size_width in self.spec.types:
            hex_code = "None" if code is None else f"0x{code:02X}"
            self.out.add(f'"{name}": TypeDef("{name}", {hex_code}, {width}, {size_width}),', 4)
        self.out.add("}")
        self.out.add("#: The primitive types that have a code, by code.")
        by_code = "{t.code: t for t in TYPES.values() if t.code is not None}"
        self.out.add(f"TYPES_BY_CODE: dict[int, TypeDef] = {by_code}")

    def _enums(self) -> None:
        for qualified, name in self.enum_names.items():
            domain = self.spec.domains[qualified]
            self.out.add()
            self.out.add()
            self.out.add(f"class {name}(enum.IntEnum):")
            paragraphs: list[list[str] | str] = [
                [f"The values of domain {qualified} ({domain.type})."]
            ]
            if domain.doc.label:
                paragraphs.append(domain.doc.label[:1].upper() + domain.doc.label[1:] + ".")
            paragraphs.extend(domain.doc.text)
            self.out.docstring(paragraphs, 4)
            self.out.add()
            for choice, value in domain.choices:
                self.out.add(f"{constant(choice)} = {value}", 4)

    def _struct_order(self) -> list[str]:
        """Structs in spec order, each after the structs its fields hold."""
        done: list[str] = []

        def visit(qualified: str) -> None:
            if qualified in done:
                return
            struct = self.spec.structs[qualified]
            for field in struct.fields:
                target = _qualify(self.spec, struct.klass, field.type)
                if target in self.spec.structs and target != qualified:
                    visit(target)
            done.append(qualified)

        for qualified in self.spec.structs:
            visit(qualified)
        return done

    def _definition(self, definition: Definition, name: str) -> None:
        base = {"struct": "Struct", "control": "Control", "command": "Command"}[definition.kind]
        self.out.add()
        self.out.add()
        self.out.add(f"class {name}({base}):")
        self.out.docstring(self._describe(definition), 4)
        self.out.add()
        attributes = [attribute(f.name) for f in definition.fields]
        self.out.sequence("__slots__ = (", [f'"{a}"' for a in sorted(attributes)], ")", 4)
        self.out.add(f'NAME = "{definition.qualified}"', 4)
        klass = next((c for c in self.spec.classes if c.name == definition.klass), None)
        if klass is not None:
            self.out.add(f"CLASS_CODE = 0x{klass.code:02X}", 4)
        if definition.code is not None:
            self.out.add(f"CODE = 0x{definition.code:02X}", 4)
        if definition.kind == "struct":
            self.out.add(f"SIZE = {definition.size}", 4)
        self.out.add(f"PACK = {definition.pack}", 4)
        fields = [self._field(definition, f) for f in definition.fields]
        self.out.sequence("FIELDS = (", fields, ")", 4)
        if definition.responses:
            self.out.sequence("RESPONSES = (", [f'"{r}"' for r in definition.responses], ")", 4)
        if definition.result:
            self.out.add(f"RESULT = {self.struct_names[definition.result]}", 4)
        if definition.header:
            entries = [self.struct_names[h] for h in definition.header]
            self.out.sequence("HEADER = (", entries, ")", 4)
        if definition.body:
            self.out.add("PAYLOAD = True", 4)
        if definition.fields:
            self._init(definition)

    def _field(self, definition: Definition, field: FieldDef) -> str:
        kind = primitive(self.spec, definition.klass, field.type)
        parts = [f'"{attribute(field.name)}"', f'"{field.name}"', f'"{kind}"']
        if field.required or kind == "struct":
            parts.append("True" if field.required else "False")
        if kind == "struct":
            parts.append(self.struct_names[_qualify(self.spec, definition.klass, field.type)])
        return f"Field({', '.join(parts)})"

    def _annotation(self, definition: Definition, field: FieldDef) -> str:
        kind = primitive(self.spec, definition.klass, field.type)
        if kind == "struct":
            return self.struct_names[_qualify(self.spec, definition.klass, field.type)]
        if kind in PYTHON_TYPES:
            return PYTHON_TYPES[kind]
        if kind in INTEGERS:
            return "int"
        if kind.startswith("str"):
            return "str"
        return "bytes"

    def _init(self, definition: Definition) -> None:
        parameters = ["self", "*"]
        for field in definition.fields:
            python = self._annotation(definition, field)
            if python == "bool":
                parameters.append(f"{attribute(field.name)}: bool = False")
            else:
                parameters.append(f"{attribute(field.name)}: {python} | None = None")
        self.out.add()
        self.out.sequence("def __init__(", parameters, ")", 4, " -> None:")
        for field in definition.fields:
            self.out.add(f"self.{attribute(field.name)} = {attribute(field.name)}", 8)

    # -- documentation ---------------------------------------------------------------

    def _describe(self, definition: Definition) -> list[list[str] | str]:
        what = (
            f"{definition.kind} 0x{definition.code:02X}"
            if definition.code is not None
            else "struct"
        )
        where = next((c for c in self.spec.classes if c.name == definition.klass), None)
        home = f" of class {where.name} (0x{where.code:02X})" if where else ""
        first = f"{definition.qualified}: {what}{home}."
        if definition.doc.label:
            first = f"{definition.qualified}: {definition.doc.label}."
        paragraphs: list[list[str] | str] = [[first] if len(first) <= WIDTH - 7 else first]
        if definition.doc.label:
            paragraphs.append(f"It is {what}{home}.")
        paragraphs.extend(definition.doc.text)
        facts = self._facts(definition)
        if facts:
            paragraphs.append(" ".join(facts))
        if definition.fields:
            lines = ["Attributes:"]
            for field in definition.fields:
                lines.extend(hanging(attribute(field.name), self._field_doc(definition, field), 4))
            paragraphs.append(lines)
        return paragraphs

    def _facts(self, definition: Definition) -> list[str]:
        facts = []
        if definition.kind == "struct":
            size = f"a {definition.size}-octet size" if definition.size else "no size"
            pack = (
                f"{definition.pack} octets of packing flags"
                if definition.pack
                else "no packing flags"
            )
            facts.append(f"Encoded with {size} and {pack}.")
        if definition.implements:
            handled = ", ".join(f"{role} {handle}" for role, handle in definition.implements)
            facts.append(f"Handling: {handled}.")
        if definition.responses:
            facts.append(f"Answered by {', '.join(definition.responses)}.")
        if definition.result:
            facts.append(f"Its result is {definition.result}.")
        if definition.header:
            facts.append(f"It carries a header ({', '.join(definition.header)}) and a body.")
        if definition.doc.rules:
            facts.append(f"Rules: {', '.join(definition.doc.rules)}.")
        if definition.doc.exceptions:
            facts.append(f"Exceptions: {self._exceptions(definition.doc.exceptions)}.")
        return facts

    def _field_doc(self, definition: Definition, field: FieldDef) -> str:
        kind = primitive(self.spec, definition.klass, field.type)
        qualified = _qualify(self.spec, definition.klass, field.type)
        if kind == "struct":
            described = f"a {qualified} struct"
        elif field.type == kind:
            described = f"{kind}"
        else:
            described = f"{field.type} ({kind})"
        if qualified in self.enum_names:
            described += f", one of {self.enum_names[qualified]}"
        text = [f"``{field.name}``, {described}" + (", required." if field.required else ".")]
        if field.default is not None:
            text.append(f"Default {field.default}.")
        if field.doc.label:
            text.append(field.doc.label[:1].upper() + field.doc.label[1:] + ".")
        text.extend(field.doc.text)
        if field.doc.rules:
            text.append(f"Rules: {', '.join(field.doc.rules)}.")
        if field.doc.exceptions:
            text.append(f"Exceptions: {self._exceptions(field.doc.exceptions)}.")
        return " ".join(text)

    def _exceptions(self, exceptions: list[tuple[str, str]]) -> str:
        return ", ".join(
            f"{name} ({code} {self.error_codes[code]})" if code in self.error_codes else name
            for name, code in exceptions
        )

    @staticmethod
    def _roles(roles: list[tuple[str, str]]) -> str:
        return ", ".join(f"{role} {need}" for role, need in roles) or "no roles"

    def _tables(self) -> None:
        controls = [m for m in self.spec.methods if m.kind == "control"]
        commands = [m for m in self.spec.methods if m.kind == "command"]
        coded = [(q, s) for q, s in self.spec.structs.items() if s.code is not None and s.klass]
        codes = {c.name: c.code for c in self.spec.classes}
        structs = [(codes[s.klass] << 8 | (s.code or 0), self.struct_names[q]) for q, s in coded]
        self.out.add()
        for name, title, annotation, entries in (
            ("CONTROLS", "The controls", "type[Control]", self._keyed(controls, codes)),
            ("COMMANDS", "The commands", "type[Command]", self._keyed(commands, codes)),
            ("STRUCTS", "The coded structs (header entries, results)", "type[Struct]", structs),
        ):
            self.out.add()
            self.out.add(f"#: {title}, by type code (class code, own code).")
            self.out.add(f"{name}: dict[int, {annotation}] = {{")
            for code, python in entries:
                self.out.add(f"0x{code:04X}: {python},", 4)
            self.out.add("}")
        self.out.add("#: The protocol classes' codes, by name.")
        self.out.add("CLASSES: dict[str, int] = {")
        for klass in self.spec.classes:
            self.out.add(f'"{klass.name}": 0x{klass.code:02X},', 4)
        self.out.add("}")

    def _keyed(self, methods: list[Definition], codes: dict[str, int]) -> list[tuple[int, str]]:
        return [(codes[m.klass] << 8 | (m.code or 0), self.method_names[id(m)]) for m in methods]


def render(spec_path: Path = SPEC) -> str:
    """The module's text generated from the spec at ``spec_path``."""
    digest = hashlib.sha256(spec_path.read_bytes()).hexdigest()
    return Generator(read_spec(spec_path), spec_path, digest).render()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=SPEC, help=f"the XML (default {SPEC})")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="the module to write")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if different")
    args = parser.parse_args(argv)
    if not args.spec.exists():
        parser.error(f"{args.spec} is missing: apt-get install amqp-specs")
    text = render(args.spec)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} differs from what {args.spec} generates", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output} ({len(text.splitlines())} lines)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
