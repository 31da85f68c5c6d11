/* table.c — the generic result table (table.h). */
#include "util/table.h"

#include <stdlib.h>
#include <string.h>

tm_status tm_table_set_cols(tm_table *t, const char *const *names, int n, tm_err *err)
{
    if (n < 1 || t->n_cols) return tm_errf(err, TM_ERR_INTERNAL, "table: columns already set or none given");
    t->cols = calloc((size_t)n, sizeof *t->cols);
    if (!t->cols) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    t->n_cols = n;
    for (int i = 0; i < n; i++)
        if (!(t->cols[i] = strdup(names[i] ? names[i] : ""))) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    return TM_OK;
}

tm_status tm_table_add_row(tm_table *t, tm_cell **row, tm_err *err)
{
    if (t->n_rows == t->cap_rows) {
        int nc = t->cap_rows ? t->cap_rows * 2 : 16;
        if (nc > (1 << 24)) return tm_errf(err, TM_ERR_NOMEM, "report: too many rows");
        tm_cell *c = realloc(t->cells, (size_t)nc * (size_t)t->n_cols * sizeof *c);
        if (!c) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
        t->cells = c;
        t->cap_rows = nc;
    }
    *row = &t->cells[(long)t->n_rows * t->n_cols];
    memset(*row, 0, (size_t)t->n_cols * sizeof **row);
    t->n_rows++;
    return TM_OK;
}

void tm_table_free(tm_table *t)
{
    if (!t) return;
    for (int i = 0; i < t->n_cols; i++) free(t->cols ? t->cols[i] : NULL);
    for (long i = 0; t->cells && i < (long)t->n_rows * t->n_cols; i++) free(t->cells[i].s);
    free(t->cols);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

const tm_cell *tm_table_cell(const tm_table *t, int row, int col)
{
    if (row < 0 || row >= t->n_rows || col < 0 || col >= t->n_cols) return NULL;
    return &t->cells[(long)row * t->n_cols + col];
}

int tm_table_col(const tm_table *t, const char *name)
{
    for (int i = 0; i < t->n_cols; i++)
        if (!strcmp(t->cols[i], name)) return i;
    return -1;
}
