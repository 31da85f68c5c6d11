/* gram_schema.c — JSON Schema (and json_object, guided_choice, guided_regex)
 * -> expression tree (gram_int.h). The subset and the output shape are in
 * docs/structured-output.md; numbers (integer ranges) are in gram_num.c.
 *
 * Every keyword is either honoured, or an annotation that constrains nothing
 * (title, description, ...), or refused with its JSON pointer. Schemas are
 * inlined except $ref targets (one rule each, so recursion works) and the
 * nested objects/arrays of "any JSON value" (two built-in rules).
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/gram_int.h"

#define PTR_MAX 256

typedef struct pending {
    json_t *node;
    int32_t rule;
    char ptr[PTR_MAX];
} pending;

typedef struct sc {
    gb *b;
    json_t *root;
    pending *refs;
    int32_t n_refs;
    int32_t g_obj, g_arr;
} sc;

static const char *const annotations[] = {"title", "description", "$schema", "$id", "$comment", "examples",
                                          "default", "deprecated", "readOnly", "writeOnly", "$defs",
                                          "definitions", NULL};
static const char *const keywords[] = {"type", "properties", "required", "additionalProperties", "enum", "const",
                                       "anyOf", "$ref", "items", "minItems", "maxItems", "pattern", "format",
                                       "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
                                       "exclusiveMaximum", "uniqueItems", NULL};

static int in_list(const char *k, const char *const *l)
{
    for (; *l; l++)
        if (!strcmp(k, *l)) return 1;
    return 0;
}

/* child pointer: ptr + "/" + escaped key */
static void ptr_child(char out[PTR_MAX], const char *ptr, const char *key)
{
    size_t n = (size_t)snprintf(out, PTR_MAX, "%s/", ptr);
    for (const char *p = key; *p && n + 3 < PTR_MAX; p++) {
        if (*p == '~') { out[n++] = '~'; out[n++] = '0'; }
        else if (*p == '/') { out[n++] = '~'; out[n++] = '1'; }
        else out[n++] = *p;
    }
    if (n >= PTR_MAX) n = PTR_MAX - 1;
    out[n] = 0;
}

static void ptr_index(char out[PTR_MAX], const char *ptr, size_t i)
{
    char k[32];
    snprintf(k, sizeof k, "%zu", i);
    ptr_child(out, ptr, k);
}

static const char *P(const char *ptr) { return *ptr ? ptr : "/"; }

/* ---- any JSON value ---------------------------------------------------- */

static int32_t any_string(gb *b) { return gb_seq3(b, gb_byte(b, '"'), gb_json_string_body(b, 0, -1), gb_byte(b, '"')); }

static int32_t any_number(gb *b)
{
    int32_t dig = gb_range(b, '0', '9');
    int32_t intp = gb_alt2(b, gb_byte(b, '0'), gb_seq2(b, gb_range(b, '1', '9'), gb_rep(b, dig, 0, -1)));
    int32_t frac = gb_opt(b, gb_seq2(b, gb_byte(b, '.'), gb_rep(b, dig, 1, -1)));
    int32_t exp = gb_opt(b, gb_seq3(b, gb_alt2(b, gb_byte(b, 'e'), gb_byte(b, 'E')),
                                    gb_opt(b, gb_alt2(b, gb_byte(b, '+'), gb_byte(b, '-'))), gb_rep(b, dig, 1, -1)));
    int32_t k[4] = {gb_opt(b, gb_byte(b, '-')), intp, frac, exp};
    return gb_seqv(b, k, 4);
}

static int32_t any_value(sc *s)
{
    gb *b = s->b;
    if (s->g_obj < 0) {
        if ((s->g_obj = gb_new_rule(b)) < 0 || (s->g_arr = gb_new_rule(b)) < 0) return -1;
        int32_t v = any_value(s);
        int32_t member = gb_seq3(b, any_string(b), gb_byte(b, ':'), v);
        int32_t members = gb_seq2(b, member, gb_rep(b, gb_seq2(b, gb_byte(b, ','), member), 0, -1));
        b->rule_root[s->g_obj] = gb_seq3(b, gb_byte(b, '{'), gb_opt(b, members), gb_byte(b, '}'));
        int32_t items = gb_seq2(b, v, gb_rep(b, gb_seq2(b, gb_byte(b, ','), v), 0, -1));
        b->rule_root[s->g_arr] = gb_seq3(b, gb_byte(b, '['), gb_opt(b, items), gb_byte(b, ']'));
        if (b->st != TM_OK) return -1;
    }
    int32_t k[7] = {any_string(b), any_number(b), gb_str(b, "true"), gb_str(b, "false"), gb_str(b, "null"),
                    gb_call(b, s->g_obj), gb_call(b, s->g_arr)};
    return gb_altv(b, k, 7);
}

/* ---- pieces -------------------------------------------------------------- */

static int32_t gen(sc *s, json_t *node, const char *ptr, int depth);
int32_t gram_integer(gb *b, json_t *node, const char *ptr);   /* gram_num.c */
int32_t gram_number(gb *b, json_t *node, const char *ptr);

static int32_t json_literal(gb *b, json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!t) return gb_fail(b, TM_ERR_NOMEM, "out of memory");
    int32_t r = gb_str(b, t);
    free(t);
    return r;
}

static int type_ok(json_t *types, json_t *v)
{
    if (!types) return 1;
    size_t n = json_is_array(types) ? json_array_size(types) : 1;
    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_is_array(types) ? json_array_get(types, i) : types);
        if (!t) continue;
        if ((!strcmp(t, "string") && json_is_string(v)) || (!strcmp(t, "number") && json_is_number(v)) ||
            (!strcmp(t, "integer") && (json_is_integer(v) || (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v)))) ||
            (!strcmp(t, "boolean") && json_is_boolean(v)) || (!strcmp(t, "null") && json_is_null(v)) ||
            (!strcmp(t, "object") && json_is_object(v)) || (!strcmp(t, "array") && json_is_array(v)))
            return 1;
    }
    return 0;
}

static int32_t gen_enum(sc *s, json_t *node, const char *ptr)
{
    json_t *e = json_object_get(node, "enum"), *c = json_object_get(node, "const"), *types = json_object_get(node, "type");
    const char *k;
    json_t *v;
    json_object_foreach(node, k, v) {
        if (!in_list(k, annotations) && strcmp(k, "enum") && strcmp(k, "const") && strcmp(k, "type"))
            return gb_fail(s->b, TM_ERR_INPUT, "'%s' together with enum/const at %s not supported", k, P(ptr));
    }
    if (e && c) return gb_fail(s->b, TM_ERR_INPUT, "both enum and const at %s not supported", P(ptr));
    if (e && (!json_is_array(e) || !json_array_size(e)))
        return gb_fail(s->b, TM_ERR_INPUT, "enum at %s/enum must be a non-empty array", ptr);
    size_t n = e ? json_array_size(e) : 1;
    if (n > TM_GRAMMAR_MAX_ENUM) return gb_fail(s->b, TM_ERR_INPUT, "enum at %s/enum has more than %d values", ptr, TM_GRAMMAR_MAX_ENUM);
    int32_t *kids = malloc(n * sizeof *kids), m = 0;
    if (!kids) return gb_fail(s->b, TM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *x = e ? json_array_get(e, i) : c;
        if (type_ok(types, x)) kids[m++] = json_literal(s->b, x);
    }
    int32_t r = m ? gb_altv(s->b, kids, m)
                  : gb_fail(s->b, TM_ERR_INPUT, "no enum/const value at %s matches its type", P(ptr));
    free(kids);
    return r;
}

static int32_t gen_ref(sc *s, json_t *node, const char *ptr)
{
    const char *k;
    json_t *v;
    json_object_foreach(node, k, v) {
        if (!in_list(k, annotations) && strcmp(k, "$ref"))
            return gb_fail(s->b, TM_ERR_INPUT, "'%s' next to $ref at %s not supported", k, P(ptr));
    }
    const char *ref = json_string_value(json_object_get(node, "$ref"));
    if (!ref || ref[0] != '#' || strchr(ref, '%'))
        return gb_fail(s->b, TM_ERR_INPUT, "$ref at %s/$ref: only local references (#, #/$defs/NAME) supported", ptr);
    /* walk the JSON pointer */
    json_t *t = s->root;
    const char *p = ref + 1;
    char tok[PTR_MAX];
    while (*p && t) {
        if (*p != '/') { t = NULL; break; }
        p++;
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof tok) {
            if (*p == '~' && p[1] == '0') { tok[n++] = '~'; p += 2; }
            else if (*p == '~' && p[1] == '1') { tok[n++] = '/'; p += 2; }
            else tok[n++] = *p++;
        }
        tok[n] = 0;
        if (json_is_object(t)) t = json_object_get(t, tok);
        else if (json_is_array(t)) { char *end; unsigned long i = strtoul(tok, &end, 10); t = *end || !*tok ? NULL : json_array_get(t, i); }
        else t = NULL;
    }
    if (!t) return gb_fail(s->b, TM_ERR_INPUT, "$ref '%.200s' at %s/$ref does not resolve", ref, ptr);
    for (int32_t i = 0; i < s->n_refs; i++)
        if (s->refs[i].node == t) return gb_call(s->b, s->refs[i].rule);
    if (s->n_refs >= TM_GRAMMAR_MAX_RULES)
        return gb_fail(s->b, TM_ERR_INPUT, "more than %d $ref targets", TM_GRAMMAR_MAX_RULES);
    int32_t r = gb_new_rule(s->b);
    if (r < 0) return -1;
    pending *pd = &s->refs[s->n_refs++];
    pd->node = t;
    pd->rule = r;
    snprintf(pd->ptr, sizeof pd->ptr, "%s", ref + 1);
    return gb_call(s->b, r);
}

static int32_t gen_anyof(sc *s, json_t *node, const char *ptr, int depth)
{
    const char *k;
    json_t *v, *a = json_object_get(node, "anyOf");
    json_object_foreach(node, k, v) {
        if (!in_list(k, annotations) && strcmp(k, "anyOf"))
            return gb_fail(s->b, TM_ERR_INPUT, "'%s' next to anyOf at %s not supported", k, P(ptr));
    }
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    if (!n || n > 256) return gb_fail(s->b, TM_ERR_INPUT, "anyOf at %s/anyOf must be an array of 1 to 256 schemas", ptr);
    int32_t kids[256];
    char cp[PTR_MAX], ap[PTR_MAX];
    ptr_child(ap, ptr, "anyOf");
    for (size_t i = 0; i < n; i++) {
        ptr_index(cp, ap, i);
        if ((kids[i] = gen(s, json_array_get(a, i), cp, depth + 1)) < 0) return -1;
    }
    return gb_altv(s->b, kids, (int32_t)n);
}

static int get_count(sc *s, json_t *node, const char *key, const char *ptr, int32_t *out)
{
    json_t *v = json_object_get(node, key);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > TM_GRAMMAR_MAX_REPEAT) {
        gb_fail(s->b, TM_ERR_INPUT, "%s at %s/%s must be an integer from 0 to %d", key, ptr, key, TM_GRAMMAR_MAX_REPEAT);
        return -1;
    }
    *out = (int32_t)json_integer_value(v);
    return 1;
}

static const struct { const char *name, *re; } formats[] = {
    {"date", "[1-9][0-9]{3}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"},
    {"time", "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"},
    {"date-time", "[1-9][0-9]{3}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
                  "T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"},
    {"uuid", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"},
    {"email", "[A-Za-z0-9_+-]+(\\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+"},
};

static int32_t gen_string(sc *s, json_t *node, const char *ptr)
{
    gb *b = s->b;
    json_t *pat = json_object_get(node, "pattern"), *fmt = json_object_get(node, "format");
    int32_t lo = 0, hi = -1;
    int has_lo = get_count(s, node, "minLength", ptr, &lo), has_hi = get_count(s, node, "maxLength", ptr, &hi);
    if (has_lo < 0 || has_hi < 0) return -1;
    if (hi >= 0 && hi < lo) return gb_fail(b, TM_ERR_INPUT, "maxLength < minLength at %s", P(ptr));
    if (pat && fmt) return gb_fail(b, TM_ERR_INPUT, "pattern together with format at %s not supported", P(ptr));
    if ((pat || fmt) && (has_lo || has_hi))
        return gb_fail(b, TM_ERR_INPUT, "minLength/maxLength together with %s at %s not supported", pat ? "pattern" : "format", P(ptr));
    int32_t body;
    char where[PTR_MAX + 16];
    if (pat) {
        if (!json_is_string(pat)) return gb_fail(b, TM_ERR_INPUT, "pattern at %s/pattern must be a string", ptr);
        snprintf(where, sizeof where, "pattern at %s/pattern", ptr);
        body = gram_regex_parse(b, json_string_value(pat), json_string_length(pat), 1, where);
    } else if (fmt) {
        const char *f = json_string_value(fmt);
        size_t i = 0;
        while (f && i < sizeof formats / sizeof formats[0] && strcmp(f, formats[i].name)) i++;
        if (!f || i == sizeof formats / sizeof formats[0])
            return gb_fail(b, TM_ERR_INPUT, "format '%.60s' at %s/format not supported (date, time, date-time, uuid, email)",
                           f ? f : "?", ptr);
        body = gram_regex_parse(b, formats[i].re, strlen(formats[i].re), 1, "format");
    } else
        body = gb_json_string_body(b, lo, hi);
    return gb_seq3(b, gb_byte(b, '"'), body, gb_byte(b, '"'));
}

static int32_t gen_object(sc *s, json_t *node, const char *ptr, int depth)
{
    gb *b = s->b;
    json_t *props = json_object_get(node, "properties"), *req = json_object_get(node, "required");
    json_t *add = json_object_get(node, "additionalProperties");
    char pp[PTR_MAX], cp[PTR_MAX];
    if (add && !json_is_boolean(add) && !(json_is_object(add) && json_object_size(add) == 0))
        return gb_fail(b, TM_ERR_INPUT, "additionalProperties with a schema at %s/additionalProperties not supported", ptr);
    if (props && !json_is_object(props))
        return gb_fail(b, TM_ERR_INPUT, "properties at %s/properties must be an object", ptr);
    if (req && !json_is_array(req)) return gb_fail(b, TM_ERR_INPUT, "required at %s/required must be an array", ptr);
    size_t n = props ? json_object_size(props) : 0;
    if (n > 256) return gb_fail(b, TM_ERR_INPUT, "more than 256 properties at %s/properties", ptr);
    for (size_t i = 0; req && i < json_array_size(req); i++) {
        const char *r = json_string_value(json_array_get(req, i));
        if (!r || !json_object_get(props, r))
            return gb_fail(b, TM_ERR_INPUT, "required[%zu] at %s/required is not one of the properties", i, ptr);
    }
    if (n == 0 && !json_is_false(add)) { /* any object: the built-in rule */
        if (any_value(s) < 0) return -1;
        return gb_call(b, s->g_obj);
    }
    int32_t nodes[256], reqd[256], i = 0;
    const char *k;
    json_t *v;
    ptr_child(pp, ptr, "properties");
    json_object_foreach(props, k, v) {
        reqd[i] = 0;
        for (size_t j = 0; req && j < json_array_size(req); j++)
            if (!strcmp(k, json_string_value(json_array_get(req, j)))) reqd[i] = 1;
        json_t *ks = json_string(k);
        int32_t key = ks ? json_literal(b, ks) : gb_fail(b, TM_ERR_NOMEM, "out of memory");
        json_decref(ks);
        ptr_child(cp, pp, k);
        nodes[i] = gb_seq3(b, key, gb_byte(b, ':'), gen(s, v, cp, depth + 1));
        if (nodes[i++] < 0) return -1;
    }
    return gb_seq3(b, gb_byte(b, '{'), gb_members(b, nodes, reqd, i), gb_byte(b, '}'));
}

static int32_t gen_array(sc *s, json_t *node, const char *ptr, int depth)
{
    gb *b = s->b;
    json_t *items = json_object_get(node, "items"), *uniq = json_object_get(node, "uniqueItems");
    int32_t lo = 0, hi = -1;
    if (get_count(s, node, "minItems", ptr, &lo) < 0 || get_count(s, node, "maxItems", ptr, &hi) < 0) return -1;
    if (hi >= 0 && hi < lo) return gb_fail(b, TM_ERR_INPUT, "maxItems < minItems at %s", P(ptr));
    if (uniq && !json_is_false(uniq)) return gb_fail(b, TM_ERR_INPUT, "uniqueItems at %s/uniqueItems not supported", ptr);
    if (items && json_is_array(items))
        return gb_fail(b, TM_ERR_INPUT, "items as an array (tuple) at %s/items not supported", ptr);
    char cp[PTR_MAX];
    ptr_child(cp, ptr, "items");
    int32_t before = b->n_nodes;
    int32_t item = items ? gen(s, items, cp, depth + 1) : any_value(s);
    if (item < 0) return -1;
    int64_t copies = hi < 0 ? (lo > 0 ? lo : 1) + 1 : hi;
    if (copies > 4 && (int64_t)(b->n_nodes - before) * copies > 4000 && b->nodes[item].kind != GN_CALL) {
        /* a big item repeated many times: one rule instead of a copy per repetition
         * (a rule costs mask time: tokens that cross its end are checked at run time) */
        int32_t r = gb_new_rule(b);
        if (r < 0) return -1;
        b->rule_root[r] = item;
        item = gb_call(b, r);
    }
    if (hi == 0) return gb_str(b, "[]");
    int32_t more = gb_rep(b, gb_seq2(b, gb_byte(b, ','), item), lo ? lo - 1 : 0, hi < 0 ? -1 : hi - 1);
    int32_t list = gb_seq2(b, item, more);
    return gb_seq3(b, gb_byte(b, '['), lo ? list : gb_opt(b, list), gb_byte(b, ']'));
}

static int32_t gen_type(sc *s, const char *t, json_t *node, const char *ptr, int depth)
{
    if (!strcmp(t, "string")) return gen_string(s, node, ptr);
    if (!strcmp(t, "integer")) return gram_integer(s->b, node, ptr);
    if (!strcmp(t, "number")) return gram_number(s->b, node, ptr);
    if (!strcmp(t, "boolean")) return gb_alt2(s->b, gb_str(s->b, "true"), gb_str(s->b, "false"));
    if (!strcmp(t, "null")) return gb_str(s->b, "null");
    if (!strcmp(t, "object")) return gen_object(s, node, ptr, depth);
    if (!strcmp(t, "array")) return gen_array(s, node, ptr, depth);
    return gb_fail(s->b, TM_ERR_INPUT, "type '%.40s' at %s/type not supported", t, ptr);
}

/* Type from the keywords present when "type" is absent. */
static const char *infer_type(json_t *node)
{
    if (json_object_get(node, "properties") || json_object_get(node, "required") ||
        json_object_get(node, "additionalProperties"))
        return "object";
    if (json_object_get(node, "items") || json_object_get(node, "minItems") || json_object_get(node, "maxItems"))
        return "array";
    if (json_object_get(node, "pattern") || json_object_get(node, "format") || json_object_get(node, "minLength") ||
        json_object_get(node, "maxLength"))
        return "string";
    if (json_object_get(node, "minimum") || json_object_get(node, "maximum") ||
        json_object_get(node, "exclusiveMinimum") || json_object_get(node, "exclusiveMaximum"))
        return "number";
    return NULL;
}

static int32_t gen(sc *s, json_t *node, const char *ptr, int depth)
{
    gb *b = s->b;
    if (b->st != TM_OK) return -1;
    if (depth > TM_GRAMMAR_MAX_DEPTH) return gb_fail(b, TM_ERR_INPUT, "schema nested deeper than %d at %s", TM_GRAMMAR_MAX_DEPTH, P(ptr));
    if (json_is_true(node)) return any_value(s);
    if (json_is_false(node)) return gb_fail(b, TM_ERR_INPUT, "schema 'false' at %s allows nothing", P(ptr));
    if (!json_is_object(node)) return gb_fail(b, TM_ERR_INPUT, "schema at %s is not an object", P(ptr));
    const char *k;
    json_t *v;
    char cp[PTR_MAX];
    json_object_foreach(node, k, v) {
        if (!in_list(k, annotations) && !in_list(k, keywords)) {
            ptr_child(cp, ptr, k);
            return gb_fail(b, TM_ERR_INPUT, "keyword '%.60s' at %s not supported", k, cp);
        }
    }
    if (json_object_get(node, "$ref")) return gen_ref(s, node, ptr);
    if (json_object_get(node, "enum") || json_object_get(node, "const")) return gen_enum(s, node, ptr);
    if (json_object_get(node, "anyOf")) return gen_anyof(s, node, ptr, depth);
    json_t *t = json_object_get(node, "type");
    if (!t) {
        const char *it = infer_type(node);
        return it ? gen_type(s, it, node, ptr, depth) : any_value(s);
    }
    if (json_is_string(t)) return gen_type(s, json_string_value(t), node, ptr, depth);
    size_t n = json_is_array(t) ? json_array_size(t) : 0;
    if (!n || n > 7) return gb_fail(b, TM_ERR_INPUT, "type at %s/type must be a type name or a list of 1 to 7", ptr);
    int32_t kids[7];
    for (size_t i = 0; i < n; i++) {
        const char *tn = json_string_value(json_array_get(t, i));
        if (!tn) return gb_fail(b, TM_ERR_INPUT, "type at %s/type must list type names", ptr);
        if ((kids[i] = gen_type(s, tn, node, ptr, depth)) < 0) return -1;
    }
    return gb_altv(b, kids, (int32_t)n);
}

static tm_status build_choice(gb *b, const char *text, size_t len)
{
    json_error_t je;
    json_t *a = json_loadb(text, len, 0, &je);
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    if (!n || n > TM_GRAMMAR_MAX_ENUM) {
        json_decref(a);
        return gb_fail(b, TM_ERR_INPUT, "guided_choice must be a JSON array of 1 to %d strings", TM_GRAMMAR_MAX_ENUM), b->st;
    }
    int32_t *k = malloc(n * sizeof *k);
    if (!k) { json_decref(a); return gb_fail(b, TM_ERR_NOMEM, "out of memory"), b->st; }
    for (size_t i = 0; i < n && b->st == TM_OK; i++) {
        json_t *x = json_array_get(a, i);
        k[i] = json_is_string(x) && json_string_length(x)
                   ? gb_lit(b, json_string_value(x), json_string_length(x))
                   : gb_fail(b, TM_ERR_INPUT, "guided_choice[%zu] is not a non-empty string", i);
    }
    if (b->st == TM_OK) b->rule_root[0] = gb_altv(b, k, (int32_t)n);
    free(k);
    json_decref(a);
    return b->st;
}

tm_status gram_schema_build(gb *b, tm_grammar_kind kind, const char *text, size_t len)
{
    sc s = {.b = b, .g_obj = -1, .g_arr = -1};
    if (gb_new_rule(b) != 0) return b->st;
    if (kind == TM_GRAMMAR_REGEX) {
        b->rule_root[0] = gram_regex_parse(b, text, len, 0, "guided_regex");
        return b->st;
    }
    if (kind == TM_GRAMMAR_CHOICE) return build_choice(b, text, len);
    if (kind == TM_GRAMMAR_JSON_OBJECT) {
        any_value(&s);
        if (b->st == TM_OK) b->rule_root[0] = gb_call(b, s.g_obj);
        return b->st;
    }
    if (kind != TM_GRAMMAR_JSON_SCHEMA) return gb_fail(b, TM_ERR_INTERNAL, "unknown grammar kind"), b->st;
    json_error_t je;
    s.root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!s.root) return gb_fail(b, TM_ERR_INPUT, "schema is not JSON: %s (line %d)", je.text, je.line), b->st;
    s.refs = calloc(TM_GRAMMAR_MAX_RULES, sizeof *s.refs);
    if (!s.refs) gb_fail(b, TM_ERR_NOMEM, "out of memory");
    else b->rule_root[0] = gen(&s, s.root, "", 0);
    for (int32_t i = 0; i < s.n_refs && b->st == TM_OK; i++)
        b->rule_root[s.refs[i].rule] = gen(&s, s.refs[i].node, s.refs[i].ptr, 0);
    free(s.refs);
    json_decref(s.root);
    return b->st;
}
