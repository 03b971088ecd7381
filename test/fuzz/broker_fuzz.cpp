// Arbitrary sequences of broker operations, checked step by step against a reference model that
// is too simple to be wrong: queues as deques of strings, matching by splitting on '.', a time
// moved by hand, and TTLs compared as elapsed time so no sum can overflow. Every status, every
// fetched message, every woken waiter, the pending totals and every counter must agree. The first
// bytes choose the limits: TTLs off, short or too large for a time point, max-subscriptions, and
// max-pending-per-queue with either policy. Half the publishes carry msg_ids, checked against a
// model of the dedupe window (a map of when each was last published). Half the subscriptions are
// in ack mode (fixed options, no dead letter): fetches deliver, and ack, nack, extend and
// timeouts are checked with the receipts applied and stale, in flight and their counters.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"

namespace {

using namespace gophermq::broker;

constexpr std::string_view kPatterns[] = {"a", "a.b", "a.*",  "a.>",  "*.b",
                                          ">", "b",   "a..b", "a.>.b"};
constexpr std::string_view kSubjects[] = {"a", "a.b", "a.c", "b", "a.b.c", "x.b", "a.*", ""};
constexpr std::optional<std::string_view> kGroups[] = {std::nullopt, "g", "h", "", "g.h"};
using std::chrono::milliseconds;
constexpr milliseconds kMessageTtls[] = {milliseconds(0), milliseconds(1000),
                                         std::chrono::hours(2'562'048), milliseconds::max()};
constexpr milliseconds kSubscriberTtls[] = {milliseconds(0), milliseconds(5000),
                                            std::chrono::hours(3'000'000), milliseconds::max()};
constexpr std::size_t kMaxSubscriptions[] = {1000, 3};
constexpr std::uint64_t kMaxPendingPerQueue[] = {0, 2, 5};
// Each step is a multiple of the 10 ms stamp tick of the 1000 ms message-ttl, so messages
// published at different times never share a stamp and each expires exactly at its own age.
constexpr milliseconds kSteps[] = {milliseconds(10),   milliseconds(100),
                                   milliseconds(990),  milliseconds(1000),
                                   milliseconds(5000), std::chrono::hours(24 * 365)};
// The clock stops well before the end of steady_clock's range; a TTL too large for a time point
// is then never reached.
constexpr auto kLastTime = std::chrono::hours(24 * 365 * 100);
constexpr milliseconds kDedupeWindow{1000};

[[noreturn]] void mismatch(std::string_view what) {
  std::cerr << "broker and model disagree: " << what << '\n';
  std::abort();
}

void check(bool agree, std::string_view what) {
  if (!agree) {
    mismatch(what);
  }
}

std::vector<std::string_view> tokens_of(std::string_view subject) {
  std::vector<std::string_view> tokens;
  std::size_t start = 0;
  while (true) {
    const auto dot = subject.find('.', start);
    tokens.push_back(subject.substr(start, dot - start));
    if (dot == std::string_view::npos) {
      return tokens;
    }
    start = dot + 1;
  }
}

bool valid_pattern(std::string_view pattern) {
  const auto tokens = tokens_of(pattern);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].empty() || (tokens[i] == ">" && i + 1 != tokens.size())) {
      return false;
    }
  }
  return true;
}

bool valid_subject(std::string_view subject) {
  for (const auto token : tokens_of(subject)) {
    if (token.empty() || token == "*" || token == ">") {
      return false;
    }
  }
  return true;
}

bool matches(std::string_view pattern, std::string_view subject) {
  const auto want = tokens_of(pattern);
  const auto have = tokens_of(subject);
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i] == ">") {
      return have.size() > i;
    }
    if (i >= have.size() || (want[i] != "*" && want[i] != have[i])) {
      return false;
    }
  }
  return want.size() == have.size();
}

class ManualClock final : public Clock {
 public:
  [[nodiscard]] TimePoint now() const override { return now_; }
  void advance(milliseconds by) {
    if (now_.time_since_epoch() + by <= kLastTime) {
      now_ += by;
    }
  }

 private:
  TimePoint now_{std::chrono::hours(1)};
};

// `ttl` (0: never) has passed since `since`, by elapsed whole milliseconds: no sum is formed.
bool expired(TimePoint since, milliseconds ttl, TimePoint now) {
  return ttl.count() > 0 && std::chrono::duration_cast<milliseconds>(now - since) >= ttl;
}

class FuzzWaiter final : public Waiter {
 public:
  void wake() override { woken = true; }
  bool woken = false;
};

struct ModelWaiter {
  FuzzWaiter* waiter;
  std::size_t subscription;
  std::size_t max;
};

struct ModelMessage {
  std::string text;
  TimePoint published;
  std::uint64_t seq = 0;
};

// A message of an ack-mode queue handed out at least once.
struct ModelDelivery {
  std::string text;
  std::uint32_t deliveries = 0;
  TimePoint deadline;
  bool outstanding = true;
};

struct ModelQueue {
  std::deque<ModelMessage> messages;  // never delivered
  std::list<ModelWaiter> waiters;
  std::size_t members = 0;
  bool ack = false;
  std::map<std::uint64_t, ModelDelivery> delivered;  // in flight, or nacked with a delay
  std::map<std::uint64_t, ModelDelivery> again;      // pending again
  std::size_t outstanding = 0;

  [[nodiscard]] std::size_t held_out() const { return delivered.size() + again.size(); }
};

// Every ack-mode subscription takes these: a timeout or nack at the second delivery drops the
// message. No dead letter: the broker settles timeouts of several queues in an order of its own,
// and a dead letter's publish would make that order visible.
AckOptions fuzz_ack_options() {
  AckOptions options;
  options.ack = true;
  options.ack_wait = milliseconds(1000);
  options.max_deliveries = 2;
  options.max_in_flight = 2;
  return options;
}
const AckOptions kAckOptions = fuzz_ack_options();

struct ModelSubscription {
  std::string id;
  std::string pattern;
  std::optional<std::string> group;
  ModelQueue* queue;
  TimePoint last_active;
  bool alive = true;
};

// Reads the fuzzer's bytes as small numbers; past the end everything is zero.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  [[nodiscard]] bool done() const { return position_ >= size_; }
  std::size_t next(std::size_t bound) { return position_ < size_ ? data_[position_++] % bound : 0; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t position_ = 0;
};

Limits limits_from(Input& in) {
  Limits limits{.max_pending = 24,
                .max_pending_bytes = 160,
                .max_subject_length = 16,
                .max_message_bytes = 12};
  limits.message_ttl = kMessageTtls[in.next(std::size(kMessageTtls))];
  limits.subscriber_ttl = kSubscriberTtls[in.next(std::size(kSubscriberTtls))];
  limits.max_subscriptions = kMaxSubscriptions[in.next(std::size(kMaxSubscriptions))];
  limits.max_pending_per_queue = kMaxPendingPerQueue[in.next(std::size(kMaxPendingPerQueue))];
  limits.slow_queue_policy =
      in.next(2) == 0 ? SlowQueuePolicy::reject : SlowQueuePolicy::drop_oldest;
  // Taken from no input byte, so the seeds keep their meaning: a multiple of every step.
  limits.dedupe_window = kDedupeWindow;
  return limits;
}

class Model {
 public:
  explicit Model(const Limits& limits) : limits_(limits), broker_(limits, clock_) {}

  void subscribe(Input& in) {
    const std::string_view pattern = kPatterns[in.next(std::size(kPatterns))];
    const auto group = kGroups[in.next(std::size(kGroups))];
    const std::string id = "s" + std::to_string(subscriptions_.size());
    const bool ack = in.next(2) == 0;
    const auto status =
        broker_.subscribe(id, pattern, group, ack ? fuzz_ack_options() : AckOptions{});
    if (pattern.size() > limits_.max_subject_length) {
      check(status == SubscribeStatus::subject_too_long, "subscribe subject too long");
      return;
    }
    if (!valid_pattern(pattern)) {
      check(status == SubscribeStatus::invalid_subject, "subscribe invalid subject");
      return;
    }
    if (group && (group->empty() || group->find('.') != std::string_view::npos)) {
      check(status == SubscribeStatus::invalid_group, "subscribe invalid group");
      return;
    }
    ModelQueue** shared = group ? &groups_[{std::string(pattern), std::string(*group)}] : nullptr;
    // A group left by its last member is gone: a new member makes it anew.
    const bool joins = shared != nullptr && *shared != nullptr && (*shared)->members > 0;
    if (joins && (*shared)->ack != ack) {
      check(status == SubscribeStatus::invalid_ack_options, "subscribe with other options");
      return;
    }
    if (alive_subscriptions() >= limits_.max_subscriptions) {
      check(status == SubscribeStatus::too_many_subscriptions, "subscribe too many");
      return;
    }
    check(status == SubscribeStatus::ok, "subscribe ok");
    ModelQueue* queue = nullptr;
    if (group) {
      if (!joins) {
        *shared = &queues_.emplace_back();
      }
      queue = *shared;
    } else {
      queue = &queues_.emplace_back();
    }
    if (queue->members == 0) {
      queue->ack = ack;
    }
    ++queue->members;
    subscriptions_.push_back({id, std::string(pattern),
                              group ? std::optional<std::string>(*group) : std::nullopt, queue,
                              clock_.now()});
  }

  void publish(Input& in) {
    const std::string_view subject = kSubjects[in.next(std::size(kSubjects))];
    const std::size_t count = 1 + in.next(3);
    std::vector<Message> batch;
    std::vector<std::string> texts;
    for (std::size_t i = 0; i < count; ++i) {
      std::string text = "m" + std::to_string(published_++);
      text.resize(text.size() + in.next(12), '.');
      batch.push_back(Message::create(text));
      texts.push_back(std::move(text));
    }
    // Half the publishes are idempotent, each message with one of four msg_ids.
    std::vector<std::string> msg_ids;
    if (in.next(2) == 0) {
      for (std::size_t i = 0; i < count; ++i) {
        msg_ids.push_back("k" + std::to_string(in.next(4)));
      }
    }
    const std::vector<std::string_view> ids(msg_ids.begin(), msg_ids.end());
    const PublishResult result = broker_.publish(subject, batch, ids);
    const auto status = result.status;
    // Only an ok publish names duplicates.
    check(status == PublishStatus::ok || result.duplicates == 0, "duplicates of a refused publish");
    if (subject.size() > limits_.max_subject_length) {
      check(status == PublishStatus::subject_too_long, "publish subject too long");
      return;
    }
    if (!valid_subject(subject)) {
      check(status == PublishStatus::invalid_subject, "publish invalid subject");
      return;
    }
    // A msg_id seen on this subject less than the window ago, or earlier in the batch, is a
    // duplicate; the rest is published as a batch of its own.
    std::vector<std::string> fresh_ids;
    if (!msg_ids.empty()) {
      std::vector<std::string> fresh;
      for (std::size_t i = 0; i < count; ++i) {
        const auto seen = seen_.find({std::string(subject), msg_ids[i]});
        const bool recent =
            seen != seen_.end() && !expired(seen->second, kDedupeWindow, clock_.now());
        if (recent ||
            std::find(fresh_ids.begin(), fresh_ids.end(), msg_ids[i]) != fresh_ids.end()) {
          continue;
        }
        fresh.push_back(texts[i]);
        fresh_ids.push_back(msg_ids[i]);
      }
      const std::size_t duplicates = count - fresh.size();
      if (fresh.empty()) {
        check(status == PublishStatus::ok && result.duplicates == duplicates,
              "publish of duplicates only");
        duplicates_ += duplicates;
        return;
      }
      texts = std::move(fresh);
    }
    const std::size_t duplicates = count - texts.size();
    for (const auto& text : texts) {
      if (text.size() > limits_.max_message_bytes) {
        check(status == PublishStatus::message_too_large, "publish too large");
        return;
      }
    }
    std::vector<ModelQueue*> matched;
    for (auto& subscription : subscriptions_) {
      if (subscription.alive && matches(subscription.pattern, subject) &&
          std::find(matched.begin(), matched.end(), subscription.queue) == matched.end()) {
        matched.push_back(subscription.queue);
      }
    }
    if (matched.empty()) {
      check(status == PublishStatus::no_subscribers, "publish no subscribers");
      return;
    }
    const std::uint64_t bound = limits_.max_pending_per_queue;
    const bool drop_oldest = bound > 0 && limits_.slow_queue_policy == SlowQueuePolicy::drop_oldest;
    if (bound > 0 && !drop_oldest) {
      for (const ModelQueue* queue : matched) {
        if (queue->messages.size() + queue->held_out() + texts.size() > bound) {
          check(status == PublishStatus::queue_full, "publish queue full");
          return;
        }
      }
    }
    // drop-oldest never drops what a consumer holds: when that leaves no room, it refuses.
    if (drop_oldest) {
      for (const ModelQueue* queue : matched) {
        if (queue->held_out() + std::min<std::size_t>(texts.size(), bound) > bound) {
          check(status == PublishStatus::queue_full, "publish queue full of deliveries");
          return;
        }
      }
    }
    // Append everything, then trim each queue from the front to the bound, on copies: the broker
    // must end exactly there, or refuse and leave everything as it was.
    std::vector<std::deque<ModelMessage>> after;
    std::uint64_t trimmed = 0;
    for (const ModelQueue* queue : matched) {
      auto& messages = after.emplace_back(queue->messages);
      for (std::size_t i = 0; i < texts.size(); ++i) {
        messages.push_back({texts[i], clock_.now(), published_messages_ + 1 + i});
      }
      while (drop_oldest && messages.size() + queue->held_out() > bound) {
        messages.pop_front();
        ++trimmed;
      }
    }
    std::uint64_t new_messages = pending_messages();
    std::uint64_t new_bytes = pending_bytes();
    for (std::size_t i = 0; i < matched.size(); ++i) {
      new_messages = new_messages - matched[i]->messages.size() + after[i].size();
      new_bytes = new_bytes - bytes_of(matched[i]->messages) + bytes_of(after[i]);
    }
    if (new_messages > limits_.max_pending || new_bytes > limits_.max_pending_bytes) {
      check(status == PublishStatus::overflow, "publish overflow");
      return;
    }
    check(status == PublishStatus::ok, "publish ok");
    check(result.duplicates == duplicates, "publish duplicates");
    duplicates_ += duplicates;
    for (const auto& msg_id : fresh_ids) {
      seen_[{std::string(subject), msg_id}] = clock_.now();
    }
    published_messages_ += texts.size();
    dropped_[static_cast<std::size_t>(DropReason::queue_full)] += trimmed;
    for (std::size_t i = 0; i < matched.size(); ++i) {
      matched[i]->messages = std::move(after[i]);
    }
    for (ModelQueue* queue : matched) {
      serve_waiters(*queue);
    }
  }

  void fetch(Input& in, bool wait) {
    if (subscriptions_.empty()) {
      return;
    }
    const std::size_t index = in.next(subscriptions_.size());
    ModelSubscription& subscription = subscriptions_[index];
    const bool wrong_subject = in.next(8) == 0;
    const std::string subject = wrong_subject ? subscription.pattern + ".z" : subscription.pattern;
    const std::size_t max = 1 + in.next(4);
    FuzzWaiter& waiter = waiters_.emplace_back();
    const auto status = wait ? broker_.fetch_or_wait(subject, subscription.id, max, waiter)
                             : broker_.fetch(subject, subscription.id, max, waiter.messages);
    if (subject.size() > limits_.max_subject_length) {
      check(status == FetchStatus::subject_too_long, "fetch subject too long");
      return;
    }
    if (!valid_pattern(subject)) {
      check(status == FetchStatus::invalid_subject, "fetch invalid subject");
      return;
    }
    if (!subscription.alive || wrong_subject) {
      check(status == FetchStatus::bad_id, "fetch bad id");
      return;
    }
    subscription.last_active = clock_.now();
    drop_expired(*subscription.queue);
    std::vector<std::string> expected = take(*subscription.queue, max);
    if (wait && expected.empty()) {
      check(status == FetchStatus::waiting, "fetch waiting");
      subscription.queue->waiters.push_back({&waiter, index, max});
      return;
    }
    check(status == FetchStatus::ok, "fetch ok");
    expect_messages(waiter, expected);
  }

  void cancel(Input& in) {
    if (waiters_.empty()) {
      return;
    }
    auto waiter = waiters_.begin();
    std::advance(waiter, static_cast<std::ptrdiff_t>(in.next(waiters_.size())));
    bool was_waiting = false;
    for (auto& queue : queues_) {
      std::erase_if(queue.waiters, [&](const ModelWaiter& w) {
        if (w.waiter != &*waiter) {
          return false;
        }
        was_waiting = true;
        subscriptions_[w.subscription].last_active = clock_.now();
        return true;
      });
    }
    check(broker_.cancel_wait(*waiter) == was_waiting, "cancel_wait");
  }

  void unsubscribe(Input& in) {
    if (subscriptions_.empty()) {
      return;
    }
    const std::size_t index = in.next(subscriptions_.size());
    ModelSubscription& subscription = subscriptions_[index];
    const auto status = broker_.unsubscribe(subscription.pattern, subscription.id);
    if (!subscription.alive) {
      check(status == UnsubscribeStatus::bad_id, "unsubscribe bad id");
      return;
    }
    check(status == UnsubscribeStatus::ok, "unsubscribe ok");
    subscription.alive = false;
    ModelQueue& queue = *subscription.queue;
    std::erase_if(queue.waiters, [&](const ModelWaiter& w) {
      if (w.subscription != index) {
        return false;
      }
      check(w.waiter->woken && w.waiter->messages.empty(), "unsubscribe wakes its waiters empty");
      return true;
    });
    leave(queue, DropReason::unsubscribe);
  }

  // An operator's purge of a subscription's queue (Broker::purge_subscription): what waits to be
  // handed out goes, what is in flight (nacked with a delay included) stays.
  void purge(Input& in) {
    if (subscriptions_.empty()) {
      return;
    }
    const ModelSubscription& subscription = subscriptions_[in.next(subscriptions_.size())];
    const PurgeResult result = broker_.purge_subscription(subscription.id);
    if (!subscription.alive) {
      check(result.status == AdminStatus::bad_id, "purge bad id");
      return;
    }
    ModelQueue& queue = *subscription.queue;
    const std::size_t pending = queue.messages.size() + queue.again.size();
    check(result.status == AdminStatus::ok && result.purged == pending, "purge count");
    dropped_[static_cast<std::size_t>(DropReason::purged)] += pending;
    queue.messages.clear();
    queue.again.clear();
  }

  void advance(Input& in) { clock_.advance(kSteps[in.next(std::size(kSteps))]); }

  // ack, nack (now or after a delay) or extend, of receipts handed out lately or made up.
  void answer(Input& in) {
    if (subscriptions_.empty()) {
      return;
    }
    ModelSubscription& subscription = subscriptions_[in.next(subscriptions_.size())];
    const std::size_t kind = in.next(3);
    std::vector<Receipt> receipts;
    for (std::size_t count = in.next(3); count > 0; --count) {
      receipts.push_back(issued_.empty() || in.next(8) == 0
                             ? Receipt{1 + in.next(8), 1 + static_cast<std::uint32_t>(in.next(2))}
                             : issued_[in.next(issued_.size())]);
    }
    const milliseconds delay = in.next(2) == 0 ? milliseconds(0) : milliseconds(500);
    const AckResult result =
        kind == 0   ? broker_.ack(subscription.pattern, subscription.id, receipts)
        : kind == 1 ? broker_.nack(subscription.pattern, subscription.id, receipts, delay)
                    : broker_.extend(subscription.pattern, subscription.id, receipts);
    if (!subscription.alive) {
      check(result.status == AckStatus::bad_id, "answer bad id");
      return;
    }
    ModelQueue& queue = *subscription.queue;
    if (!queue.ack) {
      check(result.status == AckStatus::not_ack_mode, "answer not ack mode");
      return;
    }
    check(result.status == AckStatus::ok, "answer ok");
    const TimePoint now = clock_.now();
    subscription.last_active = now;
    std::size_t applied = 0;
    std::vector<Receipt> stale;
    std::vector<std::uint64_t> nacked;
    for (const Receipt& receipt : receipts) {
      const auto entry = queue.delivered.find(receipt.seq);
      if (entry == queue.delivered.end() || !entry->second.outstanding ||
          entry->second.deliveries != receipt.delivery) {
        stale.push_back(receipt);
        continue;
      }
      ++applied;
      if (kind == 0) {
        queue.delivered.erase(entry);
        --queue.outstanding;
        ++acked_;
      } else if (kind == 1) {
        entry->second.outstanding = false;
        --queue.outstanding;
        ++nacked_;
        nacked.push_back(receipt.seq);
      } else {
        entry->second.deadline = now + kAckOptions.ack_wait;
      }
    }
    for (const std::uint64_t seq : nacked) {
      if (delay.count() > 0) {
        queue.delivered[seq].deadline = now + delay;
      } else {
        settle(queue, seq);
      }
    }
    check(result.applied == applied, "receipts applied");
    check(result.stale == stale, "stale receipts");
    if (kind != 2) {
      serve_waiters(queue);
    }
  }

  // Every delivery past its deadline is pending again (or dropped at max_deliveries); then the
  // waiting fetches of those queues take what they can.
  void expire_deliveries() {
    broker_.expire_deliveries();
    const TimePoint now = clock_.now();
    for (auto& queue : queues_) {
      std::vector<std::uint64_t> due;
      for (const auto& [seq, delivery] : queue.delivered) {
        if (delivery.deadline <= now) {
          due.push_back(seq);
        }
      }
      for (const std::uint64_t seq : due) {
        if (queue.delivered[seq].outstanding) {
          --queue.outstanding;
        }
        settle(queue, seq);
      }
      if (!due.empty()) {
        serve_waiters(queue);
      }
    }
  }

  // Messages first, then idle subscriptions, as the broker's sweep does.
  void expire() {
    broker_.expire();
    const TimePoint now = clock_.now();
    for (auto& queue : queues_) {
      drop_expired(queue);
    }
    for (std::size_t index = 0; index < subscriptions_.size(); ++index) {
      ModelSubscription& subscription = subscriptions_[index];
      if (!subscription.alive || !expired(subscription.last_active, limits_.subscriber_ttl, now)) {
        continue;
      }
      const bool waiting =
          std::any_of(subscription.queue->waiters.begin(), subscription.queue->waiters.end(),
                      [index](const ModelWaiter& w) { return w.subscription == index; });
      if (waiting) {
        subscription.last_active = now;  // a waiting fetch is activity
        continue;
      }
      subscription.alive = false;
      leave(*subscription.queue, DropReason::subscriber_ttl);
    }
  }

  void check_totals() const {
    const Totals totals = broker_.totals();
    check(totals.pending_messages == pending_messages(), "pending messages");
    check(totals.pending_bytes == pending_bytes(), "pending bytes");
    std::size_t waiting = 0;
    std::size_t alive = 0;
    for (const auto& queue : queues_) {
      waiting += queue.waiters.size();
    }
    for (const auto& subscription : subscriptions_) {
      alive += subscription.alive ? 1 : 0;
    }
    check(totals.waiting_fetches == waiting, "waiting fetches");
    check(totals.subscriptions == alive, "subscriptions");
    check(totals.counters.published == published_messages_, "published counter");
    check(totals.counters.delivered == delivered_, "delivered counter");
    check(totals.counters.duplicates == duplicates_, "duplicates counter");
    check(totals.counters.acked == acked_, "acked counter");
    check(totals.counters.nacked == nacked_, "nacked counter");
    check(totals.counters.redelivered == redelivered_, "redelivered counter");
    std::uint64_t in_flight = 0;
    for (const auto& queue : queues_) {
      in_flight += queue.outstanding;
    }
    check(totals.in_flight == in_flight, "in flight");
    for (std::size_t reason = 0; reason < std::size(dropped_); ++reason) {
      check(totals.counters.dropped[reason] == dropped_[reason],
            name_of(static_cast<DropReason>(reason)));
    }
  }

 private:
  std::vector<std::string> take(ModelQueue& queue, std::size_t max) {
    if (queue.ack) {
      return deliver(queue, max);
    }
    std::vector<std::string> taken;
    while (taken.size() < max && !queue.messages.empty()) {
      taken.push_back(std::move(queue.messages.front().text));
      queue.messages.pop_front();
    }
    delivered_ += taken.size();
    return taken;
  }

  // Pending-again messages first, then never-delivered ones, each in publish order, up to
  // max_in_flight outstanding.
  std::vector<std::string> deliver(ModelQueue& queue, std::size_t max) {
    std::vector<std::string> taken;
    std::size_t count = std::min<std::size_t>(max, kAckOptions.max_in_flight - queue.outstanding);
    const TimePoint deadline = clock_.now() + kAckOptions.ack_wait;
    const auto hand_out = [&](std::uint64_t seq, std::string text, std::uint32_t before) {
      taken.push_back(text);
      queue.delivered[seq] = {std::move(text), before + 1, deadline, true};
      ++queue.outstanding;
      issued_.push_back(Receipt{seq, before + 1});
      if (issued_.size() > 16) {
        issued_.erase(issued_.begin());
      }
      --count;
    };
    while (count > 0 && !queue.again.empty()) {
      auto oldest = queue.again.begin();
      hand_out(oldest->first, std::move(oldest->second.text), oldest->second.deliveries);
      queue.again.erase(oldest);
      ++redelivered_;
    }
    while (count > 0 && !queue.messages.empty()) {
      hand_out(queue.messages.front().seq, std::move(queue.messages.front().text), 0);
      queue.messages.pop_front();
      ++delivered_;
    }
    return taken;
  }

  // A delivery no longer outstanding: pending again, or dropped at max_deliveries.
  void settle(ModelQueue& queue, std::uint64_t seq) {
    auto entry = queue.delivered.find(seq);
    if (entry->second.deliveries < kAckOptions.max_deliveries) {
      queue.again[seq] = std::move(entry->second);
    } else {
      ++dropped_[static_cast<std::size_t>(DropReason::max_deliveries)];
    }
    queue.delivered.erase(entry);
  }

  void drop_expired(ModelQueue& queue) {
    while (!queue.messages.empty() &&
           expired(queue.messages.front().published, limits_.message_ttl, clock_.now())) {
      queue.messages.pop_front();
      ++dropped_[static_cast<std::size_t>(DropReason::message_ttl)];
    }
  }

  // A member leaves; the last one takes the queue's messages with it.
  void leave(ModelQueue& queue, DropReason reason) {
    if (--queue.members == 0) {
      dropped_[static_cast<std::size_t>(reason)] += queue.messages.size() + queue.held_out();
      queue.messages.clear();
      queue.delivered.clear();
      queue.again.clear();
      queue.outstanding = 0;
    }
  }

  [[nodiscard]] std::size_t alive_subscriptions() const {
    return static_cast<std::size_t>(
        std::count_if(subscriptions_.begin(), subscriptions_.end(),
                      [](const ModelSubscription& subscription) { return subscription.alive; }));
  }

  static std::uint64_t bytes_of(const std::deque<ModelMessage>& messages) {
    std::uint64_t bytes = 0;
    for (const auto& message : messages) {
      bytes += message.text.size();
    }
    return bytes;
  }

  // A waiting fetch on an ack-mode queue answers deliveries.
  static void expect_messages(const FuzzWaiter& waiter, const std::vector<std::string>& expected) {
    const std::size_t count = waiter.ack ? waiter.deliveries.size() : waiter.messages.size();
    check(count == expected.size(), "message count");
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const Message& message = waiter.ack ? waiter.deliveries[i].message : waiter.messages[i];
      check(message.data() == expected[i], "message order and content");
    }
  }

  void serve_waiters(ModelQueue& queue) {
    const auto can_serve = [&queue] {
      if (!queue.ack) {
        return !queue.messages.empty();
      }
      return (!queue.messages.empty() || !queue.again.empty()) &&
             queue.outstanding < kAckOptions.max_in_flight;
    };
    while (!queue.waiters.empty() && can_serve()) {
      const ModelWaiter waiter = queue.waiters.front();
      queue.waiters.pop_front();
      subscriptions_[waiter.subscription].last_active = clock_.now();
      check(waiter.waiter->woken, "waiter woken by publish");
      expect_messages(*waiter.waiter, take(queue, waiter.max));
    }
    for (const auto& waiter : queue.waiters) {
      check(!waiter.waiter->woken, "waiter left waiting");
    }
  }

  // Delivered and pending-again messages count as pending.
  [[nodiscard]] std::uint64_t pending_messages() const {
    std::uint64_t count = 0;
    for (const auto& queue : queues_) {
      count += queue.messages.size() + queue.held_out();
    }
    return count;
  }

  [[nodiscard]] std::uint64_t pending_bytes() const {
    std::uint64_t bytes = 0;
    for (const auto& queue : queues_) {
      bytes += bytes_of(queue.messages);
      for (const auto* held : {&queue.delivered, &queue.again}) {
        for (const auto& [seq, delivery] : *held) {
          bytes += delivery.text.size();
        }
      }
    }
    return bytes;
  }

  // Declared before the broker, so they outlive it: it may still link some of them.
  std::list<FuzzWaiter> waiters_;
  std::deque<ModelQueue> queues_;
  std::map<std::pair<std::string, std::string>, ModelQueue*> groups_;
  std::vector<ModelSubscription> subscriptions_;
  std::size_t published_ = 0;
  std::uint64_t published_messages_ = 0;
  std::uint64_t delivered_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t acked_ = 0;
  std::uint64_t nacked_ = 0;
  std::uint64_t redelivered_ = 0;
  std::vector<Receipt> issued_;  // the latest receipts handed out
  // When each (subject, msg_id) was last published.
  std::map<std::pair<std::string, std::string>, TimePoint> seen_;
  std::uint64_t dropped_[static_cast<std::size_t>(DropReason::count)] = {};
  Limits limits_;
  ManualClock clock_;
  Broker broker_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  Model model(limits_from(in));
  while (!in.done()) {
    switch (in.next(11)) {
      case 0:
        model.subscribe(in);
        break;
      case 1:
        model.publish(in);
        break;
      case 2:
        model.fetch(in, false);
        break;
      case 3:
        model.fetch(in, true);
        break;
      case 4:
        model.cancel(in);
        break;
      case 5:
        model.advance(in);
        break;
      case 6:
        model.expire();
        break;
      case 7:
        model.answer(in);
        break;
      case 8:
        model.expire_deliveries();
        break;
      case 9:
        model.unsubscribe(in);
        break;
      default:
        model.purge(in);
        break;
    }
    model.check_totals();
  }
  return 0;
}
