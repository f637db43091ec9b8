"""Python functions as tools: JSON Schema from the signature, calls from the model.

    tools = ToolRegistry()

    @tools.tool
    def get_weather(city: str, unit: Literal["c", "f"] = "c") -> dict:
        '''Current weather for a city.'''

The schema follows the type hints (str, int, float, bool, list[...],
dict[str, ...], Literal[...], Enum, Optional[...], unions, and
Annotated[T, "description", {extra schema keywords}]); a parameter with a
default or typed Optional is not required; the docstring's first part is the
description and a Google-style `Args:` section describes parameters.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Optional, Union

from .objects import JSON

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _is_optional(tp: Any) -> bool:
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return _union_args(tp) is not None and type(None) in typing.get_args(tp)


def _union_args(tp: Any) -> Optional[tuple[Any, ...]]:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return typing.get_args(tp)
    return None


def _literal_schema(values: tuple[Any, ...]) -> JSON:
    schema: JSON = {}
    kinds = {type(v) for v in values}
    if len(kinds) == 1 and (kind := next(iter(kinds))) in _SCALARS:
        schema["type"] = _SCALARS[kind]
    schema["enum"] = list(values)
    return schema


def type_schema(tp: Any, where: str = "value") -> JSON:
    """The JSON Schema of one type hint; TypeError names `where` for a hint it cannot express."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        # Annotated[T, "description", {"maxLength": 40}]: strings describe, dicts add schema keywords.
        schema = type_schema(args[0], where)
        for extra in args[1:]:
            if isinstance(extra, str):
                schema["description"] = extra
            elif isinstance(extra, dict):
                schema.update(extra)
        return schema
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if tp is list:
        return {"type": "array"}
    if tp is dict:
        return {"type": "object"}
    if tp is Any:
        return {}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _literal_schema(tuple(m.value for m in tp))
    if origin is Literal:
        return _literal_schema(args)
    if origin in (list, typing.List, tuple) or (origin is not None and origin.__name__ in ("Sequence", "Iterable")):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise TypeError(f"{where}: fixed-length tuples are not supported; use list[...]")
        return {"type": "array", "items": type_schema(args[0], f"{where}[]")} if args else {"type": "array"}
    if origin is dict:
        if args and args[0] is not str:
            raise TypeError(f"{where}: JSON object keys are strings, got dict[{args[0]!r}, ...]")
        out: JSON = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            out["additionalProperties"] = type_schema(args[1], f"{where}{{}}")
        return out
    union = _union_args(tp)
    if union is not None:
        members = [a for a in union if a is not type(None)]
        if len(members) == 1:  # Optional[X]: X, and the parameter is not required
            return type_schema(members[0], where)
        return {"anyOf": [type_schema(a, where) for a in members]}
    raise TypeError(f"{where}: cannot express type {tp!r} as JSON Schema")


def _parse_docstring(doc: Optional[str]) -> tuple[str, dict[str, str]]:
    """(description, {parameter: description}) from a docstring with an optional `Args:` section."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    head: list[str] = []
    params: dict[str, str] = {}
    current: Optional[str] = None
    in_args = False
    for line in lines:
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if in_args:
            if stripped and not line.startswith((" ", "\t")):
                in_args = False  # another section (Returns:, Raises:) ends the arguments
            else:
                m = re.match(r"^\s+(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line)
                if m:
                    current = m.group(1).lstrip("*")
                    params[current] = m.group(2).strip()
                elif current and stripped:
                    params[current] = f"{params[current]} {stripped}".strip()
                continue
        if not in_args and not params:
            head.append(line)
    description = "\n".join(head).strip()
    # Only the summary paragraphs: sections like Returns: are for the reader, not the model.
    description = re.split(r"\n\s*\n(?=\w+:\s*$)", description, maxsplit=1)[0].strip()
    return description, params


def function_schema(func: Callable[..., Any], name: Optional[str] = None,
                    description: Optional[str] = None) -> JSON:
    """The protocol's Tool object (`{"type": "function", "function": {...}}`) for `func`."""
    name = name or func.__name__
    if not _NAME.match(name):
        raise ValueError(f"tool name {name!r}: 1 to 64 characters from a-z A-Z 0-9 _ -")
    doc_description, doc_params = _parse_docstring(inspect.getdoc(func))
    hints = typing.get_type_hints(func, include_extras=True)
    properties: JSON = {}
    required: list[str] = []
    for param in inspect.signature(func).parameters.values():
        where = f"tool {name!r}, parameter {param.name!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{where}: *args and **kwargs cannot be described to the model")
        if param.kind is param.POSITIONAL_ONLY:
            raise TypeError(f"{where}: positional-only parameters cannot be passed by name")
        if param.name not in hints:
            raise TypeError(f"{where}: needs a type hint")
        schema = type_schema(hints[param.name], where)
        if param.name in doc_params and doc_params[param.name] and "description" not in schema:
            schema["description"] = doc_params[param.name]
        if param.default is not param.empty and param.default is not None:
            default = param.default.value if isinstance(param.default, enum.Enum) else param.default
            try:
                json.dumps(default)
                schema["default"] = default
            except TypeError:
                pass  # not JSON: the model need not know it
        if param.default is param.empty and not _is_optional(hints[param.name]):
            required.append(param.name)
        properties[param.name] = schema
    fn: JSON = {"name": name}
    if description or doc_description:
        fn["description"] = description or doc_description
    fn["parameters"] = {"type": "object", "properties": properties, "required": required}
    return {"type": "function", "function": fn}


@dataclass
class Tool:
    """A Python function offered to the model."""

    func: Callable[..., Any]
    name: str
    definition: JSON = field(repr=False)  # the protocol's Tool object

    @classmethod
    def from_function(cls, func: Callable[..., Any], name: Optional[str] = None,
                      description: Optional[str] = None) -> Tool:
        definition = function_schema(func, name, description)
        return cls(func=func, name=definition["function"]["name"], definition=definition)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    async def invoke(self, arguments: JSON) -> Any:
        """Calls the function with the model's arguments; plain functions run in a worker thread
        so a slow tool does not stall the connection."""
        if not isinstance(arguments, dict):
            raise TypeError(f"tool {self.name!r}: arguments must be an object, got {arguments!r:.100}")
        if inspect.iscoroutinefunction(self.func):
            return await self.func(**arguments)
        return await asyncio.to_thread(self.func, **arguments)


def tool(func: Optional[Callable[..., Any]] = None, *, name: Optional[str] = None,
         description: Optional[str] = None) -> Any:
    """Decorator: `@tool` or `@tool(name=..., description=...)` turns a function into a Tool."""
    if func is None:
        return lambda f: Tool.from_function(f, name, description)
    return Tool.from_function(func, name, description)


def result_text(value: Any) -> str:
    """A tool's return value as the content of a tool message: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except TypeError:
        return str(value)


class ToolRegistry:
    """The tools of one agent, by name."""

    def __init__(self, tools: Iterable[Union[Tool, Callable[..., Any]]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, func: Union[Tool, Callable[..., Any]], *, name: Optional[str] = None,
                 description: Optional[str] = None) -> Tool:
        t = func if isinstance(func, Tool) and name is None and description is None \
            else Tool.from_function(func.func if isinstance(func, Tool) else func, name, description)
        if t.name in self._tools:
            raise ValueError(f"tool {t.name!r} is registered twice")
        self._tools[t.name] = t
        return t

    def tool(self, func: Optional[Callable[..., Any]] = None, *, name: Optional[str] = None,
             description: Optional[str] = None) -> Any:
        """Decorator registering a function; usable bare or with arguments."""
        if func is None:
            return lambda f: self.register(f, name=name, description=description)
        return self.register(func)

    def definitions(self) -> list[JSON]:
        """The Tool objects for `session.create`."""
        return [t.definition for t in self._tools.values()]

    def get(self, name: str) -> Optional[Tool]:
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._tools.values())


ToolsLike = Union[ToolRegistry, Iterable[Union[Tool, Callable[..., Any], JSON]]]


def tool_definitions(tools: Optional[ToolsLike]) -> list[JSON]:
    """Tool objects for the protocol from a registry, Tools, plain functions or ready-made dicts."""
    if tools is None:
        return []
    if isinstance(tools, ToolRegistry):
        return tools.definitions()
    out: list[JSON] = []
    for t in tools:
        if isinstance(t, Tool):
            out.append(t.definition)
        elif isinstance(t, dict):
            out.append(t)
        elif callable(t):
            out.append(function_schema(t))
        else:
            raise TypeError(f"not a tool: {t!r:.100}")
    return out


def as_registry(tools: Optional[ToolsLike]) -> ToolRegistry:
    """A registry of the callable tools in `tools` (dict definitions have no function to call)."""
    if isinstance(tools, ToolRegistry):
        return tools
    return ToolRegistry(t for t in (tools or []) if not isinstance(t, dict))
