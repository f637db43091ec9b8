// Llama 3 and Llama 3.1 renderers, following Meta's published templates
// (Meta-Llama-3-8B-Instruct and Llama-3.1-8B-Instruct tokenizer_config.json).
#include "engine/tokenizer/chat_render.h"
#include "engine/tokenizer/python_json.h"

namespace mnemo::engine::chat {

namespace {

constexpr const char* kBos = "<|begin_of_text|>";
constexpr const char* kEot = "<|eot_id|>";

std::string header(std::string_view role) {
  return "<|start_header_id|>" + std::string(role) + "<|end_header_id|>\n\n";
}

}  // namespace

std::string render_llama3(const RenderInput& in) {
  std::string out;
  for (size_t i = 0; i < in.messages.size(); ++i) {
    if (i == 0) out += kBos;
    out += header(in.messages[i].role) + trim(in.messages[i].content) + kEot;
  }
  if (in.add_generation_prompt) out += header("assistant");
  return out;
}

std::string render_llama3_1(const RenderInput& in) {
  auto messages = in.messages;
  const bool tools = !in.tools.empty();
  std::string system_message;
  if (!messages.empty() && messages[0].role == "system") {
    system_message = trim(messages[0].content);
    messages = messages.subspan(1);
  }
  std::string out = kBos;
  out += header("system");
  if (tools) out += "Environment: ipython\n";
  out += "Cutting Knowledge Date: December 2023\n";
  out += "Today Date: " + std::string(in.date_string) + "\n\n";
  out += system_message + kEot;
  if (tools) {
    if (messages.empty())
      throw TokenizerError("llama3.1 chat template: Cannot put tools in the first user message when there's no first user message!");
    const std::string first_user_message = trim(messages[0].content);
    messages = messages.subspan(1);
    out += header("user");
    out += "Given the following functions, please respond with a JSON for a function call ";
    out += "with its proper arguments that best answers the given prompt.\n\n";
    out += R"(Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.)";
    out += "Do not use variables.\n\n";
    for (const auto& t : in.tools) out += python_json_dumps(t, 4) + "\n\n";
    out += first_user_message + kEot;
  }
  for (const auto& m : messages) {
    const bool tool_turn = m.role == "tool" || m.role == "ipython";
    if (!tool_turn && m.tool_calls.empty()) {
      out += header(m.role) + trim(m.content) + kEot;
    } else if (!m.tool_calls.empty()) {
      if (m.tool_calls.size() != 1)
        throw TokenizerError("llama3.1 chat template: This model only supports single tool-calls at once!");
      const ToolCall& call = m.tool_calls[0];
      out += header("assistant");
      out += R"({"name": ")" + call.name + R"(", )";
      out += R"("parameters": )" + python_json_dumps(arguments_value(call.arguments)) + "}";
      out += kEot;
    } else {
      // The template tests `content is iterable`, which holds for strings,
      // so tool output is always written as a JSON string literal.
      out += header("ipython") + python_json_dumps(nlohmann::ordered_json(m.content)) + kEot;
    }
  }
  if (in.add_generation_prompt) out += header("assistant");
  return out;
}

}  // namespace mnemo::engine::chat
