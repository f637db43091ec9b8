// Chat templates against renderings made with the models' real Jinja
// templates (chat/render_expected.py), plus family selection and the
// custom template format.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/tokenizer/chat_template.h"

namespace mnemo::engine {
namespace {

namespace fs = std::filesystem;
const fs::path kChat = fs::path(MNEMO_SOURCE_DIR) / "tests/engine/tokenizer/chat";

nlohmann::ordered_json read_ordered(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::ordered_json::parse(in);
}

std::vector<ChatMessage> to_messages(const nlohmann::ordered_json& list) {
  std::vector<ChatMessage> out;
  for (const auto& m : list) {
    ChatMessage msg;
    msg.role = m["role"];
    msg.content = m.value("content", "");
    msg.tool_call_id = m.value("tool_call_id", "");
    msg.name = m.value("name", "");
    if (m.contains("tool_calls")) {
      for (const auto& c : m["tool_calls"]) {
        msg.tool_calls.push_back({c["id"], c["function"]["name"], c["function"]["arguments"].dump()});
      }
    }
    out.push_back(std::move(msg));
  }
  return out;
}

struct Case {
  const char* expected_file;
  const char* family;
};

class RealTemplates : public testing::TestWithParam<Case> {};

TEST_P(RealTemplates, RenderExactlyAsJinja) {
  const auto doc = read_ordered(kChat / "scenarios.json");
  const auto expected = read_ordered(kChat / "expected" / (std::string(GetParam().expected_file) + ".json"));
  const auto tmpl = ChatTemplate::builtin(GetParam().family);
  size_t checked = 0;
  for (const auto& sc : doc["scenarios"]) {
    const auto messages = to_messages(sc["messages"]);
    const auto tools = sc["tools"].get<bool>() ? doc["tools"] : nlohmann::ordered_json::array();
    for (bool gen : {true, false}) {
      const std::string key = sc["name"].get<std::string>() + (gen ? "+gen" : "");
      SCOPED_TRACE(key);
      const auto& want = expected.at(key);
      if (want.contains("error")) {
        try {
          tmpl.render(messages, tools, gen);
          ADD_FAILURE() << "expected an error: " << want["error"];
        } catch (const TokenizerError& e) {
          EXPECT_NE(std::string(e.what()).find(want["error"].get<std::string>()), std::string::npos) << e.what();
        }
      } else {
        EXPECT_EQ(tmpl.render(messages, tools, gen), want["text"].get<std::string>());
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 20u);
}

INSTANTIATE_TEST_SUITE_P(Families, RealTemplates,
                         testing::Values(Case{"llama3", "llama3"}, Case{"llama3_1", "llama3.1"},
                                         Case{"qwen2_5", "chatml"}, Case{"mistral_v3", "mistral"}),
                         [](const auto& info) { return std::string(info.param.expected_file); });

class ModelDir : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mnemo_chat_" + std::to_string(::getpid()) + "_" +
                                        testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const char* name, const nlohmann::json& j) { std::ofstream(dir_ / name) << j.dump(); }
  fs::path dir_;
};

TEST_F(ModelDir, PicksFamilyFromTokensAndArchitecture) {
  write("config.json", {{"architectures", {"LlamaForCausalLM"}}});
  write("tokenizer_config.json", {{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"},
                                  {"added_tokens_decoder", {{"128010", {{"content", "<|python_tag|>"}}},
                                                            {"128006", {{"content", "<|start_header_id|>"}}}}}});
  EXPECT_EQ(ChatTemplate::for_model(dir_).family(), "llama3.1");

  write("tokenizer_config.json", {{"bos_token", "<|begin_of_text|>"},
                                  {"chat_template", "{{ '<|start_header_id|>' + m + '<|end_header_id|>' }}"}});
  EXPECT_EQ(ChatTemplate::for_model(dir_).family(), "llama3");

  write("tokenizer_config.json",
        nlohmann::json::parse(R"({"chat_template": [{"name": "default", "template": "[INST] {{ m }} [/INST]"}]})"));
  EXPECT_EQ(ChatTemplate::for_model(dir_).family(), "mistral");

  write("config.json", {{"architectures", {"Qwen2ForCausalLM"}}});
  write("tokenizer_config.json", {{"eos_token", "<|im_end|>"}});
  EXPECT_EQ(ChatTemplate::for_model(dir_).family(), "chatml");

  write("config.json", {{"architectures", {"MistralForCausalLM"}}});
  write("tokenizer_config.json", {{"bos_token", "<s>"}, {"eos_token", "</s>"}});
  const auto mistral = ChatTemplate::for_model(dir_);
  EXPECT_EQ(mistral.family(), "mistral");
  EXPECT_EQ(mistral.stop_tokens(), std::vector<std::string>{"</s>"});
}

TEST_F(ModelDir, Qwen2TemplateKeepsItsDefaultSystemPrompt) {
  std::ifstream in(kChat / "templates" / "qwen2.jinja");
  const std::string qwen2((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write("config.json", {{"architectures", {"Qwen2ForCausalLM"}}});
  write("tokenizer_config.json", {{"chat_template", qwen2}, {"eos_token", "<|im_end|>"}});
  const auto tmpl = ChatTemplate::for_model(dir_);
  EXPECT_EQ(tmpl.family(), "chatml");
  const auto doc = read_ordered(kChat / "scenarios.json");
  const auto expected = read_ordered(kChat / "expected" / "qwen2.json");
  size_t checked = 0;
  for (const auto& sc : doc["scenarios"]) {
    if (sc["tools"].get<bool>()) continue;  // Qwen2's template has no tools
    for (bool gen : {true, false}) {
      const std::string key = sc["name"].get<std::string>() + (gen ? "+gen" : "");
      EXPECT_EQ(tmpl.render(to_messages(sc["messages"]), nlohmann::ordered_json::array(), gen),
                expected.at(key)["text"].get<std::string>()) << key;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 10u);
}

TEST_F(ModelDir, TokenizerJsonMarkersAndUnknownFamily) {
  write("config.json", {{"architectures", {"LlamaForCausalLM"}}});
  write("tokenizer_config.json", {{"bos_token", "<s>"}});
  write("tokenizer.json", {{"added_tokens", {{{"id", 5}, {"content", "<|im_start|>"}}}}});
  EXPECT_EQ(ChatTemplate::for_model(dir_).family(), "chatml");
  write("tokenizer.json", {{"added_tokens", nlohmann::json::array()}});
  try {
    ChatTemplate::for_model(dir_);
    FAIL() << "no error";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("--chat-template"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("LlamaForCausalLM"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ChatTemplate::builtin("vicuna"), TokenizerError);
}

TEST(ChatTemplate, StopTokensAndDate) {
  EXPECT_EQ(ChatTemplate::builtin("chatml").stop_tokens(), (std::vector<std::string>{"<|im_end|>", "<|endoftext|>"}));
  auto llama = ChatTemplate::builtin("llama3.1");
  const std::vector<ChatMessage> msgs = {{"user", "hi", {}, "", ""}};
  auto dated = llama;
  dated.set_date_string("01 Jan 2026");
  EXPECT_NE(dated.render(msgs, nlohmann::ordered_json::array(), true).find("Today Date: 01 Jan 2026\n"), std::string::npos);
  EXPECT_NE(llama.render(msgs, nlohmann::ordered_json::array(), true).find("Today Date: 26 Jul 2024\n"), std::string::npos);
}

TEST(ChatTemplate, CustomFileFormat) {
  const auto spec = nlohmann::json::parse(R"({
    "name": "zephyr",
    "system": {"prefix": "<|system|>\n", "suffix": "</s>\n"},
    "user": {"prefix": "<|user|>\n", "suffix": "</s>\n"},
    "assistant": {"prefix": "<|assistant|>\n", "suffix": "</s>\n"},
    "tool": {"prefix": "<|tool|>\n", "suffix": "</s>\n"},
    "tools": {"prefix": "\nTools:\n", "suffix": ""},
    "tool_call": {"prefix": "<call>", "suffix": "</call>"},
    "stop": ["</s>"]
  })");
  const auto t = ChatTemplate::from_json(spec, "zephyr.json");
  EXPECT_EQ(t.family(), "zephyr");
  EXPECT_EQ(t.stop_tokens(), std::vector<std::string>{"</s>"});
  std::vector<ChatMessage> msgs = {{"user", "Weather?", {}, "", ""},
                                   {"assistant", "", {{"x", "get_weather", R"({"city":"Oslo"})"}}, "", ""},
                                   {"tool", "{\"t\": 3}", {}, "x", "get_weather"}};
  const auto tools = nlohmann::ordered_json::parse(R"([{"type": "function", "function": {"name": "get_weather"}}])");
  EXPECT_EQ(t.render(msgs, tools, true),
            "<|system|>\n\nTools:\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\"}}</s>\n"
            "<|user|>\nWeather?</s>\n"
            "<|assistant|>\n<call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</call></s>\n"
            "<|tool|>\n{\"t\": 3}</s>\n"
            "<|assistant|>\n");
  EXPECT_THROW(ChatTemplate::from_json(nlohmann::json{{"user", {{"prefix", "a"}}}}, "x.json"), TokenizerError);
  EXPECT_THROW(ChatTemplate::from_json(nlohmann::json{{"user", {}}, {"assistant", {}}, {"colour", "red"}}, "x.json"),
               TokenizerError);
  EXPECT_THROW(ChatTemplate::from_file("/nonexistent.json"), TokenizerError);
}

}  // namespace
}  // namespace mnemo::engine
