#include "options.h"

#include <iostream>
#include <map>
#include <stdexcept>
#include <string>

namespace facerec {
namespace {

const char kUsage[] =
    "usage: face_infer --model_path MODEL.mindir --input_dir DIR --output_dir DIR\n"
    "                  [--index_file FILE] [--device_type CPU|GPU|Ascend] [--device_id N]\n"
    "                  [--thread_num N] [--batch_size N] [--warmup N] [--batch_times FILE]\n"
    "\n"
    "  --model_path   MindSpore Lite MINDIR of the embedding network (input NCHW float32)\n"
    "  --input_dir    folder of preprocessed images, one float32 C*H*W .bin file each\n"
    "  --index_file   one input file name per line, relative to --input_dir\n"
    "                 (default: <input_dir>/index.txt)\n"
    "  --output_dir   where <name>.bin (float32 embedding) is written for each input\n"
    "  --device_type  CPU (default), GPU or Ascend\n"
    "  --device_id    GPU or Ascend device id (default 0)\n"
    "  --thread_num   CPU threads (default 2)\n"
    "  --batch_size   batch used when the model's batch dimension is dynamic (default 1);\n"
    "                 a model with a fixed batch runs at that batch\n"
    "  --warmup       untimed runs of the first batch before timing (default 1)\n"
    "  --batch_times  write each batch's Predict time in ms to FILE, one line per batch\n";

int ToInt(const std::string &name, const std::string &value, int minimum) {
  size_t used = 0;
  int parsed = 0;
  try {
    parsed = std::stoi(value, &used);
  } catch (const std::exception &) {
    used = 0;
  }
  if (used == 0 || used != value.size() || parsed < minimum) {
    throw std::invalid_argument("--" + name + " needs an integer >= " + std::to_string(minimum) + ", got '" +
                                value + "'");
  }
  return parsed;
}

Device ToDevice(const std::string &value) {
  for (Device device : {Device::kCPU, Device::kGPU, Device::kAscend}) {
    if (value == DeviceName(device)) {
      return device;
    }
  }
  throw std::invalid_argument("--device_type must be CPU, GPU or Ascend, got '" + value + "'");
}

}  // namespace

const char *DeviceName(Device device) {
  static constexpr const char *kNames[] = {"CPU", "GPU", "Ascend"};  // in the order of enum Device
  return kNames[static_cast<int>(device)];
}

bool ParseOptions(int argc, char **argv, Options *options, int *exit_code) {
  std::map<std::string, std::string> values;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "-h" || arg == "--help") {
        std::cerr << kUsage;
        *exit_code = 0;
        return false;
      }
      if (arg.rfind("--", 0) != 0) {
        throw std::invalid_argument("unexpected argument '" + arg + "'");
      }
      std::string name = arg.substr(2);
      std::string value;
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        throw std::invalid_argument("--" + name + " needs a value");
      }
      values[name] = value;
    }
    for (const auto &[name, value] : values) {
      if (name == "model_path") {
        options->model_path = value;
      } else if (name == "input_dir") {
        options->input_dir = value;
      } else if (name == "index_file") {
        options->index_file = value;
      } else if (name == "output_dir") {
        options->output_dir = value;
      } else if (name == "device_type") {
        options->device = ToDevice(value);
      } else if (name == "device_id") {
        options->device_id = static_cast<uint32_t>(ToInt(name, value, 0));
      } else if (name == "thread_num") {
        options->thread_num = ToInt(name, value, 1);
      } else if (name == "batch_size") {
        options->batch_size = ToInt(name, value, 1);
      } else if (name == "warmup") {
        options->warmup = ToInt(name, value, 0);
      } else if (name == "batch_times") {
        options->batch_times_file = value;
      } else {
        throw std::invalid_argument("unknown option --" + name);
      }
    }
    if (options->model_path.empty() || options->input_dir.empty() || options->output_dir.empty()) {
      throw std::invalid_argument("--model_path, --input_dir and --output_dir are required");
    }
  } catch (const std::invalid_argument &error) {
    std::cerr << "error: " << error.what() << "\n\n" << kUsage;
    *exit_code = 2;
    return false;
  }
  if (options->index_file.empty()) {
    options->index_file = options->input_dir + "/index.txt";
  }
  return true;
}

}  // namespace facerec
