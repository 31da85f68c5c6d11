/* cuda_backend.h — the CUDA backend (tm_backend_cuda) and a device probe.
 *
 * Compiled only when CMake builds with CUDA (src/backend/cuda/ is dropped
 * otherwise): code outside src/backend/cuda must guard uses with
 * TOKENMILL_HAVE_CUDA. The backend implements backend.h with bf16 weights
 * (one device allocation, fused QKV and gate/up), a bf16 paged KV pool,
 * fp32 residual stream, cuBLASLt GEMMs (bf16 in, fp32 compute) and the
 * kernels of kernels/kernels.h. Debug flags honoured: NO_ROPE_SCALING,
 * NO_QKV_BIAS, NO_QK_NORM (ROPE_INTERLEAVED / GQA_MODULO are CPU-only).
 * TM_BACKEND_CUDA_FAST in the create flags (--cuda-fast; or TOKENMILL_CUDA_FAST=1
 * in the environment) switches attention to the tensor-core prefill / GQA
 * decode kernels (not yet verified on a GPU).
 */
#ifndef TM_CUDA_BACKEND_H
#define TM_CUDA_BACKEND_H

#include "backend/backend.h"

extern const tm_backend_ops tm_backend_cuda;

/* Number of CUDA devices visible (0 when the driver/runtime fails). */
int tm_cuda_device_count(void);

/* Free and total memory of the current device (cudaMemGetInfo), and its name
 * (cudaGetDeviceProperties, e.g. "NVIDIA H200"); TM_ERR_UNAVAILABLE when the
 * runtime fails. Used to size the KV pool and pick the HBM bandwidth. */
tm_status tm_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, tm_err *err);
tm_status tm_cuda_device_name(char *buf, size_t n, tm_err *err);

#endif
