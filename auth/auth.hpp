#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gophermq::auth {

// Whether every subject `inner` can match is matched by `outer` (API.md §11), for two valid
// patterns (§2). A plain subject is a pattern that matches itself only, so a publish permission
// is the same question asked of a subject: `orders.>` contains `orders.*`, `orders.eu.>` and
// `orders.eu`; `orders.*` does not contain `orders.>`.
[[nodiscard]] bool contains(std::string_view outer, std::string_view inner) noexcept;

// A token's name: 1 to 64 of A-Z a-z 0-9 _ - . (it is logged and journaled as the owner of the
// subscriptions the token makes).
[[nodiscard]] bool is_valid_name(std::string_view name) noexcept;

// One PERMISSION of an auth.file line; nullopt when it is none: `pub:PATTERN`, `sub:PATTERN`
// (PATTERN valid per §2 with wildcards, at most 256 bytes) or `admin`.
struct Permission {
  enum class Kind { publish, subscribe, admin } kind = Kind::admin;
  std::string pattern;  // empty for admin
};
[[nodiscard]] std::optional<Permission> parse_permission(std::string_view text);

using Digest = std::array<unsigned char, 32>;
[[nodiscard]] Digest sha256(std::string_view bytes);

// Who presented a token, and what it may do.
struct Principal {
  std::string name;
  std::vector<std::string> publish;    // patterns
  std::vector<std::string> subscribe;  // patterns
  bool admin = false;

  // A valid subject (§2).
  [[nodiscard]] bool may_publish(std::string_view subject) const noexcept;
  // A valid pattern (§2).
  [[nodiscard]] bool may_subscribe(std::string_view pattern) const noexcept;
};

// An auth.file that cannot be used: what() is one line, "line N: what is wrong".
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The tokens of an auth.file, by the SHA-256 of each: the file never holds a token itself.
class Table {
 public:
  // `NAME SHA256-HEX PERMISSION...` per line, fields separated by spaces or tabs; `#` starts a
  // comment, blank lines are skipped. Throws FileError naming the first bad line.
  static Table parse(std::string_view text);

  // The principal whose token is `token`; null when none is. It hashes the token and compares the
  // digest with every entry's in constant time, so neither the time nor the entry that matched
  // tells an attacker how close a guess was or where in the file a token sits.
  [[nodiscard]] const Principal* find(std::string_view token) const noexcept;
  // The same for a token's SHA-256, as a stream keeps it to check again after a reload.
  [[nodiscard]] const Principal* find_digest(const Digest& digest) const noexcept;

  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    Digest digest;
    Principal principal;
  };
  std::vector<Entry> entries_;
};

// Whether `token` hashes to `digest`, compared in constant time (monitoring.token).
[[nodiscard]] bool is_token_of(const Digest& digest, std::string_view token);

// A new token: 32 bytes from OpenSSL's CSPRNG as unpadded base64url (43 characters).
[[nodiscard]] std::string mint_token();
// The hex of a digest, as an auth.file line holds it.
[[nodiscard]] std::string to_hex(const Digest& digest);

}  // namespace gophermq::auth
