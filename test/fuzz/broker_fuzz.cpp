// Arbitrary sequences of broker operations, checked step by step against a reference model that
// is too simple to be wrong: queues as deques of strings, matching by splitting on '.', a time
// moved by hand, and TTLs compared as elapsed time so no sum can overflow. Every status, every
// fetched message, every woken waiter, the pending totals and every counter must agree. The first
// bytes choose the limits: TTLs off, short or too large for a time point, max-subscriptions, and
// max-pending-per-queue with either policy. Half the publishes carry msg_ids, checked against a
// model of the dedupe window (a map of when each was last published). Ack mode (ack, nack,
// extend, timeouts) is not in the model yet: the randomized replay tests cover its journal.
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
};

struct ModelQueue {
  std::deque<ModelMessage> messages;
  std::list<ModelWaiter> waiters;
  std::size_t members = 0;
};

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
    const auto status = broker_.subscribe(id, pattern, group);
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
    if (alive_subscriptions() >= limits_.max_subscriptions) {
      check(status == SubscribeStatus::too_many_subscriptions, "subscribe too many");
      return;
    }
    check(status == SubscribeStatus::ok, "subscribe ok");
    ModelQueue* queue = nullptr;
    if (group) {
      auto& shared = groups_[{std::string(pattern), std::string(*group)}];
      if (shared == nullptr) {
        shared = &queues_.emplace_back();
      }
      queue = shared;
    } else {
      queue = &queues_.emplace_back();
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
        if (queue->messages.size() + texts.size() > bound) {
          check(status == PublishStatus::queue_full, "publish queue full");
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
      for (const auto& text : texts) {
        messages.push_back({text, clock_.now()});
      }
      while (drop_oldest && messages.size() > bound) {
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

  void advance(Input& in) { clock_.advance(kSteps[in.next(std::size(kSteps))]); }

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
    for (std::size_t reason = 0; reason < std::size(dropped_); ++reason) {
      check(totals.counters.dropped[reason] == dropped_[reason],
            name_of(static_cast<DropReason>(reason)));
    }
  }

 private:
  std::vector<std::string> take(ModelQueue& queue, std::size_t max) {
    std::vector<std::string> taken;
    while (taken.size() < max && !queue.messages.empty()) {
      taken.push_back(std::move(queue.messages.front().text));
      queue.messages.pop_front();
    }
    delivered_ += taken.size();
    return taken;
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
      dropped_[static_cast<std::size_t>(reason)] += queue.messages.size();
      queue.messages.clear();
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

  static void expect_messages(const FuzzWaiter& waiter, const std::vector<std::string>& expected) {
    check(waiter.messages.size() == expected.size(), "message count");
    for (std::size_t i = 0; i < expected.size(); ++i) {
      check(waiter.messages[i].data() == expected[i], "message order and content");
    }
  }

  void serve_waiters(ModelQueue& queue) {
    while (!queue.waiters.empty() && !queue.messages.empty()) {
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

  [[nodiscard]] std::uint64_t pending_messages() const {
    std::uint64_t count = 0;
    for (const auto& queue : queues_) {
      count += queue.messages.size();
    }
    return count;
  }

  [[nodiscard]] std::uint64_t pending_bytes() const {
    std::uint64_t bytes = 0;
    for (const auto& queue : queues_) {
      bytes += bytes_of(queue.messages);
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
    switch (in.next(8)) {
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
      default:
        model.unsubscribe(in);
        break;
    }
    model.check_totals();
  }
  return 0;
}
