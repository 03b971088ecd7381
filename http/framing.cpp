#include "http/framing.hpp"

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <cctype>
#include <string>

namespace gophermq::http {
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using bhttp::field;
using bhttp::status;

namespace {

constexpr std::string_view kCrlf = "\r\n";

Refusal framing_refusal(FramingError error) {
  switch (error) {
    case FramingError::obsolete_line_folding:
      return {status::bad_request, "obsolete line folding in a header", std::nullopt};
    case FramingError::bad_transfer_encoding:
      return {status::bad_request, "invalid Transfer-Encoding", std::nullopt};
    case FramingError::unsupported_transfer_coding:
      return {status::not_implemented, "unsupported transfer coding", std::nullopt};
    case FramingError::transfer_encoding_in_http10:
      return {status::bad_request, "Transfer-Encoding in an HTTP/1.0 request", std::nullopt};
    case FramingError::length_with_transfer_encoding:
      return {status::bad_request, "Content-Length with Transfer-Encoding", std::nullopt};
    case FramingError::missing_host:
      return {status::bad_request, "missing Host header", std::nullopt};
    case FramingError::several_hosts:
      return {status::bad_request, "more than one Host header", std::nullopt};
  }
  return {status::bad_request, "malformed HTTP request", std::nullopt};
}

// error_category's destructor is protected and non-virtual by design: categories are static
// objects, never deleted through a base pointer.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class FramingCategory final : public boost::system::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "gophermq.framing"; }
  [[nodiscard]] std::string message(int value) const override {
    return std::string(framing_refusal(static_cast<FramingError>(value)).message);
  }
};
#pragma GCC diagnostic pop

const FramingCategory& framing_category() {
  static const FramingCategory category;
  return category;
}

// A field line that begins with a space or tab continues the previous one (obs-fold). Beast joins
// such lines, so the fold has to be seen in the raw bytes, before the parser takes them. Beast
// consumes only whole field lines and looks past a line's CRLF first, so a fold never straddles
// what it has consumed and what is left. Only the head is searched: a body may hold anything.
bool has_obsolete_fold(std::string_view unparsed, bool head_begun) {
  if (head_begun && unparsed.starts_with(kCrlf)) {
    return false;  // the blank line that ends the head
  }
  const std::size_t head_end = std::min(unparsed.find("\r\n\r\n"), unparsed.size());
  for (std::size_t at = unparsed.find(kCrlf); at < head_end; at = unparsed.find(kCrlf, at + 2)) {
    if (at + 2 < unparsed.size() && (unparsed[at + 2] == ' ' || unparsed[at + 2] == '\t')) {
      return true;
    }
  }
  return false;
}

std::string_view trim(std::string_view text) {
  const std::size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) {
    return {};
  }
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// RFC 9110 §5.6.2: tchar.
bool is_token(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// RFC 9112 §6.1-6.3: only a single, final `chunked` frames a body we can read; Content-Length
// beside it, or any coding in HTTP/1.0, leaves the length to be guessed. §3.2: exactly one Host in
// HTTP/1.1, at most one before.
std::optional<FramingError> check_head(const Request& head) {
  const std::size_t hosts = head.count(field::host);
  if (hosts > 1) {
    return FramingError::several_hosts;
  }
  if (hosts == 0 && head.version() >= 11) {
    return FramingError::missing_host;
  }
  const auto [first, last] = head.equal_range(field::transfer_encoding);
  if (first == last) {
    return std::nullopt;
  }
  if (head.version() < 11) {
    return FramingError::transfer_encoding_in_http10;
  }
  if (head.count(field::content_length) > 0) {
    return FramingError::length_with_transfer_encoding;
  }
  std::size_t codings = 0;
  std::size_t chunked = 0;
  bool chunked_last = false;
  for (auto line = first; line != last; ++line) {
    std::string_view list = line->value();
    while (!list.empty()) {
      const std::size_t comma = std::min(list.find(','), list.size());
      const std::string_view coding = trim(list.substr(0, comma));
      list.remove_prefix(std::min(comma + 1, list.size()));
      if (coding.empty()) {
        continue;  // RFC 9110 §5.6.1: empty list elements are ignored
      }
      if (!is_token(coding)) {
        return FramingError::bad_transfer_encoding;  // parameters included: none is defined
      }
      ++codings;
      chunked_last = beast::iequals(coding, "chunked");
      chunked += chunked_last ? 1 : 0;
    }
  }
  if (!chunked_last || chunked != 1) {
    return FramingError::bad_transfer_encoding;
  }
  if (codings > 1) {
    return FramingError::unsupported_transfer_coding;
  }
  return std::nullopt;
}

// RFC 9112 §3.2.2: a server MUST accept the absolute form (`http://host/path`); it is routed by its
// path. Other schemes keep their target and match no route.
void to_origin_form(Request& head) {
  const std::string_view target = head.target();
  if (target.empty() || target.front() == '/') {
    return;
  }
  const std::size_t scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) {
    return;
  }
  const std::string_view scheme = target.substr(0, scheme_end);
  if (!beast::iequals(scheme, "http") && !beast::iequals(scheme, "https")) {
    return;
  }
  const std::size_t path_start = target.find_first_of("/?", scheme_end + 3);
  const std::string_view rest =
      path_start == std::string_view::npos ? std::string_view{} : target.substr(path_start);
  std::string origin;
  if (!rest.starts_with('/')) {
    origin.push_back('/');
  }
  origin.append(rest);
  head.target(origin);
}

}  // namespace

beast::error_code make_error_code(FramingError error) {
  return {static_cast<int>(error), framing_category()};
}

std::size_t feed(RequestParser& parser, std::string_view input, beast::error_code& error) {
  std::size_t used = 0;
  if (!parser.got_some()) {
    while (input.starts_with(kCrlf)) {
      input.remove_prefix(kCrlf.size());
      used += kCrlf.size();
    }
    if (input.empty() || input == "\r") {
      error = bhttp::error::need_more;
      return used;
    }
  }
  const bool head_was_done = parser.is_header_done();
  if (!head_was_done && has_obsolete_fold(input, parser.got_some())) {
    error = FramingError::obsolete_line_folding;
    return used;
  }
  used += parser.put(boost::asio::buffer(input.data(), input.size()), error);
  if (!head_was_done && parser.is_header_done()) {
    // Checked even when the body already failed: the framing is the first thing wrong.
    if (const auto framing = check_head(parser.get())) {
      error = *framing;
    } else {
      to_origin_form(parser.get());
    }
  }
  return used;
}

std::optional<Refusal> refusal_for(const beast::error_code& error, const Request& head) {
  if (error.category() == framing_category()) {
    return framing_refusal(static_cast<FramingError>(error.value()));
  }
  if (error == bhttp::error::body_limit) {
    return Refusal{status::payload_too_large, "request body too large",
                   metrics::Limit::max_body_bytes};
  }
  if (error == bhttp::error::header_limit) {
    return Refusal{status::request_header_fields_too_large, "request header fields too large",
                   metrics::Limit::max_header_bytes};
  }
  // Beast refuses a Content-Length after a Transfer-Encoding and the reverse itself; the field it
  // refused is not in `head`, the one before it is.
  if (error == bhttp::error::bad_content_length || error == bhttp::error::multiple_content_length) {
    return head.count(field::transfer_encoding) > 0
               ? framing_refusal(FramingError::length_with_transfer_encoding)
               : Refusal{status::bad_request, "invalid Content-Length", std::nullopt};
  }
  if (error == bhttp::error::bad_transfer_encoding) {
    return framing_refusal(head.count(field::content_length) > 0
                               ? FramingError::length_with_transfer_encoding
                               : FramingError::bad_transfer_encoding);
  }
  if (error == bhttp::error::end_of_stream || error == bhttp::error::partial_message) {
    return std::nullopt;
  }
  if (error.category() == make_error_code(bhttp::error::bad_method).category()) {
    return Refusal{status::bad_request, "malformed HTTP request", std::nullopt};
  }
  return std::nullopt;
}

}  // namespace gophermq::http
