/* tok_maps.c — the tokenizer's open-addressing hash maps (string -> id,
 * u64 -> pair) and GPT-2's byte-level alphabet, shared by loading, encoding
 * and decoding (declared in tok_internal.h).
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- hashing and maps ---------------------------------------------------- */

uint32_t tok_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

tm_status tok_smap_init(tok_smap *m, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2 + 1) cap *= 2;
    if (cap > ((size_t)1 << 31)) return TM_ERR_NOMEM;
    m->e = malloc(cap * sizeof *m->e);
    if (!m->e) return TM_ERR_NOMEM;
    for (size_t i = 0; i < cap; i++) m->e[i].val = -1;
    m->mask = (uint32_t)(cap - 1);
    return TM_OK;
}

/* Insert; returns the existing value if the key is present (no insert), else -1. */
int32_t tok_smap_put(const tm_tokenizer *t, tok_smap *m, uint32_t off, uint32_t len, int32_t val)
{
    const char *s = t->arena.data + off;
    uint32_t h = tok_hash(s, len);
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        tok_smap_ent *e = &m->e[i];
        if (e->val < 0) {
            e->hash = h; e->val = val; e->off = off; e->len = len;
            return -1;
        }
        if (e->hash == h && e->len == len && memcmp(t->arena.data + e->off, s, len) == 0) return e->val;
    }
}

int32_t tok_smap_get(const tm_tokenizer *t, const tok_smap *m, const char *s, size_t n)
{
    if (!m->e) return -1;
    uint32_t h = tok_hash(s, n);
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        const tok_smap_ent *e = &m->e[i];
        if (e->val < 0) return -1;
        if (e->hash == h && e->len == n && memcmp(t->arena.data + e->off, s, n) == 0) return e->val;
    }
}

tm_status tok_umap_init(tok_umap *m, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2 + 1) cap *= 2;
    if (cap > ((size_t)1 << 31)) return TM_ERR_NOMEM;
    m->e = malloc(cap * sizeof *m->e);
    if (!m->e) return TM_ERR_NOMEM;
    for (size_t i = 0; i < cap; i++) m->e[i].key = UINT64_MAX;
    m->mask = cap - 1;
    return TM_OK;
}

static uint64_t umix(uint64_t k)
{
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ULL; k ^= k >> 33;
    return k;
}

/* Insert or overwrite. */
void tok_umap_put(tok_umap *m, uint64_t key, int32_t a, int32_t b)
{
    for (uint64_t i = umix(key) & m->mask;; i = (i + 1) & m->mask) {
        tok_umap_ent *e = &m->e[i];
        if (e->key == UINT64_MAX || e->key == key) { e->key = key; e->a = a; e->b = b; return; }
    }
}

const tok_umap_ent *tok_umap_get(const tok_umap *m, uint64_t key)
{
    if (!m->e) return NULL;
    for (uint64_t i = umix(key) & m->mask;; i = (i + 1) & m->mask) {
        const tok_umap_ent *e = &m->e[i];
        if (e->key == key) return e;
        if (e->key == UINT64_MAX) return NULL;
    }
}

/* ---- GPT-2 byte-level alphabet ------------------------------------------- */

/* bytes_to_unicode() of GPT-2: printable bytes map to themselves, the other
 * 68 to U+0100.. in byte order. */
static const uint16_t BYTE_CP[256] = {
    256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271,
    272, 273, 274, 275, 276, 277, 278, 279, 280, 281, 282, 283, 284, 285, 286, 287,
    288, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
    64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79,
    80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95,
    96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 289,
    290, 291, 292, 293, 294, 295, 296, 297, 298, 299, 300, 301, 302, 303, 304, 305,
    306, 307, 308, 309, 310, 311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321,
    322, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 323, 174, 175,
    176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191,
    192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207,
    208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223,
    224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
    240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255,
};

static const uint8_t CP_BYTE[68] = { /* U+0100 + i -> byte */
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 127,
    128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144,
    145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159, 160, 173,
};

uint32_t tok_byte_to_cp(uint8_t b) { return BYTE_CP[b]; }

int tok_cp_to_byte(uint32_t cp)
{
    if (cp < 256) return BYTE_CP[cp] == cp ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    return CP_BYTE[cp - 256];
}

/* ---- load helpers -------------------------------------------------------- */
