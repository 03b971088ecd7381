#include "auth/auth.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace gophermq::auth {
namespace {

const std::string kHexA = to_hex(sha256("token-a"));
const std::string kHexB = to_hex(sha256("token-b"));

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> tokens;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = text.find('.', start);
    tokens.push_back(text.substr(start, dot - start));
    if (dot == std::string::npos) {
      return tokens;
    }
    start = dot + 1;
  }
}

// The reference: §2's matching, token by token, with nothing shared with contains().
bool matches(const std::vector<std::string>& pattern, const std::vector<std::string>& subject) {
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == ">") {
      return subject.size() > i;
    }
    if (i >= subject.size() || (pattern[i] != "*" && pattern[i] != subject[i])) {
      return false;
    }
  }
  return pattern.size() == subject.size();
}

// Every string of `alphabet` tokens, 1 to `depth` of them; `>` only last when it is in the
// alphabet.
std::vector<std::string> generate(const std::vector<std::string>& alphabet, std::size_t depth) {
  std::vector<std::string> out;
  std::function<void(std::string, std::size_t)> grow = [&](const std::string& prefix,
                                                           std::size_t length) {
    for (const std::string& token : alphabet) {
      const std::string next = prefix.empty() ? token : prefix + "." + token;
      out.push_back(next);
      if (token != ">" && length + 1 < depth) {
        grow(next, length + 1);
      }
    }
  };
  grow("", 0);
  return out;
}

TEST(AuthContains, AgreesWithBruteForceOverEverySubject) {
  // Patterns use a and b; subjects also c, which only a wildcard matches, and are one token
  // longer than any pattern, so a `>` that outruns a fixed-length pattern shows.
  const std::vector<std::string> patterns = generate({"a", "b", "*", ">"}, 3);
  std::vector<std::vector<std::string>> subjects;
  for (const std::string& subject : generate({"a", "b", "c"}, 4)) {
    subjects.push_back(split(subject));
  }
  std::size_t contained = 0;
  for (const std::string& outer : patterns) {
    const auto wide = split(outer);
    for (const std::string& inner : patterns) {
      const auto narrow = split(inner);
      bool reference = true;
      for (const auto& subject : subjects) {
        if (matches(narrow, subject) && !matches(wide, subject)) {
          reference = false;
          break;
        }
      }
      ASSERT_EQ(contains(outer, inner), reference) << outer << " contains " << inner;
      contained += reference ? 1 : 0;
    }
    // A subject is a pattern that matches itself only: the publish question is the same rule.
    for (const auto& subject : generate({"a", "b", "c"}, 4)) {
      ASSERT_EQ(contains(outer, subject), matches(wide, split(subject))) << outer << " " << subject;
    }
  }
  EXPECT_GT(contained, patterns.size());  // not a rule that only says yes to itself
}

TEST(AuthContains, TheSpecExamples) {
  EXPECT_TRUE(contains("orders.>", "orders.*"));
  EXPECT_TRUE(contains("orders.>", "orders.eu.>"));
  EXPECT_FALSE(contains("orders.*", "orders.>"));
  EXPECT_FALSE(contains("orders.>", "orders"));
  EXPECT_TRUE(contains(">", ">"));
  EXPECT_FALSE(contains("orders.eu", "orders.*"));
}

TEST(AuthPrincipal, PermissionsFollowContainment) {
  const Table table =
      Table::parse("alice " + kHexA + " pub:orders.* sub:orders.>\nroot " + kHexB + " admin\n");
  const Principal* alice = table.find("token-a");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->name, "alice");
  EXPECT_TRUE(alice->may_publish("orders.eu"));
  EXPECT_FALSE(alice->may_publish("orders.eu.x"));
  EXPECT_FALSE(alice->may_publish("billing"));
  EXPECT_TRUE(alice->may_subscribe("orders.*"));
  EXPECT_TRUE(alice->may_subscribe("orders.eu.>"));
  EXPECT_FALSE(alice->may_subscribe(">"));
  EXPECT_FALSE(alice->may_subscribe("orders"));
  EXPECT_FALSE(alice->admin);
  const Principal* root = table.find("token-b");
  ASSERT_NE(root, nullptr);
  EXPECT_TRUE(root->admin);
  EXPECT_TRUE(root->may_publish("anything.at.all"));
  EXPECT_TRUE(root->may_subscribe(">"));
}

TEST(AuthTable, FindsEveryEntryAndNothingElse) {
  std::string file = "# tokens\n\n";
  for (int i = 0; i < 20; ++i) {
    file +=
        "n" + std::to_string(i) + "\t" + to_hex(sha256("t" + std::to_string(i))) + "  sub:x\r\n";
  }
  const Table table = Table::parse(file);
  EXPECT_EQ(table.size(), 20U);
  for (int i = 0; i < 20; ++i) {
    const Principal* found = table.find("t" + std::to_string(i));
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->name, "n" + std::to_string(i));
  }
  EXPECT_EQ(table.find(""), nullptr);
  EXPECT_EQ(table.find("t20"), nullptr);
  EXPECT_EQ(table.find(to_hex(sha256("t1"))), nullptr);  // the hash is no token
  EXPECT_EQ(Table::parse("").find(""), nullptr);
}

TEST(AuthTable, UpperCaseHexIsTheSameDigest) {
  std::string upper = kHexA;
  for (char& c : upper) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  EXPECT_NE(Table::parse("a " + upper + "\n").find("token-a"), nullptr);
}

std::string error_of(const std::string& file) {
  try {
    Table::parse(file);
  } catch (const FileError& error) {
    return error.what();
  }
  return "no error";
}

TEST(AuthTable, EveryErrorNamesItsLine) {
  const std::string good = "ok " + kHexA + " admin\n";
  struct Case {
    std::string line;
    std::string says;
  };
  const Case cases[] = {
      {"b " + kHexB.substr(1), "bad hex"},
      {"b " + kHexB + "0", "bad hex"},
      {"b " + kHexB.substr(1) + "g", "bad hex"},
      {"b +" + kHexB.substr(1), "bad hex"},
      {"b " + kHexB.substr(0, 10) + " " + kHexB.substr(11), "bad hex"},
      {"b", "no SHA-256"},
      {"b " + kHexB + " publish:x", "unknown permission"},
      {"b " + kHexB + " admin:x", "unknown permission"},
      {"b " + kHexB + " sub:", "invalid pattern"},
      {"b " + kHexB + " sub:a.>.b", "invalid pattern"},
      {"b " + kHexB + " pub:a..b", "invalid pattern"},
      {"b " + kHexB + " pub:" + std::string(257, 'a'), "invalid pattern"},
      {"ok " + kHexB + " admin", "duplicate name"},
      {"b " + kHexA + " admin", "duplicate SHA-256"},
      {"b " + std::string(1, '\0') + " " + kHexB, "NUL byte"},
      {"b/c " + kHexB, "invalid name"},
      {std::string(65, 'n') + " " + kHexB, "invalid name"},
  };
  for (const Case& c : cases) {
    const std::string error = error_of("# header\n" + good + "\n" + c.line + "\n");
    EXPECT_EQ(error.rfind("line 4: ", 0), 0U) << error;
    EXPECT_NE(error.find(c.says), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

TEST(AuthPermission, ParsesTheThreeKinds) {
  EXPECT_EQ(parse_permission("admin")->kind, Permission::Kind::admin);
  EXPECT_EQ(parse_permission("pub:a.*")->pattern, "a.*");
  EXPECT_EQ(parse_permission("sub:a.>")->kind, Permission::Kind::subscribe);
  EXPECT_FALSE(parse_permission("sub:a b"));
  EXPECT_FALSE(parse_permission("Admin"));
  EXPECT_FALSE(parse_permission("pub"));
}

TEST(AuthToken, MintedTokensAreLongRandomAndUrlSafe) {
  const std::string a = mint_token();
  const std::string b = mint_token();
  EXPECT_EQ(a.size(), 43U);
  EXPECT_NE(a, b);
  for (const char c : a) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << a;
  }
  EXPECT_NE(Table::parse("n " + to_hex(sha256(a)) + "\n").find(a), nullptr);
}

TEST(AuthName, NamesAreShortAndPlain) {
  EXPECT_TRUE(is_valid_name("ci-runner_2.eu"));
  EXPECT_FALSE(is_valid_name(""));
  EXPECT_FALSE(is_valid_name("a b"));
  EXPECT_FALSE(is_valid_name(std::string(65, 'a')));
}

}  // namespace
}  // namespace gophermq::auth
