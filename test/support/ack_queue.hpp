// The total-queue checker for ack mode (API.md §9): one queue (a subscription or a group) with
// `max_deliveries` and a dead-letter subject. The fault tests record every publish attempt (with
// its msg_id), every delivery a fetch answered, every ack and nack with its answer, and every
// message that arrived on the dead-letter subject; check() then judges the whole history.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/history.hpp"

namespace gophermq::test {

class AckQueue : private History {
 public:
  // `max_deliveries` 0: unlimited, nothing is ever dead-lettered.
  explicit AckQueue(std::size_t max_deliveries) : max_deliveries_(max_deliveries) {}

  // One publish attempt of the message `msg_id` (its data is the msg_id too, unique in the
  // history). A publisher retries an attempt that was refused or unknown with the same msg_id.
  void publish(const std::string& msg_id, Outcome outcome);

  // One fetch of at most `max` messages. An unknown fetch (the connection broke) may have
  // delivered up to `max` messages nobody saw.
  void fetch_unknown(std::size_t max);

  // One message of a fetch answer.
  void deliver(const std::string& msg_id, std::uint64_t seq, std::size_t deliveries,
               const std::string& receipt);

  // An ack (or nack) of `receipts`: for an ok answer, `count` is its acked (nacked) number and
  // `stale` its stale receipts; an unknown one may have acked (nacked) any of them.
  void ack(const std::vector<std::string>& receipts, Outcome outcome, std::size_t count = 0,
           const std::vector<std::string>& stale = {});
  void nack(const std::vector<std::string>& receipts, Outcome outcome, std::size_t count = 0,
            const std::vector<std::string>& stale = {});

  // A message fetched from the dead-letter subject (its data).
  void dead_letter(const std::string& msg_id);

  struct Result : Verdict {
    std::size_t answered = 0;  // messages with a publish answered 200
    std::size_t acked = 0;
    std::size_t dead_lettered = 0;
    std::size_t deliveries = 0;
    std::size_t redeliveries = 0;  // deliveries past each message's first
    std::size_t stale = 0;         // receipts answered stale
    std::size_t unseen = 0;        // delivery counts skipped, explained by unknown fetches
    [[nodiscard]] std::string describe() const;
  };

  [[nodiscard]] Result check() const;

 private:
  struct Delivered {
    std::string msg_id;
    std::uint64_t seq = 0;
    std::size_t deliveries = 0;
  };
  struct Message {
    std::vector<Outcome> attempts;
    std::set<std::uint64_t> seqs;
    std::vector<std::size_t> deliveries;  // the counts seen, in the order they were recorded
    std::size_t acked = 0;                // receipts an ok ack answer acked
    std::size_t acked_delivery = 0;       // the delivery the last such receipt named
    std::size_t unknown_ack = 0;          // the latest delivery an unknown ack named
    std::size_t dead_letters = 0;
  };

  void acknowledge(const std::vector<std::string>& receipts, Outcome outcome, std::size_t count,
                   const std::vector<std::string>& stale, bool is_ack);

  std::size_t max_deliveries_;
  std::map<std::string, Message> messages_;    // msg_id → what happened to it
  std::map<std::string, Delivered> receipts_;  // receipt → the delivery it names
  std::size_t allowance_ = 0;                  // max of unknown fetches, summed
  std::size_t stale_ = 0;
};

}  // namespace gophermq::test
