#pragma once
// The chat-completions fields beside the conversation and its tools, into
// the request parse_chat_completion builds. Each throws BadRequest naming
// the field.
#include "daemon/app/chat_completions.h"

namespace mnemo::daemon::app {

// OpenAI's frequency_penalty, presence_penalty, logit_bias, logprobs and
// top_logprobs, range-checked. Token ids are checked against the
// vocabulary later (Responder::start), where it is known.
void parse_token_sampling(const protocol::Json& body, TokenSampling& out);

// The legacy `functions` / `function_call`: tools and tool_choice by their
// old names, checked as those are (parse_tools). Sets legacy_functions.
void parse_legacy_functions(const protocol::Json& body, ChatCompletionRequest& r);

}  // namespace mnemo::daemon::app
