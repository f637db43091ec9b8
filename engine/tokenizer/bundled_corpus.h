// The training corpus compiled into the library (engine/tokenizer/corpus/
// *.txt, concatenated in file-name order), so generated models need no
// files at run time.
#pragma once

#include <string_view>

namespace mnemo::engine {

std::string_view bundled_corpus();

}  // namespace mnemo::engine
