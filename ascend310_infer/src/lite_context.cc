#include "lite_context.h"

#include <memory>

namespace facerec {

std::shared_ptr<mindspore::Context> MakeContext(Device device, uint32_t device_id, int thread_num) {
  auto context = std::make_shared<mindspore::Context>();
  context->SetThreadNum(thread_num);
  auto &devices = context->MutableDeviceInfo();
  switch (device) {
    case Device::kCPU:
      devices.push_back(std::make_shared<mindspore::CPUDeviceInfo>());
      break;
    case Device::kGPU: {
      auto gpu = std::make_shared<mindspore::GPUDeviceInfo>();
      gpu->SetDeviceID(device_id);
      devices.push_back(gpu);
      break;
    }
    case Device::kAscend: {
      auto ascend = std::make_shared<mindspore::AscendDeviceInfo>();
      ascend->SetDeviceID(device_id);
      devices.push_back(ascend);
      break;
    }
  }
  return context;
}

}  // namespace facerec
