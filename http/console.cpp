#include "http/console.hpp"

#include <boost/beast/http/field.hpp>

namespace gophermq::http {
namespace bhttp = boost::beast::http;

namespace {

// The console loads nothing but its own files and talks only to its own origin; it cannot be
// framed, and it sends no Referer to links it shows.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'";
// Stored, but revalidated each time: after an upgrade the browser gets the new console at once,
// and until then a 304 costs a few bytes.
constexpr std::string_view kCacheControl = "no-cache";

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

void skip_spaces(std::string_view& text) {
  while (!text.empty() && is_space(text.front())) {
    text.remove_prefix(1);
  }
}

}  // namespace

const ConsoleAsset* find_console_asset(std::string_view path) {
  for (const ConsoleAsset& asset : console_assets()) {
    if (asset.path == path) {
      return &asset;
    }
  }
  return nullptr;
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  std::string_view rest = if_none_match;
  skip_spaces(rest);
  while (!rest.empty() && is_space(rest.back())) {
    rest.remove_suffix(1);
  }
  if (rest == "*") {
    return true;
  }
  while (true) {
    // Empty list elements are allowed (RFC 9110 §5.6.1).
    while (!rest.empty() && (is_space(rest.front()) || rest.front() == ',')) {
      rest.remove_prefix(1);
    }
    if (rest.empty()) {
      return false;
    }
    if (rest.starts_with("W/")) {
      rest.remove_prefix(2);
    }
    const auto close = rest.starts_with('"') ? rest.find('"', 1) : std::string_view::npos;
    if (close == std::string_view::npos) {
      return false;
    }
    if (rest.substr(0, close + 1) == etag) {
      return true;
    }
    rest.remove_prefix(close + 1);
    skip_spaces(rest);
    if (!rest.empty() && rest.front() != ',') {
      return false;
    }
  }
}

Response console_response(const Request& request, const ConsoleAsset& asset) {
  const bool unchanged = etag_matches(request[bhttp::field::if_none_match], asset.etag);
  Response response{unchanged ? bhttp::status::not_modified : bhttp::status::ok, 11};
  response.set(bhttp::field::etag, asset.etag);
  response.set(bhttp::field::cache_control, kCacheControl);
  if (unchanged) {
    return response;
  }
  response.set(bhttp::field::content_type, asset.content_type);
  response.set("Content-Security-Policy", kContentSecurityPolicy);
  response.set("X-Content-Type-Options", "nosniff");
  response.set(bhttp::field::x_frame_options, "DENY");
  response.set("Referrer-Policy", "no-referrer");
  response.body() = asset.body;
  return response;
}

}  // namespace gophermq::http
