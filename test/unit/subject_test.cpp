#include "broker/subject.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "broker/broker.hpp"
#include "broker/subject_index.hpp"

namespace gophermq::broker {
namespace {

constexpr std::size_t kMax = 256;

TEST(Subject, AcceptsDottedTokens) {
  for (const char* subject : {"a", "a.b", "orders.eu-west.created", "A_1.b-2"}) {
    EXPECT_TRUE(is_valid_subject(subject, SubjectUse::publish, kMax)) << subject;
  }
}

TEST(Subject, RejectsEmptyTokensWhitespaceAndLength) {
  for (const char* subject : {"", ".", "a.", ".a", "a..b", "a b", "a\tb", "a\nb", "a\rb"}) {
    EXPECT_FALSE(is_valid_subject(subject, SubjectUse::subscribe, kMax)) << subject;
  }
  EXPECT_TRUE(is_valid_subject(std::string(256, 'x'), SubjectUse::publish, kMax));
  EXPECT_FALSE(is_valid_subject(std::string(257, 'x'), SubjectUse::publish, kMax));
}

TEST(Subject, WildcardsOnlyInSubscribeAndTrailingWildcardOnlyLast) {
  for (const char* subject : {"*", ">", "a.*", "a.>", "*.b.>", "a.*.c"}) {
    EXPECT_TRUE(is_valid_subject(subject, SubjectUse::subscribe, kMax)) << subject;
    EXPECT_FALSE(is_valid_subject(subject, SubjectUse::publish, kMax)) << subject;
  }
  for (const char* subject : {"a.>.b", ">.a", "a.>.>"}) {
    EXPECT_FALSE(is_valid_subject(subject, SubjectUse::subscribe, kMax)) << subject;
  }
  // Only whole tokens are wildcards.
  EXPECT_TRUE(is_valid_subject("a*.b>", SubjectUse::publish, kMax));
}

struct MatchCase {
  std::string pattern;
  std::string subject;
  bool matches;
};

class IndexMatching : public testing::TestWithParam<MatchCase> {};

TEST_P(IndexMatching, FollowsTheSpecRules) {
  const MatchCase& c = GetParam();
  SubjectIndex index;
  Queue queue;
  index.insert(c.pattern, &queue);
  std::vector<Queue*> matched;
  index.match(c.subject, matched);
  EXPECT_EQ(!matched.empty(), c.matches) << c.pattern << " vs " << c.subject;
}

INSTANTIATE_TEST_SUITE_P(
    Table, IndexMatching,
    testing::Values(MatchCase{"a", "a", true}, MatchCase{"a", "b", false},
                    MatchCase{"a.b", "a.b", true}, MatchCase{"a.b", "a", false},
                    MatchCase{"a", "a.b", false}, MatchCase{"a.*", "a.b", true},
                    MatchCase{"a.*", "a", false}, MatchCase{"a.*", "a.b.c", false},
                    MatchCase{"*", "a", true}, MatchCase{"*", "a.b", false},
                    MatchCase{"*.b", "a.b", true}, MatchCase{"a.*.c", "a.x.c", true},
                    MatchCase{"a.*.c", "a.x.d", false}, MatchCase{"a.>", "a.b", true},
                    MatchCase{"a.>", "a.b.c", true}, MatchCase{"a.>", "a", false},
                    MatchCase{">", "a", true}, MatchCase{">", "a.b.c", true},
                    MatchCase{"*.>", "a", false}, MatchCase{"*.>", "a.b", true}));

std::vector<Queue*> match(const SubjectIndex& index, std::string_view subject) {
  std::vector<Queue*> matched;
  index.match(subject, matched);
  return matched;
}

std::set<Queue*> distinct(const std::vector<Queue*>& queues) {
  return {queues.begin(), queues.end()};
}

TEST(SubjectIndex, OverlappingPatternsEachMatchOnce) {
  SubjectIndex index;
  Queue literal, star, tail, other;
  index.insert("a.b", &literal);
  index.insert("a.*", &star);
  index.insert("a.>", &tail);
  index.insert("x.>", &other);
  const std::vector<Queue*> matched = match(index, "a.b");
  EXPECT_EQ(distinct(matched), (std::set<Queue*>{&literal, &star, &tail}));
  EXPECT_EQ(matched.size(), 3U);
}

TEST(SubjectIndex, EraseRemovesOnlyThatQueueAndPrunes) {
  SubjectIndex index;
  Queue first, second;
  index.insert("a.b.c", &first);
  index.insert("a.b.c", &second);
  index.insert("a.>", &first);
  index.erase("a.b.c", &first);
  EXPECT_EQ(distinct(match(index, "a.b.c")), (std::set<Queue*>{&second, &first}));
  index.erase("a.b.c", &second);
  index.erase("a.>", &first);
  EXPECT_TRUE(index.empty());
}

TEST(Broker, WildcardAndLiteralSubscribersBothReceive) {
  Broker broker(Limits{});
  broker.subscribe("lit", "orders.eu", std::nullopt);
  broker.subscribe("star", "orders.*", std::nullopt);
  broker.subscribe("tail", "orders.>", std::nullopt);
  const std::vector<Message> one{Message::create("m")};
  ASSERT_EQ(broker.publish("orders.eu", one), PublishStatus::ok);
  ASSERT_EQ(broker.publish("orders.eu.paris", one), PublishStatus::ok);
  EXPECT_EQ(broker.totals().pending_messages, 4U);
  FetchedMessages out;
  ASSERT_EQ(broker.fetch("orders.>", "tail", 10, out), FetchStatus::ok);
  EXPECT_EQ(out.size(), 2U);
}

}  // namespace
}  // namespace gophermq::broker
