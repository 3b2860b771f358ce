// oneDNN's dnnl_config.h for the library the project's kernels link: MindSpore 2.10's own libdnnl.so.3 (oneDNN
// 3.10, CPU runtime THREADPOOL, no GPU). Written for this project (the other headers of this folder are oneDNN
// 3.9.1's, unchanged, see ../../../README.md); only what the C and C++ API headers read is defined.
#ifndef ONEAPI_DNNL_DNNL_CONFIG_H
#define ONEAPI_DNNL_DNNL_CONFIG_H

#define DNNL_API
#define DNNL_DEPRECATED __attribute__((deprecated))

#define DNNL_RUNTIME_NONE 0u
#define DNNL_RUNTIME_SEQ 1u
#define DNNL_RUNTIME_OMP 2u
#define DNNL_RUNTIME_TBB 4u
#define DNNL_RUNTIME_THREADPOOL 8u
#define DNNL_RUNTIME_OCL 256u
#define DNNL_RUNTIME_SYCL 512u

#define DNNL_CPU_THREADING_RUNTIME DNNL_RUNTIME_THREADPOOL
#define DNNL_CPU_RUNTIME DNNL_RUNTIME_THREADPOOL
#define DNNL_GPU_RUNTIME DNNL_RUNTIME_NONE

#endif
