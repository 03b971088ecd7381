// GET /api/stats over many subjects: the busiest first, ties by name, totals in step, whatever
// order the traffic changed the counts in.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "support/broker_process.hpp"
#include "support/http_client.hpp"

namespace gophermq::test {
namespace {

struct Expected {
  std::string subject;
  std::string id;  // of its ungrouped subscription
  std::size_t subscriptions = 1;
  std::size_t groups = 0;
  std::uint64_t own = 0;  // messages in the ungrouped subscription's queue, one byte each
  std::uint64_t grouped = 0;
  [[nodiscard]] std::uint64_t pending() const { return own + grouped; }
};

std::string row(const Expected& subject) {
  return "{\"groups\":" + std::to_string(subject.groups) + ",\"in_flight\":0" +
         ",\"pending_bytes\":" + std::to_string(subject.pending()) +
         ",\"pending_messages\":" + std::to_string(subject.pending()) + ",\"subject\":\"" +
         subject.subject + "\",\"subscriptions\":" + std::to_string(subject.subscriptions) + "}";
}

std::string rows(const std::vector<Expected>& ranked, std::size_t limit) {
  std::string text = "{\"subjects\":[";
  for (std::size_t i = 0; i < std::min(limit, ranked.size()); ++i) {
    text += (i == 0 ? "" : ",") + row(ranked[i]);
  }
  return text + "],";
}

std::string batch_of(std::string_view subject, std::size_t count) {
  std::string body = "{\"subject\":\"" + std::string(subject) + "\",\"data\":[";
  for (std::size_t i = 0; i < count; ++i) {
    body += i == 0 ? "\"x\"" : ",\"x\"";
  }
  return body + "]}";
}

TEST(Stats, ManySubjectsAreRankedByPendingThenNameWithTotalsInStep) {
  BrokerProcess broker(isolated_arguments());
  HttpClient client(broker.api_port());
  constexpr std::size_t kSubjects = 3000;
  std::vector<Expected> subjects;
  std::size_t subscriptions = 0;
  std::uint64_t published = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;
  for (std::size_t i = 0; i < kSubjects; ++i) {
    Expected subject;
    subject.subject = "s." + std::to_string(i);
    subject.id = id_of(client.post("/api/subscribe", R"({"subject":")" + subject.subject + "\"}"));
    ++subscriptions;
    if (i % 10 == 3) {
      ASSERT_EQ(
          client.post("/api/subscribe", R"({"subject":")" + subject.subject + R"(","group":"g"})")
              .status,
          200U);
      ++subject.subscriptions;
      ++subject.groups;
      ++subscriptions;
    }
    subjects.push_back(subject);
  }
  // Counts rise and fall in an order unrelated to names, and many subjects tie.
  for (std::size_t i = 0; i < kSubjects; ++i) {
    Expected& subject = subjects[(i * 7919) % kSubjects];
    const std::size_t count = (i * 37) % 11;
    if (count > 0) {
      ASSERT_EQ(client.post("/api/publish/batch", batch_of(subject.subject, count)).status, 200U);
      published += count;
      subject.own += count;
      subject.grouped += count * subject.groups;
    }
  }
  for (std::size_t i = 0; i < kSubjects; i += 5) {
    Expected& subject = subjects[i];
    const std::uint64_t taken = std::min<std::uint64_t>(subject.own, 2);
    ASSERT_EQ(client
                  .post("/api/fetch", R"({"subject":")" + subject.subject + R"(","id":")" +
                                          subject.id + R"(","max":2})")
                  .status,
              200U);
    subject.own -= taken;
    delivered += taken;
  }
  for (std::size_t i = 0; i < kSubjects; i += 7) {
    Expected& subject = subjects[i];
    ASSERT_EQ(client
                  .post("/api/unsubscribe",
                        R"({"subject":")" + subject.subject + R"(","id":")" + subject.id + "\"}")
                  .status,
              200U);
    dropped += subject.own;
    subject.own = 0;
    --subject.subscriptions;
    --subscriptions;
  }
  std::erase_if(subjects, [](const Expected& subject) { return subject.subscriptions == 0; });
  std::sort(subjects.begin(), subjects.end(), [](const Expected& a, const Expected& b) {
    return a.pending() != b.pending() ? a.pending() > b.pending() : a.subject < b.subject;
  });
  std::uint64_t pending = 0;
  for (const Expected& subject : subjects) {
    pending += subject.pending();
  }

  const std::string most = client.get("/api/stats?limit=1000").body;
  EXPECT_EQ(most.substr(0, rows(subjects, 1000).size()), rows(subjects, 1000));
  const std::string totals =
      "\"totals\":{\"delivered_messages\":" + std::to_string(delivered) +
      ",\"dropped_messages\":{\"max_deliveries\":0,\"message_ttl\":0,\"purged\":0,"
      "\"queue_full\":0,\"subscriber_ttl\":0,"
      "\"unsubscribe\":" +
      std::to_string(dropped) + "},\"in_flight\":0,\"pending_bytes\":" + std::to_string(pending) +
      ",\"pending_messages\":" + std::to_string(pending) +
      ",\"published_messages\":" + std::to_string(published) +
      ",\"subjects\":" + std::to_string(subjects.size()) +
      ",\"subscriptions\":" + std::to_string(subscriptions) + ",\"waiting_fetches\":0},";
  EXPECT_NE(most.find(totals), std::string::npos) << most.substr(most.find("\"totals\""));
  const std::string by_default = client.get("/api/stats").body;
  EXPECT_EQ(by_default.substr(0, rows(subjects, 100).size()), rows(subjects, 100));
  EXPECT_NE(by_default.find(totals), std::string::npos);
}

}  // namespace
}  // namespace gophermq::test
