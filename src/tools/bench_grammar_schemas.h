/* bench_grammar_schemas.h — the schemas of `tokenmill bench grammar` (and of
 * the walk test tests/cli/grammar_walk.sh): nested objects, arrays, enums,
 * $ref recursion, patterns, formats, integer ranges, any-JSON, a regex and a
 * choice. Included by bench_grammar.c only. */
#ifndef TM_BENCH_GRAMMAR_SCHEMAS_H
#define TM_BENCH_GRAMMAR_SCHEMAS_H

#include "grammar/grammar.h"

typedef struct bench_schema {
    const char *name;
    tm_grammar_kind kind;
    const char *text;
} bench_schema;

static const bench_schema bench_schemas[] = {
    {"person", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":40},\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},"
     "\"email\":{\"type\":\"string\",\"format\":\"email\"}},\"required\":[\"name\",\"age\"],\"additionalProperties\":false}"},
    {"sentiment", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"label\":{\"enum\":[\"positive\",\"negative\",\"neutral\"]},\"confidence\":{\"type\":\"number\",\"minimum\":0}},"
     "\"required\":[\"label\",\"confidence\"],\"additionalProperties\":false}"},
    {"address", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"address\":{\"type\":\"object\",\"properties\":{\"street\":{\"type\":\"string\"},"
     "\"city\":{\"type\":\"string\"},\"zip\":{\"type\":\"string\",\"pattern\":\"^[0-9]{5}$\"}},\"required\":[\"street\",\"city\",\"zip\"]}},"
     "\"required\":[\"name\",\"address\"]}"},
    {"tags", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":20},\"minItems\":1,\"maxItems\":5}"},
    {"order", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"order_id\":{\"type\":\"string\",\"format\":\"uuid\"},\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
     "\"properties\":{\"sku\":{\"type\":\"string\",\"pattern\":\"[A-Z]{3}-[0-9]{4}\"},\"qty\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":99},"
     "\"price\":{\"type\":\"number\",\"minimum\":0}},\"required\":[\"sku\",\"qty\",\"price\"],\"additionalProperties\":false},\"minItems\":1}},"
     "\"required\":[\"order_id\",\"items\"],\"additionalProperties\":false}"},
    {"tree", TM_GRAMMAR_JSON_SCHEMA,
     "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"children\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"},"
     "\"maxItems\":3}},\"required\":[\"name\",\"children\"],\"additionalProperties\":false}},\"$ref\":\"#/$defs/node\"}"},
    {"linked_list", TM_GRAMMAR_JSON_SCHEMA,
     "{\"$defs\":{\"list\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"object\",\"properties\":{\"value\":{\"type\":\"integer\"},"
     "\"next\":{\"$ref\":\"#/$defs/list\"}},\"required\":[\"value\",\"next\"],\"additionalProperties\":false}]}},\"$ref\":\"#/$defs/list\"}"},
    {"event", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},\"day\":{\"type\":\"string\",\"format\":\"date\"},"
     "\"at\":{\"type\":\"string\",\"format\":\"date-time\"},\"title\":{\"type\":\"string\"}},\"required\":[\"id\",\"day\",\"at\",\"title\"]}"},
    {"json_object", TM_GRAMMAR_JSON_OBJECT, ""},
    {"union", TM_GRAMMAR_JSON_SCHEMA, "{\"type\":[\"string\",\"integer\",\"null\"]}"},
    {"shapes", TM_GRAMMAR_JSON_SCHEMA,
     "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"circle\"},\"r\":{\"type\":\"number\",\"minimum\":0}},\"required\":[\"kind\",\"r\"],"
     "\"additionalProperties\":false},{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"rect\"},\"w\":{\"type\":\"integer\"},\"h\":{\"type\":\"integer\"}},"
     "\"required\":[\"kind\",\"w\",\"h\"],\"additionalProperties\":false}]}"},
    {"flags", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"boolean\"},\"b\":{\"type\":\"boolean\"},\"c\":{\"type\":\"null\"},\"d\":{\"type\":\"boolean\"}},"
     "\"additionalProperties\":false}"},
    {"codes", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"code\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":8},\"note\":{\"type\":\"string\",\"maxLength\":40}},"
     "\"required\":[\"code\"]}"},
    {"matrix", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":-99,\"maximum\":99},\"minItems\":1,\"maxItems\":4},"
     "\"maxItems\":4}"},
    {"invoice", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"vendor\":{\"type\":\"string\"},\"date\":{\"type\":\"string\",\"format\":\"date\"},"
     "\"currency\":{\"enum\":[\"USD\",\"EUR\",\"GBP\",\"JPY\"]},\"total\":{\"type\":\"number\",\"minimum\":0},\"lines\":{\"type\":\"array\","
     "\"items\":{\"type\":\"object\",\"properties\":{\"desc\":{\"type\":\"string\"},\"amount\":{\"type\":\"number\"}},\"required\":[\"desc\",\"amount\"]}}},"
     "\"required\":[\"vendor\",\"date\",\"currency\",\"total\",\"lines\"],\"additionalProperties\":false}"},
    {"tool_call", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"name\":{\"const\":\"get_weather\"},\"arguments\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
     "\"unit\":{\"enum\":[\"celsius\",\"fahrenheit\"]}},\"required\":[\"city\",\"unit\"],\"additionalProperties\":false}},\"required\":[\"name\",\"arguments\"],"
     "\"additionalProperties\":false}"},
    {"phone", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"country\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}$\"},\"number\":{\"type\":\"string\",\"pattern\":\"^\\\\+?[0-9]{7,12}$\"}},"
     "\"required\":[\"country\",\"number\"]}"},
    {"any_value", TM_GRAMMAR_JSON_SCHEMA, "{}"},
    {"expression", TM_GRAMMAR_JSON_SCHEMA,
     "{\"$defs\":{\"expr\":{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"object\",\"properties\":{\"op\":{\"enum\":[\"+\",\"-\",\"*\",\"/\"]},"
     "\"args\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/expr\"},\"minItems\":2,\"maxItems\":3}},\"required\":[\"op\",\"args\"],"
     "\"additionalProperties\":false}]}},\"$ref\":\"#/$defs/expr\"}"},
    {"dates", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"year\":{\"type\":\"integer\",\"minimum\":1900,\"maximum\":2100},\"month\":{\"type\":\"integer\",\"minimum\":1,"
     "\"maximum\":12},\"temp\":{\"type\":\"integer\",\"minimum\":-40,\"maximum\":50}},\"required\":[\"year\",\"month\",\"temp\"]}"},
    {"emails", TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"format\":\"email\"},\"maxItems\":3}"},
    {"unicode_keys", TM_GRAMMAR_JSON_SCHEMA,
     "{\"type\":\"object\",\"properties\":{\"caf\\u00e9\":{\"type\":\"string\",\"pattern\":\"[\\u00e9\\u00e8a-z ]{1,12}\"},\"qu\\\"ote\":{\"type\":\"boolean\"}},"
     "\"required\":[\"caf\\u00e9\",\"qu\\\"ote\"]}"},
    {"regex", TM_GRAMMAR_REGEX, "[A-Z][a-z]{2,8} [0-9]{1,3}(\\.[0-9])?"},
    {"choice", TM_GRAMMAR_CHOICE, "[\"red\",\"green\",\"blue\",\"light blue\"]"},
};

#endif
