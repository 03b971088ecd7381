// A Jepsen-style total-queue checker. The fault tests record every publish and every fetch they
// attempt, with what came back, and check at the end, after draining every queue, that the broker
// kept its promises across kills and power losses.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "support/history.hpp"

namespace gophermq::test {

// exactly_once: after kill -9 (a fetch's removal is written before its answer). at_least_once:
// after power loss, where a removal that was not yet synced brings the message back.
enum class Delivery { exactly_once, at_least_once };

class TotalQueue : private History {
 public:
  using Clock = std::chrono::steady_clock;

  // A queue the broker keeps: an ungrouped subscription, or a group (its members share it). It
  // gets every message published to a subject that `pattern` (with `*` and `>`) matches.
  // Queues are added before any publish.
  void add_queue(const std::string& queue, const std::string& pattern);

  // One publish request by `publisher`, who sends one request at a time: a sync publish (one
  // body) or a batch. Every body is unique in the whole history.
  void publish(const std::string& publisher, const std::string& subject,
               const std::vector<std::string>& bodies, Outcome outcome,
               Clock::time_point answered = Clock::now());

  // One fetch on `queue` by `consumer` (a subscription id: one request at a time) of at most
  // `max` messages. For an unknown fetch `received` is empty: up to `max` messages may have been
  // taken without the answer arriving.
  void fetch(const std::string& queue, const std::string& consumer, std::size_t max,
             const std::vector<std::string>& received, Outcome outcome);

  struct Missing {
    std::string queue;
    std::string body;
    Clock::time_point answered;
  };

  struct Result : Verdict {
    std::size_t expected = 0;  // answered messages times the queues they match
    std::size_t received = 0;
    std::size_t duplicates = 0;    // deliveries past the first (at_least_once only)
    std::size_t allowance = 0;     // the max of every unknown fetch, summed
    std::vector<Missing> missing;  // answered, matched, never received
    [[nodiscard]] std::string describe() const;
  };

  // With `loss_allowed` (fsync=interval after power loss) missing messages are reported, not
  // errors; everything else is still checked.
  [[nodiscard]] Result check(Delivery delivery, bool loss_allowed = false) const;

 private:
  struct Published {
    std::string publisher;
    std::size_t position = 0;  // in the publisher's sequence of bodies
    std::string subject;
    Outcome outcome = Outcome::unknown;
    Clock::time_point answered;
  };
  struct Fetched {
    std::string consumer;
    std::size_t max = 0;
    std::vector<std::string> received;
    Outcome outcome = Outcome::unknown;
  };

  std::map<std::string, std::string> patterns_;  // queue → pattern
  std::vector<std::string> queue_order_;
  std::map<std::string, Published> published_;           // body → its publish
  std::vector<std::string> publish_order_;               // bodies, in the order they were recorded
  std::map<std::string, std::size_t> positions_;         // publisher → bodies so far
  std::map<std::string, std::vector<Fetched>> fetches_;  // queue → its fetches
};

// Whether a subscription pattern matches a published subject (`*` one token, `>` the rest).
bool pattern_matches(const std::string& pattern, const std::string& subject);

}  // namespace gophermq::test
