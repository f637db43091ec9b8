#!/usr/bin/env python3
"""A tool-using agent over a persistent Mnemo session.

It keeps its session id (and its notes) in a small state file: the first run
creates a session, every later run resumes it, so the model sees the whole
conversation so far. Needs a running mnemod at MNEMO_URL (default
ws://127.0.0.1:8420/v1/ws); MNEMO_API_KEY if it was started with --api-key.

    python3 examples/python/agent.py "What is 12 * (3 + 4)? Note the answer."
    python3 examples/python/agent.py "What did we compute last time?"
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import os
import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

try:
    import mnemo
except ImportError:  # run from a checkout: use the SDK beside it
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
    import mnemo

DEFAULT_STATE = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "mnemo" / "agent_example.json"
SYSTEM = ("You are a helpful assistant with a calculator and a notebook. Use the calculator for "
          "arithmetic and the notes tool to remember things across conversations.")

_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
              ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
              ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}


def _evaluate(node: ast.AST) -> float:
    """Arithmetic only: numbers, + - * / // % ** and parentheses (no names, no calls)."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 1000:
            raise ValueError("exponent too large")
        return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise ValueError(f"not arithmetic: {ast.dump(node)[:80]}")


class Agent:
    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self.state = json.loads(state_path.read_text()) if state_path.exists() else {}
        self.tools = mnemo.ToolRegistry([self.calculator, self.notes])

    def save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(self.state, indent=2))

    def calculator(self, expression: Annotated[str, {"maxLength": 80}]) -> float:
        """Evaluates an arithmetic expression, such as "12 * (3 + 4)".

        Args:
            expression: numbers with + - * / // % ** and parentheses
        """
        return _evaluate(ast.parse(expression, mode="eval").body)

    def notes(self, action: Literal["add", "list"],
              text: Annotated[Optional[str], {"maxLength": 200}] = None) -> str:
        """Keeps notes that last across conversations.

        Args:
            action: "add" stores `text`, "list" returns every note
            text: the note to add
        """
        notes = self.state.setdefault("notes", [])
        if action == "add":
            if not text:
                raise ValueError("'add' needs text")
            notes.append(text)
            self.save()
            return f"noted ({len(notes)} notes)"
        return "\n".join(f"- {n}" for n in notes) or "(no notes yet)"

    def open_session(self, client: mnemo.Client) -> str:
        session_id = self.state.get("session_id")
        if session_id:
            try:
                session = client.resume_session(session_id)
                print(f"Resumed session {session.id} ({session.message_count} messages so far).")
                return session.id
            except mnemo.NotFoundError:
                print(f"Session {session_id} is gone; starting a new one.")
        session = client.create_session(system=SYSTEM, tools=self.tools)
        self.state["session_id"] = session.id
        self.save()
        print(f"Created new session {session.id} (saved in {self.state_path}).")
        return session.id


def print_event(event: mnemo.ServerEvent) -> None:
    if isinstance(event, mnemo.ResponseDelta):
        print(event.delta, end="", flush=True)
    elif isinstance(event, mnemo.ResponseToolCall):
        print(f"\n[tool call] {event.tool_call.name}({json.dumps(event.tool_call.arguments)})", flush=True)
    elif isinstance(event, mnemo.ResponseDone):
        print(flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("message", nargs="*", help="what to ask (default: a calculation to note)")
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE, help=f"state file (default {DEFAULT_STATE})")
    parser.add_argument("--new", action="store_true", help="forget the saved session and start a new one")
    parser.add_argument("--tool-choice", default="required", choices=["auto", "required"],
                        help="the first turn's tool_choice (default required, so the tools are used even by "
                             "mnemod's built-in random-weight model); later turns use auto")
    parser.add_argument("--max-tokens", type=int, default=256, help="tokens per model turn")
    parser.add_argument("--max-turns", type=int, default=4)
    args = parser.parse_args()

    agent = Agent(args.state)
    if args.new:
        agent.state.pop("session_id", None)
    prompt = " ".join(args.message) or "What is 12 * (3 + 4)? Save the result as a note."
    try:
        with mnemo.Client() as client:
            session_id = agent.open_session(client)
            print(f"> {prompt}")
            result = client.run(session_id, prompt, agent.tools, first_tool_choice=args.tool_choice,
                                max_turns=args.max_turns, sampling={"max_tokens": args.max_tokens},
                                program_metadata={"agent": "examples/python/agent.py"},
                                on_event=print_event)
    except mnemo.ConnectionFailedError as exc:
        print(f"cannot reach mnemod: {exc}\nstart one with: mnemod (see examples/README.md)", file=sys.stderr)
        return 1
    for number, turn in enumerate(result.turns, 1):
        u = turn.usage
        tools = ", ".join(f"{t.call.name} -> {t.result[:60]!r}" for t in turn.tools) or "no tools"
        print(f"turn {number}: {turn.response.finish_reason}; prompt {u.prompt_tokens} tokens "
              f"({u.cached_tokens} cached), {u.completion_tokens} generated; {tools}")
    print(f"Session {session_id}: run again to continue it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
