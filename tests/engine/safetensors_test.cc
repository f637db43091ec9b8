#include "engine/model/safetensors.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/model/model_error.h"

namespace mnemo::engine {
namespace {

std::vector<uint8_t> file_with(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> f(8 + header.size() + data_bytes, 0);
  for (int i = 0; i < 8; ++i) f[size_t(i)] = uint8_t(uint64_t(header.size()) >> (8 * i));
  for (size_t i = 0; i < header.size(); ++i) f[8 + i] = uint8_t(header[i]);
  return f;
}

std::string error_of(const std::vector<uint8_t>& f, uint64_t size) {
  try {
    parse_safetensors_header(f, size, "w.safetensors");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

std::string error_of(const std::vector<uint8_t>& f) { return error_of(f, f.size()); }

TEST(Safetensors, ParsesTensorsAndMetadata) {
  const auto f = file_with(R"({"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},)"
                           R"("b":{"dtype":"F32","shape":[3],"data_offsets":[12,24]}})", 24);
  const auto h = parse_safetensors_header(f, f.size(), "w.safetensors");
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.tensors[0].name, "a");
  EXPECT_EQ(h.tensors[0].dtype, kernels::DType::BF16);
  EXPECT_EQ(h.tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.tensors[1].begin, 12u);
  EXPECT_EQ(h.data_offset, f.size() - 24);
}

TEST(Safetensors, RejectsMalformedHeadersWithNamedTensor) {
  EXPECT_NE(error_of({1, 2, 3}).find("truncated"), std::string::npos);
  auto f = file_with(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 16);
  EXPECT_NE(error_of(f, 20).find("truncated"), std::string::npos);  // file shorter than the header says
  EXPECT_NE(error_of(f, f.size() - 1).find("tensor 'a'"), std::string::npos);  // data cut short
  EXPECT_NE(error_of(file_with("{nope", 0)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(file_with(R"({"a":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}})", 4))
                .find("tensor 'a': unsupported dtype 'I8'"),
            std::string::npos);
  EXPECT_NE(error_of(file_with(R"({"a":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}})", 16))
                .find("need 20"),
            std::string::npos);
  EXPECT_NE(error_of(file_with(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,16]}})", 16)).find("tensor 'a'"),
            std::string::npos);
  EXPECT_NE(error_of(file_with(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", 16)).find("end before begin"),
            std::string::npos);
  EXPECT_NE(error_of(file_with(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                               R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 24))
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(error_of(file_with(R"({"a":{"dtype":"F32","data_offsets":[0,16]}})", 16)).find("shape"), std::string::npos);
  // An empty tensor between two overlapping ones must not hide the overlap
  // (found by the fuzz harness).
  EXPECT_NE(error_of(file_with(R"({"a":{"dtype":"F32","shape":[25],"data_offsets":[0,100]},)"
                               R"("b":{"dtype":"F32","shape":[0],"data_offsets":[10,10]},)"
                               R"("c":{"dtype":"F32","shape":[10],"data_offsets":[50,90]}})", 100))
                .find("overlap"),
            std::string::npos);
  // A length prefix claiming a huge header must not allocate or read past the end.
  std::vector<uint8_t> huge(16, 0xff);
  EXPECT_NE(error_of(huge).find("implausibly large"), std::string::npos);
}

}  // namespace
}  // namespace mnemo::engine
