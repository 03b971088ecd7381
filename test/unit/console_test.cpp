// The web console's rules in http/console.cpp: which paths name a file, and when If-None-Match
// matches an ETag.
#include "http/console.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>

namespace gophermq::http {
namespace {

TEST(Console, EveryFileIsEmbeddedOnceWithATypeAndAStrongETag) {
  std::set<std::string_view> paths;
  std::set<std::string_view> etags;
  for (const ConsoleAsset& asset : console_assets()) {
    EXPECT_TRUE(paths.insert(asset.path).second) << asset.path;
    EXPECT_TRUE(etags.insert(asset.etag).second) << asset.path;
    EXPECT_FALSE(asset.body.empty()) << asset.path;
    EXPECT_FALSE(asset.content_type.empty()) << asset.path;
    EXPECT_TRUE(asset.etag.size() > 2 && asset.etag.front() == '"' && asset.etag.back() == '"' &&
                asset.etag.find('"', 1) == asset.etag.size() - 1)
        << asset.etag;
    EXPECT_EQ(find_console_asset(asset.path), &asset);
  }
  EXPECT_TRUE(paths.contains("/"));
  EXPECT_TRUE(paths.contains("/console.js"));
  EXPECT_TRUE(paths.contains("/console.css"));
}

TEST(Console, OnlyExactPathsNameAFile) {
  for (const std::string_view path :
       {"", "/index.html", "/../", "/%2e%2e/", "//", "/./", "/console.js/", "//console.js",
        "/./console.js", "/a/../console.js", "/console.js%00", "/Console.js", "/console.js ",
        "console.js", "/etc/passwd"}) {
    EXPECT_EQ(find_console_asset(path), nullptr) << path;
  }
  EXPECT_NE(find_console_asset("/"), nullptr);
}

TEST(Console, IfNoneMatchComparesWeaklyAndIgnoresMalformedLists) {
  const std::string_view etag = R"("abc")";
  for (const std::string_view header : {R"("abc")", R"(W/"abc")", "*", " * ", R"("x", "abc")",
                                        R"("x",W/"abc")", R"(, ,"abc",)", R"( "x" , "abc" )"}) {
    EXPECT_TRUE(etag_matches(header, etag)) << header;
  }
  for (const std::string_view header :
       {"", ",", "W/", "abc", R"("ab")", R"("abcd")", R"("abc)", R"(abc")", R"("x" "abc")",
        R"(*, "abc")", R"(w/"abc")", R"("x", junk, "abc")", R"(W/ "abc")"}) {
    EXPECT_FALSE(etag_matches(header, etag)) << header;
  }
}

}  // namespace
}  // namespace gophermq::http
