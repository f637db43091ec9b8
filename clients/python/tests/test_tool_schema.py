"""Tool registration: JSON Schema from signatures, docstrings, and calling tools (no daemon)."""

from __future__ import annotations

import asyncio
import enum
from typing import Annotated, Literal, Optional, Union

import pytest

from mnemo import Tool, ToolRegistry, function_schema, tool, type_schema
from mnemo.tools import result_text, tool_definitions


class Unit(enum.Enum):
    CELSIUS = "c"
    FAHRENHEIT = "f"


def get_weather(city: str, days: int, unit: Literal["c", "f"] = "c", hourly: bool = False,
                lat: Optional[float] = None, tags: list[str] = [],  # noqa: B006 - a default the model sees
                scores: dict[str, int] | None = None) -> dict:
    """Current weather for a city.

    Looks it up in the forecast.

    Args:
        city: the city's name,
            in English
        days (int): how many days ahead
        unit: temperature unit

    Returns:
        the forecast
    """
    return {}


def test_schema_follows_signature_and_docstring() -> None:
    schema = function_schema(get_weather)
    assert schema["type"] == "function"
    fn = schema["function"]
    assert fn["name"] == "get_weather"
    assert fn["description"] == "Current weather for a city.\n\nLooks it up in the forecast."
    params = fn["parameters"]
    assert params["type"] == "object"
    assert list(params["properties"]) == ["city", "days", "unit", "hourly", "lat", "tags", "scores"]
    assert params["properties"]["city"] == {"type": "string", "description": "the city's name, in English"}
    assert params["properties"]["days"] == {"type": "integer", "description": "how many days ahead"}
    assert params["properties"]["unit"] == {"type": "string", "enum": ["c", "f"],
                                            "description": "temperature unit", "default": "c"}
    assert params["properties"]["hourly"] == {"type": "boolean", "default": False}
    assert params["properties"]["lat"] == {"type": "number"}
    assert params["properties"]["tags"] == {"type": "array", "items": {"type": "string"}, "default": []}
    assert params["properties"]["scores"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    # Defaults and Optional make a parameter optional.
    assert params["required"] == ["city", "days"]


def test_optional_without_default_is_not_required() -> None:
    def f(a: Optional[int], b: Union[str, None], c: str) -> None:
        """F."""

    params = function_schema(f)["function"]["parameters"]
    assert params["required"] == ["c"]
    assert params["properties"]["a"] == {"type": "integer"}
    assert params["properties"]["b"] == {"type": "string"}


@pytest.mark.parametrize("hint, expected", [
    (str, {"type": "string"}),
    (int, {"type": "integer"}),
    (float, {"type": "number"}),
    (bool, {"type": "boolean"}),
    (list, {"type": "array"}),
    (list[list[int]], {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}),
    (tuple[str, ...], {"type": "array", "items": {"type": "string"}}),
    (dict, {"type": "object"}),
    (Literal[1, 2, 3], {"type": "integer", "enum": [1, 2, 3]}),
    (Literal["a", 1], {"enum": ["a", 1]}),
    (Unit, {"type": "string", "enum": ["c", "f"]}),
    (Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
    (int | str | None, {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
])
def test_type_schema(hint: object, expected: dict) -> None:
    assert type_schema(hint) == expected


@pytest.mark.parametrize("hint", [set[int], tuple[int, str], dict[int, str], bytes])
def test_unsupported_types_are_refused(hint: object) -> None:
    with pytest.raises(TypeError):
        type_schema(hint, "x")


def test_annotated_adds_description_and_keywords() -> None:
    def f(expression: Annotated[str, "arithmetic", {"maxLength": 40}],
          note: Annotated[Optional[str], {"maxLength": 9}] = None,
          n: Annotated[int, {"minimum": 0}] = 1) -> None:
        """F.

        Args:
            expression: overridden by the annotation
            n: how many
        """

    params = function_schema(f)["function"]["parameters"]
    assert params["properties"]["expression"] == {"type": "string", "description": "arithmetic", "maxLength": 40}
    assert params["properties"]["note"] == {"type": "string", "maxLength": 9}
    assert params["properties"]["n"] == {"type": "integer", "minimum": 0, "description": "how many", "default": 1}
    assert params["required"] == ["expression"]


def test_enum_default_is_its_value() -> None:
    def f(unit: Unit = Unit.FAHRENHEIT) -> None:
        pass

    assert function_schema(f)["function"]["parameters"]["properties"]["unit"]["default"] == "f"
    assert "description" not in function_schema(f)["function"]  # no docstring, no description


def test_functions_the_model_cannot_call_are_refused() -> None:
    def no_hint(x) -> None:  # type: ignore[no-untyped-def]
        pass

    def var_args(*xs: int) -> None:
        pass

    def kw_args(**kw: int) -> None:
        pass

    def positional(x: int, /) -> None:
        pass

    for func in (no_hint, var_args, kw_args, positional):
        with pytest.raises(TypeError, match=func.__name__):
            function_schema(func)
    with pytest.raises(ValueError, match="tool name"):
        function_schema(get_weather, name="bad name")


def test_decorator_and_registry() -> None:
    tools = ToolRegistry()

    @tools.tool
    def add(a: int, b: int) -> int:
        """Adds."""
        return a + b

    @tools.tool(name="shout", description="Upper-cases text.")
    def upper(text: str) -> str:
        return text.upper()

    assert isinstance(add, Tool) and add(2, 3) == 5  # still callable
    assert [d["function"]["name"] for d in tools.definitions()] == ["add", "shout"]
    assert tools.definitions()[1]["function"]["description"] == "Upper-cases text."
    assert "shout" in tools and "upper" not in tools and len(tools) == 2
    with pytest.raises(ValueError, match="twice"):
        tools.register(add)

    @tool
    def neg(x: float) -> float:
        """Negates."""
        return -x

    defs = tool_definitions([neg, get_weather, {"type": "function", "function": {"name": "raw"}}])
    assert [d["function"]["name"] for d in defs] == ["neg", "get_weather", "raw"]


def test_invoke_runs_sync_and_async_functions() -> None:
    def add(a: int, b: int) -> int:
        return a + b

    async def mul(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a * b

    assert asyncio.run(Tool.from_function(add).invoke({"a": 2, "b": 3})) == 5
    assert asyncio.run(Tool.from_function(mul).invoke({"a": 2, "b": 3})) == 6
    with pytest.raises(TypeError):
        asyncio.run(Tool.from_function(add).invoke({"a": 2}))


def test_result_text() -> None:
    assert result_text("plain") == "plain"
    assert result_text({"temp_c": 18}) == '{"temp_c": 18}'
    assert result_text([1, "é"]) == '[1, "é"]'
    assert result_text(object).startswith("<class")
