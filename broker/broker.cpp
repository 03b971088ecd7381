#include "broker/broker.hpp"

#include <algorithm>

#include "broker/subject.hpp"

namespace gophermq::broker {

Broker::Broker(Limits limits) : limits_(limits) {}
Broker::~Broker() = default;

SubscribeStatus Broker::subscribe(std::string_view id, std::string_view subject,
                                  std::optional<std::string_view> group) {
  if (!is_valid_subject(subject, SubjectUse::subscribe, limits_.max_subject_length)) {
    return SubscribeStatus::invalid_subject;
  }
  if (group && !is_valid_group(*group, limits_.max_subject_length)) {
    return SubscribeStatus::invalid_group;
  }
  if (subscriptions_.contains(id)) {
    return SubscribeStatus::duplicate_id;
  }
  auto topic = topics_.find(subject);
  if (topic == topics_.end()) {
    topic = topics_.emplace(std::string(subject), Topic{}).first;
  }
  Subscription subscription{std::string(subject), std::string(group.value_or("")), nullptr,
                            nullptr};
  if (!group) {
    subscription.own_queue = std::make_unique<Queue>();
    subscription.own_queue->members = 1;
    subscription.queue = subscription.own_queue.get();
    index_.insert(subject, subscription.queue);
  } else {
    subscription.queue = &join_group(topic->second, subject, *group);
  }
  ++topic->second.subscriptions;
  subscriptions_.emplace(std::string(id), std::move(subscription));
  return SubscribeStatus::ok;
}

Queue& Broker::join_group(Topic& topic, std::string_view subject, std::string_view group) {
  auto found = topic.groups.find(group);
  if (found == topic.groups.end()) {
    found = topic.groups.emplace(std::string(group), std::make_unique<Queue>()).first;
    index_.insert(subject, found->second.get());
  }
  ++found->second->members;
  return *found->second;
}

PublishStatus Broker::publish(std::string_view subject, std::span<const Message> messages) {
  if (!is_valid_subject(subject, SubjectUse::publish, limits_.max_subject_length)) {
    return PublishStatus::invalid_subject;
  }
  matched_.clear();
  index_.match(subject, matched_);
  if (matched_.empty()) {
    return PublishStatus::no_subscribers;
  }
  std::uint64_t batch_bytes = 0;
  for (const Message& message : messages) {
    batch_bytes += message.size();
  }
  const std::uint64_t copies = matched_.size();
  if (pending_messages_ + copies * messages.size() > limits_.max_pending ||
      pending_bytes_ + copies * batch_bytes > limits_.max_pending_bytes) {
    return PublishStatus::overflow;
  }
  for (Queue* queue : matched_) {
    queue->messages.insert(queue->messages.end(), messages.begin(), messages.end());
  }
  pending_messages_ += copies * messages.size();
  pending_bytes_ += copies * batch_bytes;
  counters_.published += messages.size();
  return PublishStatus::ok;
}

FetchStatus Broker::fetch(std::string_view subject, std::string_view id, std::size_t max,
                          std::vector<Message>& out) {
  if (!is_valid_subject(subject, SubjectUse::subscribe, limits_.max_subject_length)) {
    return FetchStatus::invalid_subject;
  }
  Subscription* subscription = find_subscription(subject, id);
  if (subscription == nullptr) {
    return FetchStatus::bad_id;
  }
  auto& pending = subscription->queue->messages;
  const std::size_t count = std::min(max, pending.size());
  out.reserve(out.size() + count);
  for (std::size_t i = 0; i < count; ++i) {
    pending_bytes_ -= pending.front().size();
    out.push_back(std::move(pending.front()));
    pending.pop_front();
  }
  pending_messages_ -= count;
  counters_.delivered += count;
  return FetchStatus::ok;
}

UnsubscribeStatus Broker::unsubscribe(std::string_view subject, std::string_view id) {
  if (!is_valid_subject(subject, SubjectUse::subscribe, limits_.max_subject_length)) {
    return UnsubscribeStatus::invalid_subject;
  }
  Subscription* found = find_subscription(subject, id);
  if (found == nullptr) {
    return UnsubscribeStatus::bad_id;
  }
  const auto topic = topics_.find(subject);
  Subscription& subscription = *found;
  if (subscription.own_queue) {
    drop_pending(*subscription.own_queue, DropReason::unsubscribe);
    index_.erase(subject, subscription.own_queue.get());
  } else {
    leave_group(topic->second, subscription);
  }
  if (--topic->second.subscriptions == 0) {
    topics_.erase(topic);
  }
  subscriptions_.erase(subscriptions_.find(id));
  return UnsubscribeStatus::ok;
}

void Broker::leave_group(Topic& topic, const Subscription& subscription) {
  const auto group = topic.groups.find(subscription.group);
  if (--group->second->members > 0) {
    return;
  }
  drop_pending(*group->second, DropReason::unsubscribe);
  index_.erase(subscription.subject, group->second.get());
  topic.groups.erase(group);
}

void Broker::drop_pending(Queue& queue, DropReason reason) {
  for (const Message& message : queue.messages) {
    pending_bytes_ -= message.size();
  }
  pending_messages_ -= queue.messages.size();
  counters_.dropped[static_cast<std::size_t>(reason)] += queue.messages.size();
  queue.messages.clear();
}

Broker::Subscription* Broker::find_subscription(std::string_view subject, std::string_view id) {
  const auto found = subscriptions_.find(id);
  if (found == subscriptions_.end() || found->second.subject != subject) {
    return nullptr;
  }
  return &found->second;
}

Totals Broker::totals() const {
  return Totals{pending_messages_, pending_bytes_, subscriptions_.size(), topics_.size(),
                counters_};
}

}  // namespace gophermq::broker
