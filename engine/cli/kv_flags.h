#pragma once
// --kv-dtype, shared by the commands that run the engine.
#include <string>

#include "kernels/kv_dtype.h"

namespace mnemo::cli {

class Flags;

// Declares --kv-dtype with `dflt` as its default ("bf16" or "f32").
void add_kv_dtype_flag(Flags& f, const std::string& dflt, const std::string& extra_help = "");
// The parsed --kv-dtype; `fallback` when the flag has no value. Throws UsageError for anything but bf16 or f32.
kernels::KvDType kv_dtype(const Flags& f, kernels::KvDType fallback = kernels::KvDType::BF16);

}  // namespace mnemo::cli
