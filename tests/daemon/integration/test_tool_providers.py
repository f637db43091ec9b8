"""Server-side tools end to end through mnemod, one of each provider: the
MCP reference servers from npm (server-everything, server-filesystem), the
example C plugin, and a fake MCP server that dies mid-call. A forced call
(tool_choice naming the tool) makes the random-weight model call each one,
so the whole loop runs: model call -> daemon runs the tool -> tool message
-> next turn."""
import asyncio
import json
import os
import pathlib

import pytest

from conftest import MNEMOD
from wsclient import Conn, new_session

ROOT = pathlib.Path(__file__).resolve().parents[3]
SERVERS = ROOT / "tests/plugins/mcp_servers/node_modules/@modelcontextprotocol"
PLUGIN = pathlib.Path(os.environ.get("MNEMO_EXAMPLE_PLUGIN") or
                      pathlib.Path(MNEMOD or ".").parent / "examples/plugin/libmnemo_example_plugin.so")
FAKE = ROOT / "tests/plugins/fake_mcp_server.py"


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def providers_daemon(daemon_factory, tmp_path):
    everything = SERVERS / "server-everything/dist/index.js"
    filesystem = SERVERS / "server-filesystem/dist/index.js"
    if not everything.exists() or not filesystem.exists():
        pytest.skip("the MCP reference servers are not installed (ctest's plugins.mcp_servers.npm_ci installs them)")
    if not PLUGIN.exists():
        pytest.skip(f"the example plugin is not built: {PLUGIN}")
    root = tmp_path / "files"
    root.mkdir()
    (root / "notes.txt").write_text("the notes")
    state = tmp_path / "fake_state"
    state.mkdir()
    tools = {
        "mcpServers": {
            "everything": {"command": "node", "args": [str(everything), "stdio"],
                           "tool_limits": {"trigger-long-running-operation": {"timeout_ms": 500}}},
            "fs": {"command": "node", "args": [str(filesystem), str(root)]},
            "flaky": {"command": "/usr/bin/python3", "args": [str(FAKE), "exit-mid-call", str(state)]},
        },
        "plugins": {"text": {"path": str(PLUGIN), "config": {"greeting": "Ahoy"}}},
    }
    path = tmp_path / "tools.json"
    path.write_text(json.dumps(tools))
    return daemon_factory("--tools", str(path))


async def call_tool(conn, name, **fields):
    """A fresh session, a forced call of `name` run by the daemon; returns the events."""
    sid = await new_session(conn, sampling={"max_tokens": 300, "temperature": 0, "seed": 5})
    await conn.rpc({"type": "message.append", "session_id": sid, "message": {"role": "user", "content": "go"}})
    await conn.send({"type": "response.create", "session_id": sid, "server_tools": [name], "max_tool_turns": 1,
                     "tool_choice": {"type": "function", "function": {"name": name}}, **fields})
    events = []
    while True:
        m = await conn.recv()
        events.append(m)
        if m["type"] in ("response.done", "error"):
            return events


def tool_end(events):
    ends = [e for e in events if e["type"] == "tool.end"]
    assert len(ends) == 1, events
    call = [e for e in events if e["type"] == "response.tool_call"][0]["tool_call"]
    return call, ends[0]


def test_every_provider_runs_in_the_loop(providers_daemon):
    async def go():
        conn = await Conn.open(providers_daemon.ws)
        listed = await conn.rpc({"type": "tools.list"})
        names = {t["name"]: t for t in listed["tools"]}
        # Both MCP servers offer "echo": each is namespaced by its server.
        assert "everything__echo" in names and "flaky__echo" in names and "echo" not in names
        assert names["greet"]["kind"] == "plugin" and names["read_text_file"]["kind"] == "mcp"

        call, end = tool_end(await call_tool(conn, "everything__echo"))
        assert end["status"] == "ok", end
        assert end["output"] == "Echo: " + call["arguments"]["message"]

        call, end = tool_end(await call_tool(conn, "greet"))
        assert end["status"] == "ok" and end["output"] == f"Ahoy, {call['arguments']['name']}!", end

        # A path the model made up is outside the served directory: the
        # server's own error reaches the model as the result.
        call, end = tool_end(await call_tool(conn, "read_text_file"))
        assert end["status"] == "error" and "error" not in end and end["output"], end

        # Cut by its 500 ms limit; the server stays up and answers the next call.
        call, end = tool_end(await call_tool(conn, "trigger-long-running-operation"))
        assert end["error"] == "timeout" and 500 <= end["duration_ms"] < 5000, end
        call, end = tool_end(await call_tool(conn, "everything__echo"))
        assert end["status"] == "ok", end
        await conn.close()
    run(go())


def test_a_server_that_dies_mid_call_is_an_error_result_and_comes_back(providers_daemon):
    async def go():
        conn = await Conn.open(providers_daemon.ws)
        _, end = tool_end(await call_tool(conn, "flaky__echo"))
        assert end["status"] == "error" and end["error"] == "crashed", end
        # Restarted with backoff; the daemon served on meanwhile.
        for _ in range(50):
            _, end = tool_end(await call_tool(conn, "flaky__echo"))
            if end["status"] == "ok":
                break
            assert end["error"] == "unavailable", end
            await asyncio.sleep(0.2)
        assert end["status"] == "ok", end
        await conn.close()
    run(go())
    assert "restart" in (providers_daemon.data_dir / "mnemod.log").read_text()
