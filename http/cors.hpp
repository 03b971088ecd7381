#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gophermq::http {

// Which browser origins may call the API (http.cors-origins, API.md §10). Without origins CORS is
// off: no answer carries a CORS header, and OPTIONS is a method like any other the API refuses.
class CorsPolicy {
 public:
  CorsPolicy() = default;
  // Each origin as the browser sends it (scheme://host[:port]), or "*" for any.
  explicit CorsPolicy(std::vector<std::string> origins);

  [[nodiscard]] bool enabled() const noexcept { return !origins_.empty(); }
  // The Access-Control-Allow-Origin value for a request that came with `origin`; nullopt when
  // that origin is not allowed (or there is none), and the answer gets no CORS headers.
  [[nodiscard]] std::optional<std::string> allow_origin(std::string_view origin) const;

 private:
  std::vector<std::string> origins_;
  bool any_ = false;
};

// Whether `origin` is an origin as browsers send it, "*", or neither: config validation.
[[nodiscard]] bool is_valid_cors_origin(std::string_view origin) noexcept;

}  // namespace gophermq::http
