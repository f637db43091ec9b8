"""Bad requests come back as typed exceptions carrying the protocol's error code, and the
connection keeps working."""

from __future__ import annotations

import pytest

from conftest import LONG, Daemon
from mnemo import (AsyncClient, BusyError, InvalidFieldError, InvalidRequestError, MissingFieldError,
                   NotFoundError, ResponseDelta)


async def test_unknown_session_is_not_found(daemon: Daemon) -> None:
    async with AsyncClient(daemon.url) as client:
        with pytest.raises(NotFoundError) as info:
            await client.get_session("sess_nope")
        assert info.value.code == "not_found" and info.value.event_id
        with pytest.raises(NotFoundError):
            await client.append("sess_nope", "hi")
        with pytest.raises(NotFoundError):
            await client.respond("sess_nope")
        with pytest.raises(NotFoundError):
            await client.end_program("prog_nope")
        with pytest.raises(NotFoundError):
            await client.end_tool("call_nope")
        await client.ping()


async def test_invalid_fields_name_the_field(daemon: Daemon) -> None:
    async with AsyncClient(daemon.url) as client:
        with pytest.raises(InvalidFieldError) as info:
            await client.create_session(sampling={"temperature": "hot"})
        assert info.value.field == "sampling.temperature"
        session = await client.create_session()
        with pytest.raises(InvalidFieldError) as info:
            await client.append(session.id, {"role": "robot", "content": "beep"})
        assert info.value.field == "message.role"
        with pytest.raises(MissingFieldError) as info:
            await client.append(session.id, {"role": "tool", "content": "18"})
        assert info.value.field == "message.tool_call_id"
        with pytest.raises(InvalidFieldError):
            await client.list_sessions(limit=0)
        await client.ping()


async def test_required_tool_choice_without_tools_is_invalid_request(daemon: Daemon) -> None:
    async with AsyncClient(daemon.url) as client:
        session = await client.create_session()
        await client.append(session.id, "hi")
        with pytest.raises(InvalidRequestError):
            await client.respond(session.id, tool_choice="required")
        with pytest.raises(InvalidRequestError):
            await client.respond(session.id, tool_choice="no_such_tool")


async def test_busy_while_a_response_runs(daemon: Daemon) -> None:
    async with AsyncClient(daemon.url) as client:
        session = await client.create_session(sampling=LONG)
        await client.append(session.id, "Tell me a long story.")
        async with client.stream(session.id, tool_choice="none") as stream:
            async for event in stream:
                assert isinstance(event, ResponseDelta)
                with pytest.raises(BusyError):
                    await client.append(session.id, "and another thing")
                with pytest.raises(BusyError):
                    await client.respond(session.id)
                break
        # Leaving the block cancelled the response; the session takes work again.
        assert stream.accumulator.response.finish_reason == "cancelled"
        await client.append(session.id, "next")
