#include "lite_context.h"

#include <memory>
#include <stdexcept>
#include <string>

namespace facerec {

std::shared_ptr<mindspore::Context> MakeContext(const std::string &device_type, uint32_t device_id, int thread_num) {
  auto context = std::make_shared<mindspore::Context>();
  context->SetThreadNum(thread_num);
  auto &devices = context->MutableDeviceInfo();
  if (device_type == "CPU") {
    devices.push_back(std::make_shared<mindspore::CPUDeviceInfo>());
  } else if (device_type == "GPU") {
    auto gpu = std::make_shared<mindspore::GPUDeviceInfo>();
    gpu->SetDeviceID(device_id);
    devices.push_back(gpu);
  } else if (device_type == "Ascend") {
    auto ascend = std::make_shared<mindspore::AscendDeviceInfo>();
    ascend->SetDeviceID(device_id);
    devices.push_back(ascend);
  } else {
    throw std::invalid_argument("unknown device type '" + device_type + "'");
  }
  return context;
}

}  // namespace facerec
