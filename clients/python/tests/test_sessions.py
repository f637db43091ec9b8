"""Sessions and messages against a real mnemod: create, list, get, resume, delete, append."""

from __future__ import annotations

from conftest import Daemon
from mnemo import AsyncClient, Message, NotFoundError, Sampling, ToolCall


async def test_connect_and_ping(daemon: Daemon) -> None:
    async with AsyncClient(daemon.url) as client:
        assert client.connected
        assert 0 <= await client.ping() < 5


async def test_session_lifecycle(daemon: Daemon) -> None:
    def lookup(city: str) -> str:
        """Looks a city up."""
        return city

    async with AsyncClient(daemon.url) as client:
        session = await client.create_session(system="Be terse.", sampling=Sampling(temperature=0.2, max_tokens=8),
                                              tools=[lookup], metadata={"user": "ada"})
        assert session.id.startswith("sess_")
        assert session.system == "Be terse."
        assert session.sampling == {"temperature": 0.2, "max_tokens": 8}
        assert session.tools[0]["function"]["name"] == "lookup"
        assert session.metadata == {"user": "ada"} and session.message_count == 0
        other = await client.create_session()
        # Ids sort by creation time, to the millisecond (within one millisecond, in any order).
        assert other.created_at >= session.created_at
        assert other.id > session.id or other.created_at == session.created_at

        page = await client.list_sessions(limit=1000)
        ids = [s.id for s in page.sessions]
        assert session.id in ids and other.id in ids and ids == sorted(ids)
        at = ids.index(session.id)
        one = await client.list_sessions(limit=1, after=ids[at - 1] if at else None)
        assert [s.id for s in one.sessions] == [session.id]
        assert one.has_more == (at < len(ids) - 1)

        history = await client.get_session(session.id)
        assert history.session.id == session.id and history.messages == []
        resumed = await client.resume_session(session.id)
        assert resumed.id == session.id and resumed.metadata == {"user": "ada"}

        await client.delete_session(session.id)
        for call in (client.get_session, client.resume_session, client.delete_session):
            try:
                await call(session.id)
                raise AssertionError(f"{call.__name__} of a deleted session succeeded")
            except NotFoundError as exc:
                assert exc.code == "not_found"
        assert session.id not in [s.id for s in (await client.list_sessions(limit=1000)).sessions]


async def test_append_is_acknowledged_in_order_and_visible_to_other_connections(daemon: Daemon) -> None:
    async with AsyncClient(daemon.url) as client:
        session = await client.create_session()
        one = await client.append(session.id, "What is 6 * 7?")
        assert len(one.indices) == 1 and one.message_count == 1 and one.session_id == session.id
        call = ToolCall("call_1", "calc", {"expression": "6 * 7"})
        more = await client.append(session.id, Message.assistant(tool_calls=[call]),
                                   Message.tool("call_1", "42", name="calc"),
                                   {"role": "user", "content": "thanks"})
        assert more.message_count == 4
        assert more.indices == [one.indices[0] + 1, one.indices[0] + 2, one.indices[0] + 3]

    # Acknowledged means stored: a new connection reads it back.
    async with AsyncClient(daemon.url) as reader:
        history = await reader.get_session(session.id)
        assert history.session.message_count == 4
        assert [m.role for m in history.messages] == ["user", "assistant", "tool", "user"]
        assert [m.index for m in history.messages] == one.indices + more.indices
        assert history.messages[0].content == "What is 6 * 7?"
        assert history.messages[1].tool_calls == [call]
        assert (history.messages[2].tool_call_id, history.messages[2].name) == ("call_1", "calc")
        assert all(m.created_at for m in history.messages)
