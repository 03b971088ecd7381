#include "broker/subject.hpp"

namespace gophermq::broker {
namespace {

bool has_forbidden_character(std::string_view text) noexcept {
  return text.find_first_of(" \t\r\n") != std::string_view::npos;
}

bool is_wildcard(std::string_view token) noexcept {
  return token == kSingleTokenWildcard || token == kTrailingWildcard;
}

}  // namespace

bool is_valid_subject(std::string_view subject, SubjectUse use, std::size_t max_length) noexcept {
  if (subject.empty() || subject.size() > max_length || has_forbidden_character(subject)) {
    return false;
  }
  bool valid = true;
  bool after_trailing_wildcard = false;
  for_each_token(subject, [&](std::string_view token) {
    if (token.empty() || after_trailing_wildcard) {
      valid = false;
    } else if (is_wildcard(token)) {
      valid = valid && use == SubjectUse::subscribe;
      after_trailing_wildcard = token == kTrailingWildcard;
    }
  });
  return valid;
}

bool is_valid_group(std::string_view group, std::size_t max_length) noexcept {
  return !group.empty() && group.size() <= max_length && !has_forbidden_character(group) &&
         group.find('.') == std::string_view::npos && !is_wildcard(group);
}

bool pattern_within(std::string_view inner, std::string_view outer) noexcept {
  while (true) {
    const std::size_t inner_dot = inner.find('.');
    const std::size_t outer_dot = outer.find('.');
    const std::string_view inner_token = inner.substr(0, inner_dot);
    const std::string_view outer_token = outer.substr(0, outer_dot);
    if (outer_token == kTrailingWildcard) {
      return true;  // `inner` has at least this token left, and `>` takes one or more
    }
    if (inner_token == kTrailingWildcard ||
        (outer_token != kSingleTokenWildcard && inner_token != outer_token)) {
      return false;  // `inner` matches a subject `outer` does not, or none `outer` does
    }
    if (inner_dot == std::string_view::npos || outer_dot == std::string_view::npos) {
      return inner_dot == outer_dot;
    }
    inner.remove_prefix(inner_dot + 1);
    outer.remove_prefix(outer_dot + 1);
  }
}

}  // namespace gophermq::broker
