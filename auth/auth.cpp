#include "auth/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "broker/subject.hpp"

namespace gophermq::auth {

namespace {

constexpr std::size_t kMaxPatternLength = 256;
constexpr std::size_t kMaxNameLength = 64;

// The first `.`-separated token of `rest`, removed from it; `rest` is empty after the last one.
std::string_view next_token(std::string_view& rest) noexcept {
  const std::size_t dot = rest.find('.');
  const std::string_view token = rest.substr(0, dot);
  rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
  return token;
}

std::optional<Digest> parse_hex(std::string_view hex) noexcept {
  Digest digest{};
  if (hex.size() != digest.size() * 2) {
    return std::nullopt;
  }
  for (std::size_t i = 0; i < digest.size(); ++i) {
    const char* first = hex.data() + 2 * i;
    const auto [end, error] = std::from_chars(first, first + 2, digest[i], 16);
    if (error != std::errc() || end != first + 2) {
      return std::nullopt;
    }
  }
  return digest;
}

std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (true) {
    start = line.find_first_not_of(" \t\r", start);
    if (start == std::string_view::npos) {
      return fields;
    }
    const std::size_t end = std::min(line.find_first_of(" \t\r", start), line.size());
    fields.push_back(line.substr(start, end - start));
    start = end;
  }
}

[[noreturn]] void fail(std::size_t line, const std::string& what) {
  throw FileError("line " + std::to_string(line) + ": " + what);
}

// What a line of the file says about a field: its bytes as they are, unless they would break
// the one-line message (control bytes), then escaped.
std::string quoted(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : text.substr(0, 80)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f || c == '"' || c == '\\') {
      out.append("\\x").push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  return out + (text.size() > 80 ? "...\"" : "\"");
}

}  // namespace

bool contains(std::string_view outer, std::string_view inner) noexcept {
  while (!outer.empty() && !inner.empty()) {
    const std::string_view wide = next_token(outer);
    const std::string_view narrow = next_token(inner);
    if (wide == broker::kTrailingWildcard) {
      // `>` matches one token or more, and every token of a pattern matches at least one.
      return true;
    }
    if (narrow == broker::kTrailingWildcard) {
      return false;  // inner goes on for any length, outer for a fixed one
    }
    if (wide != broker::kSingleTokenWildcard && wide != narrow) {
      return false;  // a literal contains only itself, never `*`
    }
  }
  return outer.empty() && inner.empty();
}

bool is_valid_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= kMaxNameLength && std::ranges::all_of(name, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

std::optional<Permission> parse_permission(std::string_view text) {
  if (text == "admin") {
    return Permission{Permission::Kind::admin, {}};
  }
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view kind = text.substr(0, colon);
  const std::string_view pattern = text.substr(colon + 1);
  if ((kind != "pub" && kind != "sub") ||
      !broker::is_valid_subject(pattern, broker::SubjectUse::subscribe, kMaxPatternLength)) {
    return std::nullopt;
  }
  return Permission{kind == "pub" ? Permission::Kind::publish : Permission::Kind::subscribe,
                    std::string(pattern)};
}

Digest sha256(std::string_view bytes) {
  Digest digest{};
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1 ||
      size != digest.size()) {
    throw std::runtime_error("SHA-256 failed");
  }
  return digest;
}

bool Principal::may_publish(std::string_view subject) const noexcept {
  return admin || std::ranges::any_of(publish, [subject](const std::string& pattern) {
           return contains(pattern, subject);
         });
}

bool Principal::may_subscribe(std::string_view pattern) const noexcept {
  return admin || std::ranges::any_of(subscribe, [pattern](const std::string& allowed) {
           return contains(allowed, pattern);
         });
}

Table Table::parse(std::string_view text) {
  Table table;
  std::size_t number = 0;
  while (!text.empty() || number == 0) {
    ++number;
    const std::size_t newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    const std::vector<std::string_view> fields = fields_of(line);
    if (fields.empty() || fields.front().starts_with('#')) {
      continue;
    }
    if (line.find('\0') != std::string_view::npos) {
      fail(number, "NUL byte");
    }
    if (!is_valid_name(fields[0])) {
      fail(number, "invalid name " + quoted(fields[0]) + " (1 to 64 of A-Z a-z 0-9 _ - .)");
    }
    if (fields.size() < 2) {
      fail(number, "no SHA-256 after the name");
    }
    const auto digest = parse_hex(fields[1]);
    if (!digest) {
      // The field is not repeated: it may be a token pasted in the wrong place.
      fail(number, "bad hex: the SHA-256 of the token must be 64 hex digits (got " +
                       std::to_string(fields[1].size()) + " characters)");
    }
    Entry entry{*digest, Principal{std::string(fields[0]), {}, {}, false}};
    for (std::size_t i = 2; i < fields.size(); ++i) {
      const auto permission = parse_permission(fields[i]);
      if (!permission) {
        const std::size_t colon = fields[i].find(':');
        const std::string_view kind = fields[i].substr(0, colon);
        fail(number, colon != std::string_view::npos && (kind == "pub" || kind == "sub")
                         ? "invalid pattern in " + quoted(fields[i])
                         : "unknown permission " + quoted(fields[i]) +
                               " (pub:PATTERN, sub:PATTERN or admin)");
      }
      switch (permission->kind) {
        case Permission::Kind::admin:
          entry.principal.admin = true;
          break;
        case Permission::Kind::publish:
          entry.principal.publish.push_back(permission->pattern);
          break;
        case Permission::Kind::subscribe:
          entry.principal.subscribe.push_back(permission->pattern);
          break;
      }
    }
    for (const Entry& other : table.entries_) {
      if (other.principal.name == entry.principal.name) {
        fail(number, "duplicate name " + quoted(entry.principal.name));
      }
      if (other.digest == entry.digest) {
        fail(number, "duplicate SHA-256 (also the token of " + quoted(other.principal.name) + ")");
      }
    }
    table.entries_.push_back(std::move(entry));
  }
  return table;
}

const Principal* Table::find(std::string_view token) const noexcept {
  Digest digest{};
  unsigned int size = 0;
  if (EVP_Digest(token.data(), token.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) {
    return nullptr;
  }
  return find_digest(digest);
}

const Principal* Table::find_digest(const Digest& digest) const noexcept {
  // Every entry is compared, and the match is picked without a branch on its result.
  std::uintptr_t found = 0;
  for (const Entry& entry : entries_) {
    const auto equal = static_cast<std::uintptr_t>(
        CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0);
    found |= (std::uintptr_t{0} - equal) & reinterpret_cast<std::uintptr_t>(&entry.principal);
  }
  return reinterpret_cast<const Principal*>(found);
}

bool is_token_of(const Digest& digest, std::string_view token) {
  const Digest presented = sha256(token);
  return CRYPTO_memcmp(digest.data(), presented.data(), digest.size()) == 0;
}

std::string mint_token() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::array<unsigned char, 33> bytes{};  // 32 random bytes, padded to whole 3-byte groups
  if (RAND_bytes(bytes.data(), 32) != 1) {
    throw std::runtime_error("the random generator failed");
  }
  std::string token;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const unsigned group =
        (unsigned{bytes[i]} << 16U) | (unsigned{bytes[i + 1]} << 8U) | unsigned{bytes[i + 2]};
    for (unsigned shift = 18;; shift -= 6) {
      token.push_back(kAlphabet[(group >> shift) & 0x3FU]);
      if (shift == 0) {
        break;
      }
    }
  }
  token.resize(43);  // 256 bits in 6-bit characters
  return token;
}

std::string to_hex(const Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (const unsigned char byte : digest) {
    hex.push_back(kHex[byte >> 4U]);
    hex.push_back(kHex[byte & 0xFU]);
  }
  return hex;
}

}  // namespace gophermq::auth
