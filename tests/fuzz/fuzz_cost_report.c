/* fuzz_cost_report.c — libFuzzer target for the cost report renderer
 * (cost/report.h) and the --price number parser (cost/meter.h).
 *
 * Input: byte 0 = column count (1..8), then '\n'-separated fields, the first
 * n_cols are column names, the rest cells: "i<int>", "r<real>", "n" (NULL) or
 * text (job names are user input: HTML/CSV escaping must hold). Checks: every
 * format renders; HTML has exactly 3 <svg and no raw '<' from a cell.
 * Replayed by ctest over tests/fuzz/corpus/cost_report/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cost/meter.h"
#include "cost/report.h"

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
    tm_cost_report_in in = {.title = f[0], .main = &t, .jobs = &t, .model_price = &t, .throughput = &t};
    tm_buf b;
    tm_buf_init(&b);
    for (int fmt = TM_COST_FMT_TABLE; fmt <= TM_COST_FMT_HTML; fmt++) {
        tm_buf_clear(&b);
        if (tm_cost_report_render(&in, (tm_cost_format)fmt, &b, NULL) != TM_OK) abort();
        if (fmt == TM_COST_FMT_HTML) {
            int svgs = 0;
            for (const char *p = b.data; (p = strstr(p, "<svg")); p++) svgs++;
            if (svgs != 3 || strstr(b.data, "<script")) abort();
        }
    }
    tm_buf_free(&b);
    tm_table_free(&t);
    free(f);
    free(text);
    return 0;
}
