#pragma once

#include <cstddef>
#include <string_view>

namespace gophermq::broker {

// Publishing names one concrete subject; subscribing may name a pattern with the wildcard tokens
// `*` (exactly one token) and `>` (one or more trailing tokens).
enum class SubjectUse { publish, subscribe };

inline constexpr std::string_view kSingleTokenWildcard = "*";
inline constexpr std::string_view kTrailingWildcard = ">";

[[nodiscard]] bool is_valid_subject(std::string_view subject, SubjectUse use,
                                    std::size_t max_length) noexcept;

// A queue group name is a single literal token.
[[nodiscard]] bool is_valid_group(std::string_view group, std::size_t max_length) noexcept;

// Whether every subject `inner` matches is also matched by `outer`; both valid subscribe patterns
// (a literal subject is a pattern that matches itself, so this is also whether `outer` matches it).
[[nodiscard]] bool pattern_within(std::string_view inner, std::string_view outer) noexcept;

// Calls visit(token) for each `.`-separated token, in order.
template <typename Visitor>
void for_each_token(std::string_view subject, Visitor&& visit) {
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = subject.find('.', start);
    if (dot == std::string_view::npos) {
      visit(subject.substr(start));
      return;
    }
    visit(subject.substr(start, dot - start));
    start = dot + 1;
  }
}

}  // namespace gophermq::broker
