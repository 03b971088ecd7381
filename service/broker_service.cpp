#include "service/broker_service.hpp"

#include <algorithm>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <memory>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "broker/subject.hpp"

namespace gophermq::service {
namespace asio = boost::asio;

namespace {

// What the broker answers a call naming a subscription it does not have: for one the caller may
// not use, the same, so nobody learns that someone else's exists (API.md §11).
template <typename Status>
Status as_unknown(std::string_view subject, const broker::Limits& limits) {
  if (subject.size() > limits.max_subject_length) {
    return Status::subject_too_long;
  }
  if (!broker::is_valid_subject(subject, broker::SubjectUse::subscribe,
                                limits.max_subject_length)) {
    return Status::invalid_subject;
  }
  return Status::bad_id;
}

template <typename Result>
struct CompletionOf {
  using type = void(Result);
};
template <>
struct CompletionOf<void> {
  using type = void();
};

// Runs `function` on `strand` and resumes the awaiting coroutine on its own executor with the
// result: one post there and one post back, and the caller's executor is kept busy meanwhile so its
// io_context cannot run out of work while the coroutine waits.
template <typename Strand, typename Function>
auto run_on(Strand& strand, Function function) -> asio::awaitable<std::invoke_result_t<Function>> {
  using Result = std::invoke_result_t<Function>;
  return asio::async_initiate<const asio::use_awaitable_t<>&, typename CompletionOf<Result>::type>(
      [&strand](auto handler, Function work) {
        auto caller = asio::prefer(asio::get_associated_executor(handler),
                                   asio::execution::outstanding_work.tracked);
        asio::post(strand, [handler = std::move(handler), work = std::move(work),
                            caller = std::move(caller)]() mutable {
          if constexpr (std::is_void_v<Result>) {
            work();
            asio::post(caller, std::move(handler));
          } else {
            asio::post(caller, [handler = std::move(handler), result = work()]() mutable {
              std::move(handler)(std::move(result));
            });
          }
        });
      },
      asio::use_awaitable, std::move(function));
}

// Sweeps often enough that nothing outlives its TTL by more than a tenth of it (or one second),
// and rarely enough that an idle broker stays idle.
std::chrono::milliseconds expiry_interval_for(const broker::Limits& limits) {
  std::chrono::milliseconds shortest{0};
  for (const auto ttl : {limits.subscriber_ttl, limits.message_ttl}) {
    if (ttl.count() > 0 && (shortest.count() == 0 || ttl < shortest)) {
      shortest = ttl;
    }
  }
  return std::clamp(shortest / 10, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}

std::optional<asio::io_context::executor_type> shared_thread_of(
    const asio::any_io_executor& executor, StrandThread strand_thread) {
  if (strand_thread == StrandThread::own) {
    return std::nullopt;
  }
  const auto* context = executor.target<asio::io_context::executor_type>();
  if (context == nullptr) {
    throw std::invalid_argument("a broker strand shared with its callers needs an io_context");
  }
  return *context;
}

// random_generator_pure reads every UUID from the kernel (getrandom); Boost's mt19937-based
// generator would make ids that one leaked state predicts, and the id is the subscriber's
// credential.
std::string new_subscription_id() {
  boost::uuids::random_generator_pure generate;
  return boost::uuids::to_string(generate());
}

}  // namespace

// A checkpoint holds each pending message of each queue with its length and seq, a delivery count
// for each in flight, a record per subscription and the dedupe window's msg_ids. The allowance
// per subscription covers its id, subject and group; the one per msg_id its length and, at worst,
// a record of its own (the window's entries share one only when stamped at the same instant).
std::uint64_t checkpoint_bytes_estimate(const broker::Totals& totals) {
  constexpr std::uint64_t kPerMessage = 12;
  constexpr std::uint64_t kPerDelivery = 5;
  constexpr std::uint64_t kPerSubscription = 160;
  constexpr std::uint64_t kPerMsgId = 24;
  return totals.pending_bytes + kPerMessage * totals.pending_messages +
         kPerDelivery * totals.in_flight + kPerSubscription * totals.subscriptions +
         totals.dedupe_bytes + kPerMsgId * totals.dedupe_ids;
}

std::string_view name_of(AsyncFailure failure) {
  switch (failure) {
    case AsyncFailure::no_subscribers:
      return "no_subscribers";
    case AsyncFailure::overflow:
      return "overflow";
    case AsyncFailure::queue_full:
      return "queue_full";
    case AsyncFailure::storage_full:
      return "storage_full";
    case AsyncFailure::count:
      break;
  }
  return "unknown";
}

namespace {

broker::PublishStatus status_of(broker::PublishStatus status) {
  return status;
}
broker::PublishStatus status_of(const broker::PublishResult& result) {
  return result.status;
}

// Whether a durable answer must wait for the log even when its call appended nothing (see
// on_broker). Not a call the log refused (storage_full): its answer rests on nothing stored, and
// it must not wait behind a write that waits for space on a full disk. Nor a publish refused for
// any reason.
bool rests_on_the_log(broker::PublishStatus status) {
  return status == broker::PublishStatus::ok;
}
template <typename Status>
requires std::is_enum_v<Status>
bool rests_on_the_log(Status status) {
  if constexpr (requires { Status::storage_full; }) {
    return status != Status::storage_full;
  } else {
    return true;
  }
}
template <typename Result>
requires(!std::is_enum_v<Result>) bool rests_on_the_log(const Result& result) {
  if constexpr (requires { result.status; }) {
    return rests_on_the_log(result.status);
  } else {
    return true;
  }
}

}  // namespace

template <typename Function>
asio::awaitable<std::invoke_result_t<Function>> BrokerService::run_logged(bool durable,
                                                                          Function function) {
  using Result = std::invoke_result_t<Function>;
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result)>(
      [this, durable](auto handler, Function work) {
        auto caller = asio::prefer(asio::get_associated_executor(handler),
                                   asio::execution::outstanding_work.tracked);
        asio::post(broker_strand_, [this, durable, handler = std::move(handler),
                                    work = std::move(work), caller = std::move(caller)]() mutable {
          const std::uint64_t before = log_ != nullptr ? log_->end() : 0;
          auto result = work();
          const bool wait =
              log_ != nullptr && ((durable && rests_on_the_log(result)) || log_->end() != before);
          auto resume = [handler = std::move(handler), result = std::move(result),
                         caller = std::move(caller)]() mutable {
            asio::post(caller,
                       [handler = std::move(handler), result = std::move(result)]() mutable {
                         std::move(handler)(std::move(result));
                       });
          };
          arm_deadline_timer();
          if (!wait) {
            resume();
            return;
          }
          wait_for_records(before, durable, std::move(resume));
        });
      },
      asio::use_awaitable, std::move(function));
}

// A fetch waiting on the broker strand. Shared by its timer's handler and the caller's
// cancellation slot, whichever lets go last frees it; the broker only links it while it waits.
class BrokerService::PendingFetch final : public broker::Waiter {
 public:
  using Handler = asio::any_completion_handler<void(FetchResult)>;

  template <typename CompletionHandler>
  PendingFetch(Strand& strand, storage::Log* log, CompletionHandler handler)
      : timer(strand),
        log_(log),
        caller_(asio::prefer(asio::get_associated_executor(handler),
                             asio::execution::outstanding_work.tracked)),
        slot_(asio::get_associated_cancellation_slot(handler)),
        handler_(std::move(handler)) {}

  void wake() override {
    timer.cancel();
    complete(broker::FetchStatus::ok);
  }

  // Resumes the caller once, on its own executor, with whatever the broker handed over: with
  // storage on, once the removal of those messages is written.
  void complete(broker::FetchStatus status) {
    const std::size_t messages_taken = messages.size() + deliveries.size();
    auto resume =
        [caller = caller_, handler = std::move(handler_), slot = slot_,
         result = FetchResult{status, std::move(messages), std::move(deliveries), ack}]() mutable {
          asio::post(caller,
                     [handler = std::move(handler), slot, result = std::move(result)]() mutable {
                       if (slot.is_connected()) {
                         slot.clear();
                       }
                       std::move(handler)(std::move(result));
                     });
        };
    if (log_ == nullptr || messages_taken == 0) {
      resume();
      return;
    }
    // An ack-mode delivery is written before it is answered, full disk or not (Log::when_taken).
    if (ack) {
      log_->when_written(log_->end(), false, std::move(resume));
    } else {
      log_->when_taken(log_->end(), false, std::move(resume));
    }
  }

  asio::cancellation_slot& slot() { return slot_; }

  asio::steady_timer timer;

 private:
  storage::Log* log_;
  asio::any_io_executor caller_;
  asio::cancellation_slot slot_;
  Handler handler_;
};

BrokerService::BrokerService(const asio::any_io_executor& executor, broker::Limits limits,
                             std::size_t async_queue_capacity, std::uint64_t async_queue_bytes,
                             StrandThread strand_thread, Storage storage)
    : broker_strand_(asio::make_strand(executor)),
      worker_strand_(asio::make_strand(executor)),
      shared_thread_(shared_thread_of(executor, strand_thread)),
      limits_(limits),
      broker_(limits),
      storage_(std::move(storage)),
      expiry_timer_(broker_strand_),
      expiry_interval_(expiry_interval_for(limits)),
      deadline_timer_(broker_strand_),
      heartbeat_timer_(broker_strand_),
      async_capacity_(async_queue_capacity),
      async_bytes_capacity_(async_queue_bytes) {}

BrokerService::~BrokerService() {
  for (AsyncNode* node = async_intake_.load(std::memory_order_acquire); node != nullptr;) {
    delete std::exchange(node, node->next);
  }
}

bool BrokerService::on_broker_thread() const noexcept {
  return shared_thread_ && shared_thread_->running_in_this_thread();
}

// The io_context has one thread, so while a caller runs on it no handler of the strand can: the
// broker is the caller's alone for the call.
template <typename Function>
asio::awaitable<std::invoke_result_t<Function>> BrokerService::on_broker(bool durable,
                                                                         Function function) {
  if (!on_broker_thread()) {
    co_return co_await run_logged(durable, std::move(function));
  }
  const std::uint64_t before = log_ != nullptr ? log_->end() : 0;
  auto result = function();
  arm_deadline_timer();
  if (log_ != nullptr && ((durable && rests_on_the_log(result)) || log_->end() != before)) {
    co_await wait_for_log(before, durable);
  }
  co_return result;
}

asio::awaitable<void> BrokerService::wait_for_log(std::uint64_t before, bool durable) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [this, before, durable](auto handler) {
        wait_for_records(before, durable, [handler = std::move(handler)]() mutable {
          auto caller = asio::get_associated_executor(handler);
          asio::post(caller, std::move(handler));
        });
      },
      asio::use_awaitable);
}

void BrokerService::wait_for_records(std::uint64_t before, bool durable,
                                     storage::Log::Callback done) {
  if (log_->only_taken_since(before)) {
    log_->when_taken(log_->end(), durable, std::move(done));
  } else {
    log_->when_written(log_->end(), durable, std::move(done));
  }
}

template <typename Publish>
asio::awaitable<std::invoke_result_t<Publish>> BrokerService::publish_when_room(Publish publish) {
  // Memory only, nothing is refused for room: no coroutine of its own on the hot path.
  if (storage_.options.dir.empty()) {
    return on_broker(true, std::move(publish));
  }
  return publish_retrying(std::move(publish));
}

template <typename Publish>
asio::awaitable<std::invoke_result_t<Publish>> BrokerService::publish_retrying(Publish publish) {
  for (;;) {
    bool room_coming = false;
    auto result = co_await on_broker(true, [this, &publish, &room_coming] {
      auto answer = publish();
      room_coming = status_of(answer) == broker::PublishStatus::storage_full && log_ != nullptr &&
                    log_->making_room();
      return answer;
    });
    if (!room_coming) {
      co_return result;
    }
    co_await wait_for_room();
  }
}

asio::awaitable<void> BrokerService::wait_for_room() {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [this](auto handler) {
        asio::post(broker_strand_, [this, handler = std::move(handler)]() mutable {
          auto resume = [handler = std::move(handler)]() mutable {
            auto caller = asio::get_associated_executor(handler);
            asio::post(caller, std::move(handler));
          };
          if (log_ == nullptr) {  // closed since: the retry answers
            resume();
            return;
          }
          log_->when_room(std::move(resume));
        });
      },
      asio::use_awaitable);
}

void BrokerService::start(Heartbeat heartbeat,
                          std::function<void(const storage::RecoveryReport&)> ready) {
  asio::post(broker_strand_,
             [this, heartbeat = std::move(heartbeat), ready = std::move(ready)]() mutable {
               if (!storage_.options.dir.empty()) {
                 open_log();
               }
               ready_.store(true, std::memory_order_release);
               if (ready) {
                 ready(recovery_);
               }
               heartbeat_ = std::move(heartbeat);
               schedule_expiry();
               schedule_heartbeat();
             });
}

// On the broker strand, before any call reaches the broker: the calls queued behind it find the
// recovered state.
void BrokerService::open_log() {
  try {
    auto directory = std::make_unique<storage::Directory>(storage_.options.dir);
    const auto time_base = storage::TimeBase::now();
    recovery_ = storage::recover(*directory, broker_, time_base);
    storage::LogHooks hooks{storage_.fatal, storage_.fsync_observed,
                            [this](broker::JournalSink& sink) { broker_.checkpoint(sink); },
                            [this] { return checkpoint_bytes_estimate(broker_.totals()); }};
    log_ = std::make_unique<storage::Log>(broker_strand_, storage_.options, std::move(directory),
                                          recovery_.next_file, time_base, std::move(hooks));
    broker_.set_journal(log_.get());
    log_->start();
  } catch (const std::exception& error) {
    storage_.fatal(error.what());
  }
}

void BrokerService::schedule_heartbeat() {
  if (heartbeat_.interval.count() == 0) {
    return;
  }
  heartbeat_timer_.expires_after(heartbeat_.interval);
  heartbeat_timer_.async_wait([this](const boost::system::error_code& error) {
    // A wait that completed just before shutdown cancelled the timer still runs without an
    // error; it must not arm the timer again, or the io_context never runs out of work.
    if (error || !periodic_work_) {
      return;
    }
    heartbeat_.beat();
    schedule_heartbeat();
  });
}

void BrokerService::schedule_expiry() {
  if (limits_.subscriber_ttl.count() == 0 && limits_.message_ttl.count() == 0) {
    return;
  }
  expiry_timer_.expires_after(expiry_interval_);
  expiry_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error || !periodic_work_) {
      return;
    }
    broker_.expire();
    schedule_expiry();
  });
}

void BrokerService::arm_deadline_timer() {
  const std::optional<broker::TimePoint> next = broker_.next_deadline();
  if (next == armed_deadline_ || !periodic_work_) {
    return;
  }
  armed_deadline_ = next;
  if (!next) {
    deadline_timer_.cancel();
    return;
  }
  deadline_timer_.expires_at(*next);
  deadline_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error || !periodic_work_) {
      return;
    }
    armed_deadline_.reset();
    broker_.expire_deliveries();
    arm_deadline_timer();
  });
}

asio::awaitable<Subscribed> BrokerService::subscribe(const std::string& subject,
                                                     const std::optional<std::string>& group) {
  // Not a default argument: GCC 12 destroys a default argument's temporary of a co_awaited call
  // twice.
  static const broker::AckOptions plain;
  return subscribe(subject, group, plain);
}

asio::awaitable<Subscribed> BrokerService::subscribe(const std::string& subject,
                                                     const std::optional<std::string>& group,
                                                     const broker::AckOptions& options,
                                                     std::string_view owner) {
  return subscribe_with(subject, group, options, owner, /*ephemeral=*/false);
}

asio::awaitable<Subscribed> BrokerService::subscribe_ephemeral(
    const std::string& subject, const std::optional<std::string>& group, std::string_view owner) {
  static const broker::AckOptions plain;
  return subscribe_with(subject, group, plain, owner, /*ephemeral=*/true);
}

asio::awaitable<Subscribed> BrokerService::subscribe_with(const std::string& subject,
                                                          const std::optional<std::string>& group,
                                                          const broker::AckOptions& options,
                                                          std::string_view owner, bool ephemeral) {
  return on_broker(true, [this, id = new_subscription_id(), &subject = subject, &group = group,
                          &options = options, owner, ephemeral]() mutable {
    const auto group_view = group ? std::optional<std::string_view>(*group) : std::nullopt;
    Subscribed result{broker_.subscribe(id, subject, group_view, options, owner, ephemeral),
                      std::move(id)};
    // 122 random bits make a clash a once-in-the-universe event; a new draw settles it.
    while (result.status == broker::SubscribeStatus::duplicate_id) {
      result.id = new_subscription_id();
      result.status = broker_.subscribe(result.id, subject, group_view, options, owner, ephemeral);
    }
    return result;
  });
}

asio::awaitable<broker::PublishStatus> BrokerService::publish(
    const std::string& subject, const std::vector<broker::Message>& messages) {
  return publish_when_room([this, &subject = subject, &messages = messages] {
    return broker_.publish(subject, messages);
  });
}

asio::awaitable<broker::PublishResult> BrokerService::publish(
    const std::string& subject, const std::vector<broker::Message>& messages,
    const std::vector<std::string>& msg_ids) {
  return publish_when_room([this, &subject = subject, &messages = messages, &msg_ids = msg_ids] {
    const std::vector<std::string_view> ids(msg_ids.begin(), msg_ids.end());
    return broker_.publish(subject, messages, ids);
  });
}

asio::awaitable<ReceiptsResult> BrokerService::answer_receipts(
    ReceiptsVerb verb, const std::string& subject, const std::string& id,
    const std::vector<std::string>& sent, std::chrono::milliseconds delay, std::string_view owner) {
  return on_broker(true, [this, verb, &subject = subject, &id = id, &sent = sent, delay, owner] {
    if (!broker_.may_use(id, owner)) {
      return ReceiptsResult{as_unknown<broker::AckStatus>(subject, limits_), 0, {}};
    }
    std::vector<broker::Receipt> receipts;
    receipts.reserve(sent.size());
    for (const std::string& text : sent) {
      // Seq 0 is never published: a receipt that does not parse names no delivery.
      receipts.push_back(broker::parse_receipt(text).value_or(broker::Receipt{}));
    }
    broker::AckResult answered;
    switch (verb) {
      case ReceiptsVerb::ack:
        answered = broker_.ack(subject, id, receipts);
        break;
      case ReceiptsVerb::nack:
        answered = broker_.nack(subject, id, receipts, delay);
        break;
      case ReceiptsVerb::extend:
        answered = broker_.extend(subject, id, receipts);
        break;
    }
    if (answered.status == broker::AckStatus::not_ack_mode) {
      // A plain subscription hands out no deliveries: no receipt names one of its messages.
      answered.stale = receipts;
    }
    ReceiptsResult result{answered.status, answered.applied, {}};
    // The stale receipts are a subsequence of the sent ones, in order.
    std::size_t next = 0;
    for (std::size_t i = 0; i < sent.size() && next < answered.stale.size(); ++i) {
      if (receipts[i] == answered.stale[next]) {
        result.stale.push_back(sent[i]);
        ++next;
      }
    }
    return result;
  });
}

asio::awaitable<broker::ResumeResult> BrokerService::resume(const std::string& subject,
                                                            const std::string& id,
                                                            std::uint64_t last_seq,
                                                            std::string_view owner) {
  return on_broker(true, [this, &subject = subject, &id = id, last_seq, owner] {
    if (!broker_.may_use(id, owner)) {
      return broker::ResumeResult{as_unknown<broker::AckStatus>(subject, limits_)};
    }
    return broker_.resume(subject, id, last_seq);
  });
}

asio::awaitable<std::optional<std::string>> BrokerService::subject_of(const std::string& id,
                                                                      std::string_view owner) {
  return on_broker(false, [this, &id = id, owner] {
    return broker_.may_use(id, owner) ? broker_.subject_of(id) : std::nullopt;
  });
}

asio::awaitable<FetchResult> BrokerService::fetch(const std::string& subject, const std::string& id,
                                                  std::size_t max, std::chrono::milliseconds wait,
                                                  bool meta, std::string_view owner) {
  if (wait.count() > 0) {
    return wait_for_messages(subject, id, max, wait, meta, owner);
  }
  return on_broker(false, [this, &subject = subject, &id = id, max, meta, owner] {
    broker::Fetched fetched;
    FetchResult result;
    if (!broker_.may_use(id, owner)) {
      result.status = as_unknown<broker::FetchStatus>(subject, limits_);
      return result;
    }
    result.status = broker_.fetch(subject, id, max, meta, fetched);
    result.messages = std::move(fetched.messages);
    result.deliveries = std::move(fetched.deliveries);
    result.ack = fetched.ack;
    return result;
  });
}

asio::awaitable<FetchResult> BrokerService::wait_for_messages(const std::string& subject,
                                                              const std::string& id,
                                                              std::size_t max,
                                                              std::chrono::milliseconds wait,
                                                              bool meta, std::string_view owner) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(FetchResult)>(
      [this, &subject, &id, max, wait, meta, owner](auto handler) {
        auto pending =
            std::make_shared<PendingFetch>(broker_strand_, log_.get(), std::move(handler));
        if (pending->slot().is_connected()) {
          pending->slot().assign([this, pending](asio::cancellation_type) {
            asio::post(broker_strand_, [this, pending] {
              if (broker_.cancel_wait(*pending)) {
                pending->timer.cancel();
                pending->complete(broker::FetchStatus::ok);
              }
            });
          });
        }
        asio::post(broker_strand_, [this, pending, &subject, &id, max, wait, meta, owner] {
          broker::FetchStatus status = broker::FetchStatus::ok;
          if (!broker_.may_use(id, owner)) {
            status = as_unknown<broker::FetchStatus>(subject, limits_);
          } else if (waits_allowed_) {
            status = broker_.fetch_or_wait(subject, id, max, *pending, meta);
          } else {
            broker::Fetched fetched;
            status = broker_.fetch(subject, id, max, meta, fetched);
            pending->messages = std::move(fetched.messages);
            pending->deliveries = std::move(fetched.deliveries);
            pending->ack = fetched.ack;
          }
          arm_deadline_timer();
          if (status != broker::FetchStatus::waiting) {
            pending->complete(status);
            return;
          }
          pending->timer.expires_at(broker::saturating_add(std::chrono::steady_clock::now(), wait));
          pending->timer.async_wait([this, pending](const boost::system::error_code&) {
            if (broker_.cancel_wait(*pending)) {
              pending->complete(broker::FetchStatus::ok);
            }
          });
        });
      },
      asio::use_awaitable);
}

asio::awaitable<broker::UnsubscribeStatus> BrokerService::unsubscribe(const std::string& subject,
                                                                      const std::string& id,
                                                                      std::string_view owner) {
  return on_broker(true, [this, &subject = subject, &id = id, owner] {
    return broker_.may_use(id, owner) ? broker_.unsubscribe(subject, id)
                                      : as_unknown<broker::UnsubscribeStatus>(subject, limits_);
  });
}

asio::awaitable<broker::SubscriptionList> BrokerService::list_subscriptions(
    const std::string& pattern, std::size_t limit) {
  return on_broker(false, [this, &pattern = pattern, limit] {
    return broker_.list_subscriptions(pattern, limit);
  });
}

asio::awaitable<broker::UnsubscribeStatus> BrokerService::remove_subscription(
    const std::string& id) {
  return on_broker(true, [this, &id = id] { return broker_.unsubscribe(id); });
}

asio::awaitable<broker::PurgeResult> BrokerService::purge(const std::string& pattern) {
  return on_broker(true, [this, &pattern = pattern] { return broker_.purge(pattern); });
}

asio::awaitable<broker::PurgeResult> BrokerService::purge_subscription(const std::string& id) {
  return on_broker(true, [this, &id = id] { return broker_.purge_subscription(id); });
}

asio::awaitable<ServiceSnapshot> BrokerService::snapshot(std::size_t top_subjects) {
  return on_broker(false, [this, top_subjects] {
    ServiceSnapshot snapshot;
    snapshot.totals = broker_.totals();
    snapshot.top_subjects = broker_.top_subjects(top_subjects);
    snapshot.async_queue_depth = async_depth_.load(std::memory_order_relaxed);
    if (log_ != nullptr) {
      snapshot.storage = log_->figures();
    }
    snapshot.recovery = recovery_;
    std::copy(std::begin(async_failures_), std::end(async_failures_),
              std::begin(snapshot.async_failures));
    return snapshot;
  });
}

AsyncPublishStatus BrokerService::publish_async(std::string subject, broker::Message message,
                                                std::string msg_id) {
  // The publish is answered before it reaches the broker, so the broker's own checks are made here,
  // in its order, with its rule for subjects.
  if (subject.size() > limits_.max_subject_length) {
    return AsyncPublishStatus::subject_too_long;
  }
  if (!broker::is_valid_subject(subject, broker::SubjectUse::publish, limits_.max_subject_length)) {
    return AsyncPublishStatus::invalid_subject;
  }
  if (message.size() > limits_.max_message_bytes) {
    return AsyncPublishStatus::message_too_large;
  }
  if (async_depth_.fetch_add(1, std::memory_order_relaxed) >= async_capacity_) {
    async_depth_.fetch_sub(1, std::memory_order_relaxed);
    return AsyncPublishStatus::queue_full;
  }
  const std::uint64_t size = message.size();
  if (async_bytes_.fetch_add(size, std::memory_order_relaxed) + size > async_bytes_capacity_) {
    async_bytes_.fetch_sub(size, std::memory_order_relaxed);
    async_depth_.fetch_sub(1, std::memory_order_relaxed);
    return AsyncPublishStatus::bytes_full;
  }
  auto* node = new AsyncNode{{std::move(subject), std::move(message), std::move(msg_id)}, nullptr};
  AsyncNode* head = async_intake_.load(std::memory_order_relaxed);
  do {
    node->next = head;
  } while (!async_intake_.compare_exchange_weak(head, node, std::memory_order_release,
                                                std::memory_order_relaxed));
  if (head == nullptr) {
    // Only the publish that found the intake empty posts; the ones pushed before the worker
    // takes the intake join its batch.
    asio::post(worker_strand_, [this] { take_async_intake(); });
  }
  return AsyncPublishStatus::accepted;
}

void BrokerService::take_async_intake() {
  AsyncNode* newest = async_intake_.exchange(nullptr, std::memory_order_acquire);
  std::vector<AsyncItem> batch;
  for (AsyncNode* node = newest; node != nullptr;) {
    batch.push_back(std::move(node->item));
    delete std::exchange(node, node->next);
  }
  if (batch.empty()) {
    return;
  }
  std::reverse(batch.begin(), batch.end());  // the intake is newest first
  asio::post(broker_strand_, [this, batch = std::move(batch)]() mutable {
    async_batches_.push_back(std::move(batch));
    apply_async_batches(false);
  });
}

void BrokerService::apply_async_batches(bool all) {
  while (!async_batches_.empty()) {
    if (!all && log_ != nullptr && log_->end() - log_->written() > async_bytes_capacity_) {
      if (!async_waits_for_log_) {
        async_waits_for_log_ = true;
        log_->when_written(log_->end(), false, [this] {
          async_waits_for_log_ = false;
          apply_async_batches(false);
        });
      }
      return;
    }
    std::vector<AsyncItem>& batch = async_batches_.front();
    apply_async_batch(batch, all);
    if (!batch.empty()) {
      if (!async_waits_for_room_) {
        async_waits_for_room_ = true;
        log_->when_room([this] {
          async_waits_for_room_ = false;
          apply_async_batches(false);
        });
      }
      return;
    }
    async_batches_.pop_front();
  }
}

void BrokerService::apply_async_batch(std::vector<AsyncItem>& batch, bool all) {
  std::uint64_t bytes = 0;
  std::size_t applied = 0;
  for (; applied < batch.size(); ++applied) {
    const AsyncItem& item = batch[applied];
    const std::string_view msg_id = item.msg_id;
    const std::span<const std::string_view> msg_ids =
        item.msg_id.empty() ? std::span<const std::string_view>() : std::span(&msg_id, 1);
    const broker::PublishStatus status =
        broker_.publish(item.subject, {&item.message, 1}, msg_ids).status;
    if (status == broker::PublishStatus::storage_full && !all && log_->making_room()) {
      break;
    }
    bytes += item.message.size();
    switch (status) {
      case broker::PublishStatus::no_subscribers:
        ++async_failures_[static_cast<std::size_t>(AsyncFailure::no_subscribers)];
        break;
      case broker::PublishStatus::overflow:
        ++async_failures_[static_cast<std::size_t>(AsyncFailure::overflow)];
        break;
      case broker::PublishStatus::queue_full:
        ++async_failures_[static_cast<std::size_t>(AsyncFailure::queue_full)];
        break;
      case broker::PublishStatus::storage_full:
        ++async_failures_[static_cast<std::size_t>(AsyncFailure::storage_full)];
        break;
      case broker::PublishStatus::ok:
      case broker::PublishStatus::invalid_subject:  // all validated before it was accepted
      case broker::PublishStatus::subject_too_long:
      case broker::PublishStatus::message_too_large:
      case broker::PublishStatus::invalid_msg_id:  // checked before it was accepted
        break;
    }
  }
  batch.erase(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(applied));
  async_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  async_depth_.fetch_sub(applied, std::memory_order_relaxed);
  arm_deadline_timer();  // a publish may have woken an ack-mode fetch
}

void BrokerService::stop_waiting() {
  asio::post(broker_strand_, [this] {
    waits_allowed_ = false;
    broker_.wake_all_waiters();
    if (log_ != nullptr) {
      log_->stop_waiting_for_space();
    }
  });
}

asio::awaitable<void> BrokerService::shutdown() {
  co_await run_on(worker_strand_, [this] { take_async_intake(); });
  co_await run_on(broker_strand_, [this] {
    apply_async_batches(true);
    periodic_work_ = false;
    expiry_timer_.cancel();
    deadline_timer_.cancel();
    heartbeat_timer_.cancel();
  });
  if (log_ != nullptr) {
    co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
        [this](auto handler) {
          asio::post(broker_strand_, [this, handler = std::move(handler)]() mutable {
            log_->close(std::move(handler));
          });
        },
        asio::use_awaitable);
    co_await run_on(broker_strand_, [this] {
      broker_.set_journal(nullptr);
      log_.reset();
    });
  }
}

}  // namespace gophermq::service
