/* quant_int.h — private to quant/ (quant.c, quant_convert.c): the shape
 * check the descriptor constructors and the checkpoint converters share.
 */
#ifndef TM_QUANT_INT_H
#define TM_QUANT_INT_H

#include "quant/quant.h"

/* TM_ERR_INPUT naming `what` unless n >= 1 and k >= 1. */
tm_status tm_quant_check_nk(int32_t n, int32_t k, const char *what, tm_err *err);

#endif
