// MindSpore Lite context for the chosen device.
#ifndef FACEREC_ASCEND310_INFER_LITE_CONTEXT_H_
#define FACEREC_ASCEND310_INFER_LITE_CONTEXT_H_

#include <cstdint>
#include <memory>

#include "include/api/context.h"
#include "options.h"

namespace facerec {

// A Context with one device: CPUDeviceInfo, GPUDeviceInfo or AscendDeviceInfo (device_id applies to the
// last two). thread_num sets the runtime's CPU threads.
std::shared_ptr<mindspore::Context> MakeContext(Device device, uint32_t device_id, int thread_num);

}  // namespace facerec

#endif  // FACEREC_ASCEND310_INFER_LITE_CONTEXT_H_
