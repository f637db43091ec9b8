"""The SDK agrees with docs/protocol.md: every server event example parses into its typed
event with every field modelled, every client event is sent by some client method, and
every error code has its exception class (no daemon)."""

from __future__ import annotations

import dataclasses
import json
import re
import pytest

from conftest import REPO_ROOT, SDK_ROOT
from mnemo import EVENT_TYPES, APIError, UnknownEvent, error_for, parse_event
from mnemo.objects import Message, Session

DOC = REPO_ROOT / "docs" / "protocol.md"


def section(title: str) -> str:
    if not DOC.is_file():
        pytest.skip(f"{DOC} not found")
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def json_blocks(text: str) -> list[dict]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def event_headings(text: str) -> list[str]:
    return re.findall(r"^### `([a-z_.]+)`$", text, re.M)


def test_every_server_event_has_a_class() -> None:
    documented = event_headings(section("Server events"))
    assert len(documented) >= 15
    assert sorted(documented) == sorted(EVENT_TYPES)


def test_server_examples_parse_with_every_field_modelled() -> None:
    examples = json_blocks(section("Server events"))
    assert len(examples) >= 15
    for example in examples:
        event = parse_event(example)
        assert not isinstance(event, UnknownEvent), example["type"]
        assert type(event) is EVENT_TYPES[example["type"]]
        names = {f.name for f in dataclasses.fields(event)}
        for key in example:
            if key != "type":
                assert key in names, f"{example['type']}.{key} is not modelled"
        assert event.event_id == example.get("event_id")
        assert event.raw == example


def test_object_examples_round_trip() -> None:
    objects = json_blocks(section("Objects"))
    session = next(o for o in objects if "message_count" in o)
    s = Session.from_json(session)
    assert (s.id, s.message_count, s.metadata) == (session["id"], 3, {"user": "ada"})
    message = next(o for o in objects if o.get("role") == "tool")
    m = Message.from_json(message)
    assert m.to_json() == {k: v for k, v in message.items() if k not in ("index", "created_at")}


def test_every_client_event_is_sent_by_the_sdk() -> None:
    documented = event_headings(section("Client events"))
    assert len(documented) >= 12
    source = "".join(p.read_text() for p in (SDK_ROOT / "mnemo").glob("*.py"))
    for name in documented:
        assert f'"type": "{name}"' in source, f"no client method sends {name}"


def test_every_error_code_has_its_exception() -> None:
    table = section("Server events").split("### `error`", 1)[1]
    codes = [c for c in re.findall(r"^\| `([a-z_]+)` \|", table, re.M) if c != "code"]  # not the header
    assert "not_found" in codes and len(codes) >= 13
    for code in codes:
        error = error_for(code, "m", field="f", event_id="e")
        assert type(error) is not APIError, f"no class for {code}"
        assert (error.code, error.field, error.event_id, error.message) == (code, "f", "e", "m")
    assert type(error_for("brand_new", "m")) is APIError
