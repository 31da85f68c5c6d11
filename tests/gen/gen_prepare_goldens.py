#!/usr/bin/env python3
"""gen_prepare_goldens.py — golden prompts for chat request preparation.

For request bodies exercising the chat fields tokenmill honours
(chat_template_kwargs such as Qwen3's enable_thinking, add_generation_prompt,
continue_final_message, the developer role, text-part content, assistant
tool_calls with content null and tool-role messages), renders the prompt the
way vLLM / transformers do, with Python jinja2 set up as in
gen_jinja_goldens.py:
  * messages: developer -> system (OpenAI's mapping for models without a
    developer role), list-of-text-parts content joined with "\\n" (vLLM's
    "string" content format; content null is ""), tool-call "arguments" strings holding a JSON
    object parsed to that object (vLLM);
  * variables: messages, tools (None), documents (None),
    add_generation_prompt (default True), bos_token / eos_token from
    tokenizer_config.json, plus chat_template_kwargs;
  * continue_final_message: transformers' cut after the last occurrence of
    the final message's content (its stripped form when the template trims).
Writes tests/data/prepare_golden.jsonl, one object a line:
  {"name": N, "tokenizer": F (tokenizers/F in the test data), "body": {...}, "text": S}
tests/unit/test_prepare.c runs each body through tm_prepare_request and
requires the prompt ids to equal the encoding of "text".

Usage: python3 tests/gen/gen_prepare_goldens.py [TESTDATA] [OUT]
"""
import copy
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_jinja_goldens import REPO, make_env, token_str  # noqa: E402

CALL = {"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}

CASES = [
    ("qwen3", "thinking_off", {"messages": [{"role": "user", "content": "Hello!"}],
                               "chat_template_kwargs": {"enable_thinking": False}}),
    ("qwen3", "thinking_on", {"messages": [{"role": "user", "content": "Hello!"}],
                              "chat_template_kwargs": {"enable_thinking": True}}),
    ("qwen3", "default", {"messages": [{"role": "user", "content": "Hello!"}]}),
    ("qwen3", "no_generation_prompt", {"messages": [{"role": "user", "content": "Hello!"}],
                                       "add_generation_prompt": False}),
    ("qwen3", "developer", {"messages": [{"role": "developer", "content": "Answer in French."},
                                         {"role": "user", "content": "What is 2+2?"}]}),
    ("qwen3", "parts", {"messages": [{"role": "user", "content": [{"type": "text", "text": "Part one"},
                                                                  {"type": "text", "text": "part two"}]}]}),
    ("qwen3", "tool_turns", {"messages": [{"role": "user", "content": "Weather in Paris?"},
                                          {"role": "assistant", "content": None, "tool_calls": [CALL]},
                                          {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"}]}),
    ("qwen3", "continue", {"messages": [{"role": "user", "content": "Write a haiku."},
                                        {"role": "assistant", "content": "Autumn moonlight"}],
                           "continue_final_message": True, "add_generation_prompt": False}),
    ("llama3", "developer_parts", {"messages": [{"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
                                                {"role": "user", "content": "Hi"}]}),
    ("deepseek_v3", "tool_turns", {"messages": [{"role": "user", "content": "Weather in Paris?"},
                                                {"role": "assistant", "content": None, "tool_calls": [CALL]},
                                                {"role": "tool", "tool_call_id": "call_1", "content": "21 C"}]}),
]


def prepare_messages(msgs):
    out = copy.deepcopy(msgs)
    for m in out:
        if m.get("role") == "developer":
            m["role"] = "system"
        if m.get("content") is None:
            m["content"] = ""  # vLLM: no content is no text parts, joined ""
        if isinstance(m.get("content"), list):
            m["content"] = "\n".join(p["text"] for p in m["content"])
        for c in m.get("tool_calls") or []:
            a = c.get("function", {}).get("arguments")
            if isinstance(a, str):
                try:
                    parsed = json.loads(a)
                except ValueError:
                    continue
                if isinstance(parsed, dict):
                    c["function"]["arguments"] = parsed
    return out


def main():
    testdata = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "TOKENMILL_TESTDATA", os.path.join(REPO, "..", "shared", "testdata"))
    out_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(REPO, "tests", "data", "prepare_golden.jsonl")
    env = make_env()
    lines = []
    for fam, name, body in CASES:
        cfg = json.load(open(os.path.join(testdata, "tokenizers", fam, "tokenizer_config.json"), encoding="utf-8"))
        src = cfg["chat_template"]
        cont = body.get("continue_final_message", False)
        v = {"messages": prepare_messages(body["messages"]), "tools": None, "documents": None,
             "add_generation_prompt": body.get("add_generation_prompt", True) and not cont}
        for k in ("bos_token", "eos_token"):
            if token_str(cfg.get(k)) is not None:
                v[k] = token_str(cfg.get(k))
        v.update(body.get("chat_template_kwargs", {}))
        text = env.from_string(src).render(**v)
        if cont:
            final = v["messages"][-1]["content"]
            if final in text:
                text = text[:text.rindex(final) + len(final)]
            else:
                text = text[:text.rindex(final.strip()) + len(final.strip())]
        lines.append({"name": "%s/%s" % (fam, name), "tokenizer": fam, "body": body, "text": text})
    with open(out_path, "w", encoding="utf-8") as f:
        for rec in lines:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print("wrote %d goldens to %s" % (len(lines), out_path))


if __name__ == "__main__":
    main()
