#include "support/ack_queue.hpp"

#include <algorithm>
#include <set>
#include <sstream>

namespace gophermq::test {

void AckQueue::publish(const std::string& msg_id, Outcome outcome) {
  const std::lock_guard guard(mutex_);
  messages_[msg_id].attempts.push_back(outcome);
}

void AckQueue::fetch_unknown(std::size_t max) {
  const std::lock_guard guard(mutex_);
  allowance_ += max;
}

void AckQueue::deliver(const std::string& msg_id, std::uint64_t seq, std::size_t deliveries,
                       const std::string& receipt) {
  const std::lock_guard guard(mutex_);
  if (!receipts_.emplace(receipt, Delivered{msg_id, seq, deliveries}).second) {
    history_error("receipt " + receipt + " names two deliveries (the second of " + msg_id + ")");
  }
  Message& message = messages_[msg_id];
  message.seqs.insert(seq);
  message.deliveries.push_back(deliveries);
}

void AckQueue::ack(const std::vector<std::string>& receipts, Outcome outcome, std::size_t count,
                   const std::vector<std::string>& stale) {
  acknowledge(receipts, outcome, count, stale, true);
}

void AckQueue::nack(const std::vector<std::string>& receipts, Outcome outcome, std::size_t count,
                    const std::vector<std::string>& stale) {
  acknowledge(receipts, outcome, count, stale, false);
}

void AckQueue::acknowledge(const std::vector<std::string>& receipts, Outcome outcome,
                           std::size_t count, const std::vector<std::string>& stale, bool is_ack) {
  const std::lock_guard guard(mutex_);
  const std::string verb = is_ack ? "ack" : "nack";
  if (outcome == Outcome::refused) return;
  const std::set<std::string> stale_set(stale.begin(), stale.end());
  const std::set<std::string> distinct(receipts.begin(), receipts.end());
  if (outcome == Outcome::ok) {
    stale_ += stale.size();
    for (const auto& receipt : stale) {
      if (!distinct.contains(receipt)) {
        history_error("an " + verb + " answered stale " + receipt + ", which it did not send");
      }
    }
    if (count != distinct.size() - stale_set.size()) {
      history_error("an " + verb + " of " + std::to_string(distinct.size()) + " receipts with " +
                    std::to_string(stale_set.size()) + " stale answered " + std::to_string(count));
    }
  }
  if (!is_ack) return;
  for (const auto& receipt : distinct) {
    const auto found = receipts_.find(receipt);
    if (found == receipts_.end()) {
      history_error("an ack names " + receipt + ", which no fetch answered");
      continue;
    }
    Message& message = messages_[found->second.msg_id];
    if (outcome == Outcome::unknown) {
      message.unknown_ack = std::max(message.unknown_ack, found->second.deliveries);
    } else if (!stale_set.contains(receipt)) {
      ++message.acked;
      message.acked_delivery = std::max(message.acked_delivery, found->second.deliveries);
    }
  }
}

void AckQueue::dead_letter(const std::string& msg_id) {
  const std::lock_guard guard(mutex_);
  ++messages_[msg_id].dead_letters;
}

AckQueue::Result AckQueue::check() const {
  const std::lock_guard guard(mutex_);
  Result result;
  result.errors = history_errors();
  result.stale = stale_;
  std::size_t gaps = 0;
  std::string first_gap;
  for (const auto& [msg_id, message] : messages_) {
    const auto fail = [&, &id = msg_id](const std::string& text) {
      result.errors.push_back(id + ": " + text);
    };
    const bool answered = std::find(message.attempts.begin(), message.attempts.end(),
                                    Outcome::ok) != message.attempts.end();
    const bool maybe_stored =
        answered || std::find(message.attempts.begin(), message.attempts.end(), Outcome::unknown) !=
                        message.attempts.end();
    const bool seen = !message.deliveries.empty() || message.dead_letters > 0;
    if (message.attempts.empty()) {
      fail("delivered, but never published");
      continue;
    }
    if (seen && !maybe_stored) fail("delivered, but every publish of it was refused");
    if (message.seqs.size() > 1) {
      fail("stored " + std::to_string(message.seqs.size()) + " times for one msg_id");
    }
    if (message.dead_letters > 1) {
      fail("dead-lettered " + std::to_string(message.dead_letters) + " times");
    }
    if (message.acked > 1) fail("acked " + std::to_string(message.acked) + " times");
    if (message.acked > 0 && message.dead_letters > 0) fail("acked and dead-lettered");

    std::set<std::size_t> counts;
    for (const auto count : message.deliveries) {
      if (!counts.insert(count).second) {
        fail("delivery " + std::to_string(count) + " was counted twice");
      }
    }
    if (counts.contains(0)) fail("a delivery counted 0");
    const std::size_t last = counts.empty() ? 0 : *counts.rbegin();
    // Each delivery adds one: a count skipped was a delivery whose answer was lost.
    std::size_t skipped = last - std::min(last, counts.size());
    if (message.acked > 0 && last > message.acked_delivery) {
      fail("delivered (#" + std::to_string(last) + ") after its ack of delivery #" +
           std::to_string(message.acked_delivery));
    }
    if (max_deliveries_ > 0 && last > max_deliveries_) {
      fail("delivered " + std::to_string(last) + " times, more than max_deliveries " +
           std::to_string(max_deliveries_));
    }
    if (message.dead_letters > 0) {
      if (max_deliveries_ == 0) {
        fail("dead-lettered without max_deliveries");
      } else if (last < max_deliveries_) {
        // Dead-lettered after exactly max_deliveries: the ones not seen were lost answers.
        skipped += max_deliveries_ - last;
      }
    }
    if (skipped > 0 && gaps == 0) first_gap = msg_id;
    gaps += skipped;

    result.deliveries += message.deliveries.size();
    result.redeliveries +=
        message.deliveries.size() - std::min<std::size_t>(1, message.deliveries.size());
    if (!answered) continue;
    ++result.answered;
    if (message.acked == 1) {
      ++result.acked;
    } else if (message.dead_letters == 1) {
      ++result.dead_lettered;
    } else if (message.acked == 0 && (last == 0 || message.unknown_ack != last)) {
      fail(message.deliveries.empty() ? "answered 200, never delivered (lost)"
                                      : "answered 200, delivered " + std::to_string(last) +
                                            " times, never acked nor dead-lettered");
    }
  }
  result.unseen = gaps;
  if (gaps > allowance_) {
    result.errors.push_back(std::to_string(gaps) + " delivery counts skipped (the first in " +
                            first_gap + "), more than the " + std::to_string(allowance_) +
                            " that unanswered fetches may have delivered");
  }
  return result;
}

std::string AckQueue::Result::describe() const {
  std::ostringstream out;
  out << "answered " << answered << ", acked " << acked << ", dead-lettered " << dead_lettered
      << ", deliveries " << deliveries << " (redeliveries " << redeliveries << ", unseen " << unseen
      << "), stale receipts " << stale;
  return report(out.str());
}

}  // namespace gophermq::test
