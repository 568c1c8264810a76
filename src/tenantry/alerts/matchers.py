"""Label matchers as Alertmanager writes and applies them: ``severity="critical"``,
``service=~"api|web"``, ``env!="dev"``, ``team!~"ops.*"``.

As in Alertmanager, a label the alert does not carry matches as the empty string, and a regex
matches the whole value (it is anchored as ``^(?:pattern)$``), so ``service=~"api"`` does not
match ``api-gw``.

Alertmanager runs regexes on RE2, which takes linear time; Python's ``re`` backtracks. So a regex
here is refused when it could take exponential time (a repetition around another repetition or
an alternation of longer branches, as in ``(a+)+`` or ``(ab|a)*``), when it holds more than two
unbounded repetitions (``.*a.*b.*``: polynomial of a high degree), or when it uses what RE2 does
not have (backreferences, lookaround): a tenant's route must not be able to stall the router.
Alternations of single characters (``(a|b)*``) are sets, and allowed.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from tenantry.errors import InvalidInput

__all__ = [
    "MAX_REGEX_LENGTH",
    "MAX_UNBOUNDED_REPEATS",
    "MatchOp",
    "Matcher",
    "matches_all",
    "parse_matcher",
]

MatchOp = Literal["=", "!=", "=~", "!~"]

#: The longest regex a matcher may hold.
MAX_REGEX_LENGTH = 1024
#: How many unbounded repetitions (``*``, ``+``, ``{n,}``) a regex may hold: two keep the worst
#: case quadratic (``.*.*x`` on a 1,024-character value: 5 ms), where three can be cubic (0.2 s)
#: and ``.*a.*a.*a.*x`` took 75 s on this machine.
MAX_UNBOUNDED_REPEATS = 2

_sre: Any = importlib.import_module("re._parser")  # the stdlib's regex parser (no stubs)
_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})
_NOT_RE2 = frozenset({"GROUPREF", "GROUPREF_EXISTS", "ASSERT", "ASSERT_NOT"})
_MATCHER = re.compile(
    r'\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*|"(?:[^"\\]|\\.)*")\s*(?P<op>=~|!~|!=|=)\s*'
    r"(?P<value>.*?)\s*",
    re.ASCII | re.DOTALL,
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def _unquote(text: str) -> str:
    out: list[str] = []
    i = 1
    while i < len(text) - 1:
        if text[i] == "\\":
            if text[i + 1] not in _ESCAPES:
                raise InvalidInput(f"unknown escape in {InvalidInput.excerpt(text)}")
            out.append(_ESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\t", "\\t") + '"'


def _walk(nodes: Any, inside_repeat: bool, unbounded: list[int]) -> str | None:
    """Why the parsed regex ``nodes`` is refused, or None; counts unbounded repetitions."""
    for op, arg in nodes:
        name = str(op)
        if name in _NOT_RE2:
            return "uses a backreference or lookaround, which Alertmanager's RE2 does not have"
        children: list[Any] = []
        repeats = False
        if name in _REPEATS:
            repeats = arg[1] > 1
            unbounded[0] += arg[1] == _sre.MAXREPEAT
            if unbounded[0] > MAX_UNBOUNDED_REPEATS:
                return (
                    f"has more than {MAX_UNBOUNDED_REPEATS} unbounded repetitions (as in "
                    "'.*a.*b.*'), which can take polynomial time of a high degree"
                )
            if repeats and inside_repeat:
                return "repeats a repetition (as in '(a+)+'), which can take exponential time"
            children = [arg[2]]
        elif name == "BRANCH":
            if inside_repeat:
                return "repeats an alternation (as in '(ab|a)*'), which can take exponential time"
            children = list(arg[1])
        elif name == "SUBPATTERN":
            children = [arg[3]]
        elif name == "ATOMIC_GROUP":
            children = [arg]
        for child in children:
            problem = _walk(child, inside_repeat or repeats, unbounded)
            if problem:
                return problem
    return None


def _compile(pattern: str) -> re.Pattern[str]:
    if len(pattern) > MAX_REGEX_LENGTH:
        raise InvalidInput(f"a matcher's regex is longer than {MAX_REGEX_LENGTH} characters")
    try:
        compiled = re.compile(pattern)  # fullmatch anchors it, as ^(?:pattern)$ does
        problem = _walk(_sre.parse(pattern), inside_repeat=False, unbounded=[0])
    except (re.error, RecursionError, OverflowError) as error:
        raise InvalidInput(f"invalid regex {InvalidInput.excerpt(pattern)}: {error}") from None
    if problem:
        raise InvalidInput(f"regex {InvalidInput.excerpt(pattern)} {problem}")
    return compiled


@dataclass(frozen=True, slots=True)
class Matcher:
    """``name op value``; build one with :func:`parse_matcher` or ``Matcher("a", "=", "b")``."""

    name: str
    op: MatchOp
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in ("=", "!=", "=~", "!~"):
            raise InvalidInput(f"unknown matcher operator {InvalidInput.excerpt(self.op)}")
        if self.op in ("=~", "!~") and self._regex is None:
            object.__setattr__(self, "_regex", _compile(self.value))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` pass (a missing label is the empty string)."""
        actual = labels.get(self.name, "")
        if self._regex is None:
            return (actual == self.value) == (self.op == "=")
        return (self._regex.fullmatch(actual) is not None) == (self.op == "=~")

    def __str__(self) -> str:
        """Alertmanager's text form, which :func:`parse_matcher` reads back (the name quoted
        when it is not a plain identifier)."""
        name = self.name if _NAME.fullmatch(self.name) else _quote(self.name)
        return f"{name}{self.op}{_quote(self.value)}"


def parse_matcher(text: str) -> Matcher:
    """A matcher from Alertmanager's text form: ``name op value``, the value quoted or bare."""
    if not isinstance(text, str):
        raise InvalidInput(f"a matcher is a string, not {InvalidInput.excerpt(text)}")
    found = _MATCHER.fullmatch(text)
    if found is None:
        raise InvalidInput(
            f'invalid matcher {InvalidInput.excerpt(text)}: write it as name="value" (or !=, '
            "=~, !~)"
        )
    name, op, value = found.group("name"), found.group("op"), found.group("value")
    if name.startswith('"'):
        name = _unquote(name)
    if value.startswith('"'):
        if not _QUOTED.fullmatch(value):
            raise InvalidInput(f"invalid matcher {InvalidInput.excerpt(text)}: unclosed quote")
        value = _unquote(value)
    return Matcher(name, cast(MatchOp, op), value)


def _split(text: str) -> list[str]:
    """``text`` cut at the commas outside double quotes."""
    pieces, start, quoted, i = [], 0, False, 0
    while i < len(text):
        if text[i] == "\\" and quoted:
            i += 1
        elif text[i] == '"':
            quoted = not quoted
        elif text[i] == "," and not quoted:
            pieces.append(text[start:i])
            start = i + 1
        i += 1
    pieces.append(text[start:])
    return pieces


def parse_matchers_text(text: str) -> tuple[Matcher, ...]:
    """One entry of a ``matchers:`` list as Alertmanager reads it: one matcher or several,
    comma-separated, optionally in braces, a trailing comma allowed (``{a="b", c=~"d"}``)."""
    if not isinstance(text, str):
        raise InvalidInput(f"a matcher is a string, not {InvalidInput.excerpt(text)}")
    inner = text.strip()
    if inner.startswith("{"):
        if not inner.endswith("}"):
            raise InvalidInput(f"invalid matchers {InvalidInput.excerpt(text)}: unclosed '{{'")
        inner = inner[1:-1]
    pieces = _split(inner)
    if pieces and not pieces[-1].strip():
        pieces.pop()  # a trailing comma
    if not pieces:
        raise InvalidInput(f"no matcher in {InvalidInput.excerpt(text)}")
    return tuple(parse_matcher(piece) for piece in pieces)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher passes (true for none)."""
    return all(matcher.matches(labels) for matcher in matchers)
