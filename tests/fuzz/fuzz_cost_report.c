/* fuzz_cost_report.c — libFuzzer target for the cost report renderer
 * (cost/report.h) and the --price number parser (cost/meter.h).
 *
 * Input: byte 0 = column count (1..8, low 3 bits), grouping (bits 3-5, mod 5)
 * and --wide (bit 6), then '\n'-separated fields, the first n_cols are column
 * names, the rest cells: "i<int>", "r<real>", "n" (NULL) or text (job names
 * are user input: HTML/CSV escaping must hold). Checks: every format renders,
 * with a what-if; JSON parses; HTML is one page without a script; labels of
 * every field stay within their buffer.
 * Replayed by ctest over tests/fuzz/corpus/cost_report/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cost/meter.h"
#include "cost/report.h"

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16) return 0;
    int nc = 1 + data[0] % 8;
    char *text = malloc(size);
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    tm_cost_price pr;
    (void)tm_cost_price_parse_number(text, &pr, NULL);

    size_t nf = 1;
    for (size_t i = 0; i + 1 < size; i++)
        if (text[i] == '\n') nf++;
    char **f = calloc(nf, sizeof *f);
    if (!f) { free(text); return 0; }
    size_t k = 0;
    for (char *p = text, *q; k < nf; p = q + 1) {
        f[k++] = p;
        if (!(q = strchr(p, '\n'))) break;
        *q = 0;
    }
    tm_table t = {0};
    t.n_cols = nc;
    t.cols = calloc((size_t)nc, sizeof *t.cols);
    int nr = k > (size_t)nc ? (int)((k - (size_t)nc) / (size_t)nc) : 0;
    t.cells = calloc((size_t)(nr ? nr : 1) * (size_t)nc, sizeof *t.cells);
    if (!t.cols || !t.cells) abort();
    for (int c = 0; c < nc; c++) t.cols[c] = strdup(c < (int)k ? f[c] : "col");
    char lab[32];
    for (size_t i = 0; i < k; i++) {
        tm_cost_label(f[i], 1 + (int)(i % 40), lab, sizeof lab);
        if (strlen(lab) >= sizeof lab) abort();
    }
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) {
            const char *s = f[(size_t)nc + (size_t)r * (size_t)nc + (size_t)c];
            tm_cell *cell = &t.cells[r * nc + c];
            if (s[0] == 'i') { cell->type = TM_CELL_INT; cell->i = strtoll(s + 1, NULL, 10); }
            else if (s[0] == 'r') { cell->type = TM_CELL_REAL; cell->d = strtod(s + 1, NULL); }
            else if (s[0] == 'n') cell->type = TM_CELL_NULL;
            else { cell->type = TM_CELL_TEXT; cell->s = strdup(s); }
        }
    t.n_rows = t.cap_rows = nr;
    const char *pp[1] = {f[0]};
    tm_cost_whatif w[1] = {{"spot", 2.5, 0.1}};
    tm_cost_report_in in = {.by = (tm_cost_group)((data[0] >> 3) % 5), .by_label = f[0], .note = f[0], .main = &t,
                            .price_profiles = pp, .n_price_profiles = 1, .since = 1795046400, .generated_at = 1795046400,
                            .whatif = w, .n_whatif = 1, .wide = (data[0] >> 6) & 1};
    tm_buf b;
    tm_buf_init(&b);
    for (int fmt = TM_COST_FMT_TABLE; fmt <= TM_COST_FMT_HTML; fmt++) {
        tm_buf_clear(&b);
        if (tm_cost_report_render(&in, (tm_cost_format)fmt, &b, NULL) != TM_OK) abort();
        if (fmt == TM_COST_FMT_HTML) {
            if (strstr(b.data, "<script") || !strstr(b.data, "</html>\n")) abort();
            if (strstr(b.data, "</html>\n")[8]) abort(); /* one page */
        }
        if (fmt == TM_COST_FMT_JSON) {
            json_t *j = json_loadb(b.data, b.len, 0, NULL);
            if (!j || !json_is_object(j) || !json_is_array(json_object_get(j, "rows"))) abort();
            json_decref(j);
        }
    }
    tm_buf_free(&b);
    tm_table_free(&t);
    free(f);
    free(text);
    return 0;
}
