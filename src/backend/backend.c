/* backend.c — picks a compute backend for a --device value.
 *
 * "cpu" gives the CPU reference backend; "cuda" gives tm_backend_cuda when
 * it is built in and a device is visible, else TM_ERR_UNAVAILABLE (exit 69):
 * a job that demands a GPU never silently runs on the CPU. "auto" picks CUDA
 * when it is built in and a device is visible, else the CPU.
 */
#include <string.h>

#include "backend/backend.h"
#include "cli/cli.h"
#ifdef TOKENMILL_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

tm_status tm_backend_select(const char *device, const tm_backend_ops **out, tm_err *err)
{
    *out = NULL;
    if (!device || !strcmp(device, "auto")) {
#ifdef TOKENMILL_HAVE_CUDA
        if (tm_cuda_device_count() > 0) {
            *out = &tm_backend_cuda;
            return TM_OK;
        }
#endif
        *out = &tm_backend_cpu;
        return TM_OK;
    }
    if (!strcmp(device, "cpu")) {
        *out = &tm_backend_cpu;
        return TM_OK;
    }
    if (!strcmp(device, "cuda")) {
#ifdef TOKENMILL_HAVE_CUDA
        int n = tm_cuda_device_count();
        if (n <= 0)
            return tm_errf(err, TM_ERR_UNAVAILABLE, "--device cuda: no CUDA device is visible (%s); use --device cpu",
                           tm_cuda_build_info());
        *out = &tm_backend_cuda;
        return TM_OK;
#else
        return tm_errf(err, TM_ERR_UNAVAILABLE,
                       "--device cuda: this tokenmill was built without CUDA (%s); use --device cpu",
                       tm_cuda_build_info());
#endif
    }
    return tm_errf(err, TM_ERR_USAGE, "--device: '%s' is not one of auto, cpu, cuda", device);
}
