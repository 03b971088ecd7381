#pragma once

#include <span>
#include <string_view>

#include "http/request_handler.hpp"

namespace gophermq::http {

// One file of the built-in web console (API.md §10), compiled into the binary from console/ by
// cmake/embed_console.cmake.
struct ConsoleAsset {
  std::string_view path;  // "/" for index.html, "/<file name>" for the others
  std::string_view content_type;
  std::string_view body;
  std::string_view etag;  // strong and quoted, from the file's SHA-256
};

// Every console file; defined in the source generated at build time.
std::span<const ConsoleAsset> console_assets();

// The asset at `path` (without query), or nullptr. Only the table's exact paths match: the console
// never reads a file, so "/../x" or "/%2e%2e/x" is an unknown path like any other.
const ConsoleAsset* find_console_asset(std::string_view path);

// Whether an If-None-Match header value names `etag`: "*", or a comma-separated list of entity
// tags compared weakly (RFC 9110 §13.1.2: "W/" is ignored). A malformed list matches nothing, so
// the client gets the file.
bool etag_matches(std::string_view if_none_match, std::string_view etag);

// The answer to a GET or HEAD of `asset`: the file with its type, ETag and security headers, or
// 304 when If-None-Match names its ETag.
Response console_response(const Request& request, const ConsoleAsset& asset);

}  // namespace gophermq::http
