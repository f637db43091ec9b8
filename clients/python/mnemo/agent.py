"""The agent loop: model -> tools -> model, inside one program.

    result = await client.run(session.id, "What is 6 * 7?", tools,
                              first_tool_choice="required")

The run is wrapped in program.begin / program.end, every turn joins the
program, and every tool the model calls is bracketed by tool.start /
tool.end, so the daemon sees the program's shape and times its tools (it
keeps the KV cache warm for as long as the tool is expected to take). Tool
results go back to the model as tool messages. The session must have been
created with the same tools (`create_session(tools=...)`).

With `server_tools=True` (or a list of names) the model also sees the tools
configured in the daemon; the daemon runs those itself within each response, and the loop
runs only the calls it left to the client.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

from .events import ServerEvent
from .objects import JSON, Message, MessageLike, ServerToolRun, ToolCall, Usage
from .stream import Response
from .tools import ToolRegistry, ToolsLike, as_registry, result_text

if TYPE_CHECKING:
    from .client import AsyncClient, SamplingLike, ServerToolsOption, ToolChoice

log = logging.getLogger("mnemo")


@dataclass
class ToolRun:
    call: ToolCall
    status: str  # "ok", or "error" when the tool raised or is unknown
    result: str  # the tool message's content
    duration_ms: float  # as the daemon measured it, from tool.start to tool.end


@dataclass
class Turn:
    response: Response
    tools: list[ToolRun] = field(default_factory=list)  # the client's tools run after the response

    @property
    def server_tool_runs(self) -> list[ServerToolRun]:
        """The tools the daemon ran within this turn's response (server_tools=True)."""
        return self.response.server_tool_runs

    @property
    def usage(self) -> Usage:
        """This turn's tokens: prompt, of which cached (reused KV), and completion."""
        return self.response.usage


@dataclass
class RunResult:
    program_id: str
    turns: list[Turn]

    @property
    def response(self) -> Response:
        return self.turns[-1].response

    @property
    def text(self) -> str:
        return self.response.text

    @property
    def finish_reason(self) -> str:
        """The last turn's; "tool_calls" means the run stopped at max_turns with tools answered."""
        return self.response.finish_reason

    @property
    def tool_turns(self) -> int:
        """Rounds of server-side tools over the whole run."""
        return sum(turn.response.tool_turns for turn in self.turns)

    @property
    def server_tool_runs(self) -> list[ServerToolRun]:
        return [run for turn in self.turns for run in turn.server_tool_runs]

    @property
    def usage(self) -> Usage:
        total = Usage()
        for turn in self.turns:
            total = total + turn.usage
        return total


async def _run_tool(client: AsyncClient, registry: ToolRegistry, call: ToolCall,
                    program_id: str, session_id: str) -> ToolRun:
    await client.start_tool(call.id, call.name, program_id=program_id, session_id=session_id,
                            arguments=call.arguments)
    tool = registry.get(call.name)
    status = "ok"
    started = time.perf_counter()
    if tool is None:
        status, result = "error", f"error: no tool named {call.name!r}"
    else:
        try:
            result = result_text(await tool.invoke(call.arguments))
        except Exception as exc:  # the model reads the failure and may try again
            log.info("mnemo: tool %s failed: %r", call.name, exc)
            status, result = "error", f"error: {type(exc).__name__}: {exc}"
    log.debug("mnemo: tool %s took %.1f ms", call.name, (time.perf_counter() - started) * 1000)
    ended = await client.end_tool(call.id, status=status, result=result)
    return ToolRun(call, status, result, ended.duration_ms)


async def run(client: AsyncClient, session_id: str, prompt: Optional[MessageLike], tools: ToolsLike, *,
              tool_choice: ToolChoice = "auto", first_tool_choice: ToolChoice = None,
              max_turns: int = 8, sampling: SamplingLike = None,
              program_metadata: Optional[JSON] = None,
              on_event: Optional[Callable[[ServerEvent], None]] = None,
              server_tools: ServerToolsOption = False, max_tool_turns: Optional[int] = None) -> RunResult:
    """Appends `prompt` (if any), then alternates responses and tool calls until the model answers
    without calling a tool, or `max_turns` responses were made.

    first_tool_choice: the first turn's tool_choice (e.g. "required" to make the model use a
    tool), later turns use `tool_choice`. on_event: called with each streamed event (to
    print deltas as they come). server_tools, max_tool_turns: as for `AsyncClient.stream`;
    `tools` then answers only the calls the daemon did not run.
    """
    if max_turns < 1:
        raise ValueError("max_turns must be at least 1")
    registry = as_registry(tools)
    begun = await client.begin_program(session_id=session_id, metadata=program_metadata)
    program_id = begun.program_id
    turns: list[Turn] = []
    try:
        if prompt is not None:
            await client.append(session_id, prompt)
        for number in range(max_turns):
            choice = first_tool_choice if number == 0 and first_tool_choice is not None else tool_choice
            stream = client.stream(session_id, sampling=sampling, tool_choice=choice, program_id=program_id,
                                   server_tools=server_tools, max_tool_turns=max_tool_turns)
            async for event in stream:
                if on_event is not None:
                    on_event(event)
            turn = Turn(await stream.final())
            turns.append(turn)
            log.info("mnemo: program %s turn %d: %s, %d prompt tokens (%d cached), %d generated, "
                     "%d server tool rounds", program_id, number + 1, turn.response.finish_reason,
                     turn.usage.prompt_tokens, turn.usage.cached_tokens, turn.usage.completion_tokens,
                     turn.response.tool_turns)
            if turn.response.finish_reason != "tool_calls" or not turn.response.tool_calls:
                break
            # The daemon has stored the results of the calls it ran; the rest are the client's.
            for call in turn.response.client_tool_calls:
                turn.tools.append(await _run_tool(client, registry, call, program_id, session_id))
            if turn.tools:
                await client.append(session_id, *[Message.tool(t.call.id, t.result, t.call.name) for t in turn.tools])
    except BaseException:
        try:
            await client.end_program(program_id)
        except Exception as exc:  # do not hide the error that ended the run
            log.warning("mnemo: program.end for %s failed: %s", program_id, exc)
        raise
    await client.end_program(program_id)
    return RunResult(program_id, turns)
