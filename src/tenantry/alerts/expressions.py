"""Alert conditions as the documents write them, parsed without ``eval``.

    session_creation_time_p95 > 100ms
    anomaly_score > 0.9 and not threat_level == "high"
    (error_rate{route="/sessions"} >= 5% or cache_hit_ratio < 80%) and memory_used > 512MiB

Grammar (a tokenizer and a recursive-descent parser; ``and`` binds tighter than ``or``)::

    condition  := or
    or         := and ("or" and)*
    and        := unary ("and" unary)*
    unary      := "not" unary | "(" or ")" | comparison
    comparison := operand (">" | ">=" | "<" | "<=" | "==" | "!=") operand
    operand    := series | ["-"] number [unit] | string
    series     := name ["{" label "=" string ("," label "=" string)* [","] "}"]

Names are ASCII letters, digits, ``_`` and ``.``, not starting with a digit or ``.``; ``and``,
``or`` and ``not`` are reserved. Strings are double-quoted with ``\\"``, ``\\\\``, ``\\n``
and ``\\t`` escapes, and compare only with ``==`` and ``!=``.

Units normalise a number: durations to seconds (``ns``, ``us``, ``ms``, ``s``, ``m``, ``h``), a
percentage to a ratio (``80%`` is 0.8, so series such as ``cache_hit_ratio`` hold ratios), sizes
to bytes (``B``, ``KB``/``MB``/``GB`` by 1000, ``KiB``/``MiB``/``GiB`` by 1024).

Evaluation reads each series through a lookup (a mapping or a callable). A comparison whose
series is missing, NaN, or of the wrong kind (a string against a number) is *unknown*; ``and``,
``or`` and ``not`` follow three-valued (Kleene) logic, and a condition is met only when it is
true. So a missing series never makes an alert fire, not even under ``not``: ``not x > 5``
with no ``x`` is not met, while ``a > 1 or x > 5`` is met when ``a`` is 2.

Every malformed or oversized input is :class:`~tenantry.errors.InvalidInput` naming the
character position (0-based) in its message and in its issue's ``loc``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from tenantry.errors import InvalidInput, Issue

__all__ = [
    "MAX_CONDITION_DEPTH",
    "MAX_CONDITION_LENGTH",
    "MAX_CONDITION_TERMS",
    "UNITS",
    "And",
    "Compare",
    "Condition",
    "Lookup",
    "Node",
    "Not",
    "Number",
    "Operand",
    "Operator",
    "Or",
    "SeriesRef",
    "SeriesValue",
    "Text",
    "parse_condition",
]

#: The longest condition text, in characters.
MAX_CONDITION_LENGTH = 4096
#: How deeply ``not`` and parentheses may nest.
MAX_CONDITION_DEPTH = 32
#: How many comparisons one condition may hold.
MAX_CONDITION_TERMS = 64

SeriesValue = float | str
Operator = Literal[">", ">=", "<", "<=", "==", "!="]
Lookup = Mapping[str, SeriesValue] | Callable[["SeriesRef"], SeriesValue | None]

#: Each unit as (multiplier, divisor): dividing keeps ``7%`` at 0.07, not 0.07000000000000001.
UNITS: dict[str, tuple[float, float]] = {
    "ns": (1.0, 1e9),
    "us": (1.0, 1e6),
    "ms": (1.0, 1e3),
    "s": (1.0, 1.0),
    "m": (60.0, 1.0),
    "h": (3600.0, 1.0),
    "%": (1.0, 100.0),
    "B": (1.0, 1.0),
    "KB": (1e3, 1.0),
    "MB": (1e6, 1.0),
    "GB": (1e9, 1.0),
    "KiB": (1024.0, 1.0),
    "MiB": (1024.0**2, 1.0),
    "GiB": (1024.0**3, 1.0),
}
_KEYWORDS = frozenset({"and", "or", "not"})
_OPERATORS = (">=", "<=", "==", "!=", ">", "<")
_PUNCTUATION = frozenset("(){},=-")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_DIGITS = frozenset("0123456789")
_NAME_CHARS = _LETTERS | _DIGITS | {"."}
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def _error(position: int, message: str) -> InvalidInput:
    where = f"at position {position}"
    return InvalidInput(
        f"invalid condition {where}: {message}",
        issues=[Issue(loc=("condition", position), msg=message, type="condition_syntax")],
    )


# --- the tree ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Number:
    """A number literal, normalised by its unit (``100ms`` is 0.1 with unit ``ms``)."""

    value: float
    unit: str | None = None

    def __str__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True, slots=True)
class Text:
    """A string literal."""

    value: str

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + escaped.replace("\n", "\\n").replace("\t", "\\t") + '"'


@dataclass(frozen=True, slots=True)
class SeriesRef:
    """A series a condition reads: its name and label selector (labels sorted by name)."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        """``name`` or ``name{a="x",b="y"}``: how a mapping lookup finds the series."""
        if not self.labels:
            return self.name
        inner = ",".join(f"{label}={Text(value)}" for label, value in self.labels)
        return f"{self.name}{{{inner}}}"

    def __str__(self) -> str:
        return self.key


Operand = Number | Text | SeriesRef


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right``; ``position`` is where the operator stands in the source."""

    op: Operator
    left: Operand
    right: Operand
    position: int = 0

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node

    def __str__(self) -> str:
        return f"not ({self.operand})"


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " and ".join(f"({operand})" for operand in self.operands)


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " or ".join(f"({operand})" for operand in self.operands)


Node = Compare | Not | And | Or


# --- tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["name", "number", "string", "op", "punct", "keyword", "end"]
    text: str
    position: int
    value: float | str | None = None
    unit: str | None = None


def _tokens(text: str) -> Iterator[_Token]:
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in " \t\r\n":
            i += 1
        elif char in _LETTERS:
            start = i
            while i < n and text[i] in _NAME_CHARS:
                i += 1
            word = text[start:i]
            yield _Token("keyword" if word in _KEYWORDS else "name", word, start)
        elif char in _DIGITS or (char == "." and i + 1 < n and text[i + 1] in _DIGITS):
            yield (token := _number(text, i))
            i = token.position + len(token.text)
        elif char == '"':
            yield (token := _string(text, i))
            i = token.position + len(token.text)
        elif (op := next((o for o in _OPERATORS if text.startswith(o, i)), None)) is not None:
            yield _Token("op", op, i)
            i += len(op)
        elif char in _PUNCTUATION:
            yield _Token("punct", char, i)
            i += 1
        else:
            raise _error(i, f"unexpected character {char!r}")
    yield _Token("end", "", n)


def _number(text: str, start: int) -> _Token:
    match = _NUMBER.match(text, start)
    if match is None:  # only reached on a digit or '.digit', which always match
        raise _error(start, "expected a number")
    i, n = match.end(), len(text)
    literal = text[start:i]
    unit_start = i
    if i < n and text[i] == "%":
        i += 1
    else:
        while i < n and text[i] in _LETTERS:
            i += 1
    unit = text[unit_start:i] or None
    if unit is not None and unit not in UNITS:
        known = ", ".join(UNITS)
        raise _error(unit_start, f"unknown unit {unit!r} (use one of {known})")
    multiplier, divisor = UNITS[unit] if unit else (1.0, 1.0)
    value = float(literal) * multiplier / divisor
    if not math.isfinite(value):
        raise _error(start, f"number {literal!r} is out of range")
    if i < n and text[i] in _NAME_CHARS:
        raise _error(i, "a number runs into a name: put a space or an operator between")
    return _Token("number", text[start:i], start, value, unit)


def _string(text: str, start: int) -> _Token:
    i, n = start + 1, len(text)
    chars: list[str] = []
    while i < n and text[i] != '"':
        if text[i] == "\\":
            if i + 1 >= n or text[i + 1] not in _ESCAPES:
                raise _error(i, 'unknown escape: use \\", \\\\, \\n or \\t')
            chars.append(_ESCAPES[text[i + 1]])
            i += 2
        else:
            chars.append(text[i])
            i += 1
    if i >= n:
        raise _error(start, "unterminated string")
    return _Token("string", text[start : i + 1], start, "".join(chars))


# --- the parser -------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = list(_tokens(text))
        self.at = 0
        self.depth = 0
        self.terms = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def fail(self, message: str, token: _Token | None = None) -> InvalidInput:
        return _error((token or self.token).position, message)

    def take(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.token
        if token.kind == kind and (text is None or token.text == text):
            self.at += 1
            return token
        return None

    def expect(self, kind: str, text: str, what: str) -> _Token:
        token = self.take(kind, text)
        if token is None:
            raise self.fail(f"expected {what}, found {self._found()}")
        return token

    def _found(self) -> str:
        return "the end" if self.token.kind == "end" else repr(self.token.text)

    def parse(self) -> Node:
        node = self.or_()
        if self.token.kind != "end":
            raise self.fail(f"unexpected {self._found()}: expected 'and', 'or' or the end")
        return node

    def or_(self) -> Node:
        operands = [self.and_()]
        while self.take("keyword", "or"):
            operands.append(self.and_())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_(self) -> Node:
        operands = [self.unary()]
        while self.take("keyword", "and"):
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def unary(self) -> Node:
        opening = self.token
        if opening.kind not in ("keyword", "punct") or opening.text not in ("not", "("):
            return self.comparison()
        self.depth += 1
        if self.depth > MAX_CONDITION_DEPTH:
            raise self.fail(f"nested deeper than {MAX_CONDITION_DEPTH} levels")
        self.at += 1
        if opening.text == "not":
            node: Node = Not(self.unary())
        else:
            node = self.or_()
            self.expect("punct", ")", "')'")
        self.depth -= 1
        return node

    def comparison(self) -> Node:
        left = self.operand()
        op = self.take("op")
        if op is None:
            raise self.fail(f"expected a comparison (> >= < <= == !=), found {self._found()}")
        right = self.operand()
        self.terms += 1
        if self.terms > MAX_CONDITION_TERMS:
            raise self.fail(f"more than {MAX_CONDITION_TERMS} comparisons", op)
        for side in (left, right):
            if isinstance(side, Text) and op.text not in ("==", "!="):
                raise self.fail("a string compares only with == or !=", op)
        if isinstance(left, SeriesRef) or isinstance(right, SeriesRef):
            pass
        elif isinstance(left, Number) != isinstance(right, Number):
            raise self.fail("compares a number with a string", op)
        else:
            raise self.fail("compares two constants: name a series on one side", op)
        return Compare(cast(Operator, op.text), left, right, op.position)

    def operand(self) -> Operand:
        token = self.token
        if self.take("punct", "-"):
            number = self.take("number")
            if number is None:
                raise self.fail("expected a number after '-'")
            return Number(-float(number.value or 0.0), number.unit)
        if self.take("number"):
            return Number(float(token.value or 0.0), token.unit)
        if self.take("string"):
            return Text(str(token.value))
        if self.take("name"):
            return SeriesRef(token.text, self.selector())
        raise self.fail(f"expected a series name, a number or a string, found {self._found()}")

    def selector(self) -> tuple[tuple[str, str], ...]:
        if not self.take("punct", "{"):
            return ()
        labels: dict[str, str] = {}
        while not self.take("punct", "}"):
            label = self.take("name")
            if label is None or "." in label.text:
                raise self.fail(f"expected a label name or '}}', found {self._found()}")
            if label.text in labels:
                raise self.fail(f"label {label.text!r} is selected twice", label)
            self.expect("punct", "=", "'=' after the label name")
            value = self.take("string")
            if value is None:
                raise self.fail(f'expected a quoted label value ("..."), found {self._found()}')
            labels[label.text] = str(value.value)
            if not self.take("punct", ","):
                self.expect("punct", "}", "',' or '}'")
                break
        return tuple(sorted(labels.items()))


def parse_condition(text: str) -> Condition:
    """The :class:`Condition` ``text`` spells, or :class:`InvalidInput` with the position."""
    if not isinstance(text, str):
        raise InvalidInput(f"a condition is a string, not {InvalidInput.excerpt(text)}")
    if len(text) > MAX_CONDITION_LENGTH:
        raise _error(MAX_CONDITION_LENGTH, f"longer than {MAX_CONDITION_LENGTH} characters")
    if not text.strip():
        raise _error(0, "the condition is empty")
    return Condition(text, _Parser(text).parse())


# --- evaluation -------------------------------------------------------------------------------


def _value(operand: Operand, read: Callable[[SeriesRef], SeriesValue | None]) -> SeriesValue | None:
    if isinstance(operand, SeriesRef):
        value = read(operand)
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int | float):
            return None if math.isnan(value) else float(value)
        return value if isinstance(value, str) else None
    return operand.value


def _compare(node: Compare, read: Callable[[SeriesRef], SeriesValue | None]) -> bool | None:
    left, right = _value(node.left, read), _value(node.right, read)
    if left is None or right is None:
        return None
    if isinstance(left, str) or isinstance(right, str):
        if not (isinstance(left, str) and isinstance(right, str)):
            return None
        return _ORDER[node.op](left, right) if node.op in ("==", "!=") else None
    return _ORDER[node.op](left, right)


def _evaluate(node: Node, read: Callable[[SeriesRef], SeriesValue | None]) -> bool | None:
    if isinstance(node, Compare):
        return _compare(node, read)
    if isinstance(node, Not):
        inner = _evaluate(node.operand, read)
        return None if inner is None else not inner
    decisive = isinstance(node, Or)  # the value that settles the whole: True for or
    result: bool | None = not decisive
    for operand in node.operands:
        value = _evaluate(operand, read)
        if value is decisive:
            return decisive
        if value is None:
            result = None
    return result


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition: its ``source`` text and the tree ``root``."""

    source: str
    root: Node

    def series(self) -> tuple[SeriesRef, ...]:
        """The series the condition reads, each once, in the order they first appear."""
        seen: dict[SeriesRef, None] = {}
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, Compare):
                for side in (node.left, node.right):
                    if isinstance(side, SeriesRef):
                        seen.setdefault(side)
            elif isinstance(node, Not):
                stack.append(node.operand)
            else:
                stack.extend(reversed(node.operands))
        return tuple(seen)

    def evaluate3(self, lookup: Lookup) -> bool | None:
        """True, False, or None when missing series leave it unknown (see the module doc)."""
        if isinstance(lookup, Mapping):
            values = lookup

            def read(ref: SeriesRef) -> SeriesValue | None:
                return values.get(ref.key)

            return _evaluate(self.root, read)
        return _evaluate(self.root, lookup)

    def evaluate(self, lookup: Lookup) -> bool:
        """Whether the condition is met: true, not merely unknown."""
        return self.evaluate3(lookup) is True

    def __str__(self) -> str:
        return str(self.root)
