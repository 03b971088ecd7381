#include "support/total_queue.hpp"

#include <set>
#include <sstream>

namespace gophermq::test {
namespace {

std::vector<std::string> tokens(const std::string& subject) {
  std::vector<std::string> parts;
  std::istringstream in(subject);
  std::string part;
  while (std::getline(in, part, '.')) parts.push_back(part);
  return parts;
}

}  // namespace

bool pattern_matches(const std::string& pattern, const std::string& subject) {
  const auto want = tokens(pattern);
  const auto have = tokens(subject);
  for (std::size_t at = 0; at < want.size(); ++at) {
    if (want[at] == ">") return have.size() > at;
    if (at >= have.size() || (want[at] != "*" && want[at] != have[at])) return false;
  }
  return want.size() == have.size();
}

void TotalQueue::add_queue(const std::string& queue, const std::string& pattern) {
  const std::lock_guard guard(mutex_);
  patterns_[queue] = pattern;
  queue_order_.push_back(queue);
}

void TotalQueue::publish(const std::string& publisher, const std::string& subject,
                         const std::vector<std::string>& bodies, Outcome outcome,
                         Clock::time_point answered) {
  const std::lock_guard guard(mutex_);
  for (const auto& body : bodies) {
    if (published_.contains(body)) {
      history_error("the history publishes " + body + " twice");
      continue;
    }
    published_[body] = {publisher, positions_[publisher]++, subject, outcome, answered};
    publish_order_.push_back(body);
  }
}

void TotalQueue::fetch(const std::string& queue, const std::string& consumer, std::size_t max,
                       const std::vector<std::string>& received, Outcome outcome) {
  const std::lock_guard guard(mutex_);
  if (!patterns_.contains(queue)) {
    history_error("a fetch on unknown queue " + queue);
    return;
  }
  fetches_[queue].push_back({consumer, max, received, outcome});
}

TotalQueue::Result TotalQueue::check(Delivery delivery, bool loss_allowed) const {
  const std::lock_guard guard(mutex_);
  Result result;
  result.errors = history_errors();
  const auto fail = [&](const std::string& queue, const std::string& text) {
    result.errors.push_back(queue + ": " + text);
  };
  for (const auto& queue : queue_order_) {
    const std::string& pattern = patterns_.at(queue);
    const auto found_fetches = fetches_.find(queue);
    const std::vector<Fetched> no_fetches;
    const auto& fetches = found_fetches == fetches_.end() ? no_fetches : found_fetches->second;

    std::map<std::string, std::size_t> counts;
    std::size_t allowance = 0;
    for (const auto& fetch : fetches) {
      if (fetch.outcome == Outcome::unknown) {
        allowance += fetch.max;
        continue;
      }
      for (const auto& body : fetch.received) {
        ++counts[body];
        ++result.received;
      }
    }
    result.allowance += allowance;

    for (const auto& [body, count] : counts) {
      const auto found = published_.find(body);
      if (found == published_.end()) {
        fail(queue, "received " + body + ", which was never published");
        continue;
      }
      const Published& publish = found->second;
      if (publish.outcome == Outcome::refused) {
        fail(queue, "received " + body + ", whose publish was refused");
      }
      if (!pattern_matches(pattern, publish.subject)) {
        fail(queue, "received " + body + ", published to " + publish.subject + ", which " +
                        pattern + " does not match");
      }
      if (count > 1) {
        if (delivery == Delivery::exactly_once) {
          fail(queue, "received " + body + " " + std::to_string(count) + " times");
        } else {
          result.duplicates += count - 1;
        }
      }
    }

    std::size_t missing = 0;
    std::string first_missing;
    for (const auto& body : publish_order_) {
      const Published& publish = published_.at(body);
      if (publish.outcome != Outcome::ok || !pattern_matches(pattern, publish.subject)) continue;
      ++result.expected;
      if (!counts.contains(body)) {
        result.missing.push_back({queue, body, publish.answered});
        if (missing++ == 0) first_missing = body;
      }
    }
    if (!loss_allowed && missing > allowance) {
      fail(queue, std::to_string(missing) + " answered messages never received (the first: " +
                      first_missing + "), more than the " + std::to_string(allowance) +
                      " that unanswered fetches may have taken");
    }

    // Each consumer's own fetches are sequential, so what one consumer receives from one
    // publisher follows that publisher's order; a redelivery (at_least_once) is skipped. In a
    // group, a message another member took before a power loss comes back after later ones this
    // member already has: that is a redelivery too, when another member received it before or
    // had a fetch whose answer never came (it may have taken it).
    std::map<std::string, std::set<std::string>> seen;
    std::map<std::string, std::string> first_receiver;  // body → the consumer that received it
    std::set<std::string> unanswered;                   // consumers with an unknown fetch so far
    std::map<std::pair<std::string, std::string>, std::size_t> last;
    const auto redelivered_from_another = [&](const std::string& consumer,
                                              const std::string& body) {
      if (delivery != Delivery::at_least_once) return false;
      const auto receiver = first_receiver.find(body);
      return (receiver != first_receiver.end() && receiver->second != consumer) ||
             unanswered.size() > (unanswered.contains(consumer) ? 1U : 0U);
    };
    for (const auto& fetch : fetches) {
      if (fetch.outcome == Outcome::unknown) {
        unanswered.insert(fetch.consumer);
      }
      for (const auto& body : fetch.received) {
        const auto found = published_.find(body);
        if (found == published_.end() || !seen[fetch.consumer].insert(body).second) continue;
        const Published& publish = found->second;
        const auto key = std::make_pair(fetch.consumer, publish.publisher);
        const auto previous = last.find(key);
        const bool excused = redelivered_from_another(fetch.consumer, body);
        first_receiver.emplace(body, fetch.consumer);
        if (excused) continue;
        if (previous != last.end() && publish.position <= previous->second) {
          fail(queue, "consumer " + fetch.consumer + " received " + body + " (#" +
                          std::to_string(publish.position) + " of " + publish.publisher +
                          ") after #" + std::to_string(previous->second));
        }
        last[key] = publish.position;
      }
    }
  }
  return result;
}

std::string TotalQueue::Result::describe() const {
  std::ostringstream out;
  out << "expected " << expected << ", received " << received << ", duplicates " << duplicates
      << ", missing " << missing.size() << " (unanswered fetches may explain " << allowance << ")";
  return report(out.str());
}

}  // namespace gophermq::test
