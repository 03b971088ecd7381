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

}  // namespace gophermq::broker
