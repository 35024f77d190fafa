// GEMMs through cuBLAS. cuBLAS is column-major: a row-major [r, c] matrix is its column-major
// transpose, so row-major C = A B is computed as column-major C^T = B^T A^T, i.e. with the
// operands swapped and no explicit transposition.
//
// Compute type 32F: fp32 accumulation for every dtype (tensor cores for F16/BF16 inputs).
// F32 stays pure fp32 as long as the handle keeps its default math mode: a handle set to
// CUBLAS_TF32_TENSOR_OP_MATH would let cuBLAS use TF32 here.
#include "Common.cuh"

#include <cublas_v2.h>

namespace moeplan::kernels::cuda {

using namespace detail;

namespace {

cudaDataType_t cudaType(DType dtype, const char *kernel) {
  switch (dtype) {
  case DType::F32: return CUDA_R_32F;
  case DType::F16: return CUDA_R_16F;
  case DType::BF16: return CUDA_R_16BF;
  }
  fail(kernel, "unknown dtype " + std::to_string(int(dtype)));
}

void checkBlas(cublasStatus_t status, const char *kernel) {
  if (status != CUBLAS_STATUS_SUCCESS)
    fail(kernel, std::string("cuBLAS: ") + cublasGetStatusString(status));
}

// Binds the handle to the call's stream, with alpha and beta read from the host.
void prepare(cublasHandle_t blas, cudaStream_t stream, const char *kernel) {
  if (!blas) fail(kernel, "no cuBLAS handle");
  checkBlas(cublasSetStream(blas, stream), kernel);
  checkBlas(cublasSetPointerMode(blas, CUBLAS_POINTER_MODE_HOST), kernel);
}

} // namespace

void gemm(cublasHandle_t blas, DType dtype, const void *a, const void *b, void *c, int64_t m,
          int64_t n, int64_t k, bool transposeB, cudaStream_t stream) {
  const char *kernel = "gemm";
  const cudaDataType_t type = cudaType(dtype, kernel);
  checkNonNegative(kernel, "m", m), checkNonNegative(kernel, "n", n);
  checkNonNegative(kernel, "k", k);
  if (m == 0 || n == 0) return;
  if (k == 0) {
    check(cudaMemsetAsync(c, 0, size_t(m) * size_t(n) * size_t(dtypeBytes(dtype)), stream),
          kernel);
    return;
  }
  const int rows = toInt(kernel, "m", m), cols = toInt(kernel, "n", n);
  const int depth = toInt(kernel, "k", k);
  prepare(blas, stream, kernel);
  const float alpha = 1, beta = 0;
  // Column-major: C^T[n, m] = op(B^T)[n, k] A^T[k, m]. Row-major b[k, n] is column-major
  // [n, k] with leading dimension n; row-major b[n, k] (transposeB) is column-major [k, n]
  // with leading dimension k, transposed by cuBLAS.
  checkBlas(cublasGemmEx(blas, transposeB ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, cols, rows,
                         depth, &alpha, b, type, transposeB ? depth : cols, a, type, depth, &beta,
                         c, type, cols, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            kernel);
}

void groupedGemm(cublasHandle_t blas, DType dtype, const void *a, const void *b, void *c,
                 int64_t groups, int64_t m, int64_t n, int64_t k, cudaStream_t stream) {
  const char *kernel = "groupedGemm";
  const cudaDataType_t type = cudaType(dtype, kernel);
  checkNonNegative(kernel, "groups", groups), checkNonNegative(kernel, "m", m);
  checkNonNegative(kernel, "n", n), checkNonNegative(kernel, "k", k);
  if (groups == 0 || m == 0 || n == 0) return;
  if (k == 0) {
    check(cudaMemsetAsync(c, 0,
                          size_t(groups) * size_t(m) * size_t(n) * size_t(dtypeBytes(dtype)),
                          stream),
          kernel);
    return;
  }
  const int batch = toInt(kernel, "groups", groups), rows = toInt(kernel, "m", m);
  const int cols = toInt(kernel, "n", n), depth = toInt(kernel, "k", k);
  prepare(blas, stream, kernel);
  const float alpha = 1, beta = 0;
  // As gemm, group g's operands at g times the matrix sizes (strides in elements).
  checkBlas(cublasGemmStridedBatchedEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, cols, rows, depth, &alpha,
                                       b, type, cols, (long long)(k * n), a, type, depth,
                                       (long long)(m * k), &beta, c, type, cols,
                                       (long long)(m * n), batch, CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT),
            kernel);
}

} // namespace moeplan::kernels::cuda
