/* table.h — a small generic result table: named columns, rows of typed cells.
 *
 * The queue fills one from a SQL query (queue_cost.h: the cost report
 * queries); cost/report.h renders one. It holds plain values only, so the
 * renderer needs nothing from the queue.
 */
#ifndef TM_TABLE_H
#define TM_TABLE_H

#include <stdint.h>
#include "util/status.h"

typedef enum tm_cell_type { TM_CELL_NULL, TM_CELL_INT, TM_CELL_REAL, TM_CELL_TEXT } tm_cell_type;
typedef struct tm_cell {
    tm_cell_type type;
    int64_t i;
    double d;
    char *s;     /* TEXT (malloc'd) */
} tm_cell;

/* n_cols names, n_rows rows of n_cols cells (row-major). Zero-initialised is
 * an empty table. */
typedef struct tm_table {
    int n_cols, n_rows;
    char **cols;
    tm_cell *cells;
    int cap_rows;
} tm_table;

/* Set the columns of an empty table (names copied). */
tm_status tm_table_set_cols(tm_table *t, const char *const *names, int n, tm_err *err);
/* Append a row of n_cols NULL cells; *row points at it (valid until the next add). */
tm_status tm_table_add_row(tm_table *t, tm_cell **row, tm_err *err);
void tm_table_free(tm_table *t); /* frees contents; the struct may be reused; NULL is a no-op */
const tm_cell *tm_table_cell(const tm_table *t, int row, int col); /* NULL when out of range */
int tm_table_col(const tm_table *t, const char *name); /* -1 when absent */

#endif
