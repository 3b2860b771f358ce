// MindSpore Lite context for the chosen device.
#ifndef FACEREC_ASCEND310_INFER_LITE_CONTEXT_H_
#define FACEREC_ASCEND310_INFER_LITE_CONTEXT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "include/api/context.h"

namespace facerec {

// A Context with one device: CPUDeviceInfo for "CPU", GPUDeviceInfo for "GPU", AscendDeviceInfo for
// "Ascend" (device_id applies to the last two). thread_num sets the runtime's CPU threads.
std::shared_ptr<mindspore::Context> MakeContext(const std::string &device_type, uint32_t device_id, int thread_num);

}  // namespace facerec

#endif  // FACEREC_ASCEND310_INFER_LITE_CONTEXT_H_
