#include "http/framing.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/error.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gophermq::http {
namespace {

namespace bhttp = boost::beast::http;

struct Outcome {
  boost::beast::error_code error;  // none when a request was parsed whole
  std::string target;
};

// Feeds `input` in pieces of at most `piece` bytes (the first `first` bytes), as reads from a
// socket deliver it, keeping what the parser left unused, until the request is done or fails.
Outcome parse_in_pieces(std::string_view input, std::size_t piece, std::size_t first = 0) {
  RequestParser parser;
  parser.eager(true);
  std::string buffered;
  boost::beast::error_code error;
  std::size_t used = 0;
  while (!parser.is_done()) {
    if (used == 0 || error == bhttp::error::need_more) {
      if (input.empty()) {
        return {bhttp::error::need_more, {}};
      }
      const std::size_t size = first > 0 ? std::exchange(first, 0) : piece;
      const std::size_t take = std::min(size, input.size());
      buffered.append(input.substr(0, take));
      input.remove_prefix(take);
    }
    error = {};
    used = feed(parser, buffered, error);
    buffered.erase(0, used);
    if (error && error != bhttp::error::need_more) {
      return {error, {}};
    }
  }
  return {{}, std::string(parser.get().target())};
}

const std::vector<std::pair<std::string, FramingError>>& ambiguous() {
  static const std::vector<std::pair<std::string, FramingError>> heads{
      {"POST / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
       FramingError::obsolete_line_folding},
      {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n\tchunked\r\n\r\n0\r\n\r\n",
       FramingError::obsolete_line_folding},
      {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
       FramingError::bad_transfer_encoding},
      {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: , ,\r\n\r\n",
       FramingError::bad_transfer_encoding},
      {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip,chunked\r\n\r\n0\r\n\r\n",
       FramingError::unsupported_transfer_coding},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       FramingError::transfer_encoding_in_http10},
      {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n",
       FramingError::length_with_transfer_encoding},
      {"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", FramingError::several_hosts},
      {"GET / HTTP/1.1\r\nX: y\r\n\r\n", FramingError::missing_host},
  };
  return heads;
}

TEST(Framing, AmbiguousHeadsAreRefusedHoweverTheBytesArrive) {
  for (const auto& [head, expected] : ambiguous()) {
    for (const std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{3}, head.size()}) {
      EXPECT_EQ(parse_in_pieces(head, piece).error, make_error_code(expected))
          << head << " in pieces of " << piece;
    }
  }
}

TEST(Framing, RefusalsCarryTheirStatusAndMessage) {
  const Request none;
  const auto unsupported =
      refusal_for(make_error_code(FramingError::unsupported_transfer_coding), none);
  ASSERT_TRUE(unsupported);
  EXPECT_EQ(unsupported->status, bhttp::status::not_implemented);
  EXPECT_EQ(unsupported->message, "unsupported transfer coding");
  Request chunked;
  chunked.set(bhttp::field::transfer_encoding, "chunked");
  EXPECT_EQ(refusal_for(bhttp::error::bad_content_length, chunked)->message,
            "Content-Length with Transfer-Encoding");
  EXPECT_EQ(refusal_for(bhttp::error::bad_content_length, none)->message, "invalid Content-Length");
  EXPECT_EQ(refusal_for(bhttp::error::multiple_content_length, none)->message,
            "invalid Content-Length");
  EXPECT_FALSE(refusal_for(bhttp::error::partial_message, none));
  EXPECT_FALSE(refusal_for(boost::asio::error::connection_reset, none));
}

TEST(Framing, FoldLikeBytesInABodyAreData) {
  const std::string body = "{\r\n \"subject\":\r\n\t\"s\"}";
  const std::string request =
      "POST /api/subscribe HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  for (std::size_t cut = 1; cut <= request.size(); ++cut) {
    EXPECT_FALSE(parse_in_pieces(request, request.size(), cut).error) << "cut at " << cut;
  }
}

TEST(Framing, EmptyLinesBeforeTheRequestAndAbsoluteTargetsAreAccepted) {
  for (const std::size_t piece : {std::size_t{1}, std::size_t{64}}) {
    const auto parsed = parse_in_pieces(
        "\r\n\r\nGET HTTP://broker:8082/api/stats?limit=1 HTTP/1.1\r\nHost: t\r\n\r\n", piece);
    EXPECT_FALSE(parsed.error);
    EXPECT_EQ(parsed.target, "/api/stats?limit=1");
  }
  EXPECT_EQ(parse_in_pieces("GET http://broker?x HTTP/1.1\r\nHost: t\r\n\r\n", 64).target, "/?x");
  EXPECT_EQ(parse_in_pieces("GET ftp://broker/a HTTP/1.1\r\nHost: t\r\n\r\n", 64).target,
            "ftp://broker/a");
}

}  // namespace
}  // namespace gophermq::http
