#pragma once

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/set.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "broker/ack.hpp"
#include "broker/clock.hpp"
#include "broker/journal.hpp"
#include "broker/lazy_deque.hpp"
#include "broker/limits.hpp"
#include "broker/message.hpp"
#include "broker/string_map.hpp"
#include "broker/subject_index.hpp"
#include "broker/subject_ref.hpp"

namespace gophermq::broker {

enum class SubscribeStatus {
  ok,
  invalid_subject,
  subject_too_long,
  invalid_group,
  duplicate_id,
  too_many_subscriptions,
  // AckOptions out of range, set without ack, a dead_letter with wildcards or without
  // max_deliveries, or a group member whose options differ from those the group was made with
  invalid_ack_options,
  storage_full  // the journal takes no change now (JournalSink::admit_change)
};
// overflow: max-pending or max-pending-bytes; queue_full: max-pending-per-queue under `reject`.
enum class PublishStatus {
  ok,
  invalid_subject,
  subject_too_long,
  message_too_large,
  no_subscribers,
  overflow,
  queue_full,
  storage_full,   // the journal has no room for the publish
  invalid_msg_id  // a msg_id not 1..128 bytes, or msg_ids not one per message
};

// What publish did beyond its status: how many messages were refused as duplicates of a msg_id
// published to the same subject within the dedupe window (a single publish: 0 or 1).
struct PublishResult {
  PublishStatus status = PublishStatus::ok;
  std::size_t duplicates = 0;
};

// One delivery of an ack-mode fetch: the message (its seq() is the publish sequence), the
// subject it was published to, which delivery this is (1 for the first), and the receipt naming
// exactly this delivery.
struct Delivery {
  Message message;
  std::string subject;
  std::uint32_t deliveries = 0;
  Receipt receipt;
};
using Deliveries = std::vector<Delivery>;

// ack, nack and extend: ok, or why nothing was looked at. not_ack_mode: the subscription is plain.
// storage_full: as for SubscribeStatus.
enum class AckStatus { ok, invalid_subject, subject_too_long, bad_id, not_ack_mode, storage_full };
// Per call: the receipts applied, and the stale ones (redelivered since, already acked, unknown)
// in input order.
struct AckResult {
  AckStatus status = AckStatus::ok;
  std::size_t applied = 0;
  std::vector<Receipt> stale;
};
// What resume did: in-flight deliveries acked, and those made pending again.
struct ResumeResult {
  AckStatus status = AckStatus::ok;
  std::size_t acked = 0;
  std::size_t redelivered = 0;
};
enum class FetchStatus { ok, waiting, invalid_subject, subject_too_long, bad_id };
// storage_full: as for SubscribeStatus; an ephemeral subscription's removal is never refused.
enum class UnsubscribeStatus { ok, invalid_subject, subject_too_long, bad_id, storage_full };

// Why pending messages left a queue without being fetched. The values are journal records', so
// a new reason goes last; stats list them by name (drop_reasons_by_name).
enum class DropReason : std::size_t {
  message_ttl,
  queue_full,  // max-pending-per-queue under `drop-oldest`
  subscriber_ttl,
  unsubscribe,
  max_deliveries,  // nacked or timed out at max_deliveries, without a dead_letter subject
  purged,          // by an operator (Broker::purge)
  count
};
inline constexpr DropReason drop_reasons_by_name[] = {
    DropReason::max_deliveries, DropReason::message_ttl,    DropReason::purged,
    DropReason::queue_full,     DropReason::subscriber_ttl, DropReason::unsubscribe};
static_assert(std::size(drop_reasons_by_name) == static_cast<std::size_t>(DropReason::count));
std::string_view name_of(DropReason reason);

struct Counters {
  std::uint64_t published = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped[static_cast<std::size_t>(DropReason::count)] = {};
  std::uint64_t acked = 0;
  std::uint64_t nacked = 0;
  std::uint64_t redelivered = 0;
  std::uint64_t dead_lettered = 0;        // published to a dead_letter subject
  std::uint64_t dead_letter_dropped = 0;  // for a dead_letter subject nobody subscribes to
  std::uint64_t duplicates = 0;           // refused by msg_id
};

struct Totals {
  std::uint64_t pending_messages = 0;
  std::uint64_t pending_bytes = 0;
  std::size_t subscriptions = 0;
  std::size_t subjects = 0;
  std::size_t waiting_fetches = 0;
  Counters counters;
  std::uint64_t in_flight = 0;     // delivered, not yet acked; also counted as pending
  std::uint64_t dedupe_ids = 0;    // msg_ids in the dedupe window
  std::uint64_t dedupe_bytes = 0;  // the subjects and msg_ids it holds
};

// One subscription pattern, as GET /api/stats shows it.
struct SubjectStats {
  std::string subject;
  std::size_t subscriptions = 0;
  std::size_t groups = 0;
  std::uint64_t pending_messages = 0;
  std::uint64_t pending_bytes = 0;
  std::uint64_t in_flight = 0;
};

// What one fetch handed over. A plain fetch without meta fills `messages` only; with meta, or on
// an ack-mode queue (`ack`), it fills `deliveries` instead, whose deliveries and receipt are zero
// for a plain queue.
struct Fetched {
  FetchedMessages messages;
  Deliveries deliveries;
  bool ack = false;

  [[nodiscard]] bool empty() const noexcept { return messages.empty() && deliveries.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return messages.size() + deliveries.size(); }
};

// One subscription as the admin listing shows it. `pending` counts its queue's messages waiting
// to be handed out (a group's queue for a grouped one), `in_flight` those delivered and not yet
// answered (ack mode). `idle` is the time since its last fetch or stream activity; zero while a
// fetch waits on it.
struct SubscriptionInfo {
  std::string id;
  std::string subject;
  std::string group;  // empty when ungrouped
  std::string owner;  // the name of the token that made it; empty when made without access control
  bool ack = false;
  std::uint64_t pending = 0;
  std::uint64_t in_flight = 0;
  std::chrono::milliseconds idle{0};
};

// The admin calls' statuses: a pattern that is no valid subscribe subject, or an unknown id.
// storage_full (purges only): as for SubscribeStatus.
enum class AdminStatus { ok, invalid_subject, subject_too_long, bad_id, storage_full };

struct SubscriptionList {
  AdminStatus status = AdminStatus::ok;
  std::vector<SubscriptionInfo> subscriptions;  // sorted by id
  bool truncated = false;                       // more subscriptions lie within the pattern
};

struct PurgeResult {
  AdminStatus status = AdminStatus::ok;
  std::uint64_t purged = 0;
};

struct Subscription;
struct Topic;

// A fetch that found nothing pending and waits for a publish. The broker links it to the queue;
// when messages arrive, or the wait is ended by unsubscribe or shutdown, the broker unlinks it,
// fills `messages` and calls wake(). Its owner keeps it alive until then or until cancel_wait.
class Waiter : public boost::intrusive::list_base_hook<> {
 public:
  FetchedMessages messages;
  // Filled instead of `messages` for an ack-mode queue or a meta fetch (see Fetched).
  Deliveries deliveries;
  bool ack = false;

  virtual void wake() = 0;

 protected:
  Waiter() = default;
  virtual ~Waiter() = default;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

 private:
  friend class Broker;
  Subscription* subscription_ = nullptr;
  std::size_t max_ = 0;
  bool meta_ = false;
};

// Publish times of a queue's messages, oldest first, one entry per run of messages published
// within the same tick: message-ttl costs a few bytes per tick, not per message.
struct Stamp {
  TimePoint published;
  std::size_t count = 0;
};

// What a change to a queue did to its pending counts; the broker applies it to the queue's topic
// and to its totals.
struct QueueChange {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
};

// Ack-mode state of a queue. Messages delivered and not yet acked (or nacked with a delay, no
// longer outstanding) and messages pending again after a delivery leave the queue's deque but
// still count as pending, by seq with their delivery counts.
struct AckQueue {
  // `subject` is empty when the queue's pattern is the subject itself.
  struct Delivered {
    Message message;
    SubjectRef subject;
    std::uint32_t deliveries = 0;
    TimePoint deadline;
    bool outstanding = true;   // false once nacked: its receipt is then stale
    std::uint64_t member = 0;  // the serial of the subscription it was handed to
  };
  struct Again {
    Message message;
    SubjectRef subject;
    std::uint32_t deliveries = 0;
  };
  AckOptions options;
  std::map<std::uint64_t, Delivered> delivered;
  std::map<std::uint64_t, Again> again;
  std::size_t outstanding = 0;  // deliveries awaiting an answer, bounded by max_in_flight
};

// The messages waiting for one ungrouped subscriber, or for one queue group, with their count,
// bytes and publish stamps kept in step. An idle queue holds no heap, so subscriptions cost only
// their bookkeeping until messages arrive.
class Queue {
 public:
  // `name` is the subscription id of an ungrouped queue, the group of a grouped one; it must
  // outlive the queue.
  // A queue without a topic only serves as a key, as the subject index's tests use it.
  Queue() noexcept = default;
  Queue(Topic& topic, std::string_view name, bool grouped, bool wildcard) noexcept
      : topic_(&topic), name_(name), grouped_(grouped), wildcard_(wildcard) {}
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  [[nodiscard]] bool empty() const noexcept { return messages_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return messages_.size(); }
  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }
  // Every message the queue holds: in ack mode also those in flight and pending again.
  [[nodiscard]] std::size_t held() const noexcept {
    return size() + (ack_ ? ack_->delivered.size() + ack_->again.size() : 0);
  }
  [[nodiscard]] Topic& topic() const noexcept { return *topic_; }
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] bool grouped() const noexcept { return grouped_; }
  // Null for a plain queue: ack mode costs a plain queue one pointer.
  [[nodiscard]] const AckOptions* ack_options() const noexcept {
    return ack_ ? &ack_->options : nullptr;
  }
  [[nodiscard]] AckQueue* ack() noexcept { return ack_.get(); }
  [[nodiscard]] const AckQueue* ack() const noexcept { return ack_.get(); }
  // Whether the pattern has wildcards, so each message keeps the subject it was published to.
  [[nodiscard]] bool wildcard() const noexcept { return wildcard_; }
  void set_ack_options(const AckOptions& options) {
    if (options.ack) {
      ack_ = std::make_unique<AckQueue>();
      ack_->options = options;
    }
  }

  // The subscriptions sharing the queue: one for an ungrouped queue, a group's members otherwise.
  [[nodiscard]] std::size_t members() const noexcept { return members_; }
  void join() noexcept { ++members_; }
  // True when the last member left: the queue's messages then have no one to go to.
  [[nodiscard]] bool leave() noexcept { return --members_ == 0; }

  // Fetches waiting for a publish, served oldest first; a waiter waits on one queue at most.
  // True while a waiter and a message are both there to be paired.
  [[nodiscard]] bool can_serve() const noexcept {
    if (waiters_.empty()) {
      return false;
    }
    if (!ack_) {
      return !empty();
    }
    return (!empty() || !ack_->again.empty()) && ack_->outstanding < ack_->options.max_in_flight;
  }
  void add_waiter(Waiter& waiter) noexcept { waiters_.push_back(waiter); }
  void remove_waiter(Waiter& waiter) noexcept { waiters_.erase(waiters_.iterator_to(waiter)); }
  // Unlinks the oldest waiter and returns it; only while can_serve().
  Waiter& pop_waiter() noexcept {
    Waiter& oldest = waiters_.front();
    waiters_.pop_front();
    return oldest;
  }
  // Unlinks, oldest first, every waiter `chosen` returns true for and hands it to `removed`,
  // which may wake it.
  template <typename Choose, typename Removed>
  void remove_waiters_if(Choose chosen, Removed removed) {
    auto waiter = waiters_.begin();
    while (waiter != waiters_.end()) {
      Waiter& found = *waiter;
      if (!chosen(found)) {
        ++waiter;
        continue;
      }
      waiter = waiters_.erase(waiter);
      removed(found);
    }
  }

  // Appends copies of `messages` (of `bytes` in all), published to `subject`, numbered from
  // `first_seq`. With a nonzero
  // `tick` they are stamped `now`, sharing the newest stamp when it is less than a tick old (or
  // not older than `now`, as a replayed time may be: stamps only grow).
  QueueChange push(std::span<const Message> messages, std::uint64_t first_seq, std::uint64_t bytes,
                   TimePoint now, std::chrono::milliseconds tick, const SubjectRef& subject);
  // Whether restore(messages, ...) keeps the queue's sequence numbers rising, none above
  // `last_seq`. Any stamp will do: a clock that went back must not lose messages.
  [[nodiscard]] bool can_restore(std::span<const Message> messages,
                                 std::uint64_t last_seq) const noexcept;
  // Appends copies of `messages` with the sequence numbers they carry; with `published` they are
  // stamped then, sharing the newest stamp when that is not earlier (stamps only grow).
  QueueChange restore(std::span<const Message> messages, std::optional<TimePoint> published,
                      const SubjectRef& subject);
  // Removes the `count` oldest messages, moving them to `out` unless it is null, and their
  // subjects to `subjects` unless it is null (empty ones where the pattern is the subject).
  QueueChange pop_front(std::size_t count, FetchedMessages* out,
                        std::vector<SubjectRef>* subjects = nullptr);
  // The subject the message `index` places from the oldest was published to.
  [[nodiscard]] std::string_view subject_at(std::size_t index) const noexcept;
  // The subject a message published to `subject` (empty: to the pattern itself) has.
  [[nodiscard]] std::string_view published_to(const SubjectRef& subject) const noexcept;
  // The bytes of the `count` oldest messages.
  [[nodiscard]] std::uint64_t front_bytes(std::size_t count) const;
  // How many of the oldest messages were stamped at least `ttl` before `now`.
  [[nodiscard]] std::size_t expired(TimePoint now, std::chrono::milliseconds ttl) const;
  template <typename Function>
  void for_each_stamp(Function function) const {
    stamps_.for_each_until([&function](const Stamp& stamp) {
      function(stamp);
      return true;
    });
  }
  // Removes the messages `chosen(message, subject)` returns true for, `subject` being the one the
  // message was published to; the others keep their order and publish stamps. The removed ones'
  // seqs are appended to `seqs`, rising.
  template <typename Choose>
  QueueChange remove_if(Choose chosen, std::vector<std::uint64_t>& seqs);
  // The message `index` places from the oldest; index < size().
  [[nodiscard]] const Message& at(std::size_t index) const { return messages_[index]; }
  // Visits the messages oldest first while `function` returns true.
  template <typename Function>
  void for_each_until(Function function) const {
    messages_.for_each_until(function);
  }

 private:
  // Per-message delivery state (in flight, delivery count, ack deadline) goes beside the handle
  // here: an entry of handle and state per queued message, so acks need no second structure.
  LazyDeque<Message> messages_;
  LazyDeque<Stamp> stamps_;  // kept only when message_ttl is set
  // Beside messages_, only when the pattern has wildcards: otherwise it is the subject.
  LazyDeque<SubjectRef> subjects_;
  std::uint64_t bytes_ = 0;
  std::size_t members_ = 0;
  boost::intrusive::list<Waiter> waiters_;
  Topic* topic_ = nullptr;
  std::unique_ptr<AckQueue> ack_;
  std::string_view name_;
  bool grouped_ = false;
  bool wildcard_ = false;
};

struct Subscription : boost::intrusive::list_base_hook<> {
  std::string_view id;  // the key it is stored under in the broker
  std::string subject;
  std::string group;
  // The name of the token that made it (API.md §11); empty when made without access control.
  std::string owner;
  Topic* topic = nullptr;
  Queue* queue = nullptr;
  std::unique_ptr<Queue> own_queue;  // set when ungrouped
  TimePoint last_active;
  std::size_t waiting = 0;  // fetches waiting on it; a waiting subscription is not idle
  bool ephemeral = false;   // a push stream's: it cannot outlive the process that served it
  // Unique in this process, unlike an address, which a later subscription may reuse: what a
  // group's deliveries remember of the member they went to (a resume answers for its own only).
  std::uint64_t serial = 0;
};

// Every subscription sharing one subject pattern, and the queue of each of its groups. The hooks
// keep it in the broker's stats order; they unlink themselves when the topic is erased.
struct Topic {
  using Hook =
      boost::intrusive::set_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
  std::string_view name;  // the key it is stored under in the broker
  std::size_t subscriptions = 0;
  StringMap<std::unique_ptr<Queue>> groups;
  std::uint64_t pending_messages = 0;
  std::uint64_t pending_bytes = 0;
  std::uint64_t in_flight = 0;
  Hook by_name;
  Hook busy;  // linked while messages are pending
};

struct ByName {
  bool operator()(const Topic& a, const Topic& b) const noexcept { return a.name < b.name; }
};

// Stats order: most pending messages first, ties by name.
struct BusierFirst {
  bool operator()(const Topic& a, const Topic& b) const noexcept {
    if (a.pending_messages != b.pending_messages) {
      return a.pending_messages > b.pending_messages;
    }
    return a.name < b.name;
  }
};

template <Topic::Hook Topic::*hook, typename Compare>
using TopicSet =
    boost::intrusive::set<Topic, boost::intrusive::member_hook<Topic, Topic::Hook, hook>,
                          boost::intrusive::compare<Compare>,
                          boost::intrusive::constant_time_size<false>>;

// The broker's whole state. A plain single-threaded class: the daemon owns it from one strand, and
// tests drive it directly with a clock of their own. Persistence, when it comes, sits behind
// publish (append before storing) and fetch (acknowledge after removing).
class Broker {
 public:
  explicit Broker(Limits limits, const Clock& clock = steady_clock());
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Without a group the subscription gets a queue of its own; with one it shares the group's.
  SubscribeStatus subscribe(std::string_view id, std::string_view subject,
                            std::optional<std::string_view> group);
  // With `options.ack` the queue is in ack mode (API.md §9): a fetch delivers instead of removing,
  // and a message stays queued, in flight, until acked. The options must pass is_valid and, for a
  // group that exists, equal the group's: otherwise invalid_ack_options, changing nothing. Plain
  // options (the default) behave exactly as the overload above. `owner` is the name of the token
  // that made it (empty: nobody, access control off). An `ephemeral` subscription is a push
  // stream's (API.md §10): journaled as such, so recovery removes it (recovered()).
  SubscribeStatus subscribe(std::string_view id, std::string_view subject,
                            std::optional<std::string_view> group, const AckOptions& options,
                            std::string_view owner = {}, bool ephemeral = false);
  // The ownership rule (API.md §11): whether `caller` may use subscription `id`. A caller with no
  // name (access control off) may use any; a subscription with no owner (made while it was off)
  // serves any caller; otherwise only its owner. False for an id that does not exist, so a caller
  // cannot tell someone else's subscription from none.
  [[nodiscard]] bool may_use(std::string_view id, std::string_view caller) const;
  // The options of the subscription's queue; null when it does not exist.
  [[nodiscard]] const AckOptions* ack_options(std::string_view subject, std::string_view id) const;

  // Stores every message for every matching queue, in order, or nothing at all. Waiting fetches
  // of those queues are woken with what they can take. Under max-pending-per-queue with
  // `drop-oldest`, a full queue first drops its oldest messages to make room (a batch larger than
  // the bound keeps its newest); with `reject`, a publish that would overfill any queue stores
  // nothing.
  PublishStatus publish(std::string_view subject, std::span<const Message> messages);
  // Idempotent publish: `msg_ids` is empty or holds one valid msg_id per message. A message whose
  // msg_id was published to `subject` within Limits::dedupe_window is not stored again and
  // counts as a duplicate; the others are stored as above. A batch of duplicates only is ok.
  PublishResult publish(std::string_view subject, std::span<const Message> messages,
                        std::span<const std::string_view> msg_ids);

  // Moves up to `max` of the subscription's oldest pending messages into `out`; on an ack-mode
  // queue it delivers them, as the overload below does.
  FetchStatus fetch(std::string_view subject, std::string_view id, std::size_t max,
                    FetchedMessages& out);

  // The one fetch for every mode: a plain queue's oldest messages are removed, an ack-mode
  // queue's are delivered as fetch_deliveries does; with `meta` (or in ack mode) into
  // `out.deliveries`, carrying the subject each was published to.
  FetchStatus fetch(std::string_view subject, std::string_view id, std::size_t max, bool meta,
                    Fetched& out);

  // Like fetch, into the waiter; when nothing can be handed out, links the waiter to the queue
  // and returns FetchStatus::waiting instead. A waiting fetch on an ack-mode queue also wakes when
  // a message is pending again (nack, timeout) or an ack makes room under max_in_flight.
  FetchStatus fetch_or_wait(std::string_view subject, std::string_view id, std::size_t max,
                            Waiter& waiter, bool meta = false);

  // Ack-mode fetch: hands out up to `max` pending messages of the subscription's queue as
  // deliveries, never more than max_in_flight in flight on the queue. Redelivered messages go
  // first, then never-delivered ones, each in publish order. Each delivery counts up its message's
  // deliveries and is due ack_wait from now. bad_id also for a plain subscription.
  FetchStatus fetch_deliveries(std::string_view subject, std::string_view id, std::size_t max,
                               Deliveries& out);
  // Per receipt: removes the delivered message from the queue (ack), makes it pending again
  // after `delay` (nack; zero: now), or restarts its ack_wait (extend) when the receipt names the
  // message's latest delivery and it is still in flight; stale otherwise. Any member of a group
  // may answer for the group's queue. A nacked or timed out message that reached max_deliveries
  // leaves the queue: published to dead_letter as an ordinary publish, or dropped.
  AckResult ack(std::string_view subject, std::string_view id, std::span<const Receipt> receipts);
  AckResult nack(std::string_view subject, std::string_view id, std::span<const Receipt> receipts,
                 std::chrono::milliseconds delay);
  AckResult extend(std::string_view subject, std::string_view id,
                   std::span<const Receipt> receipts);
  // A stream that reconnects with the seq of the last event it read (API.md §10): every delivery
  // of the subscription's queue still in flight with a seq up to `last_seq` is acked, and every
  // later one is pending again at once, as a nack without delay would make it (max_deliveries
  // applies). For a group that is the group's queue: any member may answer for it, as with ack.
  // not_ack_mode (nothing changed) for a plain subscription.
  ResumeResult resume(std::string_view subject, std::string_view id, std::uint64_t last_seq);
  // The subject pattern the subscription `id` was made with; nullopt when there is none.
  [[nodiscard]] std::optional<std::string> subject_of(std::string_view id) const;
  // The earliest ack deadline or nack delay still to come; none while nothing is in flight. The
  // service arms one timer on it and calls expire_deliveries when it fires, re-reading it after
  // every call that may change it. O(1).
  [[nodiscard]] std::optional<TimePoint> next_deadline() const;
  // Makes every delivery past its deadline pending again (or dead-letters it), waking waiting
  // fetches of those queues. O(log n) per message due, nothing for the others.
  void expire_deliveries();

  // Ends a wait without messages and without calling wake(). False when the waiter was already
  // woken (or never waited).
  bool cancel_wait(Waiter& waiter);

  // Wakes every waiting fetch with nothing: the daemon is shutting down.
  void wake_all_waiters();

  UnsubscribeStatus unsubscribe(std::string_view subject, std::string_view id);

  // Operators' calls (the admin endpoints). Each takes a subject pattern or an id, whoever made
  // the subscription.
  // The subscriptions whose pattern lies within `pattern` (pattern_within), the `limit` lowest
  // ids of them, sorted by id.
  [[nodiscard]] SubscriptionList list_subscriptions(std::string_view pattern,
                                                    std::size_t limit) const;
  // Removes the subscription as unsubscribe does, knowing only its id.
  UnsubscribeStatus unsubscribe(std::string_view id);
  // Drops, from every queue, the pending messages (never delivered, or pending again after a
  // delivery) published to a subject `pattern` matches; in-flight ones stay. Counted and
  // journaled as drops for DropReason::purged.
  PurgeResult purge(std::string_view pattern);
  // The same for every pending message of the queue of subscription `id`.
  PurgeResult purge_subscription(std::string_view id);

  // Drops messages older than message-ttl and removes subscriptions idle for subscriber-ttl.
  void expire();

  // Reports every state change to `sink` from now on (null: to nobody). The sink must outlive
  // the broker or be replaced first.
  void set_journal(JournalSink* sink) noexcept { journal_ = sink; }

  // Repeats a state change another core reported, without its checks: records applied in order
  // to an empty core with the same limits rebuild that core's state (waiting fetches aside, which
  // end with their connections). False, changing nothing, when the record names a subscription
  // or queue this core does not have, or could not have come from such a core. Replay leaves the
  // counters alone: they count what this process did, as after any restart.
  bool apply(const Record& record);

  // Ends a replay (storage calls it once, after the last record it recovered and before the
  // first checkpoint): a message in flight at the crash whose deliveries already reached
  // max_deliveries is dead-lettered or dropped now, as its timeout would have, instead of being
  // delivered again. Replay keeps nothing in flight, so a crash loop cannot reset deliveries.
  // Replay of the same log followed by this call always ends in the same state.
  // Ephemeral subscriptions are removed first, their messages with them, as unsubscribe would:
  // the streams that made them ended with the process.
  void recovered();

  // Reports the whole state to `sink` as a snapshot: a checkpoint record, a subscribe record per
  // subscription (active at its last activity), queue_state records holding every pending message,
  // and a checkpoint_end record. Applied to an empty core with the same limits, they rebuild this
  // one; the records this core reports afterwards then apply on top of them.
  void checkpoint(JournalSink& sink) const;

  // The whole state as text, waiting fetches and counters aside: two cores with equal dumps are
  // equal.
  [[nodiscard]] std::string dump() const;

  [[nodiscard]] Totals totals() const;
  // The `limit` subjects with the most pending messages, most first (ties by name).
  [[nodiscard]] std::vector<SubjectStats> top_subjects(std::size_t limit) const;
  [[nodiscard]] const Limits& limits() const noexcept { return limits_; }

 private:
  Subscription* find_subscription(std::string_view subject, std::string_view id);
  Subscription& add_subscription(std::string_view id, std::string_view subject,
                                 std::optional<std::string_view> group, TimePoint now);
  bool replay(const Record& record);
  bool replay_subscribe(const Record& record);
  bool replay_publish(const Record& record);
  // deliver, ack, nack and extend: the seqs must be pending again on the subscription's queue.
  bool replay_answer(const Record& record);
  bool replay_settle(const Record& record);
  bool replay_ack_state(const Record& record);
  // The subject a checkpointed message of `queue` was published to, into `out`: none for a
  // pattern without wildcards. False when the record cannot name it.
  bool published_ref(const Queue& queue, const Record& record, SubjectRef& out);
  // The subscribe record of `subscription`, active at its last activity.
  static Record subscribe_record(const Subscription& subscription);
  // Its owner record; only for a subscription that has an owner.
  static Record owner_record(const Subscription& subscription);
  // A record of `type` naming `queue`.
  static Record queue_record(RecordType type, const Queue& queue);
  // Reports the queue's pending messages as queue_state records, gathering each in `chunk`;
  // returns how many records.
  static std::uint64_t checkpoint_queue(const Queue& queue, JournalSink& sink,
                                        std::vector<Message>& chunk);
  // Reports an ack-mode queue's delivered and pending-again messages as ack_state records.
  static std::uint64_t checkpoint_ack(const Queue& queue, JournalSink& sink,
                                      std::vector<Message>& chunk);
  std::uint64_t checkpoint_dedupe(JournalSink& sink) const;
  Queue& join_group(Topic& topic, std::string_view subject, std::string_view group);
  Queue* find_queue(const Record& record);
  // Reports that the subscription was active at `now` and took `count` messages.
  void journal_fetch(const Subscription& subscription, TimePoint now, std::size_t count);
  // Reports what a fetch took from the queue: a fetch record, or for an ack-mode queue a deliver
  // record of `count` never-delivered messages and the redeliveries in seqs_.
  void journal_taken(const Subscription& subscription, TimePoint now, std::size_t count);
  // Reports an ack, nack or extend of the seqs in seqs_ by the subscription, at its activity.
  void journal_answer(RecordType type, const Subscription& subscription);
  // Whether the journal takes a change a client asked for that is neither a publish nor a fetch
  // (subscribe, unsubscribe, purge, ack, nack, extend): asked before anything changes.
  [[nodiscard]] bool journal_admits_change() const;
  void remove_subscription(Subscription& subscription, DropReason reason);
  void leave_group(Subscription& subscription, DropReason reason);
  void wake_waiters_of(Queue& queue, const Subscription* subscription);
  void touch(Subscription& subscription, TimePoint now);
  // The ack-mode queue of the subscription; null (with `status` set) when there is none.
  AckQueue* find_ack_queue(std::string_view subject, std::string_view id, AckStatus& status,
                           Queue*& queue, Subscription*& subscription);
  // The part of ack, nack and extend they share: each receipt that names a delivery still
  // outstanding (that delivery count, not answered) has its deadline taken off and is handed to
  // `apply`, with its seq in seqs_ for the journal; the others go to result.stale.
  template <typename Apply>
  void apply_receipts(Queue& queue, AckQueue& state, std::span<const Receipt> receipts,
                      AckResult& result, Apply apply);
  // Ends a delivery no longer outstanding: pending again, or past max_deliveries dead-lettered
  // or dropped.
  void settle(Queue& queue, std::map<std::uint64_t, AckQueue::Delivered>::iterator entry);
  // The message, removed from the queue's ack state, leaves the queue past max_deliveries: a
  // settle record, then the dead-letter publish or the drop.
  void retire(Queue& queue, const Message& message);
  // Removes a queue's delivered and pending-again messages when its last member leaves.
  void drop_acked_state(Queue& queue, DropReason reason);
  // A delivery of `queue` stopped being outstanding.
  void answered(Queue& queue, AckQueue& state);

  // The messages take the sequence numbers from `first_seq` on.
  void store(Queue& queue, std::span<const Message> messages, std::uint64_t first_seq,
             std::uint64_t bytes, TimePoint now, const SubjectRef& subject);
  // Keeps the topic's and the broker's pending counts in step with a queue's.
  void grew(Queue& queue, QueueChange change);
  void shrank(Queue& queue, QueueChange change);
  // How many of each matched queue's oldest messages the publish of `count` must drop under
  // `drop-oldest` (into drops_), and the bytes they free.
  std::uint64_t plan_drops(std::size_t count, std::uint64_t& freed_bytes);
  std::size_t take(Queue& queue, std::size_t max, FetchedMessages& out);
  // Hands out up to `max` of the queue's messages in any mode (see fetch) to the subscription
  // whose serial is `member`; returns how many left the queue's deque.
  std::size_t take(Queue& queue, std::size_t max, bool meta, FetchedMessages& messages,
                   Deliveries& deliveries, std::uint64_t member);
  // Returns how many never-delivered messages it took; the seqs it redelivered go to seqs_.
  std::size_t deliver(Queue& queue, std::size_t max, Deliveries& out, std::uint64_t member);
  // How a publish_with is admitted by the journal. A dead letter moves a message the journal
  // already holds, answered 200 when it was published: the journal is not asked, as a refusal
  // would lose that message (on a full disk, or at storage.max-bytes). Its record may go into the
  // room kept for records that are not publishes, or wait for space.
  enum class Admission { asked, already_held };
  // publish, with the msg_ids of an idempotent publish (then journaled as publish_ids) and the
  // time it was taken at (read from the clock when message-ttl needs it, otherwise).
  PublishStatus publish_with(std::string_view subject, std::span<const Message> messages,
                             std::span<const std::string_view> msg_ids, std::optional<TimePoint> at,
                             Admission admission);
  // unsubscribe's removal of a subscription found by either overload.
  UnsubscribeStatus unsubscribe_found(Subscription& subscription);
  void drop_front(Queue& queue, std::size_t count, DropReason reason);
  // Purges the queue's pending messages `chosen(subject)` returns true for, by the subject each
  // was published to; `all` when every one is chosen. Returns how many.
  template <typename Choose>
  std::uint64_t purge_queue(Queue& queue, bool all, Choose chosen);
  // Journals the purge of `seqs_` from the queue, in records of at most purge_record_seqs.
  void journal_purge(const Queue& queue);
  bool replay_purge(const Record& record);
  void drop_expired_messages(Queue& queue, TimePoint now);
  void serve_waiters(Queue& queue);
  template <typename Function>
  void for_each_queue(Function function);
  void enter_ranking(std::pair<const std::string, Topic>& entry);
  // Moves the topic to its place in busy_ after its pending count changed.
  void rerank(Topic& topic);

  Limits limits_;
  const Clock& clock_;
  // Before every queue, which hold references into it.
  SubjectTable subject_names_;
  SubjectIndex index_;
  StringMap<Subscription> subscriptions_;
  StringMap<Topic> topics_;
  // Subscriptions by last activity, least recent first: subscriber-ttl only looks at the front.
  // Declared after subscriptions_ so it is destroyed, unlinking them, before they are.
  boost::intrusive::list<Subscription> by_activity_;
  // Stats read the first `limit` topics of busy_, then idle ones by name, instead of sorting
  // every subject on the broker strand. Only busy_ changes on publish and fetch, and it holds
  // just the topics with messages pending.
  TopicSet<&Topic::by_name, ByName> by_name_;
  TopicSet<&Topic::busy, BusierFirst> busy_;
  std::uint64_t pending_messages_ = 0;
  std::uint64_t pending_bytes_ = 0;
  std::uint64_t in_flight_ = 0;
  std::uint64_t subscription_serials_ = 0;  // the last Subscription::serial given
  std::size_t waiting_fetches_ = 0;
  std::uint64_t last_seq_ = 0;  // the sequence number of the newest published message
  JournalSink* journal_ = nullptr;
  Counters counters_;
  std::vector<Queue*> matched_;      // reused by publish to avoid an allocation per call
  std::vector<std::size_t> drops_;   // per matched queue, likewise
  std::vector<std::uint64_t> seqs_;  // the seqs of one journaled ack-mode change
  DedupeWindow dedupe_;
  // Every ack deadline and nack delay: the service arms one timer on the first.
  std::set<std::tuple<TimePoint, Queue*, std::uint64_t>> deadlines_;
};

}  // namespace gophermq::broker
