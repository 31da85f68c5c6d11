/* jinja_int.h — internals shared by the Jinja interpreter's files:
 * arena, values, tokens, AST. Not a public API (see jinja.h).
 *
 * Every allocation of a compiled template lives in its arena; every value
 * built while rendering lives in the render's arena, freed at the end of
 * tm_jinja_render. Values are immutable once built except namespaces, so
 * they are shared by pointer, never copied or reference-counted.
 */
#ifndef TM_JINJA_INT_H
#define TM_JINJA_INT_H

#include <stddef.h>
#include <stdint.h>
#include "template/jinja.h"

/* ---- arena ---- */
typedef struct jarena {
    struct jchunk *head;
    size_t used, cap;   /* bytes handed out so far, limit */
} jarena;
void *ja_alloc(jarena *a, size_t n); /* zeroed; NULL when out of memory or over cap */
void ja_free(jarena *a);

/* ---- values ---- */
typedef enum {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
    JV_NS,     /* namespace(): a dict that takes attribute assignment */
    JV_LOOP,   /* the `loop` object of a for */
    JV_MACRO,  /* a macro, or caller() of a call block */
    JV_FUNC,   /* a global function (range, namespace, ...) */
    JV_METHOD, /* a bound str/dict method or loop.cycle */
} jtype;

typedef struct jstr { size_t n; char s[]; } jstr; /* NUL-terminated too */
typedef struct jv {
    jtype t;
    union {
        int64_t i;          /* BOOL, INT, FUNC id */
        double f;
        const jstr *s;      /* STR; UNDEF: the name, or NULL */
        struct jlist *l;
        struct jdict *d;    /* DICT, NS */
        struct jloop *loop;
        struct jmacro *m;
        struct jmethod *bm;
    } u;
} jv;
typedef struct jlist { size_t n; jv *v; int tuple; } jlist; /* tuple: repr as (a, b) */
typedef struct jdict { size_t n, cap; const jstr **k; jv *v; } jdict;
typedef struct jmethod { jv self; const char *name; } jmethod;

static inline jv jv_undef(const jstr *name) { jv v = {JV_UNDEF, {.s = name}}; return v; }
static inline jv jv_none(void) { jv v = {JV_NONE, {.i = 0}}; return v; }
static inline jv jv_bool(int b) { jv v = {JV_BOOL, {.i = !!b}}; return v; }
static inline jv jv_int(int64_t i) { jv v = {JV_INT, {.i = i}}; return v; }
static inline jv jv_float(double f) { jv v = {JV_FLOAT, {.f = f}}; return v; }
static inline jv jv_str(const jstr *s) { jv v = {JV_STR, {.s = s}}; return v; }

/* ---- tokens (jinja_lex.c) ---- */
typedef enum {
    JT_EOF, JT_DATA, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END,
    JT_NAME, JT_STRING, JT_INT, JT_FLOAT, JT_OP,
} jtok_kind;
typedef struct jtok {
    jtok_kind k;
    int line;
    const jstr *s;   /* DATA, NAME, STRING (decoded), OP (the operator text) */
    int64_t i;
    double f;
} jtok;
typedef struct jtoks { jtok *v; size_t n, cap; } jtoks;
tm_status jinja_lex(const char *src, size_t len, unsigned flags, jarena *a, jtoks *out, tm_err *err);

/* ---- AST (jinja_parse.c) ---- */
typedef enum {
    /* expressions */
    N_LIT, N_NAME, N_ATTR, N_ITEM, N_SLICE, N_CALL, N_FILTER, N_TEST, N_NEG, N_POS, N_NOT,
    N_BIN, N_AND, N_OR, N_CMP, N_COND, N_LIST, N_DICT,
    /* statements */
    S_TEXT, S_OUT, S_IF, S_FOR, S_SET, S_SETBLOCK, S_MACRO, S_CALLBLOCK, S_FILTERBLOCK, S_BREAK,
    S_CONTINUE, S_BODY,
} jnode_kind;

typedef struct jnode jnode;
typedef struct jnodes { jnode **v; size_t n; } jnodes;
struct jnode {
    jnode_kind k;
    int line;
    int op;            /* N_BIN: operator char code (see jinja_parse.c), N_TEST: negated */
    jnode *a, *b, *c, *d; /* children (meaning per kind, see jinja_parse.c) */
    jnodes args;       /* positional args / list items / dict keys / body / cmp operands */
    jnodes kwargs;     /* keyword arg values / dict values / else body */
    const jstr **names;/* keyword arg names / macro params / for & set targets / cmp ops */
    size_t nnames;
    const jstr *str;   /* NAME, ATTR, FILTER, TEST: the name; S_TEXT: the text */
    jv lit;            /* N_LIT */
};

struct tm_jinja {
    jarena arena;
    jnode *root;       /* S_BODY */
};
tm_status jinja_parse(const jtoks *toks, jarena *a, jnode **root, tm_err *err);

/* Parser state and helpers shared by jinja_parse.c (expressions) and
 * jinja_stmt.c (statements). On failure they return NULL / -1 with st set. */
typedef struct jps {
    const jtoks *t;
    size_t i;
    jarena *a;
    tm_err *err;
    int depth;
    tm_status st;
} jps;
typedef struct jnvec { jnode **v; size_t n, cap; } jnvec;
const jtok *jp_cur(jps *P);
const jtok *jp_peek(jps *P, size_t k);
void *jp_fail(jps *P, const char *fmt, const char *arg); /* fmt has one %s */
void *jp_oom(jps *P);
jnode *jp_mk(jps *P, jnode_kind k, int line);
int jp_push(jps *P, jnvec *v, jnode *n);
jnodes jp_done(jnvec *v);
const jstr **jp_names(jps *P, const jstr **tmp, size_t n);
int jp_is_op(const jtok *t, const char *op);
int jp_is_name(const jtok *t, const char *nm);
int jp_expect_op(jps *P, const char *op);
const jstr *jp_expect_name(jps *P);
jnode *jp_expr(jps *P);
jnode *jp_tuple(jps *P, int with_cond);
jnode *jp_filter(jps *P, jnode *in);
int jp_call_args(jps *P, jnode *n);

/* ---- values (jinja_value.c) ---- */
typedef struct jrt jrt; /* render state (jinja_eval.c) */
typedef struct jscope { struct jscope *parent; jdict *vars; } jscope;
typedef struct jloop { const jlist *items; size_t i; int depth0; } jloop;
typedef struct jmacro {
    const jnode *def;   /* S_MACRO, or S_CALLBLOCK for caller() */
    jscope *closure;    /* where it was defined */
    jv caller;          /* the caller() a call block passes (JV_UNDEF if none) */
} jmacro;
const jstr *jstr_new(jarena *a, const char *s, size_t n);
const jstr *jstr_c(jarena *a, const char *s);
int jv_truthy(jv v);
const char *jv_type_name(jv v);
int jv_equal(jv a, jv b);
/* <0, 0, >0 into *cmp; -1 when the types cannot be ordered. */
int jv_compare(jv a, jv b, int *cmp);
/* str(v) / repr(v) / json.dumps(v, ...) appended to b; -1 on failure
 * (out of memory, or tojson of something JSON cannot hold: *why set). */
int jv_write_str(tm_buf *b, jv v);
int jv_write_repr(tm_buf *b, jv v, int depth);
int jv_tojson(tm_buf *b, jv v, int indent, const char *item_sep, const char *key_sep, int sort_keys,
              int depth, const char **why);
/* JSON -> value: 0 ok, -1 out of memory, -2 nested deeper than JV_MAX_DEPTH. */
#define JV_MAX_DEPTH 256
int jv_from_json(jarena *a, const json_t *j, int depth, jv *out);
jdict *jdict_new(jarena *a, size_t cap);
jv *jdict_get(const jdict *d, const char *k, size_t n);
int jdict_set(jarena *a, jdict *d, const jstr *k, jv v); /* -1: out of memory */
jlist *jlist_new(jarena *a, size_t n);
/* UTF-8 helpers: code point count, byte offset of code point i (clamped). */
size_t ju8_len(const char *s, size_t n);
size_t ju8_off(const char *s, size_t n, size_t i);
int ju8_space(uint32_t c);
size_t ju8_dec(const unsigned char *p, size_t n, uint32_t *cp);

/* ---- render state and library (jinja_eval.c, jinja_expr.c, jinja_lib.c) ---- */
struct jrt {
    jarena ar;
    tm_buf *sink;
    tm_jinja_limits lim;
    uint64_t steps;
    int depth;
    int line;
    int ctl;           /* 1 break, 2 continue pending */
    tm_err *err;
    tm_status st;
};
enum { CTL_BREAK = 1, CTL_CONTINUE = 2 };
int jrt_oom(jrt *r);
int jrt_step(jrt *r, const jnode *n);          /* counts a step, sets the line */
jv jrt_lookup(jscope *s, const jstr *name);    /* variables, then globals, else undefined */
int jrt_undefined(jrt *r, jv v);               /* fail: "'name' is undefined" */
int jrt_eval(jrt *r, const jnode *n, jscope *s, jv *out);
int jrt_eval_args(jrt *r, const jnode *n, jscope *s, jv **pos, jv **kw);
int jrt_getattr(jrt *r, jv obj, const jstr *name, jv *out);
int jrt_getitem(jrt *r, jv obj, jv key, jv *out);
int jrt_getitem_slice(jrt *r, jv obj, jv start, jv stop, jv step, jv *out); /* obj[start:stop:step] */
int jrt_contains(jrt *r, jv hay, jv needle, int *out); /* Python's `needle in hay` */
/* Fail the render: message "line N: ...", TM_ERR_INPUT (or st). Returns -1. */
int jrt_fail(jrt *r, tm_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
jarena *jrt_arena(jrt *r);
int jrt_line(jrt *r);
/* Call a callable value (macro, function, method) with evaluated args. */
int jrt_call(jrt *r, jv fn, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv, size_t nk, jv *out);
/* The string a value renders as, in the render arena. */
int jrt_tostr(jrt *r, jv v, const jstr **out);

/* Filters, tests, methods, globals: 0 ok, -1 failed (jrt_fail called).
 * Returns 1 from jlib_* when the name is unknown. */
int jlib_filter(jrt *r, const char *name, jv x, const jv *args, size_t n, const jstr *const *kwn,
                const jv *kwv, size_t nk, jv *out);
int jlib_test(jrt *r, const char *name, jv x, const jv *args, size_t n, int *out);
int jlib_method(jrt *r, jv self, const char *name, const jv *args, size_t n, const jstr *const *kwn,
                const jv *kwv, size_t nk, jv *out);
int jlib_has_method(jv self, const char *name);
/* Argument i (positional) or key (keyword) of a call, NULL if not given. */
const jv *jlib_arg(const jv *args, size_t n, const jstr *const *kwn, const jv *kwv, size_t nk, size_t i,
                   const char *key);
/* Filters with more logic (jinja_lib.c); arguments as jlib_filter's. */
int jf_mklist(jrt *r, size_t n, jlist **l, jv *out);
int jf_as_list(jrt *r, jv v, const jlist **out); /* list items, dict keys, characters */
int jf_attr_path(jrt *r, jv x, const jstr *path, jv *out);
int jf_filter_tojson(jrt *r, jv x, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv, size_t nk, jv *out);
int jf_filter_select(jrt *r, const char *name, jv x, const jv *args, size_t n, jv *out);
int jf_filter_map(jrt *r, jv x, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv, size_t nk, jv *out);
int jf_filter_join(jrt *r, jv x, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv, size_t nk, jv *out);
int jf_filter_indent(jrt *r, jv x, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv, size_t nk, jv *out);
int jf_filter_int(jrt *r, jv x, const jv *def, int to_float, jv *out);
int jf_filter_minmax_sort(jrt *r, const char *name, jv x, const jv *args, size_t n, const jstr *const *kwn,
                          const jv *kwv, size_t nk, jv *out);
/* String helpers (jinja_str.c) used by filters and methods. */
int jstr_strip(jrt *r, const jstr *s, const jv *chars, int left, int right, jv *out);
int jstr_case(jrt *r, const jstr *s, int how, jv *out); /* 'U' upper, 'L' lower, 'C' capitalize, 'T' title(),
                                                            'J' Jinja's title filter */
/* Python str.islower() (lower) / str.isupper() */
int jstr_is_case(const jstr *s, int lower);
int jstr_replace(jrt *r, const jstr *s, const jstr *old, const jstr *new_, int64_t count, jv *out);
enum { JF_RANGE = 1, JF_NAMESPACE, JF_DICT, JF_RAISE, JF_STRFTIME };
int jlib_global(const char *name); /* JF_* or 0 */
int jlib_call_global(jrt *r, int fn, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv,
                     size_t nk, jv *out);

#endif
