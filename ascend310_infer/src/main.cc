// Embedding inference with the MindSpore Lite C++ API: loads a Lite MINDIR, runs the preprocessed
// images listed in an index file in batches of the model's batch size and writes one float32
// embedding file per image, then prints a timing summary. See ../README.md for the file layout.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "bin_io.h"
#include "include/api/model.h"
#include "include/api/status.h"
#include "include/api/types.h"
#include "lite_context.h"
#include "options.h"

namespace facerec {
namespace {

using Clock = std::chrono::steady_clock;

void Check(const mindspore::Status &status, const std::string &what) {
  if (status != mindspore::kSuccess) {
    throw std::runtime_error(what + " failed: " + status.ToString());
  }
}

std::string ShapeString(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return text + "]";
}

// The single float32 NCHW input of the model; only its batch dimension may be dynamic (<= 0).
mindspore::MSTensor SingleImageInput(mindspore::Model *model) {
  std::vector<mindspore::MSTensor> inputs = model->GetInputs();
  if (inputs.size() != 1) {
    throw std::runtime_error("the model has " + std::to_string(inputs.size()) + " inputs, expected 1 (images)");
  }
  const mindspore::MSTensor &input = inputs[0];
  const std::vector<int64_t> &shape = input.Shape();
  if (input.DataType() != mindspore::DataType::kNumberTypeFloat32) {
    throw std::runtime_error("the model input " + input.Name() + " is not float32");
  }
  if (shape.size() != 4 || shape[1] <= 0 || shape[2] <= 0 || shape[3] <= 0) {
    throw std::runtime_error("the model input " + input.Name() + " has shape " + ShapeString(shape) +
                             ", expected N x C x H x W with fixed C, H, W");
  }
  return input;
}

// One line per batch: its Predict time in milliseconds.
void WriteBatchTimes(const std::string &path, const std::vector<double> &batch_seconds) {
  std::ofstream out(path, std::ios::trunc);
  out << std::fixed << std::setprecision(3);
  for (double seconds : batch_seconds) {
    out << seconds * 1000.0 << "\n";
  }
  if (!out) {
    throw std::runtime_error("cannot write " + path);
  }
}

void ResizeBatch(mindspore::Model *model, const std::vector<int64_t> &image_shape, int64_t batch) {
  std::vector<int64_t> dims = image_shape;
  dims[0] = batch;
  Check(model->Resize(model->GetInputs(), {dims}), "Resize to " + ShapeString(dims));
}

int Run(const Options &options) {
  const std::vector<std::string> names = ReadIndex(options.index_file);

  mindspore::Model model;
  Check(model.Build(options.model_path, mindspore::kMindIR,
                    MakeContext(options.device, options.device_id, options.thread_num)),
        "Build of " + options.model_path + " on " + DeviceName(options.device));

  const std::vector<int64_t> shape = SingleImageInput(&model).Shape();
  const size_t image_elements = static_cast<size_t>(shape[1] * shape[2] * shape[3]);
  const bool dynamic_batch = shape[0] <= 0;
  const int64_t batch = dynamic_batch ? options.batch_size : shape[0];
  int64_t current_batch = batch;
  if (dynamic_batch) {
    ResizeBatch(&model, shape, batch);
  }
  std::cerr << "model " << options.model_path << ": input " << ShapeString(shape)
            << (dynamic_batch ? " (dynamic batch)" : "") << ", batch " << batch << ", " << names.size()
            << " images on " << DeviceName(options.device) << "\n";

  const auto start_time = Clock::now();
  std::vector<double> batch_seconds;
  size_t embedding_size = 0;
  for (size_t first = 0; first < names.size();) {
    const auto count = static_cast<int64_t>(std::min<size_t>(static_cast<size_t>(batch), names.size() - first));
    // A dynamic-batch model is resized to the last, smaller batch; a fixed-batch model gets it padded.
    if (dynamic_batch && count != current_batch) {
      ResizeBatch(&model, shape, count);
      current_batch = count;
    }
    std::vector<mindspore::MSTensor> inputs = model.GetInputs();
    auto *data = static_cast<float *>(inputs[0].MutableData());
    const size_t batch_elements = static_cast<size_t>(current_batch) * image_elements;
    if (data == nullptr || inputs[0].DataSize() != batch_elements * sizeof(float)) {
      throw std::runtime_error("the model input buffer does not hold " + std::to_string(current_batch) + " images");
    }
    for (int64_t i = 0; i < count; ++i) {
      ReadFloats(options.input_dir + "/" + names[first + static_cast<size_t>(i)], image_elements,
                 data + static_cast<size_t>(i) * image_elements);
    }
    std::fill(data + static_cast<size_t>(count) * image_elements, data + batch_elements, 0.0f);

    std::vector<mindspore::MSTensor> outputs;
    if (batch_seconds.empty()) {
      for (int i = 0; i < options.warmup; ++i) {
        Check(model.Predict(inputs, &outputs), "warm-up Predict");
      }
    }
    const auto predict_start = Clock::now();
    Check(model.Predict(inputs, &outputs), "Predict");
    batch_seconds.push_back(std::chrono::duration<double>(Clock::now() - predict_start).count());

    if (outputs.size() != 1 || outputs[0].DataType() != mindspore::DataType::kNumberTypeFloat32 ||
        outputs[0].ElementNum() % current_batch != 0) {
      throw std::runtime_error("expected one float32 output with " + std::to_string(current_batch) +
                               " rows, got " + std::to_string(outputs.size()) + " outputs");
    }
    embedding_size = static_cast<size_t>(outputs[0].ElementNum() / current_batch);
    const std::shared_ptr<const void> output_data = outputs[0].Data();
    const auto *embeddings = static_cast<const float *>(output_data.get());
    for (int64_t i = 0; i < count; ++i) {
      const std::string &name = names[first + static_cast<size_t>(i)];
      WriteFloats(options.output_dir + "/" + name, embeddings + static_cast<size_t>(i) * embedding_size,
                  embedding_size);
    }
    first += static_cast<size_t>(count);
  }
  const double total_seconds = std::chrono::duration<double>(Clock::now() - start_time).count();
  const double predict_seconds = std::accumulate(batch_seconds.begin(), batch_seconds.end(), 0.0);
  if (!options.batch_times_file.empty()) {
    WriteBatchTimes(options.batch_times_file, batch_seconds);
  }

  const double images = static_cast<double>(names.size());
  std::cout << std::fixed << std::setprecision(1) << "Summary: " << names.size() << " images, embedding "
            << embedding_size << ", batch " << batch << ", " << batch_seconds.size() << " batches, predict "
            << predict_seconds * 1000.0 << " ms, " << images / predict_seconds << " images/s"
            << " (with file I/O " << images / total_seconds << " images/s)" << std::endl;
  return 0;
}

}  // namespace
}  // namespace facerec

int main(int argc, char **argv) {
  facerec::Options options;
  int exit_code = 0;
  if (!facerec::ParseOptions(argc, argv, &options, &exit_code)) {
    return exit_code;
  }
  try {
    return facerec::Run(options);
  } catch (const std::exception &error) {
    std::cerr << "error: " << error.what() << std::endl;
    return 1;
  }
}
