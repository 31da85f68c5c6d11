/* cuda_info.c — whether the CUDA backend is compiled in (for --version).
 *
 * With TOKENMILL_HAVE_CUDA the build links the CUDA runtime; the device probe
 * itself lives in backend/cuda/. Without it, tokenmill is CPU-only.
 */
#include "backend/backend.h"

#ifdef TOKENMILL_HAVE_CUDA
#include <cuda_runtime_api.h>
#include <stdio.h>

#define TM_XSTR(x) #x
#define TM_STR(x) TM_XSTR(x)

int tm_cuda_built_in(void) { return 1; }

const char *tm_cuda_build_info(void)
{
    static const char info[] = "built in (CUDA runtime " TM_STR(CUDART_VERSION) ")";
    return info;
}
#else
int tm_cuda_built_in(void) { return 0; }
const char *tm_cuda_build_info(void) { return "not built (CPU only)"; }
#endif
