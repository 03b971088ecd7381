#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <optional>
#include <string_view>

#include "http/request_handler.hpp"
#include "metrics/limit_metrics.hpp"

namespace gophermq::http {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Heads Beast's parser accepts but RFC 9112 §6 and §3.2 tell a server to refuse, because a proxy in
// front of it could frame the same bytes differently (request smuggling).
enum class FramingError {
  obsolete_line_folding = 1,
  bad_transfer_encoding,
  unsupported_transfer_coding,
  transfer_encoding_in_http10,
  length_with_transfer_encoding,
  missing_host,
  several_hosts,
};

boost::beast::error_code make_error_code(FramingError error);

// Feeds `input`, the next unread bytes of a connection, to `parser` as the server reads a request:
// empty lines before a request line are skipped (RFC 9112 §2.2), and once the head is complete it
// is checked for ambiguous framing and an absolute-form target is rewritten to its origin form.
// Returns how many bytes were used; `error` is Beast's or a FramingError, need_more included.
std::size_t feed(RequestParser& parser, std::string_view input, boost::beast::error_code& error);

// The answer to a request that is refused: its status and message, and the configured limit the
// request ran into, if any.
struct Refusal {
  boost::beast::http::status status;
  std::string_view message;
  std::optional<metrics::Limit> limit;
};

// What a client gets for a request that could not be read: an answer, after which the connection
// closes, or none for errors that leave nobody to answer (the peer went away, a timeout). `head`
// is whatever of the request's head was parsed.
std::optional<Refusal> refusal_for(const boost::beast::error_code& error, const Request& head);

}  // namespace gophermq::http

template <>
struct boost::system::is_error_code_enum<gophermq::http::FramingError> : std::true_type {};
