/* gram_int.h — private to src/grammar/: the expression tree the front ends
 * build (gram_schema.c, gram_regex.c), the compiled automaton (gram_dfa.c)
 * and the per-state token tables (gram_mask.c).
 *
 * Expression tree: nodes in one growable array, referred to by index; a node
 * is a byte set, a sequence, an alternation, a repetition {min,max}, a call
 * of another rule, the empty string, or an object-member list (properties in
 * order, each required or optional, comma-separated; built in linear size).
 * Builders return the new node's index or -1 (error recorded in the builder:
 * the first one wins), and accept -1 children (propagating the error), so
 * front ends chain them without checking every call.
 *
 * Automaton: each rule is a DFA over bytes; states are numbered globally.
 * trans[s*256+b] = next state or -1; a state may also carry calls (rule r,
 * return state t): push r's start, continue at t when r accepts. A state is
 * accepting when its rule may end there.
 */
#ifndef TM_GRAM_INT_H
#define TM_GRAM_INT_H

#include <stdint.h>

#include "grammar/grammar.h"

enum { GN_SET, GN_SEQ, GN_ALT, GN_REP, GN_CALL, GN_EMPTY, GN_MEMBERS };

typedef struct gnode {
    uint8_t kind;
    int32_t a;      /* SET: set index; SEQ/ALT/MEMBERS: first kid index; REP: child; CALL: rule */
    int32_t n;      /* SEQ/ALT/MEMBERS: kid count; REP: min */
    int32_t max;    /* REP: max (-1 = unbounded) */
} gnode;

typedef struct gb {
    gnode *nodes;
    int32_t n_nodes, cap_nodes;
    int32_t *kids;            /* SEQ/ALT kids; MEMBERS: pairs (node, required) */
    int32_t n_kids, cap_kids;
    uint32_t (*sets)[8];
    int32_t n_sets, cap_sets;
    int32_t rule_root[TM_GRAMMAR_MAX_RULES];
    int32_t n_rules;
    tm_status st;             /* first error */
    tm_err *err;
} gb;

void gb_init(gb *b, tm_err *err);
void gb_free(gb *b);
int32_t gb_fail(gb *b, tm_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int32_t gb_set(gb *b, const uint32_t bits[8]);
int32_t gb_range(gb *b, int lo, int hi);
int32_t gb_byte(gb *b, int c);
int32_t gb_lit(gb *b, const char *s, size_t n);
int32_t gb_str(gb *b, const char *s);     /* gb_lit of a C string */
int32_t gb_seqv(gb *b, const int32_t *k, int32_t n);
int32_t gb_altv(gb *b, const int32_t *k, int32_t n);
int32_t gb_seq2(gb *b, int32_t x, int32_t y);
int32_t gb_seq3(gb *b, int32_t x, int32_t y, int32_t z);
int32_t gb_alt2(gb *b, int32_t x, int32_t y);
int32_t gb_rep(gb *b, int32_t x, int32_t min, int32_t max);
int32_t gb_opt(gb *b, int32_t x);
int32_t gb_call(gb *b, int32_t rule);
int32_t gb_empty(gb *b);
/* members: node[i] with required flag req[i] */
int32_t gb_members(gb *b, const int32_t *node, const int32_t *req, int32_t n);
/* A new rule (root set later with rule_root); returns its id or -1. */
int32_t gb_new_rule(gb *b);

/* Shared pieces (gram_regex.c). */
int32_t gb_utf8_any(gb *b);               /* any non-ASCII UTF-8 character */
int32_t gb_json_char(gb *b);              /* one JSON string character (raw or escape) */
int32_t gb_json_string_body(gb *b, int32_t min, int32_t max); /* chars{min,max} */
/* Parse a regex (subset, docs/structured-output.md). json_mode: the regex
 * describes the decoded contents of a JSON string and is emitted escaped.
 * where: prefix for error messages (e.g. "pattern at /properties/a"). */
int32_t gram_regex_parse(gb *b, const char *re, size_t len, int json_mode, const char *where);

/* JSON Schema front end (gram_schema.c): rule 0 = the document. */
tm_status gram_schema_build(gb *b, tm_grammar_kind kind, const char *text, size_t len);

typedef struct gcall {
    int32_t rule, ret;
} gcall;

typedef struct gmask_entry {
    uint32_t *accept;        /* tokens consumed entirely inside the rule: allowed */
    int32_t *check;          /* tokens that may leave the rule: checked against the stack */
    int32_t n_check;
    int ready;
} gmask_entry;

struct tm_grammar {
    int32_t n_states, n_rules;
    int32_t *trans;          /* n_states * 256 */
    uint8_t *accepting;      /* per state */
    uint8_t *special;        /* accepting or has calls: a token passing here may leave the rule */
    int32_t *call_off;       /* per state + 1: range in calls */
    gcall *calls;
    int32_t *rule_start;     /* per rule */
    int32_t *dist;           /* fewest bytes from state to its rule's end */
    gmask_entry *mt;         /* per state, filled lazily */
    const tm_grammar_vocab *vocab; /* bound at first use */
};

/* gram_dfa.c: tree -> per-rule DFAs. */
tm_status gram_dfa_build(gb *b, tm_grammar *g, tm_err *err);

struct tm_grammar_vocab {
    int32_t n_vocab;
    size_t words;
    uint32_t *tok_off;       /* per id: offset into bytes (n_vocab + 1 entries) */
    uint8_t *bytes;
    int32_t *sorted;         /* ids with bytes, lexicographic order */
    int32_t *lcp;            /* common prefix with the previous in sorted */
    uint32_t *s_off;         /* sorted order: offset into s_bytes (n_sorted + 1), so that */
    uint8_t *s_bytes;        /* the table walk reads memory front to back */
    int32_t *skip[3];        /* skip[k][i]: first j > i with lcp[j] <= k (n_sorted if none) */
    int32_t n_sorted;
    int32_t max_len;
    int32_t *eos;
    size_t n_eos;
};

/* gram_mask.c: fill state s's entry. */
tm_status gram_mask_entry(tm_grammar *g, int32_t s, tm_err *err);

#endif
