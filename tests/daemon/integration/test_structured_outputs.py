"""Structured outputs: response_format json_schema / json_object on
/v1/chat/completions. The built-in model has random weights, so only the
constrained decoder makes its answers parse and validate."""
import json
import urllib.request

from wsclient import CALC_TOOL

# What OpenAI strict mode and zod-to-json-schema produce: every property
# required, optional ones nullable, definitions under $defs, unions as anyOf.
SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 12, "description": "ignored annotation"},
        "status": {"type": "string", "enum": ["open", "closed", "draft"]},
        "priority": {"type": ["integer", "null"]},
        "owner": {"$ref": "#/$defs/person"},
        "reviewers": {"type": "array", "items": {"$ref": "#/$defs/person"}, "maxItems": 2},
        "target": {"anyOf": [{"type": "string", "maxLength": 6}, {"type": "number"}, {"type": "null"}]},
        "matrix": {"type": "array", "minItems": 1, "maxItems": 2,
                   "items": {"type": "array", "items": {"type": "boolean"}, "minItems": 2, "maxItems": 2}},
        "kind": {"const": "ticket"},
    },
    "required": ["title", "status", "priority", "owner", "reviewers", "target", "matrix", "kind"],
    "additionalProperties": False,
    "$defs": {"person": {"type": "object", "additionalProperties": False, "required": ["name", "tags"],
                         "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 8},
                                        "tags": {"type": "array", "items": {"type": "string", "maxLength": 4},
                                                 "maxItems": 2}}}},
}


def validate(v, s, root, at="$"):
    """The schema subset used here, checked independently of the daemon."""
    if "$ref" in s:
        target = root
        for part in s["$ref"][2:].split("/"):
            target = target[part]
        return validate(v, target, root, at)
    if "const" in s:
        assert v == s["const"], f"{at}: {v!r} is not {s['const']!r}"
        return
    if "enum" in s:
        assert v in s["enum"], f"{at}: {v!r} not in {s['enum']}"
        return
    if "anyOf" in s:
        errors = []
        for alt in s["anyOf"]:
            try:
                return validate(v, alt, root, at)
            except AssertionError as e:
                errors.append(str(e))
        raise AssertionError(f"{at}: matches no alternative: {errors}")
    types = s["type"] if isinstance(s["type"], list) else [s["type"]]
    checks = {"null": lambda x: x is None, "boolean": lambda x: isinstance(x, bool),
              "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
              "number": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
              "string": lambda x: isinstance(x, str), "array": lambda x: isinstance(x, list),
              "object": lambda x: isinstance(x, dict)}
    matching = [t for t in types if checks[t](v)]
    assert matching, f"{at}: {v!r} is not of type {types}"
    if isinstance(v, str):
        assert s.get("minLength", 0) <= len(v) <= s.get("maxLength", 1 << 30), f"{at}: length {len(v)}"
    if isinstance(v, list):
        assert s.get("minItems", 0) <= len(v) <= s.get("maxItems", 1 << 30), f"{at}: {len(v)} items"
        for i, x in enumerate(v):
            validate(x, s.get("items", {"type": list(checks)}), root, f"{at}[{i}]")
    if isinstance(v, dict) and "properties" in s:
        for k in s.get("required", []):
            assert k in v, f"{at}: missing {k}"
        for k, x in v.items():
            assert k in s["properties"] or s.get("additionalProperties", True) is not False, f"{at}: extra key {k}"
            if k in s["properties"]:
                validate(x, s["properties"][k], root, f"{at}.{k}")


def chat(daemon, **extra):
    body = {"messages": [{"role": "user", "content": "file a ticket"}], "max_tokens": 1500, **extra}
    st, text = daemon.request("POST", "/v1/chat/completions", body)
    return st, json.loads(text)


def json_schema_format(schema, name="ticket"):
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def test_json_schema_answers_parse_and_validate(daemon):
    for seed in range(6):
        st, j = chat(daemon, response_format=json_schema_format(SCHEMA), seed=seed, temperature=1.0)
        assert st == 200, j
        choice = j["choices"][0]
        assert choice["finish_reason"] == "stop", choice
        value = json.loads(choice["message"]["content"])
        validate(value, SCHEMA, SCHEMA)
        assert list(value) == list(SCHEMA["properties"])  # schema order, every key (all required)


def test_json_object_mode_gives_an_object(daemon):
    for seed in range(4):
        st, j = chat(daemon, response_format={"type": "json_object"}, seed=seed)
        assert st == 200, j
        assert j["choices"][0]["finish_reason"] == "stop"
        assert isinstance(json.loads(j["choices"][0]["message"]["content"]), dict)


def test_text_format_is_free_text(daemon):
    st, j = chat(daemon, response_format={"type": "text"}, max_tokens=8, seed=1)
    assert st == 200 and isinstance(j["choices"][0]["message"]["content"], str)


def test_streamed_deltas_concatenate_to_valid_json(daemon):
    req = urllib.request.Request(daemon.http + "/v1/chat/completions", method="POST", data=json.dumps({
        "messages": [{"role": "user", "content": "file a ticket"}], "response_format": json_schema_format(SCHEMA),
        "stream": True, "max_tokens": 1500, "seed": 7}).encode())
    with urllib.request.urlopen(req, timeout=120) as r:
        lines = [l.decode().strip() for l in r if l.strip()]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(l[6:]) for l in lines[:-1]]
    deltas = [c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]]
    assert sum(1 for d in deltas if d) > 1, "expected the answer in several deltas"
    validate(json.loads("".join(deltas)), SCHEMA, SCHEMA)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] == ["stop"]


def test_unsupported_schema_features_are_400_with_param(daemon):
    cases = [
        ({"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]+$"}}, "required": ["code"]},
         "response_format.json_schema.schema.properties.code", "'pattern' is not supported"),
        ({"type": "integer", "minimum": 5}, "response_format.json_schema.schema", "'minimum' other than 0"),
        ({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "properties": {
            "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}}, "required": ["next"]}}},
         "response_format.json_schema.schema.$defs.node.properties.next.anyOf[0].$ref", "recursive"),
        ({"type": "object", "properties": {}, "required": ["x"]},
         "response_format.json_schema.schema.required", "'x' is not among the properties"),
    ]
    for schema, param, words in cases:
        st, j = chat(daemon, response_format=json_schema_format(schema))
        assert st == 400, j
        assert j["error"]["param"] == param, j
        assert words in j["error"]["message"] and param in j["error"]["message"], j
        assert j["error"]["type"] == "invalid_request_error", j
    for rf, param in [({"type": "xml"}, "response_format.type"), ("json", "response_format"),
                      ({"type": "json_schema"}, "response_format.json_schema"),
                      ({"type": "json_schema", "json_schema": {"name": 5, "schema": {}}}, "response_format.json_schema.name")]:
        st, j = chat(daemon, response_format=rf)
        assert st == 400 and j["error"]["param"] == param, (rf, j)


def test_max_tokens_too_small_ends_with_length(daemon):
    # The answer is then cut short and need not parse: the documented contract.
    st, j = chat(daemon, response_format=json_schema_format(SCHEMA), max_tokens=3, seed=2)
    assert st == 200, j
    choice = j["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"].startswith('{"') and j["usage"]["completion_tokens"] == 3


def test_tools_with_auto_choice_give_a_call_or_a_valid_answer(daemon):
    answer = {"type": "object", "properties": {"result": {"type": "integer"}}, "required": ["result"],
              "additionalProperties": False}
    # A call starts with one token (<tool_call>) against the many that can
    # start the answer, so a random model calls now and then: try seeds
    # until both have happened (each takes milliseconds).
    outcomes = set()
    for seed in range(200):
        if outcomes == {"call", "answer"}:
            break
        st, j = chat(daemon, response_format=json_schema_format(answer, "calc_answer"), tools=[CALC_TOOL],
                     tool_choice="auto", seed=seed, temperature=1.0)
        assert st == 200, j
        choice = j["choices"][0]
        if choice["message"].get("tool_calls"):
            assert choice["finish_reason"] == "tool_calls"
            (call,) = choice["message"]["tool_calls"]
            assert call["function"]["name"] == "calc" and "expr" in json.loads(call["function"]["arguments"])
            outcomes.add("call")
        else:
            assert choice["finish_reason"] == "stop"
            validate(json.loads(choice["message"]["content"]), answer, answer)
            outcomes.add("answer")
    assert outcomes == {"call", "answer"}, outcomes
    # tool_choice none: the answer only.
    st, j = chat(daemon, response_format=json_schema_format(answer), tools=[CALC_TOOL], tool_choice="none", seed=1)
    assert st == 200 and "result" in json.loads(j["choices"][0]["message"]["content"])
