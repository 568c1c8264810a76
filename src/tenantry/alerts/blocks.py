"""Block Kit messages for alerts, kept within Slack's limits and checked before sending.

:func:`build_message` lays a rendered alert (its texts already escaped for mrkdwn) out as a
header, the description and the action required as sections, and a context line. Slack's limits
are kept by construction: the header is cut to 150 characters, a section text longer than 3,000
is split into several sections (between paragraphs, lines or words, never inside an ``&amp;``
entity or a ``<…>`` link or mention), and the message's texts together, like the ``text``
fallback, stay within :data:`MAX_MESSAGE_CHARS`; what does not fit is cut with ``…`` and a
context note that says how much is missing. Text objects are ``verbatim``, so Slack does not
turn a value's bare ``@channel`` or URL into a mention or link either.

:func:`validate_blocks` checks any list of blocks (slack-sdk's rules and the ones it leaves out:
empty texts, a header in mrkdwn, context elements) and lists every problem in one
:class:`~tenantry.errors.SchemaViolation`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from tenantry.errors import Issue, SchemaViolation

__all__ = [
    "MARKER",
    "MAX_BLOCKS",
    "MAX_CONTEXT_ELEMENTS",
    "MAX_HEADER_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_TEXT_CHARS",
    "AlertMessage",
    "BuiltMessage",
    "build_message",
    "validate_blocks",
]

MAX_BLOCKS = 50
MAX_TEXT_CHARS = 3_000  # a section's text, and any text object
MAX_HEADER_CHARS = 150
MAX_CONTEXT_ELEMENTS = 10
#: All text of a message's blocks together, and its ``text`` fallback (Slack cuts at 40,000 and
#: advises far less; 12,000 is what a person still reads as one alert).
MAX_MESSAGE_CHARS = 12_000
MARKER = "…"
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}
_ENTITY_LONGEST = 5  # "&amp;"
_SOFT = 0.8  # a cut looks for a paragraph, line or word break in the last 20% of the room


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """A rendered alert: mrkdwn texts, escaped already (``TemplateRenderer`` output)."""

    title: str
    description: str
    action_required: str = ""
    context: Sequence[str] = ()
    #: The note added when something was cut; ``{hidden}`` becomes the number of characters.
    truncated_note: str = "message shortened: {hidden} characters not shown"


@dataclass(frozen=True, slots=True)
class BuiltMessage:
    """What ``chat.postMessage`` or a webhook takes: the fallback ``text`` and the blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def _unescape(text: str) -> str:
    for entity, char in _ENTITIES.items():
        text = text.replace(entity, char)
    return text


def _safe_end(text: str, end: int) -> int:
    """``end`` moved back so that ``text[:end]`` ends on a break and inside no entity or link."""
    soft = int(end * _SOFT)
    for separator in ("\n\n", "\n", " "):
        found = text.rfind(separator, soft, end)
        if found > 0:
            end = found + len(separator)
            break
    amp = text.rfind("&", max(0, end - _ENTITY_LONGEST + 1), end)
    if amp >= 0 and ";" not in text[amp:end]:
        end = amp
    opened = text.rfind("<", 0, end)
    if opened > text.rfind(">", 0, end):
        end = opened if opened > 0 else end
    return max(end, 1)


def _cut(text: str, room: int) -> tuple[str, int]:
    """``text`` within ``room`` characters, ended with ``…`` when cut; and how many were hidden."""
    if len(text) <= room:
        return text, 0
    end = _safe_end(text, max(room - len(MARKER), 1))
    return text[:end].rstrip() + MARKER, len(text) - end


def _chunks(text: str, size: int = MAX_TEXT_CHARS) -> list[str]:
    """``text`` split into pieces of at most ``size`` characters, at safe breaks."""
    pieces = []
    while len(text) > size:
        end = _safe_end(text, size)
        pieces.append(text[:end].rstrip())
        text = text[end:].lstrip()
    if text.strip():
        pieces.append(text)
    return pieces


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def build_message(message: AlertMessage) -> BuiltMessage:
    """The Block Kit message of ``message``, within Slack's limits (module docstring)."""
    title = _unescape(" ".join(message.title.split())) or MARKER
    header, hidden = _cut(title, MAX_HEADER_CHARS)
    context = [text for text in message.context if text.strip()][: MAX_CONTEXT_ELEMENTS - 1]
    context = [_cut(text, MAX_TEXT_CHARS)[0] for text in context]
    room = MAX_MESSAGE_CHARS - len(header) - sum(map(len, context)) - MAX_TEXT_CHARS // 10
    action, hidden_action = _cut(message.action_required.strip(), max(room // 3, 1))
    description, hidden_description = _cut(message.description.strip(), room - len(action))
    hidden += hidden_action + hidden_description
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}
    ]
    for piece in (*_chunks(description), *_chunks(action)):
        blocks.append({"type": "section", "text": _mrkdwn(piece)})
    if hidden:
        context.append(f"_{MARKER} {message.truncated_note.replace('{hidden}', str(hidden))}_")
    if context:
        blocks.append({"type": "context", "elements": [_mrkdwn(text) for text in context]})
    fallback = "\n".join(part for part in (message.title, description, action) if part)
    text, _ = _cut(fallback, MAX_MESSAGE_CHARS)
    return BuiltMessage(text=text, blocks=blocks[:MAX_BLOCKS], truncated=bool(hidden))


def _text_issues(where: tuple[str | int, ...], obj: object, kinds: tuple[str, ...]) -> list[Issue]:
    if not isinstance(obj, Mapping) or obj.get("type") not in kinds:
        return [Issue(where, f"must be a text object of type {' or '.join(kinds)}", "text_type")]
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        return [Issue((*where, "text"), "must be a non-empty string", "text_empty")]
    if len(text) > MAX_TEXT_CHARS:
        return [Issue((*where, "text"), f"longer than {MAX_TEXT_CHARS} characters", "too_long")]
    return []


def _our_issues(index: int, block: Mapping[str, Any]) -> list[Issue]:
    """The rules slack-sdk does not check, for the block types alerts use."""
    where: tuple[str | int, ...] = ("blocks", index)
    kind = block.get("type")
    if kind == "header":
        return _text_issues((*where, "text"), block.get("text"), ("plain_text",))
    if kind == "section" and "fields" not in block:
        return _text_issues((*where, "text"), block.get("text"), ("plain_text", "mrkdwn"))
    if kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            return [Issue((*where, "elements"), "must list 1 to 10 elements", "elements")]
        issues = []
        for number, element in enumerate(elements):
            if isinstance(element, Mapping) and element.get("type") == "image":
                continue
            place = (*where, "elements", number)
            issues += _text_issues(place, element, ("plain_text", "mrkdwn"))
        return issues
    return []


def _text_length(value: object) -> int:
    """All ``text`` strings inside a block, counted."""
    if isinstance(value, Mapping):
        own = len(value["text"]) if isinstance(value.get("text"), str) else 0
        return own + sum(_text_length(item) for item in value.values())
    if isinstance(value, list):
        return sum(_text_length(item) for item in value)
    return 0


def validate_blocks(blocks: Sequence[Mapping[str, Any]], text: str | None = None) -> None:
    """Raise :class:`SchemaViolation`, listing every problem, unless Slack would take the
    message ``blocks`` (with ``text`` as its fallback)."""
    issues: list[Issue] = []
    if not isinstance(blocks, Sequence) or isinstance(blocks, str) or not blocks:
        issues.append(Issue(("blocks",), "must be a list of 1 to 50 blocks", "blocks"))
        blocks = []
    elif len(blocks) > MAX_BLOCKS:
        issues.append(Issue(("blocks",), f"more than {MAX_BLOCKS} blocks", "too_many"))
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        if not isinstance(block, Mapping):
            issues.append(Issue(("blocks", index), "must be an object", "block"))
            continue
        try:
            parsed = Block.parse(dict(block))
            if parsed is None:
                raise SlackObjectFormationError(f"unknown block type {block.get('type')!r}")
            parsed.validate_json()
        except (SlackObjectFormationError, KeyError, TypeError, AttributeError) as error:
            issues.append(Issue(("blocks", index), str(error) or type(error).__name__, "slack"))
            continue
        issues += _our_issues(index, block)
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen:
                issues.append(Issue(("blocks", index, "block_id"), "repeated", "block_id"))
            seen.add(block_id)
    total = sum(_text_length(block) for block in blocks if isinstance(block, Mapping))
    if total > MAX_MESSAGE_CHARS:
        issues.append(Issue(("blocks",), f"{total} characters of text in all", "too_long"))
    if text is not None and len(text) > MAX_MESSAGE_CHARS:
        issues.append(Issue(("text",), f"longer than {MAX_MESSAGE_CHARS} characters", "too_long"))
    if issues:
        first = issues[0]
        where = ".".join(map(str, first.loc))
        more = f" ({len(issues)} problems)" if len(issues) > 1 else ""
        raise SchemaViolation(
            f"the Slack message is invalid: {where} {first.msg}{more}", issues=issues
        )
