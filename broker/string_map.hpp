#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace gophermq::broker {

// Heterogeneous lookup so that a request's std::string_view finds a key without building a string.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept {
    return std::hash<std::string_view>{}(text);
  }
};

template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

}  // namespace gophermq::broker
