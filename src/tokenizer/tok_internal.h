/* tok_internal.h — private layout of tm_tokenizer, shared by the tokenizer's
 * source files (tokenizer.c: loading and accessors; tok_encode.c: added
 * tokens, normalizers, pre-tokenizers, BPE; tok_decode.c: decoder chain and
 * the streaming detokenizer). Not part of the public API: include
 * tokenizer/tokenizer.h instead.
 *
 * Every token string lives in one arena (t->arena) and is referred to by
 * (offset, length). Hash maps are open-addressed and sized at load time;
 * after load nothing is written, so a tokenizer can be shared by threads.
 */
#ifndef TM_TOK_INTERNAL_H
#define TM_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"
#include "util/buf.h"

#define TOK_MAX_OPS 32       /* flattened normalizer / pre-tokenizer / decoder steps */
#define TOK_MAX_ID (1 << 24) /* ids must be below this */

/* string -> int32 map (open addressing, linear probing). */
typedef struct tok_smap_ent {
    uint32_t hash;
    int32_t val; /* -1: empty slot */
    uint32_t off, len;
} tok_smap_ent;
typedef struct tok_smap {
    tok_smap_ent *e;
    uint32_t mask;
} tok_smap;

/* uint64 -> (a, b) map; key UINT64_MAX marks an empty slot. */
typedef struct tok_umap_ent {
    uint64_t key;
    int32_t a, b;
} tok_umap_ent;
typedef struct tok_umap {
    tok_umap_ent *e;
    uint64_t mask;
} tok_umap;

typedef struct tok_added {
    uint32_t off, len; /* content in arena */
    int32_t id;
    unsigned special : 1, lstrip : 1, rstrip : 1, single_word : 1, normalized : 1;
} tok_added;

/* A trie over added-token contents: node 0 is the root; edges in a umap keyed
 * (node << 8 | byte) -> (child, -); term[node] = added index or -1. */
typedef struct tok_trie {
    tok_umap edges;
    int32_t *term;
    int32_t n_nodes;
    uint8_t first[32]; /* bitmap of first bytes */
    int any;
} tok_trie;

enum { NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_LOWERCASE, NORM_REPLACE, NORM_PREPEND };
typedef struct tok_norm {
    int kind;
    pcre2_code *re;  /* REPLACE */
    char *content;   /* REPLACE / PREPEND (malloc'd, NUL-terminated) */
    size_t content_len;
} tok_norm;

enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };
enum { PT_SPLIT, PT_BYTELEVEL, PT_METASPACE, PT_DIGITS };
typedef struct tok_pretok {
    int kind;
    pcre2_code *re;   /* SPLIT pattern; BYTELEVEL GPT-2 regex when use_regex; DIGITS \p{N} */
    int behavior, invert;
    int add_prefix_space, use_regex;
    char repl[8];     /* METASPACE replacement (UTF-8) */
    size_t repl_len;
    int prepend_scheme, split;
} tok_pretok;

enum { DEC_BYTELEVEL, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_REPLACE, DEC_METASPACE };
typedef struct tok_dec {
    int kind;
    pcre2_code *re;       /* REPLACE */
    char *content;        /* REPLACE content; STRIP content char (UTF-8) */
    size_t content_len;
    long start, stop;     /* STRIP */
    char repl[8];         /* METASPACE */
    size_t repl_len;
    int prepend_scheme;
} tok_dec;

struct tm_tokenizer {
    tm_buf arena;          /* all token strings */
    int32_t n_ids;         /* vocab_size: max id + 1 */
    uint32_t *id_off, *id_len; /* per id: string (added content wins) */
    uint8_t *id_flags;     /* TOKF_* */
    int16_t *id_byte;      /* byte value of a <0xNN> vocab token, else -1 */
    tok_smap vocab;        /* model vocab: string -> id */
    tok_smap added_map;    /* added content -> index into added */
    tok_added *added;
    size_t n_added;
    tok_trie trie_raw;     /* added tokens with normalized=false */
    tok_trie trie_norm;    /* added tokens with normalized=true */
    tok_umap merges;       /* (left id << 32 | right id) -> (rank, new id) */

    /* model */
    int byte_fallback, fuse_unk, ignore_merges;
    int32_t unk_id;
    int32_t byte_id[256];  /* id of <0xNN> or -1 */

    tok_norm norm[TOK_MAX_OPS];
    int n_norm;
    tok_pretok pretok[TOK_MAX_OPS];
    int n_pretok;
    tok_dec dec[TOK_MAX_OPS];
    int n_dec;
    int has_decoder;       /* 0: tokens are joined with " " as HF does */
    int dec_byte_fallback; /* decoder chain contains ByteFallback */

    /* tokenizer_config.json */
    char *bos_token, *eos_token, *chat_template;
    int32_t bos_id, eos_id;
    int add_bos;
};

#define TOKF_VOCAB 1
#define TOKF_ADDED 2
#define TOKF_SPECIAL 4

/* tok_maps.c. tok_smap keys are (offset, length) into t->arena; init sizes a
 * map for n entries; tok_smap_put returns the existing value for a duplicate
 * key (else -1 after inserting); tok_umap_put overwrites. */
uint32_t tok_hash(const char *s, size_t n);
tm_status tok_smap_init(tok_smap *m, size_t n);
int32_t tok_smap_put(const tm_tokenizer *t, tok_smap *m, uint32_t off, uint32_t len, int32_t val);
int32_t tok_smap_get(const tm_tokenizer *t, const tok_smap *m, const char *s, size_t n);
tm_status tok_umap_init(tok_umap *m, size_t n);
void tok_umap_put(tok_umap *m, uint64_t key, int32_t a, int32_t b);
const tok_umap_ent *tok_umap_get(const tok_umap *m, uint64_t key);

/* GPT-2 byte <-> unicode mapping: byte -> codepoint, codepoint -> byte or -1. */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp);

/* UTF-8 helpers (tok_decode.c). tok_utf8_valid: 1 if s[0..n) is valid UTF-8. */
int tok_utf8_valid(const char *s, size_t n);
/* Append s[0..n) to b, replacing invalid sequences with U+FFFD as Rust's
 * String::from_utf8_lossy does (one per maximal invalid subpart). */
tm_status tok_utf8_lossy(tm_buf *b, const char *s, size_t n);

#endif
