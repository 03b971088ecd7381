#include "http/cors.hpp"

#include <algorithm>
#include <utility>

namespace gophermq::http {

CorsPolicy::CorsPolicy(std::vector<std::string> origins)
    : origins_(std::move(origins)),
      any_(std::ranges::find(origins_, std::string_view("*")) != origins_.end()) {}

std::optional<std::string> CorsPolicy::allow_origin(std::string_view origin) const {
  if (origin.empty() || !enabled()) {
    return std::nullopt;
  }
  if (any_) {
    return std::string("*");
  }
  // Browsers send the origin's scheme and host in lower case, as the config is compared.
  if (std::ranges::find(origins_, origin) == origins_.end()) {
    return std::nullopt;
  }
  return std::string(origin);
}

bool is_valid_cors_origin(std::string_view origin) noexcept {
  if (origin == "*") {
    return true;
  }
  const auto separator = origin.find("://");
  if (separator == std::string_view::npos || separator == 0) {
    return false;
  }
  const std::string_view scheme = origin.substr(0, separator);
  const std::string_view host = origin.substr(separator + 3);
  const auto scheme_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
  };
  // An origin has no path, query, user or whitespace, and is lower case as browsers send it.
  const auto host_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == ':' ||
           c == '[' || c == ']' || c == '_';
  };
  return std::ranges::all_of(scheme, scheme_char) && !host.empty() &&
         std::ranges::all_of(host, host_char);
}

}  // namespace gophermq::http
