#include "broker/broker.hpp"

#include <algorithm>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <unordered_set>
#include <utility>

#include "broker/subject.hpp"

namespace gophermq::broker {

namespace {

// Messages published this close together share one Stamp. The run keeps its newest time, so a
// message may outlive message-ttl by up to one tick but never leaves before it.
std::chrono::milliseconds stamp_tick(std::chrono::milliseconds message_ttl) {
  return std::max(std::chrono::milliseconds(1), message_ttl / 100);
}

bool has_wildcards(std::string_view pattern) {
  return pattern.find_first_of("*>") != std::string_view::npos;
}

}  // namespace

QueueChange Queue::push(std::span<const Message> messages, std::uint64_t first_seq,
                        std::uint64_t bytes, TimePoint now, std::chrono::milliseconds tick,
                        const SubjectRef& subject) {
  for (const Message& message : messages) {
    messages_.push_back(message);
    messages_.back().set_seq(first_seq++);
    if (wildcard_) {
      subjects_.push_back(subject);
    }
  }
  bytes_ += bytes;
  if (tick.count() > 0 && !messages.empty()) {  // an empty batch leaves no empty stamp
    // Stamps only grow, even where adding the tick saturates or a replayed time goes back: each
    // is later than the one before, so a checkpoint's runs rebuild them exactly.
    if (!stamps_.empty() &&
        (saturating_add(stamps_.back().published, tick) > now || stamps_.back().published >= now)) {
      stamps_.back().published = std::max(stamps_.back().published, now);
      stamps_.back().count += messages.size();
    } else {
      stamps_.push_back(Stamp{now, messages.size()});
    }
  }
  return QueueChange{messages.size(), bytes};
}

QueueChange Queue::pop_front(std::size_t count, FetchedMessages* out,
                             std::vector<SubjectRef>* subjects) {
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < count; ++i) {
    bytes += messages_.front().size();
    if (out != nullptr) {
      out->push_back(std::move(messages_.front()));
    }
    messages_.pop_front();
    if (wildcard_) {
      if (subjects != nullptr) {
        subjects->push_back(std::move(subjects_.front()));
      }
      subjects_.pop_front();
    } else if (subjects != nullptr) {
      subjects->emplace_back();
    }
  }
  bytes_ -= bytes;
  for (std::size_t left = count; left > 0 && !stamps_.empty();) {
    Stamp& oldest = stamps_.front();
    const std::size_t consumed = std::min(left, oldest.count);
    oldest.count -= consumed;
    left -= consumed;
    if (oldest.count == 0) {
      stamps_.pop_front();
    }
  }
  return QueueChange{count, bytes};
}

std::string_view Queue::subject_at(std::size_t index) const noexcept {
  return wildcard_ ? subjects_[index].name() : topic_->name;
}

std::string_view Queue::published_to(const SubjectRef& subject) const noexcept {
  return wildcard_ ? subject.name() : topic_->name;
}

bool Queue::can_restore(std::span<const Message> messages, std::uint64_t last_seq) const noexcept {
  std::uint64_t previous = messages_.empty() ? 0 : messages_.back().seq();
  for (const Message& message : messages) {
    if (message.seq() <= previous || message.seq() > last_seq) {
      return false;
    }
    previous = message.seq();
  }
  return true;
}

QueueChange Queue::restore(std::span<const Message> messages, std::optional<TimePoint> published,
                           const SubjectRef& subject) {
  std::uint64_t bytes = 0;
  for (const Message& message : messages) {
    messages_.push_back(message);
    bytes += message.size();
    if (wildcard_) {
      subjects_.push_back(subject);
    }
  }
  bytes_ += bytes;
  if (published) {
    if (!stamps_.empty() && stamps_.back().published >= *published) {
      stamps_.back().count += messages.size();
    } else {
      stamps_.push_back(Stamp{*published, messages.size()});
    }
  }
  return QueueChange{messages.size(), bytes};
}

std::uint64_t Queue::front_bytes(std::size_t count) const {
  std::uint64_t bytes = 0;
  std::size_t seen = 0;
  messages_.for_each_until([&](const Message& message) {
    if (seen == count) {
      return false;
    }
    ++seen;
    bytes += message.size();
    return true;
  });
  return bytes;
}

std::size_t Queue::expired(TimePoint now, std::chrono::milliseconds ttl) const {
  std::size_t expired = 0;
  stamps_.for_each_until([&](const Stamp& stamp) {
    if (saturating_add(stamp.published, ttl) > now) {
      return false;
    }
    expired += stamp.count;
    return true;
  });
  return expired;
}

template <typename Choose>
QueueChange Queue::remove_if(Choose chosen, std::vector<std::uint64_t>& seqs) {
  const std::size_t size = messages_.size();
  std::vector<bool> kept(size);
  QueueChange removed;
  for (std::size_t i = 0; i < size; ++i) {
    const Message& message = messages_[i];
    kept[i] = !chosen(message, subject_at(i));
    if (!kept[i]) {
      seqs.push_back(message.seq());
      ++removed.messages;
      removed.bytes += message.size();
    }
  }
  if (removed.messages == 0) {
    return removed;
  }
  LazyDeque<Message> messages;
  LazyDeque<SubjectRef> subjects;
  for (std::size_t i = 0; i < size; ++i) {
    if (kept[i]) {
      messages.push_back(messages_[i]);
      if (wildcard_) {
        subjects.push_back(subjects_[i]);
      }
    }
  }
  // Each run keeps its stamp for the messages of it that stay, so none expires earlier or later.
  LazyDeque<Stamp> stamps;
  std::size_t index = 0;
  stamps_.for_each_until([&](const Stamp& stamp) {
    const auto first = kept.begin() + static_cast<std::ptrdiff_t>(index);
    const auto staying = static_cast<std::size_t>(
        std::count(first, first + static_cast<std::ptrdiff_t>(stamp.count), true));
    index += stamp.count;
    if (staying > 0) {
      stamps.push_back(Stamp{stamp.published, staying});
    }
    return true;
  });
  messages_ = std::move(messages);
  subjects_ = std::move(subjects);
  stamps_ = std::move(stamps);
  bytes_ -= removed.bytes;
  return removed;
}

std::string_view name_of(DropReason reason) {
  switch (reason) {
    case DropReason::unsubscribe:
      return "unsubscribe";
    case DropReason::subscriber_ttl:
      return "subscriber_ttl";
    case DropReason::message_ttl:
      return "message_ttl";
    case DropReason::queue_full:
      return "queue_full";
    case DropReason::max_deliveries:
      return "max_deliveries";
    case DropReason::purged:
      return "purged";
    case DropReason::count:
      break;
  }
  return "unknown";
}

Broker::Broker(Limits limits, const Clock& clock)
    : limits_(limits), clock_(clock), dedupe_(limits.dedupe_window) {}

Broker::~Broker() = default;

SubscribeStatus Broker::subscribe(std::string_view id, std::string_view subject,
                                  std::optional<std::string_view> group) {
  return subscribe(id, subject, group, AckOptions{});
}

SubscribeStatus Broker::subscribe(std::string_view id, std::string_view subject,
                                  std::optional<std::string_view> group, const AckOptions& options,
                                  std::string_view owner, bool ephemeral) {
  if (subject.size() > limits_.max_subject_length) {
    return SubscribeStatus::subject_too_long;
  }
  if (!is_valid_subject(subject, SubjectUse::subscribe, limits_.max_subject_length)) {
    return SubscribeStatus::invalid_subject;
  }
  if (group && !is_valid_group(*group, limits_.max_subject_length)) {
    return SubscribeStatus::invalid_group;
  }
  if (!is_valid(options, limits_.max_subject_length)) {
    return SubscribeStatus::invalid_ack_options;
  }
  const Queue* existing = nullptr;
  if (group) {
    if (const auto topic = topics_.find(subject); topic != topics_.end()) {
      if (const auto found = topic->second.groups.find(*group);
          found != topic->second.groups.end()) {
        existing = found->second.get();
      }
    }
  }
  // The queue holds the messages in flight, so all its members deliver by the same rules.
  if (existing != nullptr) {
    const AckOptions* held = existing->ack_options();
    if (held != nullptr ? *held != options : options.ack) {
      return SubscribeStatus::invalid_ack_options;
    }
  }
  if (subscriptions_.contains(id)) {
    return SubscribeStatus::duplicate_id;
  }
  if (subscriptions_.size() >= limits_.max_subscriptions) {
    return SubscribeStatus::too_many_subscriptions;
  }
  if (!journal_admits_change()) {
    return SubscribeStatus::storage_full;
  }
  Subscription& added = add_subscription(id, subject, group, clock_.now());
  added.ephemeral = ephemeral;
  if (existing == nullptr) {
    added.queue->set_ack_options(options);
  }
  added.owner = owner;
  if (journal_ != nullptr) {
    journal_->append(subscribe_record(added));
    if (!added.owner.empty()) {
      journal_->append(owner_record(added));
    }
  }
  return SubscribeStatus::ok;
}

bool Broker::may_use(std::string_view id, std::string_view caller) const {
  const auto found = subscriptions_.find(id);
  return found != subscriptions_.end() &&
         (caller.empty() || found->second.owner.empty() || found->second.owner == caller);
}

Record Broker::owner_record(const Subscription& subscription) {
  Record record;
  record.type = RecordType::owner;
  record.id = subscription.id;
  record.owner = subscription.owner;
  return record;
}

const AckOptions* Broker::ack_options(std::string_view subject, std::string_view id) const {
  const auto found = subscriptions_.find(id);
  if (found == subscriptions_.end() || found->second.subject != subject) {
    return nullptr;
  }
  static const AckOptions plain;
  const AckOptions* options = found->second.queue->ack_options();
  return options != nullptr ? options : &plain;
}

Record Broker::subscribe_record(const Subscription& subscription) {
  Record record;
  record.type = RecordType::subscribe;
  record.grouped = !subscription.own_queue;
  record.ephemeral = subscription.ephemeral;
  record.time = to_record_time(subscription.last_active);
  record.subject = subscription.subject;
  record.id = subscription.id;
  record.group = subscription.group;
  if (const AckOptions* options = subscription.queue->ack_options()) {
    record.type = RecordType::subscribe_ack;
    record.options = {static_cast<std::uint64_t>(options->ack_wait.count()),
                      options->max_deliveries, options->max_in_flight, options->dead_letter};
  }
  return record;
}

Subscription& Broker::add_subscription(std::string_view id, std::string_view subject,
                                       std::optional<std::string_view> group, TimePoint now) {
  auto topic = topics_.find(subject);
  if (topic == topics_.end()) {
    topic = topics_.emplace(std::string(subject), Topic{}).first;
    enter_ranking(*topic);
  }
  auto entry = subscriptions_.try_emplace(std::string(id)).first;
  Subscription& subscription = entry->second;
  subscription.id = entry->first;
  subscription.serial = ++subscription_serials_;
  subscription.subject = subject;
  subscription.group = group.value_or("");
  subscription.topic = &topic->second;
  if (!group) {
    subscription.own_queue =
        std::make_unique<Queue>(topic->second, subscription.id, false, has_wildcards(subject));
    subscription.own_queue->join();
    subscription.queue = subscription.own_queue.get();
    index_.insert(subject, subscription.queue);
  } else {
    subscription.queue = &join_group(topic->second, subject, *group);
  }
  ++topic->second.subscriptions;
  subscription.last_active = now;
  by_activity_.push_back(subscription);
  return subscription;
}

Queue& Broker::join_group(Topic& topic, std::string_view subject, std::string_view group) {
  auto found = topic.groups.find(group);
  if (found == topic.groups.end()) {
    found = topic.groups.emplace(std::string(group), nullptr).first;
    found->second = std::make_unique<Queue>(topic, found->first, true, has_wildcards(subject));
    index_.insert(subject, found->second.get());
  }
  found->second->join();
  return *found->second;
}

PublishResult Broker::publish(std::string_view subject, std::span<const Message> messages,
                              std::span<const std::string_view> msg_ids) {
  if (msg_ids.empty()) {
    return {publish(subject, messages), 0};
  }
  if (subject.size() > limits_.max_subject_length) {
    return {PublishStatus::subject_too_long, 0};
  }
  if (!is_valid_subject(subject, SubjectUse::publish, limits_.max_subject_length)) {
    return {PublishStatus::invalid_subject, 0};
  }
  if (msg_ids.size() != messages.size() ||
      !std::ranges::all_of(msg_ids,
                           [](std::string_view msg_id) { return is_valid_msg_id(msg_id); })) {
    return {PublishStatus::invalid_msg_id, 0};
  }
  // The window forgets old entries when it records new ones, not here: a publish of duplicates
  // only writes no record, so forgetting here would leave replay with more than this core.
  const TimePoint now = clock_.now();
  std::vector<Message> fresh;
  std::vector<std::string_view> fresh_ids;
  std::unordered_set<std::string_view> in_batch;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    // A msg_id twice in one batch is a duplicate of its first occurrence.
    if (dedupe_.contains(subject, msg_ids[i], now) || !in_batch.insert(msg_ids[i]).second) {
      continue;
    }
    fresh.push_back(messages[i]);
    fresh_ids.push_back(msg_ids[i]);
  }
  const std::size_t duplicates = messages.size() - fresh.size();
  if (fresh.empty()) {
    counters_.duplicates += duplicates;
    return {PublishStatus::ok, duplicates};
  }
  const PublishStatus status = publish_with(subject, fresh, fresh_ids, now, Admission::asked);
  if (status != PublishStatus::ok) {
    return {status, 0};
  }
  for (const std::string_view msg_id : fresh_ids) {
    dedupe_.seen(subject, msg_id, now);
  }
  counters_.duplicates += duplicates;
  return {PublishStatus::ok, duplicates};
}

PublishStatus Broker::publish(std::string_view subject, std::span<const Message> messages) {
  return publish_with(subject, messages, {}, std::nullopt, Admission::asked);
}

PublishStatus Broker::publish_with(std::string_view subject, std::span<const Message> messages,
                                   std::span<const std::string_view> msg_ids,
                                   std::optional<TimePoint> at, Admission admission) {
  if (subject.size() > limits_.max_subject_length) {
    return PublishStatus::subject_too_long;
  }
  if (!is_valid_subject(subject, SubjectUse::publish, limits_.max_subject_length)) {
    return PublishStatus::invalid_subject;
  }
  std::uint64_t batch_bytes = 0;
  for (const Message& message : messages) {
    if (message.size() > limits_.max_message_bytes) {
      return PublishStatus::message_too_large;
    }
    batch_bytes += message.size();
  }
  matched_.clear();
  index_.match(subject, matched_);
  if (matched_.empty()) {
    return PublishStatus::no_subscribers;
  }
  const std::uint64_t bound = limits_.max_pending_per_queue;
  const bool drop_oldest = bound > 0 && limits_.slow_queue_policy == SlowQueuePolicy::drop_oldest;
  if (bound > 0 && !drop_oldest) {
    for (const Queue* queue : matched_) {
      if (queue->held() + messages.size() > bound) {
        return PublishStatus::queue_full;
      }
    }
  }
  if (drop_oldest) {
    // drop-oldest only drops messages never delivered: one a consumer holds would lose its ack
    // without a word. When those in flight or pending again leave no room, the publish is refused.
    const std::size_t kept = std::min<std::size_t>(messages.size(), bound);
    for (const Queue* queue : matched_) {
      if (queue->held() - queue->size() + kept > bound) {
        return PublishStatus::queue_full;
      }
    }
  }
  // Under drop-oldest a batch larger than the bound keeps only its newest messages; the ones
  // before never reach any queue.
  const std::span<const Message> stored = drop_oldest && messages.size() > bound
                                              ? messages.last(static_cast<std::size_t>(bound))
                                              : messages;
  std::uint64_t stored_bytes = batch_bytes;
  for (const Message& message : messages.first(messages.size() - stored.size())) {
    stored_bytes -= message.size();
  }
  std::uint64_t freed_bytes = 0;
  const std::uint64_t freed = drop_oldest ? plan_drops(stored.size(), freed_bytes) : 0;
  // Each matched queue holds its own copy, so each counts against the broker-wide bounds.
  const std::uint64_t copies = matched_.size();
  if (pending_messages_ - freed + copies * stored.size() > limits_.max_pending ||
      pending_bytes_ - freed_bytes + copies * stored_bytes > limits_.max_pending_bytes) {
    return PublishStatus::overflow;
  }
  if (journal_ != nullptr && admission == Admission::asked &&
      !journal_->admit(subject, stored, msg_ids)) {
    return PublishStatus::storage_full;
  }
  const TimePoint now = at ? *at : limits_.message_ttl.count() > 0 ? clock_.now() : TimePoint{};
  const std::size_t never_stored = messages.size() - stored.size();
  // A batch takes consecutive numbers, the messages it never stores included, so a gap in what a
  // queue holds always means a drop.
  const std::uint64_t first_stored = last_seq_ + 1 + never_stored;
  // Only a wildcard queue keeps the published subject: interning it for exact queues alone would
  // insert and erase a table entry on every publish.
  const bool any_wildcard =
      std::ranges::any_of(matched_, [](const Queue* queue) { return queue->wildcard(); });
  const SubjectRef published_to = any_wildcard ? subject_names_.intern(subject) : SubjectRef();
  for (std::size_t i = 0; i < matched_.size(); ++i) {
    if (drop_oldest) {
      drop_front(*matched_[i], drops_[i], DropReason::queue_full);
      counters_.dropped[static_cast<std::size_t>(DropReason::queue_full)] += never_stored;
    }
    store(*matched_[i], stored, first_stored, stored_bytes, now, published_to);
  }
  if (journal_ != nullptr) {
    Record record;
    record.type = msg_ids.empty() ? RecordType::publish : RecordType::publish_ids;
    record.time = to_record_time(now);
    record.seq = last_seq_ + 1;
    record.count = never_stored;
    record.subject = subject;
    record.messages = stored;
    record.msg_ids = msg_ids;
    journal_->append(record);
  }
  last_seq_ += messages.size();
  counters_.published += messages.size();
  for (Queue* queue : matched_) {
    serve_waiters(*queue);
  }
  return PublishStatus::ok;
}

std::uint64_t Broker::plan_drops(std::size_t count, std::uint64_t& freed_bytes) {
  const std::uint64_t bound = limits_.max_pending_per_queue;
  std::uint64_t freed = 0;
  drops_.clear();
  for (Queue* queue : matched_) {
    const std::size_t held = queue->held();
    const std::size_t drop =
        held + count > bound ? std::min<std::size_t>(queue->size(), held + count - bound) : 0;
    freed_bytes += queue->front_bytes(drop);
    drops_.push_back(drop);
    freed += drop;
  }
  return freed;
}

FetchStatus Broker::fetch(std::string_view subject, std::string_view id, std::size_t max,
                          FetchedMessages& out) {
  Fetched fetched;
  fetched.messages = std::move(out);
  const FetchStatus status = fetch(subject, id, max, false, fetched);
  out = std::move(fetched.messages);
  for (Delivery& delivery : fetched.deliveries) {
    out.push_back(std::move(delivery.message));
  }
  return status;
}

FetchStatus Broker::fetch_deliveries(std::string_view subject, std::string_view id, std::size_t max,
                                     Deliveries& out) {
  const Subscription* subscription = find_subscription(subject, id);
  if (subscription != nullptr && subscription->queue->ack() == nullptr) {
    return FetchStatus::bad_id;
  }
  Fetched fetched;
  fetched.deliveries = std::move(out);
  const FetchStatus status = fetch(subject, id, max, true, fetched);
  out = std::move(fetched.deliveries);
  return status;
}

FetchStatus Broker::fetch(std::string_view subject, std::string_view id, std::size_t max, bool meta,
                          Fetched& out) {
  if (subject.size() > limits_.max_subject_length) {
    return FetchStatus::subject_too_long;
  }
  if (!is_valid_subject(subject, SubjectUse::subscribe, limits_.max_subject_length)) {
    return FetchStatus::invalid_subject;
  }
  Subscription* subscription = find_subscription(subject, id);
  if (subscription == nullptr) {
    return FetchStatus::bad_id;
  }
  const TimePoint now = clock_.now();
  touch(*subscription, now);
  drop_expired_messages(*subscription->queue, now);
  out.ack = subscription->queue->ack() != nullptr;
  journal_taken(
      *subscription, now,
      take(*subscription->queue, max, meta, out.messages, out.deliveries, subscription->serial));
  return FetchStatus::ok;
}

std::size_t Broker::take(Queue& queue, std::size_t max, bool meta, FetchedMessages& messages,
                         Deliveries& deliveries, std::uint64_t member) {
  if (queue.ack() != nullptr) {
    return deliver(queue, max, deliveries, member);
  }
  if (!meta) {
    return take(queue, max, messages);
  }
  const std::size_t count = std::min(max, queue.size());
  for (std::size_t i = 0; i < count; ++i) {
    deliveries.push_back(Delivery{queue.at(i), std::string(queue.subject_at(i)), 0, Receipt{}});
  }
  shrank(queue, queue.pop_front(count, nullptr));
  counters_.delivered += count;
  return count;
}

std::size_t Broker::deliver(Queue& queue, std::size_t max, Deliveries& out, std::uint64_t member) {
  AckQueue& state = *queue.ack();
  seqs_.clear();
  const std::size_t room = state.options.max_in_flight - state.outstanding;
  std::size_t count = std::min(max, room);
  const TimePoint deadline = saturating_add(clock_.now(), state.options.ack_wait);
  const auto hand_out = [&](Message message, SubjectRef published, std::uint32_t before) {
    const std::uint64_t seq = message.seq();
    const std::uint32_t deliveries = before + 1;
    out.push_back(Delivery{message, std::string(queue.published_to(published)), deliveries,
                           Receipt{seq, deliveries}});
    state.delivered.insert_or_assign(
        seq, AckQueue::Delivered{std::move(message), std::move(published), deliveries, deadline,
                                 true, member});
    deadlines_.emplace(deadline, &queue, seq);
    ++state.outstanding;
    ++queue.topic().in_flight;
    ++in_flight_;
  };
  while (count > 0 && !state.again.empty()) {
    const auto oldest = state.again.begin();
    seqs_.push_back(oldest->first);
    hand_out(std::move(oldest->second.message), std::move(oldest->second.subject),
             oldest->second.deliveries);
    state.again.erase(oldest);
    ++counters_.redelivered;
    --count;
  }
  FetchedMessages fresh;
  std::vector<SubjectRef> subjects;
  // They leave the deque but stay pending, so the counts are left as they are.
  const std::size_t taken = std::min(count, queue.size());
  queue.pop_front(taken, &fresh, &subjects);
  for (std::size_t i = 0; i < taken; ++i) {
    hand_out(std::move(fresh[i]), std::move(subjects[i]), 0);
  }
  counters_.delivered += taken;
  return taken;
}

void Broker::answered(Queue& queue, AckQueue& state) {
  --state.outstanding;
  --queue.topic().in_flight;
  --in_flight_;
}

AckQueue* Broker::find_ack_queue(std::string_view subject, std::string_view id, AckStatus& status,
                                 Queue*& queue, Subscription*& subscription) {
  if (subject.size() > limits_.max_subject_length) {
    status = AckStatus::subject_too_long;
    return nullptr;
  }
  if (!is_valid_subject(subject, SubjectUse::subscribe, limits_.max_subject_length)) {
    status = AckStatus::invalid_subject;
    return nullptr;
  }
  subscription = find_subscription(subject, id);
  if (subscription == nullptr) {
    status = AckStatus::bad_id;
    return nullptr;
  }
  queue = subscription->queue;
  if (queue->ack() == nullptr) {
    status = AckStatus::not_ack_mode;
    return nullptr;
  }
  if (!journal_admits_change()) {
    status = AckStatus::storage_full;
    return nullptr;
  }
  touch(*subscription, clock_.now());
  return queue->ack();
}

template <typename Apply>
void Broker::apply_receipts(Queue& queue, AckQueue& state, std::span<const Receipt> receipts,
                            AckResult& result, Apply apply) {
  seqs_.clear();
  for (const Receipt& receipt : receipts) {
    const auto entry = state.delivered.find(receipt.seq);
    if (entry == state.delivered.end() || !entry->second.outstanding ||
        entry->second.deliveries != receipt.delivery) {
      result.stale.push_back(receipt);
      continue;
    }
    deadlines_.erase({entry->second.deadline, &queue, receipt.seq});
    ++result.applied;
    seqs_.push_back(receipt.seq);
    apply(entry);
  }
}

AckResult Broker::ack(std::string_view subject, std::string_view id,
                      std::span<const Receipt> receipts) {
  AckResult result;
  Queue* queue = nullptr;
  Subscription* subscription = nullptr;
  AckQueue* state = find_ack_queue(subject, id, result.status, queue, subscription);
  if (state == nullptr) {
    return result;
  }
  apply_receipts(*queue, *state, receipts, result, [&](auto entry) {
    shrank(*queue, QueueChange{1, entry->second.message.size()});
    state->delivered.erase(entry);
    answered(*queue, *state);
    ++counters_.acked;
  });
  journal_answer(RecordType::ack, *subscription);
  serve_waiters(*queue);
  return result;
}

AckResult Broker::nack(std::string_view subject, std::string_view id,
                       std::span<const Receipt> receipts, std::chrono::milliseconds delay) {
  AckResult result;
  Queue* queue = nullptr;
  Subscription* subscription = nullptr;
  AckQueue* state = find_ack_queue(subject, id, result.status, queue, subscription);
  if (state == nullptr) {
    return result;
  }
  const TimePoint now = clock_.now();
  apply_receipts(*queue, *state, receipts, result, [&](auto entry) {
    entry->second.outstanding = false;
    answered(*queue, *state);
    ++counters_.nacked;
  });
  // Journaled before any of them settles: replay finds each nacked message still in the queue.
  journal_answer(RecordType::nack, *subscription);
  // A dead letter's publish may serve waiting fetches, whose deliveries reuse seqs_.
  std::vector<std::uint64_t> nacked;
  nacked.swap(seqs_);
  for (const std::uint64_t seq : nacked) {
    const auto entry = state->delivered.find(seq);
    if (delay.count() > 0) {
      entry->second.deadline = saturating_add(now, delay);
      deadlines_.emplace(entry->second.deadline, queue, seq);
    } else {
      settle(*queue, entry);
    }
  }
  serve_waiters(*queue);
  return result;
}

AckResult Broker::extend(std::string_view subject, std::string_view id,
                         std::span<const Receipt> receipts) {
  AckResult result;
  Queue* queue = nullptr;
  Subscription* subscription = nullptr;
  AckQueue* state = find_ack_queue(subject, id, result.status, queue, subscription);
  if (state == nullptr) {
    return result;
  }
  const TimePoint deadline = saturating_add(clock_.now(), state->options.ack_wait);
  apply_receipts(*queue, *state, receipts, result, [&](auto entry) {
    entry->second.deadline = deadline;
    deadlines_.emplace(deadline, queue, entry->first);
  });
  journal_answer(RecordType::extend, *subscription);
  return result;
}

ResumeResult Broker::resume(std::string_view subject, std::string_view id, std::uint64_t last_seq) {
  ResumeResult result;
  Queue* queue = nullptr;
  Subscription* subscription = nullptr;
  const AckQueue* state = find_ack_queue(subject, id, result.status, queue, subscription);
  if (state == nullptr) {
    return result;
  }
  // Through ack and nack, so a resume is recorded and counted as the answers it stands for. Only
  // what went to this subscription: in a group, the other members' deliveries are theirs.
  std::vector<Receipt> read;
  std::vector<Receipt> unread;
  for (const auto& [seq, delivered] : state->delivered) {
    if (delivered.outstanding && delivered.member == subscription->serial) {
      (seq <= last_seq ? read : unread).push_back(Receipt{seq, delivered.deliveries});
    }
  }
  result.acked = ack(subject, id, read).applied;
  result.redelivered = nack(subject, id, unread, std::chrono::milliseconds(0)).applied;
  return result;
}

std::optional<std::string> Broker::subject_of(std::string_view id) const {
  const auto found = subscriptions_.find(id);
  if (found == subscriptions_.end()) {
    return std::nullopt;
  }
  return found->second.subject;
}

std::optional<TimePoint> Broker::next_deadline() const {
  if (deadlines_.empty()) {
    return std::nullopt;
  }
  return std::get<0>(*deadlines_.begin());
}

void Broker::expire_deliveries() {
  const TimePoint now = clock_.now();
  std::vector<Queue*> touched;
  while (!deadlines_.empty() && std::get<0>(*deadlines_.begin()) <= now) {
    const auto [due, queue, seq] = *deadlines_.begin();
    deadlines_.erase(deadlines_.begin());
    AckQueue& state = *queue->ack();
    const auto entry = state.delivered.find(seq);
    if (entry->second.outstanding) {
      entry->second.outstanding = false;
      answered(*queue, state);
    }
    settle(*queue, entry);
    if (std::find(touched.begin(), touched.end(), queue) == touched.end()) {
      touched.push_back(queue);
    }
  }
  // After every message due: a waiting fetch takes all of them, as a fetch then would.
  for (Queue* queue : touched) {
    serve_waiters(*queue);
  }
}

void Broker::settle(Queue& queue, std::map<std::uint64_t, AckQueue::Delivered>::iterator entry) {
  AckQueue& state = *queue.ack();
  const std::uint32_t limit = state.options.max_deliveries;
  if (limit == 0 || entry->second.deliveries < limit) {
    state.again.emplace(
        entry->first, AckQueue::Again{std::move(entry->second.message),
                                      std::move(entry->second.subject), entry->second.deliveries});
    state.delivered.erase(entry);
    return;
  }
  const Message message = std::move(entry->second.message);
  state.delivered.erase(entry);
  retire(queue, message);
}

void Broker::retire(Queue& queue, const Message& message) {
  const AckQueue& state = *queue.ack();
  if (journal_ != nullptr) {
    Record record = queue_record(RecordType::settle, queue);
    record.reason = static_cast<std::uint8_t>(DropReason::max_deliveries);
    const std::uint64_t seq = message.seq();
    record.numbers = {&seq, 1};
    journal_->append(record);
  }
  shrank(queue, QueueChange{1, message.size()});
  if (state.options.dead_letter.empty()) {
    ++counters_.dropped[static_cast<std::size_t>(DropReason::max_deliveries)];
    return;
  }
  if (publish_with(state.options.dead_letter, {&message, 1}, {}, std::nullopt,
                   Admission::already_held) == PublishStatus::ok) {
    ++counters_.dead_lettered;
  } else {
    ++counters_.dead_letter_dropped;
  }
}

void Broker::drop_acked_state(Queue& queue, DropReason reason) {
  AckQueue* state = queue.ack();
  if (state == nullptr) {
    return;
  }
  for (const auto& [seq, delivered] : state->delivered) {
    deadlines_.erase({delivered.deadline, &queue, seq});
    shrank(queue, QueueChange{1, delivered.message.size()});
  }
  queue.topic().in_flight -= state->outstanding;
  in_flight_ -= state->outstanding;
  for (const auto& [seq, again] : state->again) {
    shrank(queue, QueueChange{1, again.message.size()});
  }
  counters_.dropped[static_cast<std::size_t>(reason)] +=
      state->delivered.size() + state->again.size();
  state->delivered.clear();
  state->again.clear();
  state->outstanding = 0;
}

FetchStatus Broker::fetch_or_wait(std::string_view subject, std::string_view id, std::size_t max,
                                  Waiter& waiter, bool meta) {
  Fetched fetched;
  const FetchStatus status = fetch(subject, id, max, meta, fetched);
  const bool handed_out = !fetched.empty();
  waiter.messages = std::move(fetched.messages);
  waiter.deliveries = std::move(fetched.deliveries);
  waiter.ack = fetched.ack;
  if (status != FetchStatus::ok || handed_out) {
    return status;
  }
  Subscription& subscription = *find_subscription(subject, id);
  waiter.subscription_ = &subscription;
  waiter.max_ = max;
  waiter.meta_ = meta;
  subscription.queue->add_waiter(waiter);
  ++subscription.waiting;
  ++waiting_fetches_;
  return FetchStatus::waiting;
}

bool Broker::cancel_wait(Waiter& waiter) {
  if (!waiter.is_linked()) {
    return false;
  }
  Subscription& subscription = *waiter.subscription_;
  subscription.queue->remove_waiter(waiter);
  --subscription.waiting;
  --waiting_fetches_;
  const TimePoint now = clock_.now();
  touch(subscription, now);
  journal_fetch(subscription, now, 0);
  return true;
}

void Broker::serve_waiters(Queue& queue) {
  while (queue.can_serve()) {
    Waiter& waiter = queue.pop_waiter();
    --waiter.subscription_->waiting;
    --waiting_fetches_;
    const TimePoint now = clock_.now();
    touch(*waiter.subscription_, now);
    waiter.ack = queue.ack() != nullptr;
    journal_taken(*waiter.subscription_, now,
                  take(queue, waiter.max_, waiter.meta_, waiter.messages, waiter.deliveries,
                       waiter.subscription_->serial));
    waiter.wake();
  }
}

void Broker::wake_waiters_of(Queue& queue, const Subscription* subscription) {
  queue.remove_waiters_if(
      [subscription](const Waiter& waiter) {
        return subscription == nullptr || waiter.subscription_ == subscription;
      },
      [this](Waiter& woken) {
        --woken.subscription_->waiting;
        --waiting_fetches_;
        woken.wake();
      });
}

void Broker::wake_all_waiters() {
  for_each_queue([this](Queue& queue) { wake_waiters_of(queue, nullptr); });
}

UnsubscribeStatus Broker::unsubscribe(std::string_view subject, std::string_view id) {
  if (subject.size() > limits_.max_subject_length) {
    return UnsubscribeStatus::subject_too_long;
  }
  if (!is_valid_subject(subject, SubjectUse::subscribe, limits_.max_subject_length)) {
    return UnsubscribeStatus::invalid_subject;
  }
  Subscription* subscription = find_subscription(subject, id);
  if (subscription == nullptr) {
    return UnsubscribeStatus::bad_id;
  }
  return unsubscribe_found(*subscription);
}

UnsubscribeStatus Broker::unsubscribe_found(Subscription& subscription) {
  // Recovery removes an ephemeral subscription anyway: its removal needs nothing written.
  if (!subscription.ephemeral && !journal_admits_change()) {
    return UnsubscribeStatus::storage_full;
  }
  remove_subscription(subscription, DropReason::unsubscribe);
  return UnsubscribeStatus::ok;
}

bool Broker::journal_admits_change() const {
  return journal_ == nullptr || journal_->admit_change();
}

namespace {

// The admin calls' check of a pattern, in unsubscribe's order.
AdminStatus check_pattern(std::string_view pattern, std::size_t max_length) {
  if (pattern.size() > max_length) {
    return AdminStatus::subject_too_long;
  }
  return is_valid_subject(pattern, SubjectUse::subscribe, max_length)
             ? AdminStatus::ok
             : AdminStatus::invalid_subject;
}

}  // namespace

SubscriptionList Broker::list_subscriptions(std::string_view pattern, std::size_t limit) const {
  SubscriptionList list;
  list.status = check_pattern(pattern, limits_.max_subject_length);
  if (list.status != AdminStatus::ok) {
    return list;
  }
  std::vector<const Subscription*> within;
  for (const auto& [id, subscription] : subscriptions_) {
    if (pattern_within(subscription.subject, pattern)) {
      within.push_back(&subscription);
    }
  }
  const auto by_id = [](const Subscription* a, const Subscription* b) { return a->id < b->id; };
  list.truncated = within.size() > limit;
  if (list.truncated) {
    std::partial_sort(within.begin(), within.begin() + static_cast<std::ptrdiff_t>(limit),
                      within.end(), by_id);
    within.resize(limit);
  } else {
    std::sort(within.begin(), within.end(), by_id);
  }
  const TimePoint now = clock_.now();
  list.subscriptions.reserve(within.size());
  for (const Subscription* subscription : within) {
    const Queue& queue = *subscription->queue;
    const std::uint64_t in_flight = queue.ack() != nullptr ? queue.ack()->outstanding : 0;
    SubscriptionInfo& info = list.subscriptions.emplace_back();
    info.id = subscription->id;
    info.subject = subscription->subject;
    info.group = subscription->group;
    info.owner = subscription->owner;
    info.ack = queue.ack() != nullptr;
    info.pending = queue.held() - in_flight;
    info.in_flight = in_flight;
    // A clock that went back reads as no idle time rather than as a wrapped one.
    if (subscription->waiting == 0 && now > subscription->last_active) {
      info.idle =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - subscription->last_active);
    }
  }
  return list;
}

UnsubscribeStatus Broker::unsubscribe(std::string_view id) {
  const auto found = subscriptions_.find(id);
  if (found == subscriptions_.end()) {
    return UnsubscribeStatus::bad_id;
  }
  return unsubscribe_found(found->second);
}

PurgeResult Broker::purge(std::string_view pattern) {
  PurgeResult result;
  result.status = check_pattern(pattern, limits_.max_subject_length);
  if (result.status == AdminStatus::ok && !journal_admits_change()) {
    result.status = AdminStatus::storage_full;
  }
  if (result.status != AdminStatus::ok) {
    return result;
  }
  const auto matched = [pattern](std::string_view subject) {
    return pattern_within(subject, pattern);
  };
  for_each_queue([&](Queue& queue) {
    const bool all = pattern_within(queue.topic().name, pattern);
    // A queue of a literal subject holds only messages published to it.
    if (all || queue.wildcard()) {
      result.purged += purge_queue(queue, all, matched);
    }
  });
  return result;
}

PurgeResult Broker::purge_subscription(std::string_view id) {
  const auto found = subscriptions_.find(id);
  if (found == subscriptions_.end()) {
    return PurgeResult{AdminStatus::bad_id, 0};
  }
  if (!journal_admits_change()) {
    return PurgeResult{AdminStatus::storage_full, 0};
  }
  return PurgeResult{AdminStatus::ok, purge_queue(*found->second.queue, true,
                                                  [](std::string_view) { return true; })};
}

template <typename Choose>
std::uint64_t Broker::purge_queue(Queue& queue, bool all, Choose chosen) {
  seqs_.clear();
  if (AckQueue* state = queue.ack(); state != nullptr) {
    for (auto entry = state->again.begin(); entry != state->again.end();) {
      if (!all && !chosen(queue.published_to(entry->second.subject))) {
        ++entry;
        continue;
      }
      seqs_.push_back(entry->first);
      shrank(queue, QueueChange{1, entry->second.message.size()});
      entry = state->again.erase(entry);
    }
  }
  std::size_t dropped = 0;
  if (all) {
    dropped = queue.size();
    drop_front(queue, dropped, DropReason::purged);
  } else {
    shrank(queue, queue.remove_if([&chosen](const Message& /*message*/,
                                            std::string_view subject) { return chosen(subject); },
                                  seqs_));
  }
  counters_.dropped[static_cast<std::size_t>(DropReason::purged)] += seqs_.size();
  journal_purge(queue);
  return dropped + seqs_.size();
}

void Broker::journal_purge(const Queue& queue) {
  if (journal_ == nullptr || seqs_.empty()) {
    return;
  }
  std::ranges::sort(seqs_);
  Record record = queue_record(RecordType::purge, queue);
  record.reason = static_cast<std::uint8_t>(DropReason::purged);
  for (std::size_t first = 0; first < seqs_.size(); first += purge_record_seqs) {
    record.numbers = std::span<const std::uint64_t>(seqs_).subspan(
        first, std::min(purge_record_seqs, seqs_.size() - first));
    journal_->append(record);
  }
}

bool Broker::replay_purge(const Record& record) {
  Queue* queue = find_queue(record);
  const std::span<const std::uint64_t> seqs = record.numbers;
  if (queue == nullptr || record.reason != static_cast<std::uint8_t>(DropReason::purged) ||
      seqs.empty() || std::ranges::adjacent_find(seqs, std::greater_equal<>()) != seqs.end()) {
    return false;
  }
  const auto named = [seqs](std::uint64_t seq) { return std::ranges::binary_search(seqs, seq); };
  AckQueue* state = queue->ack();
  std::size_t found = 0;
  if (state != nullptr) {
    found += static_cast<std::size_t>(std::ranges::count_if(
        state->again, [&named](const auto& entry) { return named(entry.first); }));
  }
  queue->for_each_until([&](const Message& message) {
    found += named(message.seq()) ? 1 : 0;
    return true;
  });
  if (found != seqs.size()) {
    return false;
  }
  if (state != nullptr) {
    for (const std::uint64_t seq : seqs) {
      if (const auto again = state->again.find(seq); again != state->again.end()) {
        shrank(*queue, QueueChange{1, again->second.message.size()});
        state->again.erase(again);
      }
    }
  }
  std::vector<std::uint64_t> removed;
  shrank(*queue,
         queue->remove_if([&named](const Message& message,
                                   std::string_view /*subject*/) { return named(message.seq()); },
                          removed));
  counters_.dropped[static_cast<std::size_t>(DropReason::purged)] += seqs.size();
  return true;
}

void Broker::remove_subscription(Subscription& subscription, DropReason reason) {
  wake_waiters_of(*subscription.queue, &subscription);
  Topic& topic = *subscription.topic;
  if (subscription.own_queue) {
    drop_acked_state(*subscription.own_queue, reason);
    drop_front(*subscription.own_queue, subscription.own_queue->size(), reason);
    index_.erase(subscription.subject, subscription.own_queue.get());
  } else {
    leave_group(subscription, reason);
  }
  if (journal_ != nullptr) {
    Record record;
    record.type = RecordType::unsubscribe;
    record.reason = static_cast<std::uint8_t>(reason);
    record.id = subscription.id;
    journal_->append(record);
  }
  by_activity_.erase(by_activity_.iterator_to(subscription));
  const std::string subject = std::move(subscription.subject);
  if (--topic.subscriptions == 0) {
    topics_.erase(topics_.find(subject));
  }
  subscriptions_.erase(subscriptions_.find(subscription.id));
}

void Broker::leave_group(Subscription& subscription, DropReason reason) {
  Topic& topic = *subscription.topic;
  const auto group = topic.groups.find(subscription.group);
  if (!group->second->leave()) {
    return;
  }
  drop_acked_state(*group->second, reason);
  drop_front(*group->second, group->second->size(), reason);
  index_.erase(subscription.subject, group->second.get());
  topic.groups.erase(group);
}

void Broker::expire() {
  const TimePoint now = clock_.now();
  if (limits_.message_ttl.count() > 0) {
    for_each_queue([this, now](Queue& queue) { drop_expired_messages(queue, now); });
  }
  if (limits_.subscriber_ttl.count() == 0) {
    return;
  }
  while (!by_activity_.empty() &&
         saturating_add(by_activity_.front().last_active, limits_.subscriber_ttl) <= now) {
    Subscription& idle = by_activity_.front();
    if (idle.waiting > 0) {
      touch(idle, now);  // a waiting fetch is activity
      journal_fetch(idle, now, 0);
    } else {
      remove_subscription(idle, DropReason::subscriber_ttl);
    }
  }
}

void Broker::touch(Subscription& subscription, TimePoint now) {
  subscription.last_active = now;
  by_activity_.erase(by_activity_.iterator_to(subscription));
  by_activity_.push_back(subscription);
}

void Broker::store(Queue& queue, std::span<const Message> messages, std::uint64_t first_seq,
                   std::uint64_t bytes, TimePoint now, const SubjectRef& subject) {
  const std::chrono::milliseconds tick = limits_.message_ttl.count() > 0
                                             ? stamp_tick(limits_.message_ttl)
                                             : std::chrono::milliseconds(0);
  grew(queue, queue.push(messages, first_seq, bytes, now, tick, subject));
}

void Broker::grew(Queue& queue, QueueChange change) {
  queue.topic().pending_messages += change.messages;
  queue.topic().pending_bytes += change.bytes;
  pending_messages_ += change.messages;
  pending_bytes_ += change.bytes;
  rerank(queue.topic());
}

void Broker::shrank(Queue& queue, QueueChange change) {
  queue.topic().pending_messages -= change.messages;
  queue.topic().pending_bytes -= change.bytes;
  pending_messages_ -= change.messages;
  pending_bytes_ -= change.bytes;
  rerank(queue.topic());
}

std::size_t Broker::take(Queue& queue, std::size_t max, FetchedMessages& out) {
  const std::size_t count = std::min(max, queue.size());
  shrank(queue, queue.pop_front(count, &out));
  counters_.delivered += count;
  return count;
}

void Broker::journal_fetch(const Subscription& subscription, TimePoint now, std::size_t count) {
  if (journal_ != nullptr) {
    Record record;
    record.type = RecordType::fetch;
    record.time = to_record_time(now);
    record.count = count;
    record.id = subscription.id;
    journal_->append(record);
  }
}

void Broker::journal_taken(const Subscription& subscription, TimePoint now, std::size_t count) {
  if (subscription.queue->ack() == nullptr) {
    journal_fetch(subscription, now, count);
    return;
  }
  if (journal_ != nullptr) {
    Record record;
    record.type = RecordType::deliver;
    record.time = to_record_time(now);
    record.count = count;
    record.id = subscription.id;
    record.numbers = seqs_;
    journal_->append(record);
  }
}

void Broker::journal_answer(RecordType type, const Subscription& subscription) {
  if (journal_ != nullptr) {
    Record record;
    record.type = type;
    record.time = to_record_time(subscription.last_active);
    record.id = subscription.id;
    record.numbers = seqs_;
    journal_->append(record);
  }
}

void Broker::recovered() {
  std::vector<std::string_view> ephemeral;
  for (const auto& [id, subscription] : subscriptions_) {
    if (subscription.ephemeral) {
      ephemeral.push_back(id);
    }
  }
  for (const std::string_view id : ephemeral) {
    remove_subscription(subscriptions_.find(id)->second, DropReason::unsubscribe);
  }
  for_each_queue([this](Queue& queue) {
    AckQueue* state = queue.ack();
    if (state == nullptr || state->options.max_deliveries == 0) {
      return;
    }
    for (auto entry = state->again.begin(); entry != state->again.end();) {
      if (entry->second.deliveries < state->options.max_deliveries) {
        ++entry;
        continue;
      }
      const Message message = std::move(entry->second.message);
      entry = state->again.erase(entry);
      retire(queue, message);
    }
  });
}

void Broker::drop_front(Queue& queue, std::size_t count, DropReason reason) {
  if (count == 0) {
    return;
  }
  if (journal_ != nullptr) {
    Record record = queue_record(RecordType::drop, queue);
    record.reason = static_cast<std::uint8_t>(reason);
    record.count = count;
    journal_->append(record);
  }
  shrank(queue, queue.pop_front(count, nullptr));
  counters_.dropped[static_cast<std::size_t>(reason)] += count;
}

Record Broker::queue_record(RecordType type, const Queue& queue) {
  Record record;
  record.type = type;
  record.grouped = queue.grouped();
  record.subject = queue.topic().name;
  record.id = queue.grouped() ? std::string_view() : queue.name();
  record.group = queue.grouped() ? queue.name() : std::string_view();
  return record;
}

void Broker::drop_expired_messages(Queue& queue, TimePoint now) {
  const std::size_t expired = queue.expired(now, limits_.message_ttl);
  if (expired > 0) {
    drop_front(queue, expired, DropReason::message_ttl);
  }
}

template <typename Function>
void Broker::for_each_queue(Function function) {
  for (auto& [id, subscription] : subscriptions_) {
    if (subscription.own_queue) {
      function(*subscription.own_queue);
    }
  }
  for (auto& [subject, topic] : topics_) {
    for (auto& [group, queue] : topic.groups) {
      function(*queue);
    }
  }
}

Subscription* Broker::find_subscription(std::string_view subject, std::string_view id) {
  const auto found = subscriptions_.find(id);
  if (found == subscriptions_.end() || found->second.subject != subject) {
    return nullptr;
  }
  return &found->second;
}

Queue* Broker::find_queue(const Record& record) {
  if (!record.grouped) {
    const auto found = subscriptions_.find(record.id);
    return found == subscriptions_.end() || found->second.subject != record.subject
               ? nullptr
               : found->second.own_queue.get();
  }
  const auto topic = topics_.find(record.subject);
  if (topic == topics_.end()) {
    return nullptr;
  }
  const auto group = topic->second.groups.find(record.group);
  return group == topic->second.groups.end() ? nullptr : group->second.get();
}

bool Broker::apply(const Record& record) {
  const Counters counted = counters_;
  const bool applied = replay(record);
  counters_ = counted;
  return applied;
}

bool Broker::replay(const Record& record) {
  const auto reason_count = static_cast<std::uint8_t>(DropReason::count);
  switch (record.type) {
    case RecordType::subscribe:
    case RecordType::subscribe_ack:
      return replay_subscribe(record);
    case RecordType::owner: {
      const auto found = subscriptions_.find(record.id);
      if (found == subscriptions_.end() || record.owner.empty() || !found->second.owner.empty()) {
        return false;
      }
      found->second.owner = record.owner;
      return true;
    }
    case RecordType::unsubscribe: {
      const auto found = subscriptions_.find(record.id);
      if (found == subscriptions_.end() || record.reason >= reason_count) {
        return false;
      }
      remove_subscription(found->second, static_cast<DropReason>(record.reason));
      return true;
    }
    case RecordType::publish:
      return replay_publish(record);
    case RecordType::publish_ids: {
      if (record.msg_ids.size() != record.count + record.messages.size() ||
          !std::ranges::all_of(record.msg_ids, is_valid_msg_id) || !replay_publish(record)) {
        return false;
      }
      const TimePoint at = from_record_time(record.time);
      for (const std::string_view msg_id : record.msg_ids) {
        dedupe_.seen(record.subject, msg_id, at);
      }
      return true;
    }
    case RecordType::deliver:
    case RecordType::ack:
    case RecordType::nack:
    case RecordType::extend:
      return replay_answer(record);
    case RecordType::settle:
      return replay_settle(record);
    case RecordType::purge:
      return replay_purge(record);
    case RecordType::ack_state:
      return replay_ack_state(record);
    case RecordType::dedupe_state: {
      if (!is_valid_subject(record.subject, SubjectUse::publish, limits_.max_subject_length) ||
          record.msg_ids.empty() || !std::ranges::all_of(record.msg_ids, is_valid_msg_id)) {
        return false;
      }
      const TimePoint at = from_record_time(record.time);
      for (const std::string_view msg_id : record.msg_ids) {
        dedupe_.seen(record.subject, msg_id, at);
      }
      return true;
    }
    case RecordType::fetch: {
      const auto found = subscriptions_.find(record.id);
      // An ack-mode queue hands messages out in deliver records; a fetch there is activity only.
      if (found == subscriptions_.end() || record.count > found->second.queue->size() ||
          (found->second.queue->ack() != nullptr && record.count > 0)) {
        return false;
      }
      touch(found->second, from_record_time(record.time));
      FetchedMessages taken;
      take(*found->second.queue, static_cast<std::size_t>(record.count), taken);
      return true;
    }
    case RecordType::drop: {
      Queue* queue = find_queue(record);
      if (queue == nullptr || record.count > queue->size() || record.reason >= reason_count) {
        return false;
      }
      drop_front(*queue, static_cast<std::size_t>(record.count),
                 static_cast<DropReason>(record.reason));
      return true;
    }
    case RecordType::checkpoint:
      // A snapshot starts from nothing: on top of other state it would duplicate it.
      if (!subscriptions_.empty() || last_seq_ != 0 || dedupe_.size() > 0 ||
          record.seq > Message::max_seq) {
        return false;
      }
      last_seq_ = record.seq;
      return true;
    case RecordType::queue_state: {
      Queue* queue = find_queue(record);
      const std::optional<TimePoint> published = limits_.message_ttl.count() > 0
                                                     ? std::optional(from_record_time(record.time))
                                                     : std::nullopt;
      SubjectRef subject;
      if (queue == nullptr || record.messages.empty() ||
          !queue->can_restore(record.messages, last_seq_) ||
          !published_ref(*queue, record, subject)) {
        return false;
      }
      // Delivered messages are older than any the queue has not delivered.
      if (const AckQueue* state = queue->ack();
          state != nullptr && !state->again.empty() &&
          record.messages.front().seq() <= state->again.rbegin()->first) {
        return false;
      }
      grew(*queue, queue->restore(record.messages, published, subject));
      return true;
    }
    case RecordType::checkpoint_end:
      return true;
  }
  return false;
}

bool Broker::replay_subscribe(const Record& record) {
  AckOptions options;
  if (record.type == RecordType::subscribe_ack) {
    const RecordAckOptions& given = record.options;
    if (given.ack_wait_ms > static_cast<std::uint64_t>(AckOptions::kMaxAckWait.count()) ||
        given.max_deliveries > AckOptions::kMaxMaxDeliveries ||
        given.max_in_flight > AckOptions::kMaxMaxInFlight) {
      return false;
    }
    options.ack = true;
    options.ack_wait = std::chrono::milliseconds(static_cast<std::int64_t>(given.ack_wait_ms));
    options.max_deliveries = static_cast<std::uint32_t>(given.max_deliveries);
    options.dead_letter = given.dead_letter;
    options.max_in_flight = static_cast<std::uint32_t>(given.max_in_flight);
  }
  if (subscriptions_.contains(record.id) ||
      !is_valid_subject(record.subject, SubjectUse::subscribe, limits_.max_subject_length) ||
      (record.grouped && !is_valid_group(record.group, limits_.max_subject_length)) ||
      !is_valid(options, limits_.max_subject_length)) {
    return false;
  }
  const Queue* existing = record.grouped ? find_queue(record) : nullptr;
  if (existing != nullptr) {
    const AckOptions* held = existing->ack_options();
    if (held != nullptr ? *held != options : options.ack) {
      return false;
    }
  }
  Subscription& added = add_subscription(
      record.id, record.subject,
      record.grouped ? std::optional<std::string_view>(record.group) : std::nullopt,
      from_record_time(record.time));
  added.ephemeral = record.ephemeral;
  if (existing == nullptr) {
    added.queue->set_ack_options(options);
  }
  return true;
}

bool Broker::replay_publish(const Record& record) {
  const std::uint64_t published = record.count + record.messages.size();
  if (!is_valid_subject(record.subject, SubjectUse::publish, limits_.max_subject_length) ||
      record.count > Message::max_seq || published > Message::max_seq || record.seq <= last_seq_ ||
      record.seq > Message::max_seq - published) {
    return false;
  }
  matched_.clear();
  index_.match(record.subject, matched_);
  std::uint64_t bytes = 0;
  for (const Message& message : record.messages) {
    bytes += message.size();
  }
  for (Queue* queue : matched_) {
    counters_.dropped[static_cast<std::size_t>(DropReason::queue_full)] += record.count;
    store(*queue, record.messages, record.seq + record.count, bytes, from_record_time(record.time),
          subject_names_.intern(record.subject));
  }
  last_seq_ = record.seq + published - 1;
  counters_.published += published;
  return true;
}

namespace {

bool distinct(std::span<const std::uint64_t> seqs) {
  std::vector<std::uint64_t> sorted(seqs.begin(), seqs.end());
  std::ranges::sort(sorted);
  return std::ranges::adjacent_find(sorted) == sorted.end();
}

}  // namespace

bool Broker::replay_answer(const Record& record) {
  const auto found = subscriptions_.find(record.id);
  if (found == subscriptions_.end()) {
    return false;
  }
  Subscription& subscription = found->second;
  Queue& queue = *subscription.queue;
  AckQueue* state = queue.ack();
  if (state == nullptr || record.count > queue.size()) {
    return false;
  }
  const std::uint32_t limit = state->options.max_deliveries;
  std::uint64_t previous = 0;
  for (const std::uint64_t seq : record.numbers) {
    const auto again = state->again.find(seq);
    if (again == state->again.end()) {
      return false;
    }
    // A message in flight at max_deliveries, or at the most a count holds, is never delivered
    // again; those of one delivery are handed out in publish order.
    if (record.type == RecordType::deliver &&
        (seq <= previous || (limit > 0 && again->second.deliveries >= limit) ||
         again->second.deliveries == std::numeric_limits<std::uint32_t>::max())) {
      return false;
    }
    previous = seq;
  }
  if (record.type == RecordType::ack && !distinct(record.numbers)) {
    return false;
  }
  touch(subscription, from_record_time(record.time));
  if (record.type == RecordType::ack) {
    for (const std::uint64_t seq : record.numbers) {
      const auto again = state->again.find(seq);
      shrank(queue, QueueChange{1, again->second.message.size()});
      state->again.erase(again);
    }
  } else if (record.type == RecordType::deliver) {
    for (const std::uint64_t seq : record.numbers) {
      ++state->again.find(seq)->second.deliveries;
    }
    FetchedMessages fresh;
    std::vector<SubjectRef> subjects;
    const auto count = static_cast<std::size_t>(record.count);
    // They leave the deque but stay pending, as in deliver.
    queue.pop_front(count, &fresh, &subjects);
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t seq = fresh[i].seq();
      state->again.emplace(seq, AckQueue::Again{std::move(fresh[i]), std::move(subjects[i]), 1});
    }
  }
  return true;
}

bool Broker::replay_settle(const Record& record) {
  Queue* queue = find_queue(record);
  AckQueue* state = queue != nullptr ? queue->ack() : nullptr;
  if (state == nullptr || state->options.max_deliveries == 0 ||
      record.reason != static_cast<std::uint8_t>(DropReason::max_deliveries) ||
      record.numbers.empty() || !distinct(record.numbers)) {
    return false;
  }
  for (const std::uint64_t seq : record.numbers) {
    const auto again = state->again.find(seq);
    if (again == state->again.end() || again->second.deliveries < state->options.max_deliveries) {
      return false;
    }
  }
  for (const std::uint64_t seq : record.numbers) {
    const auto again = state->again.find(seq);
    shrank(*queue, QueueChange{1, again->second.message.size()});
    state->again.erase(again);
  }
  return true;
}

bool Broker::published_ref(const Queue& queue, const Record& record, SubjectRef& out) {
  if (!queue.wildcard()) {
    return record.published.empty();
  }
  if (!is_valid_subject(record.published, SubjectUse::publish, limits_.max_subject_length)) {
    return false;
  }
  out = subject_names_.intern(record.published);
  return true;
}

bool Broker::replay_ack_state(const Record& record) {
  Queue* queue = find_queue(record);
  AckQueue* state = queue != nullptr ? queue->ack() : nullptr;
  SubjectRef subject;
  // Written before the queue's never-delivered messages, which are all newer.
  if (state == nullptr || !queue->empty() || record.messages.empty() ||
      record.numbers.size() != record.messages.size() || !published_ref(*queue, record, subject)) {
    return false;
  }
  const std::uint32_t limit = state->options.max_deliveries;
  std::uint64_t previous = state->again.empty() ? 0 : state->again.rbegin()->first;
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < record.messages.size(); ++i) {
    const std::uint64_t seq = record.messages[i].seq();
    const std::uint64_t deliveries = record.numbers[i];
    if (seq <= previous || seq > last_seq_ || deliveries == 0 ||
        deliveries > (limit > 0 ? limit : std::numeric_limits<std::uint32_t>::max())) {
      return false;
    }
    previous = seq;
    bytes += record.messages[i].size();
  }
  for (std::size_t i = 0; i < record.messages.size(); ++i) {
    state->again.emplace(record.messages[i].seq(),
                         AckQueue::Again{record.messages[i], subject,
                                         static_cast<std::uint32_t>(record.numbers[i])});
  }
  grew(*queue, QueueChange{record.messages.size(), bytes});
  return true;
}

void Broker::checkpoint(JournalSink& sink) const {
  Record start;
  start.type = RecordType::checkpoint;
  start.seq = last_seq_;
  start.time = to_record_time(clock_.now());
  sink.append(start);
  std::uint64_t records = 0;
  // In order of activity, so the copy's subscriber-ttl sees them in the same order.
  for (const Subscription& subscription : by_activity_) {
    sink.append(subscribe_record(subscription));
    ++records;
    if (!subscription.owner.empty()) {
      sink.append(owner_record(subscription));
      ++records;
    }
  }
  std::vector<Message> chunk;
  for (const Subscription& subscription : by_activity_) {
    if (subscription.own_queue) {
      records += checkpoint_ack(*subscription.own_queue, sink, chunk);
      records += checkpoint_queue(*subscription.own_queue, sink, chunk);
    }
  }
  for (const auto& [subject, topic] : topics_) {
    for (const auto& [group, queue] : topic.groups) {
      records += checkpoint_ack(*queue, sink, chunk);
      records += checkpoint_queue(*queue, sink, chunk);
    }
  }
  records += checkpoint_dedupe(sink);
  Record end;
  end.type = RecordType::checkpoint_end;
  end.count = records;
  sink.append(end);
}

namespace {

// Whether `message`, published to `published`, must begin a new checkpoint record after `chunk`
// (`bytes` of messages published to `chunk_published`): a record stays within its bounds and
// holds messages of one publish subject, which it names once.
bool starts_new_record(const std::vector<Message>& chunk, std::uint64_t bytes,
                       std::string_view chunk_published, const Message& message,
                       std::string_view published) {
  return chunk.size() == queue_state_max_messages ||
         (!chunk.empty() &&
          (bytes + message.size() > queue_state_max_bytes || published != chunk_published));
}

}  // namespace

std::uint64_t Broker::checkpoint_queue(const Queue& queue, JournalSink& sink,
                                       std::vector<Message>& chunk) {
  Record record = queue_record(RecordType::queue_state, queue);
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  std::size_t next = 0;
  const auto flush = [&] {
    if (!chunk.empty()) {
      record.messages = chunk;
      sink.append(record);
      ++records;
      chunk.clear();
      bytes = 0;
    }
  };
  // A record holds one stamp run at most, so the copy keeps each message's stamp, and messages
  // published to one subject, so it keeps that too.
  const auto run = [&](std::int64_t time, std::size_t count) {
    record.time = time;
    const std::size_t end = next + std::min(count, queue.size() - next);
    for (; next < end; ++next) {
      const Message& message = queue.at(next);
      const std::string_view published =
          queue.wildcard() ? queue.subject_at(next) : std::string_view();
      if (starts_new_record(chunk, bytes, record.published, message, published)) {
        flush();
      }
      record.published = published;
      chunk.push_back(message);
      bytes += message.size();
    }
    flush();
  };
  queue.for_each_stamp(
      [&run](const Stamp& stamp) { run(to_record_time(stamp.published), stamp.count); });
  run(0, queue.size() - next);
  return records;
}

std::uint64_t Broker::checkpoint_ack(const Queue& queue, JournalSink& sink,
                                     std::vector<Message>& chunk) {
  const AckQueue* state = queue.ack();
  if (state == nullptr) {
    return 0;
  }
  Record record = queue_record(RecordType::ack_state, queue);
  std::vector<std::uint64_t> deliveries;
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  const auto flush = [&] {
    if (!chunk.empty()) {
      record.messages = chunk;
      record.numbers = deliveries;
      sink.append(record);
      ++records;
      chunk.clear();
      deliveries.clear();
      bytes = 0;
    }
  };
  const auto add = [&](const Message& message, const SubjectRef& subject, std::uint32_t count) {
    const std::string_view published =
        queue.wildcard() ? queue.published_to(subject) : std::string_view();
    if (starts_new_record(chunk, bytes, record.published, message, published)) {
      flush();
    }
    record.published = published;
    chunk.push_back(message);
    deliveries.push_back(count);
    bytes += message.size();
  };
  // In flight or pending again, both are pending again after a restart: merged in seq order.
  auto delivered = state->delivered.begin();
  auto again = state->again.begin();
  while (delivered != state->delivered.end() || again != state->again.end()) {
    if (again == state->again.end() ||
        (delivered != state->delivered.end() && delivered->first < again->first)) {
      add(delivered->second.message, delivered->second.subject, delivered->second.deliveries);
      ++delivered;
    } else {
      add(again->second.message, again->second.subject, again->second.deliveries);
      ++again;
    }
  }
  flush();
  return records;
}

std::uint64_t Broker::checkpoint_dedupe(JournalSink& sink) const {
  Record record;
  record.type = RecordType::dedupe_state;
  std::vector<std::string_view> msg_ids;
  std::uint64_t records = 0;
  const auto flush = [&] {
    if (!msg_ids.empty()) {
      record.msg_ids = msg_ids;
      sink.append(record);
      ++records;
      msg_ids.clear();
    }
  };
  dedupe_.for_each([&](std::string_view subject, std::string_view msg_id, TimePoint at) {
    const std::int64_t time = to_record_time(at);
    if (subject != record.subject || time != record.time ||
        msg_ids.size() == queue_state_max_messages) {
      flush();
    }
    record.subject = subject;
    record.time = time;
    msg_ids.push_back(msg_id);
  });
  flush();
  return records;
}

std::string Broker::dump() const {
  std::ostringstream out;
  const auto queue_state = [&out](const Queue& queue) {
    out << " queue " << queue.size() << ' ' << queue.bytes() << ':';
    for (std::size_t i = 0; i < queue.size(); ++i) {
      out << ' ' << queue.at(i).seq() << '=' << queue.at(i).data();
      if (queue.wildcard()) {
        out << '/' << queue.subject_at(i);
      }
    }
    queue.for_each_stamp([&out](const Stamp& stamp) {
      out << " @" << to_record_time(stamp.published) << 'x' << stamp.count;
    });
    out << '\n';
    const AckQueue* state = queue.ack();
    if (state == nullptr) {
      return;
    }
    // Delivered messages, in flight or not, with their delivery counts: what a restart keeps.
    out << "  ack wait " << state->options.ack_wait.count() << " max deliveries "
        << state->options.max_deliveries << " dead letter " << state->options.dead_letter
        << " max in flight " << state->options.max_in_flight << ':';
    std::map<std::uint64_t, std::string> delivered;
    for (const auto& [seq, entry] : state->delivered) {
      delivered[seq] = std::string(entry.message.data()) + 'x' + std::to_string(entry.deliveries) +
                       '/' + std::string(queue.published_to(entry.subject));
    }
    for (const auto& [seq, entry] : state->again) {
      delivered[seq] = std::string(entry.message.data()) + 'x' + std::to_string(entry.deliveries) +
                       '/' + std::string(queue.published_to(entry.subject));
    }
    for (const auto& [seq, text] : delivered) {
      out << ' ' << seq << '=' << text;
    }
    // What a restart makes pending again: one line, so a comparison can leave it out.
    out << "\n  in flight " << state->outstanding << ' ' << queue.topic().in_flight << ':';
    for (const auto& [seq, entry] : state->delivered) {
      out << ' ' << seq << (entry.outstanding ? "@" : "~") << to_record_time(entry.deadline);
    }
    out << '\n';
  };
  std::map<std::string_view, const Subscription*> by_id;
  for (const auto& [id, subscription] : subscriptions_) {
    by_id.emplace(id, &subscription);
  }
  for (const auto& [id, subscription] : by_id) {
    out << "subscription " << id << ' ' << subscription->subject << " group " << subscription->group
        << " active " << to_record_time(subscription->last_active);
    if (subscription->ephemeral) {
      out << " ephemeral";
    }
    if (!subscription->owner.empty()) {
      out << " owner " << subscription->owner;
    }
    if (subscription->own_queue) {
      queue_state(*subscription->own_queue);
    } else {
      out << '\n';
    }
  }
  for (const Topic& topic : by_name_) {
    out << "topic " << topic.name << ' ' << topic.subscriptions << ' ' << topic.pending_messages
        << ' ' << topic.pending_bytes << '\n';
    std::map<std::string_view, const Queue*> groups;
    for (const auto& [group, queue] : topic.groups) {
      groups.emplace(group, queue.get());
    }
    for (const auto& [group, queue] : groups) {
      out << " group " << group << " members " << queue->members();
      queue_state(*queue);
    }
  }
  out << "dedupe";
  dedupe_.for_each([&out](std::string_view subject, std::string_view msg_id, TimePoint at) {
    out << ' ' << subject << '/' << msg_id << '@' << to_record_time(at);
  });
  out << "\nactivity";
  for (const Subscription& subscription : by_activity_) {
    out << ' ' << subscription.id;
  }
  const Totals sums = totals();
  out << "\ntotals " << sums.pending_messages << ' ' << sums.pending_bytes << ' '
      << sums.subscriptions << ' ' << sums.subjects << " last seq " << last_seq_;
  out << "\nranking";
  for (const SubjectStats& row : top_subjects(topics_.size())) {
    out << ' ' << row.subject << '/' << row.subscriptions << '/' << row.groups << '/'
        << row.pending_messages << '/' << row.pending_bytes;
  }
  out << '\n';
  return out.str();
}

Totals Broker::totals() const {
  return Totals{pending_messages_, pending_bytes_,   subscriptions_.size(),
                topics_.size(),    waiting_fetches_, counters_,
                in_flight_,        dedupe_.size(),   dedupe_.bytes()};
}

void Broker::enter_ranking(std::pair<const std::string, Topic>& entry) {
  entry.second.name = entry.first;
  by_name_.insert(entry.second);
}

void Broker::rerank(Topic& topic) {
  if (topic.busy.is_linked()) {
    const auto position = busy_.iterator_to(topic);
    const auto next = std::next(position);
    const bool in_place =
        topic.pending_messages > 0 &&
        (position == busy_.begin() || BusierFirst{}(*std::prev(position), topic)) &&
        (next == busy_.end() || BusierFirst{}(topic, *next));
    if (in_place) {
      return;
    }
    busy_.erase(position);
  }
  if (topic.pending_messages > 0) {
    busy_.insert(topic);
  }
}

std::vector<SubjectStats> Broker::top_subjects(std::size_t limit) const {
  std::vector<SubjectStats> rows;
  rows.reserve(std::min(limit, topics_.size()));
  const auto add = [&rows](const Topic& topic) {
    rows.push_back(SubjectStats{std::string(topic.name), topic.subscriptions, topic.groups.size(),
                                topic.pending_messages, topic.pending_bytes, topic.in_flight});
  };
  for (auto topic = busy_.begin(); topic != busy_.end() && rows.size() < limit; ++topic) {
    add(*topic);
  }
  // Reached only with fewer than `limit` busy topics, so at most that many are skipped here.
  for (auto topic = by_name_.begin(); topic != by_name_.end() && rows.size() < limit; ++topic) {
    if (topic->pending_messages == 0) {
      add(*topic);
    }
  }
  return rows;
}

}  // namespace gophermq::broker
