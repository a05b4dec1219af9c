// A kernel whose answer is checked on the host side: proves the container really drove the GPU.
#include <cstdio>
#include <cuda_runtime.h>

__global__ void add(const int *a, const int *b, int *c, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + b[i];
}

#define CHECK(call)                                                              \
    do {                                                                         \
        cudaError_t err = (call);                                                \
        if (err != cudaSuccess) {                                                \
            printf("vecadd FAILED: %s: %s\n", #call, cudaGetErrorString(err));   \
            return 1;                                                            \
        }                                                                        \
    } while (0)

int main() {
    const int n = 1 << 20;
    static int a[1 << 20], b[1 << 20], c[1 << 20];
    for (int i = 0; i < n; i++) { a[i] = i; b[i] = 2 * i; }
    int *da, *db, *dc;
    CHECK(cudaMalloc(&da, n * sizeof(int)));
    CHECK(cudaMalloc(&db, n * sizeof(int)));
    CHECK(cudaMalloc(&dc, n * sizeof(int)));
    CHECK(cudaMemcpy(da, a, n * sizeof(int), cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(db, b, n * sizeof(int), cudaMemcpyHostToDevice));
    add<<<(n + 255) / 256, 256>>>(da, db, dc, n);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(c, dc, n * sizeof(int), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) {
        if (c[i] != 3 * i) { printf("vecadd FAILED: c[%d]=%d, want %d\n", i, c[i], 3 * i); return 1; }
    }
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("vecadd OK n=%d on %s\n", n, prop.name);
    return 0;
}
