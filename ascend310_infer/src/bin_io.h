// Reading the input index and raw float32 .bin files, writing embeddings.
#ifndef FACEREC_ASCEND310_INFER_BIN_IO_H_
#define FACEREC_ASCEND310_INFER_BIN_IO_H_

#include <cstddef>
#include <string>
#include <vector>

namespace facerec {

// Names listed in an index file, one per line; surrounding whitespace is trimmed, blank lines and
// lines starting with '#' are skipped. Names must be relative paths without "..". Throws
// std::runtime_error on an unreadable file, a bad name or an empty list.
std::vector<std::string> ReadIndex(const std::string &index_file);

// Reads exactly `count` float32 values from `path` into `dst`. Throws std::runtime_error when the
// file cannot be read or its size is not count * 4 bytes.
void ReadFloats(const std::string &path, size_t count, float *dst);

// Writes `count` float32 values to `path`, creating its parent folders. Throws std::runtime_error.
void WriteFloats(const std::string &path, const float *src, size_t count);

}  // namespace facerec

#endif  // FACEREC_ASCEND310_INFER_BIN_IO_H_
