#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "broker/broker.hpp"
#include "storage/log.hpp"
#include "storage/options.hpp"
#include "storage/recovery.hpp"

namespace gophermq::service {

// The refusals of a publish the broker would make, then queue_full: async-queue-size messages are
// waiting; bytes_full: async-queue-bytes of data are.
enum class AsyncPublishStatus {
  accepted,
  invalid_subject,
  subject_too_long,
  message_too_large,
  queue_full,
  bytes_full
};
enum class AsyncFailure : std::size_t { no_subscribers, overflow, queue_full, storage_full, count };
std::string_view name_of(AsyncFailure failure);

struct Subscribed {
  broker::SubscribeStatus status = broker::SubscribeStatus::ok;
  std::string id;  // the new subscription's, when status is ok
};

// `messages` for a plain fetch; `deliveries` for an ack-mode queue (`ack`) or a meta fetch.
struct FetchResult {
  broker::FetchStatus status = broker::FetchStatus::ok;
  broker::FetchedMessages messages;
  broker::Deliveries deliveries;
  bool ack = false;
};

// ack, nack or extend: the receipts applied, and the stale ones as sent, in input order.
struct ReceiptsResult {
  broker::AckStatus status = broker::AckStatus::ok;
  std::size_t applied = 0;
  std::vector<std::string> stale;
};
enum class ReceiptsVerb { ack, nack, extend };

struct ServiceSnapshot {
  broker::Totals totals;
  std::vector<broker::SubjectStats> top_subjects;
  std::uint64_t async_queue_depth = 0;
  std::uint64_t async_failures[static_cast<std::size_t>(AsyncFailure::count)] = {};
  storage::LogFigures storage;  // zeros when memory only
  storage::RecoveryReport recovery;
};

// The durable log, when storage.dir is set, and what the daemon hears from it.
struct Storage {
  storage::Options options;
  // An I/O failure of the log, or a log that cannot be recovered: the process must end, now.
  std::function<void(const std::string&)> fatal;
  std::function<void(std::chrono::duration<double>)> fsync_observed;
};

// Something the broker strand does every `interval` while it is healthy, such as telling a
// watchdog it is alive: a strand that is stuck stops beating.
struct Heartbeat {
  std::chrono::milliseconds interval{0};  // 0: no heartbeat
  std::function<void()> beat;
};

// Whether the broker strand has a thread of its own. `shared_with_callers`: the executor is an
// io_context's that exactly one thread runs, and that thread also runs the callers (one HTTP
// thread), so a call made on it runs on the broker at once instead of posting there and back.
enum class StrandThread { own, shared_with_callers };

// About how many bytes a checkpoint of a broker with these totals takes in the log, at least as
// many as it does: the log decides with it whether a checkpoint fits under storage.max-bytes.
std::uint64_t checkpoint_bytes_estimate(const broker::Totals& totals);

// Owns the Broker on one strand and is the only way in: each call hops onto the broker strand,
// runs there, and resumes the caller on its own executor, so the broker needs no lock.
// Async publishes go through a second, dedicated worker strand that batches them into the broker
// in arrival order.
class BrokerService {
 public:
  BrokerService(const boost::asio::any_io_executor& executor, broker::Limits limits,
                std::size_t async_queue_capacity,
                std::uint64_t async_queue_bytes = 64ULL * 1024 * 1024,
                StrandThread strand_thread = StrandThread::own, Storage storage = {});
  ~BrokerService();
  BrokerService(const BrokerService&) = delete;
  BrokerService& operator=(const BrokerService&) = delete;

  // Allocates the subscription's id, which is the subscriber's credential: a version 4 UUID from
  // the kernel's CSPRNG.
  boost::asio::awaitable<Subscribed> subscribe(const std::string& subject,
                                               const std::optional<std::string>& group);
  // `options` must outlive the call (API.md §9 ack mode when options.ack). The subscription
  // belongs to `owner`, a token's name (API.md §11; empty: nobody).
  //
  // Every call below that names a subscription takes the caller's `owner` last: a subscription
  // the caller may not use (Broker::may_use) is answered exactly as one that does not exist.
  boost::asio::awaitable<Subscribed> subscribe(const std::string& subject,
                                               const std::optional<std::string>& group,
                                               const broker::AckOptions& options,
                                               std::string_view owner = {});
  // A push stream's own subscription (API.md §10), plain and ephemeral: recovery removes it.
  boost::asio::awaitable<Subscribed> subscribe_ephemeral(const std::string& subject,
                                                         const std::optional<std::string>& group,
                                                         std::string_view owner = {});
  boost::asio::awaitable<broker::PublishStatus> publish(
      const std::string& subject, const std::vector<broker::Message>& messages);
  // Idempotent publish (API.md §9): `msg_ids` empty or one per message.
  boost::asio::awaitable<broker::PublishResult> publish(
      const std::string& subject, const std::vector<broker::Message>& messages,
      const std::vector<std::string>& msg_ids);
  // Receipts as sent: one that does not parse names no delivery and is stale. `delay`: nack only.
  boost::asio::awaitable<ReceiptsResult> answer_receipts(
      ReceiptsVerb verb, const std::string& subject, const std::string& id,
      const std::vector<std::string>& receipts,
      std::chrono::milliseconds delay = std::chrono::milliseconds(0), std::string_view owner = {});
  // A stream's Last-Event-ID (API.md §10): acks what is in flight up to `last_seq`, redelivers
  // the rest (Broker::resume).
  boost::asio::awaitable<broker::ResumeResult> resume(const std::string& subject,
                                                      const std::string& id, std::uint64_t last_seq,
                                                      std::string_view owner = {});
  // The subject pattern of subscription `id`, for a stream that names only the id.
  boost::asio::awaitable<std::optional<std::string>> subject_of(const std::string& id,
                                                                std::string_view owner = {});
  // With a `wait` above zero and nothing pending, the fetch waits for the first publish to its
  // queue, for `wait` to pass, or for unsubscribe or shutdown, without holding a thread or the
  // strand. Cancelling the awaiting operation (the client went away) ends the wait and leaves
  // the messages queued.
  // With `meta` (or on an ack-mode queue) the messages come as deliveries.
  boost::asio::awaitable<FetchResult> fetch(
      const std::string& subject, const std::string& id, std::size_t max,
      std::chrono::milliseconds wait = std::chrono::milliseconds(0), bool meta = false,
      std::string_view owner = {});
  boost::asio::awaitable<broker::UnsubscribeStatus> unsubscribe(const std::string& subject,
                                                                const std::string& id,
                                                                std::string_view owner = {});
  // The admin calls (Broker::list_subscriptions, unsubscribe by id, purge, purge_subscription).
  // Removals are answered once their records are on disk, as unsubscribe's are.
  boost::asio::awaitable<broker::SubscriptionList> list_subscriptions(const std::string& pattern,
                                                                      std::size_t limit);
  boost::asio::awaitable<broker::UnsubscribeStatus> remove_subscription(const std::string& id);
  boost::asio::awaitable<broker::PurgeResult> purge(const std::string& pattern);
  boost::asio::awaitable<broker::PurgeResult> purge_subscription(const std::string& id);
  // Totals, and the `top_subjects` subjects with the most pending messages.
  boost::asio::awaitable<ServiceSnapshot> snapshot(std::size_t top_subjects = 0);

  // Recovers the log, when storage is on, then starts the periodic work on the broker strand:
  // expiry of messages and subscriptions, and the heartbeat. `ready` is called on the broker
  // strand once the broker serves what it recovered; calls made before then wait for it.
  void start(Heartbeat heartbeat = {},
             std::function<void(const storage::RecoveryReport&)> ready = nullptr);
  // Whether start() has recovered the log (or there is none), on any thread.
  [[nodiscard]] bool ready() const noexcept { return ready_.load(std::memory_order_acquire); }

  // Never waits: the message is queued for the worker strand, or refused for what the broker would
  // refuse it for or because the queue is full. Calls from one thread reach the broker in call
  // order.
  // A `msg_id` (valid, or empty for none) is checked against the dedupe window when the publish
  // reaches the broker: a duplicate is then not stored.
  AsyncPublishStatus publish_async(std::string subject, broker::Message message,
                                   std::string msg_id = {});

  // Shutdown, first step: every waiting fetch returns what it has ([]), and fetches from now on
  // do not wait.
  void stop_waiting();

  // Shutdown, last step: completes once every async publish accepted before the call has reached
  // the broker, the log has written and synced everything, and the periodic work has stopped.
  // Calls still work afterwards, without the log.
  boost::asio::awaitable<void> shutdown();

  [[nodiscard]] const broker::Limits& limits() const noexcept { return limits_; }
  // Async publishes accepted and not yet in the broker, on any thread.
  [[nodiscard]] std::uint64_t async_queue_depth() const noexcept { return async_depth_.load(); }

 private:
  boost::asio::awaitable<Subscribed> subscribe_with(const std::string& subject,
                                                    const std::optional<std::string>& group,
                                                    const broker::AckOptions& options,
                                                    std::string_view owner, bool ephemeral);
  struct AsyncItem {
    std::string subject;
    broker::Message message;
    std::string msg_id;
  };

  class PendingFetch;

  boost::asio::awaitable<FetchResult> wait_for_messages(const std::string& subject,
                                                        const std::string& id, std::size_t max,
                                                        std::chrono::milliseconds wait, bool meta,
                                                        std::string_view owner);
  // The work on the broker, at once when the caller is on the strand's thread and shares it
  // (StrandThread::shared_with_callers), else through run_on(broker_strand_). With storage on, the
  // caller resumes once the records the work appended are written to the log; with `durable`,
  // synced too (fsync mode always), and then even when it appended nothing: what it answers from
  // may rest on records still on their way to the disk (a duplicate publish is answered 200 from
  // the dedupe window, which its original's record, maybe not yet written, put there), so a
  // durable answer waits for everything appended before it.
  template <typename Function>
  boost::asio::awaitable<std::invoke_result_t<Function>> on_broker(bool durable, Function function);
  [[nodiscard]] bool on_broker_thread() const noexcept;
  // Like run_on for the broker strand, then waits for the log as on_broker does.
  template <typename Function>
  boost::asio::awaitable<std::invoke_result_t<Function>> run_logged(bool durable,
                                                                    Function function);
  // On the broker strand: resumes the caller once everything appended is written (and synced).
  boost::asio::awaitable<void> wait_for_log(std::uint64_t before, bool durable);
  // On the broker strand: calls `done` once everything appended is written (and synced, when
  // `durable`); when what the call appended since `before` only takes messages out (a plain
  // fetch), as Log::when_taken says.
  void wait_for_records(std::uint64_t before, bool durable, storage::Log::Callback done);
  // Runs `publish` (a broker publish) on the broker as on_broker(durable) does. A publish the log
  // refused while it was making a file is tried again once the file is made: the disk had room,
  // so the publisher gets a moment's wait, never a 507 "storage full".
  template <typename Publish>
  boost::asio::awaitable<std::invoke_result_t<Publish>> publish_when_room(Publish publish);
  template <typename Publish>
  boost::asio::awaitable<std::invoke_result_t<Publish>> publish_retrying(Publish publish);
  // Resumes the caller once the file the log is making is ready, or found no room.
  boost::asio::awaitable<void> wait_for_room();
  void open_log();
  void schedule_expiry();
  void schedule_heartbeat();
  // Keeps the one deadline timer on Broker::next_deadline(); called after every broker call,
  // which costs a comparison when the earliest deadline did not move.
  void arm_deadline_timer();
  // Moves everything in the intake, oldest first, to the broker strand as one batch.
  void take_async_intake();
  // Applies the batches taken from the intake, oldest first; with storage on, only while the log
  // has less than async-queue-bytes waiting for the disk, unless `all`: the records of applied
  // async publishes would otherwise pile up in memory behind a slow disk. Batches held back keep
  // their place in the async queue's bounds, so publishers see it fill.
  void apply_async_batches(bool all);
  // Applies the batch from its front, removing what it applied. Stops early, keeping the rest,
  // when the log refused a publish while making a file (see publish_when_room), unless `all`.
  void apply_async_batch(std::vector<AsyncItem>& batch, bool all);

  using Strand = boost::asio::strand<boost::asio::any_io_executor>;
  Strand broker_strand_;
  Strand worker_strand_;
  // The io_context the broker strand runs on, when StrandThread::shared_with_callers.
  std::optional<boost::asio::io_context::executor_type> shared_thread_;
  broker::Limits limits_;
  broker::Broker broker_;  // touched only on broker_strand_
  Storage storage_;
  std::unique_ptr<storage::Log> log_;  // broker strand; null when memory only
  storage::RecoveryReport recovery_;   // broker strand
  std::atomic<bool> ready_{false};
  bool waits_allowed_ = true;               // broker strand
  bool periodic_work_ = true;               // broker strand; false once shutdown began
  boost::asio::steady_timer expiry_timer_;  // broker strand
  std::chrono::milliseconds expiry_interval_;
  // Broker strand: redelivers ack-mode messages at their deadlines (API.md §9).
  boost::asio::steady_timer deadline_timer_;
  std::optional<broker::TimePoint> armed_deadline_;
  boost::asio::steady_timer heartbeat_timer_;  // broker strand
  Heartbeat heartbeat_;                        // broker strand

  const std::size_t async_capacity_;
  // Message data waiting in the async queue is not yet pending in the broker, so it has its own
  // bound; otherwise size x max-message-bytes could be held.
  const std::uint64_t async_bytes_capacity_;
  std::atomic<std::uint64_t> async_bytes_{0};
  std::atomic<std::uint64_t> async_depth_{0};
  // Accepted async publishes not yet taken by the worker strand, newest first: a lock-free stack
  // that publishers push onto with one compare-and-swap. The worker takes all of it at once, so a
  // burst of publishes costs one post to the worker and one batch into the broker.
  struct AsyncNode {
    AsyncItem item;
    AsyncNode* next;
  };
  std::atomic<AsyncNode*> async_intake_{nullptr};
  std::uint64_t async_failures_[static_cast<std::size_t>(AsyncFailure::count)] = {};  // broker
  std::deque<std::vector<AsyncItem>> async_batches_;  // broker strand: taken, not yet applied
  bool async_waits_for_log_ = false;                  // broker strand
  bool async_waits_for_room_ = false;                 // broker strand
};

}  // namespace gophermq::service
