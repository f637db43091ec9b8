#include "daemon/net/http_message.h"

#include "daemon/net/http_wire.h"

namespace mnemo::daemon::net {

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

std::string HttpRequest::path() const { return target.substr(0, target.find('?')); }

}  // namespace mnemo::daemon::net
