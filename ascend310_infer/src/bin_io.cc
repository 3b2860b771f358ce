#include "bin_io.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace facerec {
namespace fs = std::filesystem;

std::vector<std::string> ReadIndex(const std::string &index_file) {
  std::ifstream in(index_file);
  if (!in) {
    throw std::runtime_error("cannot read index file " + index_file);
  }
  std::vector<std::string> names;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') {
      continue;
    }
    const size_t last = line.find_last_not_of(" \t\r");
    const std::string name = line.substr(first, last - first + 1);
    const fs::path path(name);
    bool escapes = path.is_absolute();
    for (const auto &part : path) {
      escapes = escapes || part == "..";
    }
    if (escapes) {
      throw std::runtime_error(index_file + ":" + std::to_string(line_number) + ": '" + name +
                               "' must be a relative path without '..'");
    }
    names.push_back(name);
  }
  if (names.empty()) {
    throw std::runtime_error("index file " + index_file + " lists no inputs");
  }
  return names;
}

void ReadFloats(const std::string &path, size_t count, float *dst) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    throw std::runtime_error("cannot read input " + path);
  }
  const auto size = static_cast<size_t>(in.tellg());
  const size_t expected = count * sizeof(float);
  if (size != expected) {
    throw std::runtime_error("input " + path + " has " + std::to_string(size) + " bytes, the model needs " +
                             std::to_string(expected) + " (" + std::to_string(count) + " float32 values)");
  }
  in.seekg(0);
  if (!in.read(reinterpret_cast<char *>(dst), static_cast<std::streamsize>(expected))) {
    throw std::runtime_error("cannot read input " + path);
  }
}

void WriteFloats(const std::string &path, const float *src, size_t count) {
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent);
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char *>(src), static_cast<std::streamsize>(count * sizeof(float)));
  if (!out) {
    throw std::runtime_error("cannot write output " + path);
  }
}

}  // namespace facerec
