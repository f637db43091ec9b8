#pragma once
// OpenAI's error object: {"error":{"message":...,"type":...,"code":...}}.

#include <string>
#include <string_view>

#include "daemon/net/http_message.h"

namespace mnemo::daemon::net {

std::string openai_error_json(std::string_view message, std::string_view type,
                              std::string_view code);

HttpResponse error_response(int status, std::string_view message,
                            std::string_view type = "invalid_request_error",
                            std::string_view code = {});

}  // namespace mnemo::daemon::net
