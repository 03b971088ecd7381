// Arbitrary sequences of broker operations, checked step by step against a reference model that
// is too simple to be wrong: queues as deques of strings, matching by splitting on '.'. Every
// status, every fetched message, every woken waiter and the pending totals must agree.
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
constexpr Limits kLimits{.max_pending = 24,
                         .max_pending_bytes = 160,
                         .max_subject_length = 16,
                         .max_message_bytes = 12,
                         .subscriber_ttl = std::chrono::milliseconds(0),
                         .message_ttl = std::chrono::milliseconds(0)};

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

struct ModelQueue {
  std::deque<std::string> messages;
  std::list<ModelWaiter> waiters;
  std::size_t members = 0;
};

struct ModelSubscription {
  std::string id;
  std::string pattern;
  std::optional<std::string> group;
  ModelQueue* queue;
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

class Model {
 public:
  Model() : broker_(kLimits) {}

  void subscribe(Input& in) {
    const std::string_view pattern = kPatterns[in.next(std::size(kPatterns))];
    const auto group = kGroups[in.next(std::size(kGroups))];
    const std::string id = "s" + std::to_string(subscriptions_.size());
    const auto status = broker_.subscribe(id, pattern, group);
    if (!valid_pattern(pattern) || pattern.size() > kLimits.max_subject_length) {
      check(status == SubscribeStatus::invalid_subject, "subscribe invalid subject");
      return;
    }
    if (group && (group->empty() || group->find('.') != std::string_view::npos)) {
      check(status == SubscribeStatus::invalid_group, "subscribe invalid group");
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
                              group ? std::optional<std::string>(*group) : std::nullopt, queue});
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
    const auto status = broker_.publish(subject, batch);
    if (!valid_subject(subject) || subject.size() > kLimits.max_subject_length) {
      check(status == PublishStatus::invalid_subject, "publish invalid subject");
      return;
    }
    std::uint64_t bytes = 0;
    for (const auto& text : texts) {
      if (text.size() > kLimits.max_message_bytes) {
        check(status == PublishStatus::message_too_large, "publish too large");
        return;
      }
      bytes += text.size();
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
    if (pending_messages() + matched.size() * count > kLimits.max_pending ||
        pending_bytes() + matched.size() * bytes > kLimits.max_pending_bytes) {
      check(status == PublishStatus::overflow, "publish overflow");
      return;
    }
    check(status == PublishStatus::ok, "publish ok");
    for (ModelQueue* queue : matched) {
      queue->messages.insert(queue->messages.end(), texts.begin(), texts.end());
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
    const ModelSubscription& subscription = subscriptions_[index];
    const bool wrong_subject = in.next(8) == 0;
    const std::string subject = wrong_subject ? subscription.pattern + ".z" : subscription.pattern;
    const std::size_t max = 1 + in.next(4);
    FuzzWaiter& waiter = waiters_.emplace_back();
    const auto status = wait ? broker_.fetch_or_wait(subject, subscription.id, max, waiter)
                             : broker_.fetch(subject, subscription.id, max, waiter.messages);
    if (!valid_pattern(subject) || subject.size() > kLimits.max_subject_length) {
      check(status == FetchStatus::invalid_subject, "fetch invalid subject");
      return;
    }
    if (!subscription.alive || wrong_subject) {
      check(status == FetchStatus::bad_id, "fetch bad id");
      return;
    }
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
      was_waiting |= std::erase_if(queue.waiters,
                                   [&](const ModelWaiter& w) { return w.waiter == &*waiter; }) > 0;
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
    if (--queue.members == 0) {
      queue.messages.clear();
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
  }

 private:
  static std::vector<std::string> take(ModelQueue& queue, std::size_t max) {
    std::vector<std::string> taken;
    while (taken.size() < max && !queue.messages.empty()) {
      taken.push_back(std::move(queue.messages.front()));
      queue.messages.pop_front();
    }
    return taken;
  }

  static void expect_messages(const FuzzWaiter& waiter, const std::vector<std::string>& expected) {
    check(waiter.messages.size() == expected.size(), "message count");
    for (std::size_t i = 0; i < expected.size(); ++i) {
      check(waiter.messages[i].data() == expected[i], "message order and content");
    }
  }

  static void serve_waiters(ModelQueue& queue) {
    while (!queue.waiters.empty() && !queue.messages.empty()) {
      const ModelWaiter waiter = queue.waiters.front();
      queue.waiters.pop_front();
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
      for (const auto& message : queue.messages) {
        bytes += message.size();
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
  Broker broker_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  Model model;
  while (!in.done()) {
    switch (in.next(6)) {
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
      default:
        model.unsubscribe(in);
        break;
    }
    model.check_totals();
  }
  return 0;
}
