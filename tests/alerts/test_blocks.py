"""Block Kit output: the layout, Slack's limits kept by splitting and cutting, and validation."""

from __future__ import annotations

from typing import Any

import pytest

from tenantry.alerts import (
    MAX_BLOCKS,
    MAX_HEADER_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_TEXT_CHARS,
    AlertMessage,
    TemplateRenderer,
    build_message,
    validate_blocks,
)
from tenantry.alerts.blocks import MARKER
from tenantry.errors import SchemaViolation


def texts(blocks: list[dict[str, Any]], kind: str) -> list[str]:
    found = []
    for block in blocks:
        if block["type"] == kind == "context":
            found += [element["text"] for element in block["elements"]]
        elif block["type"] == kind:
            found.append(block["text"]["text"])
    return found


def test_the_documents_fixture_becomes_header_sections_and_context() -> None:
    message = build_message(
        AlertMessage(
            title="🎵 Spotify-Wiedergabe Unterbrochen",
            description="Kritischer Audio-Streaming-Fehler erkannt",
            action_required="Sofortige Untersuchung erforderlich",
            context=["🚨 critical · eu-central-1"],
        )
    )
    assert message.blocks == [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": "🎵 Spotify-Wiedergabe Unterbrochen",
                "emoji": True,
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "Kritischer Audio-Streaming-Fehler erkannt",
                "verbatim": True,
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "Sofortige Untersuchung erforderlich",
                "verbatim": True,
            },
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "🚨 critical · eu-central-1", "verbatim": True}
            ],
        },
    ]
    assert message.text.startswith("🎵 Spotify-Wiedergabe Unterbrochen\nKritischer")
    assert not message.truncated
    assert message.payload() == {"text": message.text, "blocks": message.blocks}
    validate_blocks(message.blocks, message.text)


def test_the_header_is_plain_text_unescaped_and_cut_to_150() -> None:
    title = TemplateRenderer().render("{{ t }}", {"t": "R&D <team> " + "x" * 300})
    message = build_message(AlertMessage(title=title, description="d"))
    header = texts(message.blocks, "header")[0]
    assert header.startswith("R&D <team> x")  # plain text shows what was typed
    assert len(header) <= MAX_HEADER_CHARS
    assert header.endswith(MARKER)
    assert message.truncated
    assert any("characters not shown" in text for text in texts(message.blocks, "context"))
    validate_blocks(message.blocks, message.text)


def test_a_long_description_is_split_into_sections_at_breaks() -> None:
    paragraphs = "\n\n".join(f"Paragraph {i}: " + "word " * 150 for i in range(12))
    message = build_message(AlertMessage(title="t", description=paragraphs))
    sections = texts(message.blocks, "section")
    assert len(sections) >= 3
    assert all(len(text) <= MAX_TEXT_CHARS for text in sections)
    assert all(text.rstrip().endswith("word") for text in sections)  # not inside a word
    assert " ".join(" ".join(sections).split()) == " ".join(paragraphs.split())  # nothing lost
    assert not message.truncated
    validate_blocks(message.blocks, message.text)


def test_a_cut_never_splits_an_entity_or_a_link() -> None:
    link = "<https://runbook.example/db|runbook>"
    unit = "&amp;" * 3 + link
    description = unit * (MAX_TEXT_CHARS * 5 // len(unit))  # no spaces: only hard breaks
    message = build_message(AlertMessage(title="t", description=description))
    for text in texts(message.blocks, "section"):
        body = text.removesuffix(MARKER)
        assert body.count("<") == body.count(">"), text[-60:]
        assert "&" not in body.replace("&amp;", ""), text[-60:]
    validate_blocks(message.blocks, message.text)


def test_a_huge_alert_is_cut_with_a_visible_note_and_stays_within_limits() -> None:
    message = build_message(
        AlertMessage(
            title="Disk full",
            description="lorem ipsum " * 5000,
            action_required="free space " * 2000,
            context=[f"c{i}" for i in range(20)],
            truncated_note="gekürzt: {hidden} Zeichen fehlen",
        )
    )
    assert message.truncated
    note = texts(message.blocks, "context")[-1]
    assert note.startswith(f"_{MARKER} gekürzt: ")
    assert note.endswith(" Zeichen fehlen_")
    hidden = int(note.split(": ")[1].split(" ")[0])
    shown = sum(len(text.removesuffix(MARKER)) for text in texts(message.blocks, "section"))
    assert hidden + shown >= len("lorem ipsum " * 5000) + len("free space " * 2000) - 20
    sections = texts(message.blocks, "section")
    assert sum(text.startswith("free space") for text in sections) == 1  # the action is kept
    assert sections[-1].endswith(MARKER)
    assert len(message.blocks) <= MAX_BLOCKS
    assert len(texts(message.blocks, "context")) <= 10
    assert len(message.text) <= MAX_MESSAGE_CHARS
    validate_blocks(message.blocks, message.text)


def test_empty_parts_are_left_out() -> None:
    message = build_message(AlertMessage(title="  ", description="only this", context=["", " "]))
    assert [block["type"] for block in message.blocks] == ["header", "section"]
    validate_blocks(message.blocks, message.text)


def test_validation_lists_every_problem() -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "mrkdwn", "text": "x"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": " "}},
        {"type": "bogus"},
        {"type": "context", "elements": []},
        {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}},
        {"type": "header", "text": {"type": "plain_text", "text": "x" * 151}},
        {"type": "divider", "block_id": "a"},
        {"type": "divider", "block_id": "a"},
        {"type": "section", "text": "not an object"},
    ]
    with pytest.raises(SchemaViolation) as raised:
        validate_blocks(blocks, "t" * (MAX_MESSAGE_CHARS + 1))
    where = {issue.loc for issue in raised.value.issues}
    assert where >= {
        ("blocks", 0, "text"),
        ("blocks", 1, "text", "text"),
        ("blocks", 2),
        ("blocks", 3, "elements"),
        ("blocks", 4),
        ("blocks", 5),
        ("blocks", 7, "block_id"),
        ("blocks", 8, "text"),
        ("text",),
    }
    assert raised.value.detail.startswith("the Slack message is invalid: blocks.0.text must be")


def test_validation_checks_counts_and_totals() -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2000}}
    with pytest.raises(SchemaViolation, match="more than 50 blocks"):
        validate_blocks([{"type": "divider"}] * 51)
    with pytest.raises(SchemaViolation, match="characters of text in all"):
        validate_blocks([section] * 7)
    with pytest.raises(SchemaViolation, match="1 to 50 blocks"):
        validate_blocks([])
    with pytest.raises(SchemaViolation, match="must be an object"):
        validate_blocks(["header"])  # type: ignore[list-item]
    validate_blocks([section] * 6)
