"""The agent loop against a real mnemod: model -> tool -> model inside a program."""

from __future__ import annotations

from typing import Literal

import pytest

from conftest import Daemon
from mnemo import AsyncClient, NotFoundError, ResponseDone, ResponseToolCall, ToolRegistry


async def test_run_calls_the_tool_and_feeds_the_result_back(daemon: Daemon) -> None:
    calls: list[tuple[int, int]] = []
    tools = ToolRegistry()

    @tools.tool
    def add(a: int, b: int) -> int:
        """Adds two integers."""
        calls.append((a, b))
        return a + b

    async with AsyncClient(daemon.url) as client:
        session = await client.create_session(system="Use the tools.", tools=tools)
        events: list[object] = []
        result = await client.run(session.id, "What is 2 + 3?", tools, first_tool_choice="required",
                                  max_turns=2, sampling={"max_tokens": 128, "temperature": 0}, on_event=events.append)

        first = result.turns[0]
        assert first.response.finish_reason == "tool_calls"
        assert len(first.tools) == len(first.response.tool_calls) >= 1
        assert calls == [(c.arguments["a"], c.arguments["b"]) for c in first.response.tool_calls]
        for run in first.tools:
            assert run.call.name == "add" and run.status == "ok"
            assert run.result == str(run.call.arguments["a"] + run.call.arguments["b"])
            assert run.duration_ms >= 0  # measured by the daemon between tool.start and tool.end
        assert any(isinstance(e, ResponseToolCall) for e in events)
        assert sum(isinstance(e, ResponseDone) for e in events) == len(result.turns) == 2

        # Per-turn usage; the second turn starts from the first turn's KV cache.
        second = result.turns[1]
        assert all(t.usage.prompt_tokens > 0 and t.usage.completion_tokens > 0 for t in result.turns)
        assert second.usage.prompt_tokens > first.usage.prompt_tokens
        assert second.usage.cached_tokens > 0
        assert result.usage.completion_tokens == sum(t.usage.completion_tokens for t in result.turns)
        assert result.text == second.response.text

        # The history holds the whole exchange; the program was ended.
        history = (await client.get_session(session.id)).messages
        n_tools = len(first.tools)
        assert [m.role for m in history] == ["user", "assistant"] + ["tool"] * n_tools + ["assistant"]
        assert history[1].tool_calls == first.response.tool_calls
        assert [m.tool_call_id for m in history[2:2 + n_tools]] == [c.id for c in first.response.tool_calls]
        assert [m.content for m in history[2:2 + n_tools]] == [r.result for r in first.tools]
        assert result.program_id.startswith("prog_")
        with pytest.raises(NotFoundError):
            await client.end_program(result.program_id)


async def test_a_failing_tool_is_reported_to_the_model(daemon: Daemon) -> None:
    tools = ToolRegistry()

    @tools.tool
    def explode(level: Literal["low", "high"]) -> str:  # an enum keeps the forced call short
        """Always fails."""
        raise ValueError("boom")

    async with AsyncClient(daemon.url) as client:
        session = await client.create_session(tools=tools)
        result = await client.run(session.id, "Try it.", tools, first_tool_choice="explode",
                                  max_turns=1, sampling={"max_tokens": 128, "temperature": 0})
        assert result.finish_reason == "tool_calls" and len(result.turns) == 1
        run = result.turns[0].tools[0]
        assert run.status == "error" and run.result == "error: ValueError: boom"
        history = (await client.get_session(session.id)).messages
        assert history[-1].role == "tool" and history[-1].content == run.result
