// Command-line options of the embedding inference harness.
#ifndef FACEREC_ASCEND310_INFER_OPTIONS_H_
#define FACEREC_ASCEND310_INFER_OPTIONS_H_

#include <cstdint>
#include <string>

namespace facerec {

enum class Device { kCPU, kGPU, kAscend };

// "CPU", "GPU" or "Ascend", as given to --device_type.
const char *DeviceName(Device device);

struct Options {
  std::string model_path;   // Lite MINDIR (tools/to_lite.py output)
  std::string input_dir;    // folder of preprocessed float32 .bin images
  std::string index_file;   // list of input names; default <input_dir>/index.txt
  std::string output_dir;   // one float32 .bin embedding per input is written here
  Device device = Device::kCPU;  // --device_type CPU | GPU | Ascend
  uint32_t device_id = 0;   // GPU / Ascend device
  int thread_num = 2;       // CPU threads
  int batch_size = 1;       // used only when the model's batch dimension is dynamic
  int warmup = 1;           // untimed Predict calls on the first batch before timing
  std::string batch_times_file;  // if set, each batch's Predict time in ms is written here, one per line
};

// Parses --name value / --name=value flags. On error or --help, prints usage to stderr
// and returns false; *exit_code is 0 for --help and 2 for a usage error.
bool ParseOptions(int argc, char **argv, Options *options, int *exit_code);

}  // namespace facerec

#endif  // FACEREC_ASCEND310_INFER_OPTIONS_H_
