// The API's request bodies, answers and metric lines as the tests write and expect them, built in
// one place so every test spells the wire format the same way.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace gophermq::test {

// `subject` and the other strings go in as they are: tests that need escapes write them escaped.
inline std::string subscribe_body(std::string_view subject) {
  return R"({"subject":")" + std::string(subject) + "\"}";
}

inline std::string publish_body(std::string_view subject, std::string_view data) {
  return R"({"subject":")" + std::string(subject) + R"(","data":")" + std::string(data) + "\"}";
}

// `fields`, when given, is the rest of the object with its leading comma: `,"wait_ms":100`.
inline std::string fetch_body(std::string_view subject, std::string_view id,
                              std::string_view fields = "") {
  return R"({"subject":")" + std::string(subject) + R"(","id":")" + std::string(id) + "\"" +
         std::string(fields) + "}";
}

// The whole answer to a fetch; `data` is the inside of the array: `"a","b"`.
inline std::string fetched(std::string_view subject, std::string_view id, std::string_view data) {
  return "{\"data\":[" + std::string(data) + "],\"id\":\"" + std::string(id) + "\",\"subject\":\"" +
         std::string(subject) + "\"}\n";
}

// The end of a stats answer once `count` fetches wait.
inline std::string waiting_fetches(std::size_t count) {
  return "\"waiting_fetches\":" + std::to_string(count) + "}";
}

// A whole series line with one label, ending in its newline so `... 1` never matches `... 10`.
inline std::string series(std::string_view name, std::string_view label, std::string_view value,
                          int count) {
  return std::string(name) + "{" + std::string(label) + "=\"" + std::string(value) + "\"} " +
         std::to_string(count) + "\n";
}

inline std::string limit_hits(std::string_view key, int count) {
  return series("gophermq_limit_hits_total", "limit", key, count);
}

inline std::string dropped(std::string_view reason, int count) {
  return series("gophermq_dropped_messages_total", "reason", reason, count);
}

inline std::string request_rate(std::string_view method, unsigned code, int count) {
  return "gophermq_client_request_rate{code=\"" + std::to_string(code) + "\",method=\"" +
         std::string(method) + "\"} " + std::to_string(count) + "\n";
}

}  // namespace gophermq::test
