#include "broker/broker_service.hpp"

#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <type_traits>
#include <utility>

namespace gophermq::broker {
namespace asio = boost::asio;

namespace {

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

}  // namespace

BrokerService::BrokerService(const asio::any_io_executor& executor, Limits limits,
                             std::size_t async_queue_capacity)
    : broker_strand_(asio::make_strand(executor)),
      worker_strand_(asio::make_strand(executor)),
      limits_(limits),
      broker_(limits),
      async_capacity_(async_queue_capacity) {}

asio::awaitable<SubscribeStatus> BrokerService::subscribe(const std::string& id,
                                                          const std::string& subject,
                                                          const std::optional<std::string>& group) {
  return run_on(broker_strand_, [this, &id = id, &subject = subject, &group = group] {
    return broker_.subscribe(id, subject,
                             group ? std::optional<std::string_view>(*group) : std::nullopt);
  });
}

asio::awaitable<PublishStatus> BrokerService::publish(const std::string& subject,
                                                      const std::vector<Message>& messages) {
  return run_on(broker_strand_, [this, &subject = subject, &messages = messages] {
    return broker_.publish(subject, messages);
  });
}

asio::awaitable<FetchResult> BrokerService::fetch(const std::string& subject, const std::string& id,
                                                  std::size_t max) {
  return run_on(broker_strand_, [this, &subject = subject, &id = id, max] {
    FetchResult result;
    result.status = broker_.fetch(subject, id, max, result.messages);
    return result;
  });
}

asio::awaitable<UnsubscribeStatus> BrokerService::unsubscribe(const std::string& subject,
                                                              const std::string& id) {
  return run_on(broker_strand_,
                [this, &subject = subject, &id = id] { return broker_.unsubscribe(subject, id); });
}

asio::awaitable<ServiceSnapshot> BrokerService::snapshot() {
  return run_on(broker_strand_, [this] {
    ServiceSnapshot snapshot;
    snapshot.totals = broker_.totals();
    snapshot.async_queue_depth = async_depth_.load(std::memory_order_relaxed);
    std::copy(std::begin(async_failures_), std::end(async_failures_),
              std::begin(snapshot.async_failures));
    return snapshot;
  });
}

AsyncPublishStatus BrokerService::publish_async(std::string subject, Message message) {
  if (async_depth_.fetch_add(1, std::memory_order_relaxed) >= async_capacity_) {
    async_depth_.fetch_sub(1, std::memory_order_relaxed);
    return AsyncPublishStatus::queue_full;
  }
  asio::post(worker_strand_, [this, item = AsyncItem{std::move(subject), std::move(message)}]() {
    enqueue_on_worker(item);
  });
  return AsyncPublishStatus::accepted;
}

void BrokerService::enqueue_on_worker(AsyncItem item) {
  worker_batch_.push_back(std::move(item));
  if (!worker_flush_scheduled_) {
    // Flushing from a later turn of the strand lets every publish already queued behind this one
    // join the same batch, so the broker strand is entered once per batch, not per message.
    worker_flush_scheduled_ = true;
    asio::post(worker_strand_, [this] { flush_worker_batch(); });
  }
}

void BrokerService::flush_worker_batch() {
  worker_flush_scheduled_ = false;
  if (worker_batch_.empty()) {
    return;
  }
  asio::post(broker_strand_,
             [this, batch = std::exchange(worker_batch_, {})] { apply_async_batch(batch); });
}

void BrokerService::apply_async_batch(const std::vector<AsyncItem>& batch) {
  for (const AsyncItem& item : batch) {
    switch (broker_.publish(item.subject, {&item.message, 1})) {
      case PublishStatus::no_subscribers:
        ++async_failures_[static_cast<std::size_t>(AsyncFailure::no_subscribers)];
        break;
      case PublishStatus::overflow:
        ++async_failures_[static_cast<std::size_t>(AsyncFailure::overflow)];
        break;
      case PublishStatus::ok:
      case PublishStatus::invalid_subject:  // validated before it was accepted
        break;
    }
  }
  async_depth_.fetch_sub(batch.size(), std::memory_order_relaxed);
}

asio::awaitable<void> BrokerService::drain_async() {
  co_await run_on(worker_strand_, [this] { flush_worker_batch(); });
  co_await run_on(broker_strand_, [] {});
}

}  // namespace gophermq::broker
