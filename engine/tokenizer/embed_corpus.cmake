# Writes OUTPUT: a C++ source defining bundled_corpus() over the bytes of
# the files in INPUTS (a ;-list), in order. Runs as `cmake -P`.
set(bytes "")
foreach(f IN LISTS INPUTS)
  file(READ "${f}" hex HEX)
  string(APPEND bytes "${hex}")
endforeach()
string(LENGTH "${bytes}" hex_len)
math(EXPR n "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," body "${bytes}")
string(REGEX REPLACE "(('\\\\x[0-9a-f][0-9a-f]',){32})" "\\1\n" body "${body}")
file(WRITE "${OUTPUT}.tmp" "// Generated from engine/tokenizer/corpus by embed_corpus.cmake.\n"
  "#include \"engine/tokenizer/bundled_corpus.h\"\n\n"
  "namespace mnemo::engine {\n\nnamespace {\nconst char kCorpus[] = {\n${body}'\\0'};\n}  // namespace\n\n"
  "std::string_view bundled_corpus() { return std::string_view(kCorpus, ${n}); }\n\n}  // namespace mnemo::engine\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
