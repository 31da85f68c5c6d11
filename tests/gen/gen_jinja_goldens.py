#!/usr/bin/env python3
"""gen_jinja_goldens.py — golden renderings for the C Jinja interpreter.

Renders, with Python jinja2 configured as Hugging Face transformers does
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
transformers' tojson, raise_exception, strftime_now):
  * every chat template in the test data (tokenizers/*/tokenizer_config.json,
    models/*/tokenizer_config.json and models/*/chat_template.jinja) over a
    corpus of conversations (system, multi-turn, tools + tool results,
    assistant tool_calls, reasoning, list content, add_generation_prompt
    on/off, enable_thinking), with the variables transformers passes
    (messages, tools, documents, add_generation_prompt, the special tokens);
  * chat templates in the style of published models (REALISTIC) over the
    same corpus;
  * the feature templates below (filters, tests, macros, loops, ...).
Writes tests/data/jinja_golden.jsonl, one object a line:
  {"name": N, "template_path": P (relative to the test data) | "template": T,
   "vars": {...}, "output": S}   or   ..., "error": MESSAGE} when jinja2 raised.
tests/unit/test_jinja_golden.c renders the same with the C interpreter and
requires byte-identical output (and an error where jinja2 raised one).

Usage: python3 tests/gen/gen_jinja_goldens.py [TESTDATA] [OUT]
Needs Debian's python3-jinja2 (apt-get install -y python3-jinja2).
"""
import glob
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class AssistantTracker(jinja2.ext.Extension):
    """transformers' {% generation %} tag, outside of assistant-mask tracking: renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        raise jinja2.exceptions.TemplateError("strftime_now is not deterministic: not used in goldens")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "add", "description": "Add two numbers (ünïcödé ok).",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "integer"}},
                       "required": ["a", "b"]}}},
]

CONVS = {
    "user": [{"role": "user", "content": "Hello!"}],
    "system_user": [{"role": "system", "content": "You are a terse assistant."},
                    {"role": "user", "content": "What is 2+2?"}],
    "multi_turn": [{"role": "system", "content": "Be helpful."},
                   {"role": "user", "content": "Hi there"},
                   {"role": "assistant", "content": "Hello! How can I help?"},
                   {"role": "user", "content": "Tell me a joke.\nMake it short."}],
    "whitespace": [{"role": "user", "content": "  padded question \n\n"},
                   {"role": "assistant", "content": "\n answer with spaces  "},
                   {"role": "user", "content": "\tnext\t"}],
    "unicode": [{"role": "user", "content": "Grüß Gott — 你好 🌍 «quotes» \"double\" 'single' \\ back"},
                {"role": "assistant", "content": "Ça va? ✓"},
                {"role": "user", "content": "Ünïcödé {{ not a tag }} {% nor this %}"}],
    "reasoning": [{"role": "user", "content": "Think about 3*7."},
                  {"role": "assistant", "content": "<think>\n3*7 is 21.\n</think>\n\n21"},
                  {"role": "user", "content": "And 4*5?"}],
    "reasoning_last": [{"role": "user", "content": "Solve x+1=2"},
                       {"role": "assistant", "content": "<think>\nsubtract 1\n</think>\n\nx = 1"}],
    "list_content": [{"role": "system", "content": [{"type": "text", "text": "System as parts."}]},
                     {"role": "user", "content": [{"type": "text", "text": " Part one "},
                                                   {"type": "text", "text": "part two"}]}],
    "tool_call": [{"role": "system", "content": "You can call tools."},
                  {"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"type": "function", "function": {"name": "get_weather",
                                                        "arguments": "{\"city\": \"Paris\"}"}}]},
                  {"role": "tool", "content": "{\"temp\": 21, \"sky\": \"clear\"}"},
                  {"role": "assistant", "content": "It is 21 °C and clear in Paris."},
                  {"role": "user", "content": "Thanks"}],
    "tool_call_dict_args": [{"role": "user", "content": "Add 2 and 3, and 4 and 5."},
                            {"role": "assistant", "content": "", "tool_calls": [
                                {"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}},
                                {"type": "function", "function": {"name": "add", "arguments": {"a": 4.5, "b": 5}}}]},
                            {"role": "tool", "content": "5"},
                            {"role": "tool", "content": "9.5"}],
    "tool_result_last": [{"role": "user", "content": "Weather?"},
                         {"role": "assistant", "content": None, "tool_calls": [
                             {"type": "function", "function": {"name": "get_weather",
                                                               "arguments": "{\"city\": \"Oslo\"}"}}]},
                         {"role": "tool", "content": "{\"temp\": -3}"}],
    "not_alternating": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
    "assistant_first": [{"role": "assistant", "content": "I start."}, {"role": "user", "content": "ok"}],
}

# (conversation, tools?, extra kwargs)
CASES = [
    ("user", False, {}), ("system_user", False, {}), ("multi_turn", False, {}), ("whitespace", False, {}),
    ("unicode", False, {}), ("reasoning", False, {}), ("reasoning_last", False, {}), ("list_content", False, {}),
    ("tool_call", True, {}), ("tool_call_dict_args", True, {}), ("tool_result_last", True, {}),
    ("multi_turn", True, {}), ("not_alternating", False, {}), ("assistant_first", False, {}),
    ("user", False, {"enable_thinking": False}), ("user", False, {"enable_thinking": True}),
    ("reasoning", False, {"enable_thinking": False}),
]


# Chat templates in the style of published models (written for these tests,
# after the Llama 3.1, Qwen2.5, Mistral-Instruct and Phi-3 templates), rendered
# over the whole conversation corpus like the test-data templates.
REALISTIC = {
    "llama31_style": """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}

{%- if tools_in_user_message and not tools is none %}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
""",
    "qwen25_style": """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
""",
    "mistral_instruct_style": """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
""",
    "phi3_style": "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}",
    "macro_style": """{%- macro render_content(content) -%}
    {%- if content is string -%}{{ content | trim }}
    {%- elif content is iterable -%}{%- for part in content if part.type == 'text' -%}{{ part.text | trim }}{%- if not loop.last %} {% endif -%}{%- endfor -%}
    {%- else -%}{{ '' }}{%- endif -%}
{%- endmacro -%}
{%- macro turn(role) -%}<|{{ role }}|>{{ caller() }}<|end|>
{% endmacro -%}
{%- set ns = namespace(sys='', n_tool=0) -%}
{%- for m in messages | selectattr('role', 'equalto', 'system') -%}{%- set ns.sys = ns.sys ~ render_content(m.content) -%}{%- endfor -%}
{%- if ns.sys or tools -%}
{%- call turn('system') -%}{{ ns.sys }}{% if tools %}
Tools: {{ tools | map(attribute='function.name') | join(', ') }}{% endif %}{%- endcall -%}
{%- endif -%}
{%- for m in messages | rejectattr('role', 'equalto', 'system') -%}
{%- if m.role == 'tool' -%}{%- set ns.n_tool = ns.n_tool + 1 -%}{%- call turn('tool') %}#{{ ns.n_tool }} {{ m.content }}{% endcall -%}
{%- elif m.tool_calls -%}{%- call turn('assistant') -%}{%- for tc in m.tool_calls -%}{{ tc.function.name }}{{ tc.function.arguments | tojson(sort_keys=true) }}{% if not loop.last %};{% endif %}{%- endfor -%}{%- endcall -%}
{%- else -%}{%- call turn(m.role) -%}{{ render_content(m.content) }}{%- endcall -%}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}<|assistant|>{% if enable_thinking is defined and not enable_thinking %}<think></think>{% endif %}{%- endif -%}
""",
}


def token_str(v):
    if isinstance(v, dict):
        return v.get("content")
    return v


def chat_templates(testdata):
    """(name, template_path relative to testdata, template text, special tokens)"""
    out = []
    for cfg in sorted(glob.glob(os.path.join(testdata, "tokenizers", "*", "tokenizer_config.json")) +
                      glob.glob(os.path.join(testdata, "models", "*", "tokenizer_config.json"))):
        d = os.path.dirname(cfg)
        c = json.load(open(cfg, encoding="utf-8"))
        special = {}
        for k in ("bos_token", "eos_token", "unk_token", "pad_token"):
            v = token_str(c.get(k))
            if v is not None:
                special[k] = v
        jf = os.path.join(d, "chat_template.jinja")
        if os.path.exists(jf):
            out.append((os.path.relpath(jf, testdata), open(jf, encoding="utf-8").read(), special))
            continue
        t = c.get("chat_template")
        if isinstance(t, list):
            t = next((x["template"] for x in t if x.get("name") == "default"), None)
        if t:
            out.append((os.path.relpath(cfg, testdata), t, special))
    return out


def render(env, src, variables):
    try:
        return {"output": env.from_string(src).render(**variables)}
    except Exception as e:  # jinja2 errors of every kind: the C side must fail too
        return {"error": "%s: %s" % (type(e).__name__, e)}



# Feature templates: each construct the interpreter supports, against jinja2.
MSGS = CONVS["multi_turn"]
FEATURES = [
    {"name": "literals", "template": "{{ 1 }}|{{ -2 }}|{{ 1.5 }}|{{ 1e20 }}|{{ 1e-7 }}|{{ 0.1 + 0.2 }}|{{ 3 / 2 }}|{{ 4 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}|{{ true }}|{{ none }}|{{ [1, 'a', none, true] }}|{{ (1, 2) }}|{{ (1,) }}|{{ {'a': 1, \"b\": [2.0]} }}|{{ 'it\\'s' }}|{{ \"a\" \"b\" }}|{{ '\\u00e9\\n\\t\\x41' }}"},
    {"name": "strings_repr", "template": "{{ ['it\\'s', \"q\\\"uote\", 'both\\'\"', 'nl\\n', 'tab\\t', 'bs\\\\', '\\x01'] }}"},
    {"name": "arith_types", "template": "{{ 1 + 2.5 }} {{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' * 3 }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 10 - 2 * 3 }} {{ (10 - 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 1.0 * 3 }} {{ 5 % 2.5 }}"},
    {"name": "compare", "template": "{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }} {{ 'b' in 'abc' }} {{ 'x' not in ['x'] }} {{ 'k' in {'k': 1} }} {{ 1 != 2 }} {{ none == none }} {{ true == 1 }} {{ 'a' == 'a' }} {{ 2 >= 2 }} {{ 3 <= 2 }}"},
    {"name": "logic", "template": "{{ 0 or 'x' }} {{ 1 and 'y' }} {{ '' or [] }} {{ not 0 }} {{ not 'a' }} {{ 'a' if false else 'b' }} {{ 'a' if true }}|{{ 'a' if false }}|{{ none or none }} {{ x is defined and x }} {{ not x is defined }}"},
    {"name": "if_elif", "template": "{% for i in range(5) %}{% if i == 0 %}zero{% elif i == 1 %}one{% elif i is even %}even{% else %}odd{% endif %},{% endfor %}"},
    {"name": "for_loop_vars", "template": "{% for x in ['a','b','c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('x','y') }};{% endfor %}"},
    {"name": "for_else_filter", "template": "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}|{% for x in range(10) if x is odd %}{{ x }}{{ loop.index }}{{ loop.last }} {% endfor %}|{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in {'z': 1, 'y': 2} %}{{ k }}{% endfor %}|{% for c in 'hé!' %}[{{ c }}]{% endfor %}|{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}"},
    {"name": "nested_loops", "template": "{% for i in [1, 2] %}{% for j in [3, 4] %}{{ i }}{{ j }}{{ loop.depth }}{{ loop.index }} {% endfor %}{{ loop.index }}|{% endfor %}"},
    {"name": "break_continue", "template": "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}"},
    {"name": "scoping", "template": "{% set x = 1 %}{% for i in [1, 2, 3] %}{% if i == 1 %}{% set x = 5 %}{% endif %}[{{ x }}]{% endfor %}{{ x }}{% set ns = namespace(total=0, items=[]) %}{% for i in range(4) %}{% set ns.total = ns.total + i %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.total }}{{ ns.items }}{% if true %}{% set y = 'if-set' %}{% endif %}{{ y }}"},
    {"name": "set_block", "template": "{% set greeting %}Hello {{ name }}!{% endset %}[{{ greeting }}]{% set up | upper %}shout {{ name }}{% endset %}{{ up }}{% set a, b = 1, 2 %}{{ a }}{{ b }}", "vars": {"name": "Ann"}},
    {"name": "macro", "template": "{% macro tag(name, value='default', sep=': ') %}<{{ name }}{{ sep }}{{ value }}>{% endmacro %}{{ tag('a') }}{{ tag('b', 2) }}{{ tag('c', sep='=', value=3) }}{% macro rec(n) %}{% if n > 0 %}{{ n }}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(4) }}{% set g = 'global' %}{% macro uses() %}{{ g }}{% endmacro %}{{ uses() }}"},
    {"name": "call_block", "template": "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(item) each([1, 2]) %}({{ item }}){% endcall %}"},
    {"name": "filter_block", "template": "{% filter upper %}hello {{ 'world' }}{% endfilter %}|{% filter trim | replace('a', 'o') %}  banana  {% endfilter %}"},
    {"name": "filters_str", "template": "{{ '  x y  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ 'Hello World' | upper }}|{{ 'Hello World' | lower }}|{{ 'hello wORLD' | capitalize }}|{{ 'hello wORLD-foo (bar' | title }}|{{ 'aaa' | replace('a', 'b', 2) }}|{{ 'abc' | length }}|{{ 'héllo' | length }}|{{ 42 | string }}|{{ '42' | int + 1 }}|{{ '4.7' | int }}|{{ 'x' | int }}|{{ 'x' | int(7) }}|{{ 3.9 | int }}|{{ '2.5' | float }}|{{ 'a<b>&\"\\'' | e }}|{{ -3 | abs }}|{{ 2.567 | round(2) }}|{{ 2.5 | round }}|{{ 2.1 | round(method='ceil') }}"},
    {"name": "filters_seq", "template": "{{ [3, 1, 2] | first }}{{ [3, 1, 2] | last }}{{ [3, 1, 2] | length }}{{ [3, 1, 2] | sort }}{{ [3, 1, 2] | sort(reverse=true) }}{{ [3, 1, 2] | min }}{{ [3, 1, 2] | max }}{{ [3, 1, 2] | sum }}{{ [1, 2, 1, 3] | unique | list }}{{ [1, 2, 3] | reverse | list }}{{ 'abc' | list }}{{ {'a': 1} | items | list }}{{ [1, 2, 3] | join(', ') }}{{ ['a', 'b'] | join }}{{ [] | first }}|{{ 'xyz' | first }}{{ 'xyz' | last }}"},
    {"name": "filters_attr", "template": "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(' / ') }}|{{ messages | rejectattr('role', 'eq', 'user') | list | length }}|{{ messages | map(attribute='role') | list }}|{{ [1, 2, 3, 4] | select('odd') | list }}|{{ [1, 2, 3, 4] | reject('even') | list }}|{{ [0, 1, '', 'a'] | select | list }}|{{ messages | selectattr('role', 'in', ['system', 'assistant']) | map(attribute='role') | join(',') }}|{{ ['a', 'B'] | map('upper') | join }}|{{ messages | sort(attribute='role') | map(attribute='role') | join(',') }}|{{ messages | map(attribute='missing', default='d') | join }}|{{ messages | selectattr('content') | list | length }}", "vars": {"messages": MSGS}},
    {"name": "default_filter", "template": "{{ missing | default('dflt') }}|{{ '' | default('empty', true) }}|{{ '' | default('kept') }}|{{ none | default('n') }}|{{ missing | d }}|{{ x.y | default(3) }}", "vars": {"x": {"z": 1}}},
    {"name": "tojson", "template": "{{ data | tojson }}\n{{ data | tojson(indent=2) }}\n{{ data | tojson(sort_keys=true) }}\n{{ data | tojson(separators=(',', ':')) }}\n{{ [] | tojson(indent=2) }}{{ {} | tojson }}{{ 'ü\\n\"\\\\' | tojson }}{{ 1.0 | tojson }}{{ none | tojson }}", "vars": {"data": {"z": [1, 2.5, True, None, "s\u00fc\ttab"], "a": {"nested": {}, "list": []}, "emoji": "\U0001F30D", "ctl": "\u0001"}}},
    {"name": "tests", "template": "{{ x is defined }}{{ y is undefined }}{{ none is none }}{{ 1 is number }}{{ 1.5 is float }}{{ 1 is integer }}{{ true is boolean }}{{ true is true }}{{ false is false }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is iterable }}{{ 1 is iterable }}{{ [] is sequence }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 2 is equalto 2 }}{{ 2 is eq 3 }}{{ 2 is ne 3 }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 1 is in [1, 2] }}{{ x is not none }}{{ 1 is gt 0 }}{{ 1 is lt 0 }}{{ 1 is ge 1 }}{{ none is sameas none }}{{ range is callable }}{{ x is mapping }}", "vars": {"x": {"a": 1}}},
    {"name": "str_methods", "template": "{{ ' a b '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\na'.lstrip('\\n') }}|{{ 'a  '.rstrip() }}|{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}|{{ 'a,b,,c'.split(',') }}|{{ '  a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.split(none, 1) }}|{{ 'aXbXc'.replace('X', '-') }}|{{ 'MiXed'.upper() }}{{ 'MiXed'.lower() }}|{{ \"they're bill's friends\".title() }}|{{ 'hELLO'.capitalize() }}|{{ 'abcabc'.find('c') }}{{ 'abc'.find('z') }}{{ 'abcabc'.count('bc') }}|{{ '-'.join(['a', 'b']) }}|{{ '123'.isdigit() }}{{ ' '.isspace() }}{{ 'ab'.isalpha() }}|{{ '<think>x</think>y'.split('</think>')[-1] }}|{{ 'ab'.split('b') }}"},
    {"name": "dict_methods", "template": "{{ d.keys() | list }}{{ d.values() | list }}{{ d.items() | list }}{{ d.get('a') }}{{ d.get('zz') }}{{ d.get('zz', 5) }}{{ d['a'] }}{{ d.a }}{{ d.missing }}|{{ d['items'] }}{% for k, v in d | items %}{{ k }}{{ v }}{% endfor %}", "vars": {"d": {"a": 1, "b": [2], "items": "key-named-items"}}},
    {"name": "slicing", "template": "{{ xs[1:] }}{{ xs[:2] }}{{ xs[::-1] }}{{ xs[-2:] }}{{ xs[::2] }}{{ xs[1:-1] }}{{ xs[5:] }}{{ xs[-1] }}{{ xs[0] }}{{ xs[10] }}|{{ s[1:] }}{{ s[::-1] }}{{ s[-1] }}{{ s[:2] }}{{ s[2:0:-1] }}{{ xs[-100:2] }}", "vars": {"xs": [1, 2, 3, 4], "s": "h\u00e9llo"}},
    {"name": "dict_list_literals", "template": "{% set d = {'role': 'user', 'n': [1, {'k': 'v'}]} %}{{ d.role }}{{ d['n'][1].k }}{{ d.n[1]['k'] }}{{ [[1, 2], [3]] | length }}{{ {'a': 1}.a }}{% set t = dict(x=1, y='z') %}{{ t.x }}{{ t.y }}"},
    {"name": "whitespace_control", "template": "<{%- if true -%}\n  x  \n{%- endif -%}>\n  {% if true %}\n    kept\n  {% endif %}\nline {{- ' tight ' -}} end\n  {#- comment -#}  after\n{%+ if true %}plus{% endif %}\n{% if true +%}\nnotrim{% endif %}\n{{ 'v' }}\n\n"},
    {"name": "lstrip_inline", "template": "a {% if true %}b{% endif %} c\n    {% for i in [1, 2] %}\n    {{ i }}\n    {% endfor %}\n  {# indented comment #}\ndone\n"},
    {"name": "raw_and_comments", "template": "{# a comment with {{ braces }} #}x{% raw %}{{ not rendered }} {% if %}{% endraw %}y"},
    {"name": "raise_exception", "template": "{% if messages | length > 1 %}{{ raise_exception('Only one message is supported, got ' ~ messages | length) }}{% endif %}ok", "vars": {"messages": MSGS}},
    {"name": "undefined_errors", "template": "{{ missing.attr }}"},
    {"name": "undefined_print", "template": "[{{ missing }}][{{ missing | length }}][{% for x in missing %}{{ x }}{% endfor %}][{{ missing ~ 'x' }}][{{ none.attr }}]"},
    {"name": "type_error", "template": "{{ 'a' + 1 }}"},
    {"name": "none_iter_error", "template": "{% for x in none %}{% endfor %}"},
    {"name": "string_content_checks", "template": "{% for m in messages %}{% if m.content is string %}S:{{ m.content | trim }}{% elif m.content is iterable %}{% for p in m.content %}{% if p.type == 'text' %}P:{{ p.text | trim }}{% endif %}{% endfor %}{% endif %}{% if m.tool_calls is defined %}{% for tc in m.tool_calls %}{{ tc.function.name }}({{ tc.function.arguments | tojson }}){% endfor %}{% endif %};{% endfor %}", "vars": {"messages": CONVS["list_content"] + CONVS["tool_call_dict_args"]}},
    {"name": "indent_filter", "template": "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}|{{ 'x\\n' | indent('> ') }}|{{ data | tojson(indent=2) | indent(4) }}", "vars": {"data": {"k": [1, 2]}}},
    {"name": "namespace_in_macro", "template": "{% set ns = namespace(found=false, idx=-1) %}{% macro mark(i) %}{% set ns.found = true %}{% set ns.idx = i %}{% endmacro %}{{ mark(3) }}{{ ns.found }}{{ ns.idx }}{% set ns2 = namespace({'a': 1}, b=2) %}{{ ns2.a }}{{ ns2.b }}"},
    {"name": "generation_prompt_vars", "template": "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}", "vars": {"messages": MSGS, "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": True}},
    {"name": "conditional_chains", "template": "{% set c = messages[0].content if messages[0].role == 'system' else '' %}{{ c }}|{% set rest = messages[1:] if c else messages %}{{ rest | length }}|{{ (messages | last).role }}|{{ messages[-1]['content'][:4] }}|{{ messages[0]['role'] | upper if true else 'no' }}", "vars": {"messages": MSGS}},
    {"name": "int_float_format", "template": "{{ 1000000 }} {{ 1e15 }} {{ 1e16 }} {{ 123456789.123 }} {{ 0.0001 }} {{ 0.00001 }} {{ -0.0 }} {{ 1.5e300 * 1e10 }} {{ 2 ** 62 }} {{ 10 / 3 }} {{ x }} {{ y }}", "vars": {"x": 3.0, "y": 12345678901234}},
    {"name": "generation_tag", "template": "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}[{{ m.content }}]{% endgeneration %}{% else %}{{ m.content }}{% endif %}\n{% endfor %}", "vars": {"messages": MSGS}},
    {"name": "python_details", "template": "{{ ['b', 'A', 'c'] | sort }}{{ ['b', 'A'] | sort(case_sensitive=true) }}{{ ['b', 'A'] | min }}{{ ['b', 'A'] | max }}{{ true // 0.1 }}{{ -7.5 // 2 }}{{ 7.5 % -2 }}{{ 1e3 is even }}{{ 2.5 is odd }}{{ 10.0 is divisibleby 4 }}{{ (1, 2, 3)[1:] }}{{ '123' is lower }}{{ 'a1' is lower }}{{ 'ABC1' is upper }}{{ d is lower }}{{ 3 | round }}{{ 'abc' | reverse }}{{ -0.0 // 1 }}", "vars": {"d": {"k": "v"}}},
    {"name": "unknown_filter", "template": "{{ 'a' | nosuchfilter }}"},
    {"name": "syntax_error", "template": "{% if x %}unterminated"},
    {"name": "bad_tag", "template": "{% include 'other.jinja' %}"},
]


def main():
    testdata = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "TOKENMILL_TESTDATA", os.path.join(REPO, "..", "shared", "testdata"))
    out_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(REPO, "tests", "data", "jinja_golden.jsonl")
    env = make_env()
    lines = []
    for path, src, special in chat_templates(testdata):
        for conv, with_tools, kwargs in CASES:
            for gen in (False, True):
                v = {"messages": CONVS[conv], "tools": TOOLS if with_tools else None, "documents": None,
                     "add_generation_prompt": gen}
                v.update(special)
                v.update(kwargs)
                rec = {"name": "%s/%s%s%s/gen=%d" % (path, conv, "+tools" if with_tools else "",
                                                     "".join("/%s=%s" % kv for kv in kwargs.items()), gen),
                       "template_path": path, "vars": v}
                rec.update(render(env, src, v))
                lines.append(rec)
    for name, src in sorted(REALISTIC.items()):
        for conv, with_tools, kwargs in CASES:
            for gen in (False, True):
                v = {"messages": CONVS[conv], "tools": TOOLS if with_tools else None, "documents": None,
                     "add_generation_prompt": gen, "bos_token": "<s>", "eos_token": "</s>"}
                v.update(kwargs)
                rec = {"name": "style/%s/%s%s%s/gen=%d" % (name, conv, "+tools" if with_tools else "",
                                                           "".join("/%s=%s" % kv for kv in kwargs.items()), gen),
                       "template": src, "vars": v}
                rec.update(render(env, src, v))
                lines.append(rec)
    for f in FEATURES:
        rec = {"name": "feature/" + f["name"], "template": f["template"], "vars": f.get("vars", {})}
        rec.update(render(env, f["template"], rec["vars"]))
        lines.append(rec)
    with open(out_path, "w", encoding="utf-8") as fh:
        for rec in lines:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    n_err = sum(1 for r in lines if "error" in r)
    print("%s: %d renderings (%d expected errors), jinja2 %s" % (out_path, len(lines), n_err, jinja2.__version__))


if __name__ == "__main__":
    main()
