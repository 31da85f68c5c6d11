/* model_internal.h — the tm_model handle's fields, shared by the files of
 * model/ only (model.c loads, model_quant.c quantizes, synthetic.c builds
 * shape-only models). Everything outside model/ goes through model.h.
 */
#ifndef TM_MODEL_INTERNAL_H
#define TM_MODEL_INTERNAL_H

#include "model/arch.h"
#include "model/model.h"
#include "model/safetensors.h"

struct tm_model {
    char *dir;
    tm_model_config cfg;
    tm_safetensors **files;
    char **file_names;       /* base names, parallel to files */
    int n_files;
    tm_tensor embed, norm, lm_head;
    tm_layer_weights *layers;
    void **owned;            /* realigned copies */
    size_t n_owned;
    tm_qweight **qws;        /* quantized projections (tm_tensor.q) */
    size_t n_qws;
    int synthetic;           /* tm_model_synthetic*: shapes only, data == NULL */
    int tied;                /* lm_head is embed's view */
};

/* Where the model keeps the tensor of arch.h row s (layer ignored for
 * model-wide rows; layer must be in range for the others). */
tm_tensor *tm_model_slot(tm_model *m, const tm_wspec *s, int layer);

#endif
