#include "service/broker_service.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <functional>
#include <future>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "storage/frame.hpp"
#include "support/broker_calls.hpp"
#include "support/temp_files.hpp"

namespace gophermq::broker {
namespace {
namespace asio = boost::asio;
using service::AsyncFailure;
using service::AsyncPublishStatus;
using service::BrokerService;
using service::FetchResult;
using service::ServiceSnapshot;
using service::StrandThread;
using service::Subscribed;
using namespace std::chrono_literals;
using asio::experimental::awaitable_operators::operator||;
using asio::experimental::awaitable_operators::operator&&;

template <typename Result>
Result run(asio::io_context& context, asio::awaitable<Result> operation) {
  auto future = asio::co_spawn(context, std::move(operation), asio::use_future);
  context.restart();
  context.run();
  return future.get();
}

TEST(BrokerService, SubscribeAllocatesDistinctVersion4UuidsThatFetchAccepts) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{}, 8);
  const std::regex v4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    const Subscribed subscribed = run(context, service.subscribe("s", std::nullopt));
    ASSERT_EQ(subscribed.status, SubscribeStatus::ok);
    EXPECT_TRUE(std::regex_match(subscribed.id, v4)) << subscribed.id;
    EXPECT_EQ(run(context, service.fetch("s", subscribed.id, 1)).status, FetchStatus::ok);
    ids.insert(subscribed.id);
  }
  EXPECT_EQ(ids.size(), 100U);
}

// Like run, but returns once `operation` is done: the ack deadline timer keeps the context busy.
template <typename Result>
Result run_until_done(asio::io_context& context, asio::awaitable<Result> operation) {
  auto future = asio::co_spawn(context, std::move(operation), asio::use_future);
  context.restart();
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    context.run_one();
  }
  return future.get();
}

TEST(BrokerService, AckModeFetchesDeliverAndReceiptsAnswerStaleAsSentInOrder) {
  asio::io_context context;
  const auto run = [&context](auto operation) {
    return run_until_done(context, std::move(operation));
  };
  BrokerService service(context.get_executor(), Limits{}, 8);
  broker::AckOptions options;
  options.ack = true;
  const Subscribed subscribed = run(service.subscribe("s", std::nullopt, options));
  ASSERT_EQ(subscribed.status, SubscribeStatus::ok);
  const std::vector<Message> two{Message::create("a"), Message::create("b")};
  const std::vector<std::string> ids{"k1", "k2"};
  EXPECT_EQ(run(service.publish("s", two, ids)).duplicates, 0U);
  EXPECT_EQ(run(service.publish("s", two, ids)).duplicates, 2U);
  const FetchResult fetched = run(service.fetch("s", subscribed.id, 10));
  ASSERT_TRUE(fetched.ack);
  ASSERT_EQ(fetched.deliveries.size(), 2U);
  const std::string first = broker::format_receipt(fetched.deliveries[0].receipt);
  const std::string second = broker::format_receipt(fetched.deliveries[1].receipt);
  const auto acked = run(service.answer_receipts(service::ReceiptsVerb::ack, "s", subscribed.id,
                                                 {"junk", first, first, second, "1-9"}));
  EXPECT_EQ(acked.status, broker::AckStatus::ok);
  EXPECT_EQ(acked.applied, 2U);
  EXPECT_EQ(acked.stale, (std::vector<std::string>{"junk", first, "1-9"}));
  const Subscribed plain = run(service.subscribe("s", std::nullopt));
  const auto on_plain =
      run(service.answer_receipts(service::ReceiptsVerb::nack, "s", plain.id, {first}));
  EXPECT_EQ(on_plain.applied, 0U);
  EXPECT_EQ(on_plain.stale, std::vector<std::string>{first}) << "a plain queue delivers nothing";
}

TEST(BrokerService, AsyncQueueRefusesBeyondItsCapacityUntilTheWorkerDrains) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{}, 2);
  const Subscribed subscribed = run(context, service.subscribe("s", std::nullopt));
  ASSERT_EQ(subscribed.status, SubscribeStatus::ok);
  // Queued before the worker's first turn, so it reaches the broker strand before the batch does.
  auto depth = asio::co_spawn(context, service.snapshot(), asio::use_future);
  // Nothing runs between these calls, so the worker cannot drain: the third must be refused.
  EXPECT_EQ(service.publish_async("s", Message::create("1")), AsyncPublishStatus::accepted);
  EXPECT_EQ(service.publish_async("s", Message::create("2")), AsyncPublishStatus::accepted);
  EXPECT_EQ(service.publish_async("s", Message::create("3")), AsyncPublishStatus::queue_full);
  run(context, service.shutdown());
  EXPECT_EQ(depth.get().async_queue_depth, 2U);
  EXPECT_EQ(run(context, service.snapshot()).async_queue_depth, 0U);
  const FetchResult fetched = run(context, service.fetch("s", subscribed.id, 10));
  ASSERT_EQ(fetched.messages.size(), 2U);
  EXPECT_EQ(fetched.messages[0].data(), "1");
  EXPECT_EQ(fetched.messages[1].data(), "2");
  EXPECT_EQ(service.publish_async("s", Message::create("4")), AsyncPublishStatus::accepted);
}

TEST(BrokerService, AsyncQueueRefusesBeyondItsByteBoundUntilTheWorkerDrains) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{}, 100, 10);
  const Subscribed subscribed = run(context, service.subscribe("s", std::nullopt));
  ASSERT_EQ(subscribed.status, SubscribeStatus::ok);
  auto depth = asio::co_spawn(context, service.snapshot(), asio::use_future);
  EXPECT_EQ(service.publish_async("s", Message::create("123456")), AsyncPublishStatus::accepted);
  EXPECT_EQ(service.publish_async("s", Message::create("12345")), AsyncPublishStatus::bytes_full);
  EXPECT_EQ(service.publish_async("s", Message::create("1234")), AsyncPublishStatus::accepted);
  run(context, service.shutdown());
  EXPECT_EQ(depth.get().async_queue_depth, 2U);
  EXPECT_EQ(service.publish_async("s", Message::create("1234567890")),
            AsyncPublishStatus::accepted);
}

TEST(BrokerService, AsyncPublishesFromManyThreadsAllArriveEachThreadsInOrder) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{}, kThreads * kPerThread);
  const Subscribed subscribed = run(context, service.subscribe("s", std::nullopt));
  ASSERT_EQ(subscribed.status, SubscribeStatus::ok);
  // The worker drains while the publishers push, so the intake is taken mid-burst many times.
  auto guard = asio::make_work_guard(context);
  context.restart();
  std::thread worker([&context] { context.run(); });
  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t) {
    publishers.emplace_back([&service, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string text = std::to_string(t) + ":" + std::to_string(i);
        ASSERT_EQ(service.publish_async("s", Message::create(text)), AsyncPublishStatus::accepted);
      }
    });
  }
  for (auto& publisher : publishers) {
    publisher.join();
  }
  asio::co_spawn(context, service.shutdown(), asio::use_future).get();
  const FetchResult fetched =
      asio::co_spawn(context, service.fetch("s", subscribed.id, SIZE_MAX), asio::use_future).get();
  guard.reset();
  worker.join();
  ASSERT_EQ(fetched.messages.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::vector<int> next(kThreads, 0);
  for (const Message& message : fetched.messages) {
    const std::string text(message.data());
    const auto thread = static_cast<std::size_t>(std::stoi(text.substr(0, text.find(':'))));
    EXPECT_EQ(std::stoi(text.substr(text.find(':') + 1)), next[thread]++) << text;
  }
}

struct AsyncPublish {
  std::string_view subject;
  std::string_view data;
};

// The service's snapshot once the async `publishes` have all reached the broker, with one
// subscription on "s".
ServiceSnapshot after_async_publishes(const Limits& limits,
                                      std::initializer_list<AsyncPublish> publishes) {
  asio::io_context context;
  BrokerService service(context.get_executor(), limits, 8);
  run(context, service.subscribe("s", std::nullopt));
  for (const AsyncPublish& publish : publishes) {
    service.publish_async(std::string(publish.subject), Message::create(publish.data));
  }
  run(context, service.shutdown());
  return run(context, service.snapshot());
}

std::uint64_t failures(const ServiceSnapshot& snapshot, AsyncFailure reason) {
  return snapshot.async_failures[static_cast<std::size_t>(reason)];
}

TEST(BrokerService, AsyncFailuresAreCountedByReason) {
  const ServiceSnapshot snapshot =
      after_async_publishes(Limits{.max_pending = 1}, {{"nobody", "x"}, {"s", "1"}, {"s", "2"}});
  EXPECT_EQ(failures(snapshot, AsyncFailure::no_subscribers), 1U);
  EXPECT_EQ(failures(snapshot, AsyncFailure::overflow), 1U);
  EXPECT_EQ(snapshot.totals.pending_messages, 1U);
}

TEST(BrokerService, AsyncPublishesToAFullQueueAreCountedUnderTheirOwnReason) {
  const ServiceSnapshot snapshot =
      after_async_publishes(Limits{.max_pending_per_queue = 1}, {{"s", "1"}, {"s", "2"}});
  EXPECT_EQ(failures(snapshot, AsyncFailure::queue_full), 1U);
  EXPECT_EQ(failures(snapshot, AsyncFailure::overflow), 0U);
  EXPECT_EQ(snapshot.totals.pending_messages, 1U);
}

// Refused before it takes a place in the queue, each for its own reason, as the broker would.
TEST(BrokerService, AsyncPublishRefusesWhatTheBrokerWouldEachByItsOwnStatus) {
  asio::io_context context;
  BrokerService service(context.get_executor(),
                        Limits{.max_subject_length = 8, .max_message_bytes = 4}, 2);
  run(context, service.subscribe("s", std::nullopt));
  for (const std::string_view subject : {"", "a..b", "a.*", "a.>", "a b"}) {
    EXPECT_EQ(service.publish_async(std::string(subject), Message::create("x")),
              AsyncPublishStatus::invalid_subject)
        << subject;
  }
  EXPECT_EQ(service.publish_async("abcd.efgh", Message::create("x")),
            AsyncPublishStatus::subject_too_long);
  EXPECT_EQ(service.publish_async("abcd e fgh", Message::create("x")),
            AsyncPublishStatus::subject_too_long);
  EXPECT_EQ(service.publish_async("s", Message::create("12345")),
            AsyncPublishStatus::message_too_large);
  EXPECT_EQ(service.publish_async("abcd.efg", Message::create("x")), AsyncPublishStatus::accepted);
  EXPECT_EQ(service.publish_async("s", Message::create("1234")), AsyncPublishStatus::accepted);
  run(context, service.shutdown());
  const ServiceSnapshot snapshot = run(context, service.snapshot());
  EXPECT_EQ(snapshot.totals.pending_messages, 1U);
  EXPECT_EQ(failures(snapshot, AsyncFailure::no_subscribers), 1U);
}

// The core tells a subject over the limit from other invalid ones on every call.
TEST(BrokerService, EveryCallTellsASubjectTooLongFromAnInvalidOne) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{.max_subject_length = 8}, 2);
  const std::vector<Message> batch{Message::create("x")};
  EXPECT_EQ(run(context, service.subscribe("abcd.efgh", std::nullopt)).status,
            SubscribeStatus::subject_too_long);
  EXPECT_EQ(run(context, service.subscribe("a..b", std::nullopt)).status,
            SubscribeStatus::invalid_subject);
  EXPECT_EQ(run(context, service.publish("abcd.efgh", batch)), PublishStatus::subject_too_long);
  EXPECT_EQ(run(context, service.publish("a.*", batch)), PublishStatus::invalid_subject);
  EXPECT_EQ(run(context, service.fetch("abcd.efgh", "x", 1)).status, FetchStatus::subject_too_long);
  EXPECT_EQ(run(context, service.fetch("a..b", "x", 1)).status, FetchStatus::invalid_subject);
  EXPECT_EQ(run(context, service.unsubscribe("abcd.efgh", "x")),
            UnsubscribeStatus::subject_too_long);
  EXPECT_EQ(run(context, service.unsubscribe("a..b", "x")), UnsubscribeStatus::invalid_subject);
}

// Runs `ready` on the broker once the fetch is waiting, without sleeping: the snapshot hop queues
// behind the fetch on the strand, so it sees the waiter once it has been linked.
asio::awaitable<void> when_waiting(BrokerService& service, std::size_t count,
                                   std::function<asio::awaitable<void>()> ready) {
  while ((co_await service.snapshot()).totals.waiting_fetches < count) {
    asio::steady_timer tick(co_await asio::this_coro::executor, 1ms);
    co_await tick.async_wait(asio::use_awaitable);
  }
  co_await ready();
}

TEST(BrokerService, WaitingFetchReturnsWhenAMessageIsPublished) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{}, 8);
  const std::string id = run(context, service.subscribe("s", std::nullopt)).id;
  const auto started = std::chrono::steady_clock::now();
  const FetchResult fetched =
      run(context, service.fetch("s", id, 10, 60s) &&
                       when_waiting(service, 1, [&]() -> asio::awaitable<void> {
                         const std::vector<Message> hello{Message::create("hello")};
                         co_await service.publish("s", hello);
                       }));
  EXPECT_EQ(fetched.status, FetchStatus::ok);
  EXPECT_EQ(test::texts_of(fetched.messages), std::vector<std::string>{"hello"});
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);
}

// A wait too long for a time point must not wrap into the past and end at once.
TEST(BrokerService, TheLongestWaitStillWaitsForAPublish) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{}, 8);
  const std::string id = run(context, service.subscribe("s", std::nullopt)).id;
  const FetchResult fetched =
      run(context, service.fetch("s", id, 10, std::chrono::milliseconds::max()) &&
                       when_waiting(service, 1, [&]() -> asio::awaitable<void> {
                         const std::vector<Message> hello{Message::create("hello")};
                         co_await service.publish("s", hello);
                       }));
  EXPECT_EQ(test::texts_of(fetched.messages), std::vector<std::string>{"hello"});
}

TEST(BrokerService, WaitingFetchReturnsEmptyWhenTheWaitEnds) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{}, 8);
  const std::string id = run(context, service.subscribe("s", std::nullopt)).id;
  const auto started = std::chrono::steady_clock::now();
  const FetchResult fetched = run(context, service.fetch("s", id, 10, 50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 50ms);
  EXPECT_EQ(fetched.status, FetchStatus::ok);
  EXPECT_TRUE(fetched.messages.empty());
  EXPECT_EQ(run(context, service.snapshot()).totals.waiting_fetches, 0U);
}

TEST(BrokerService, WaitingFetchWithABadIdFailsAtOnce) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{}, 8);
  EXPECT_EQ(run(context, service.fetch("s", "nobody", 10, 60s)).status, FetchStatus::bad_id);
}

TEST(BrokerService, CancelledWaitLeavesTheMessageForTheNextFetch) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{}, 8);
  const std::string id = run(context, service.subscribe("s", std::nullopt)).id;
  auto outcome =
      run(context, service.fetch("s", id, 10, 60s) ||
                       when_waiting(service, 1, []() -> asio::awaitable<void> { co_return; }));
  EXPECT_EQ(outcome.index(), 1U);
  // The cancellation reaches the broker strand before this publish does.
  const std::vector<Message> kept{Message::create("kept")};
  run(context, service.publish("s", kept));
  EXPECT_EQ(test::texts_of(run(context, service.fetch("s", id, 10)).messages),
            std::vector<std::string>{"kept"});
  EXPECT_EQ(run(context, service.snapshot()).totals.waiting_fetches, 0U);
}

TEST(BrokerService, StopWaitingEndsWaitsAndLaterFetchesDoNotWait) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{}, 8);
  const std::string id = run(context, service.subscribe("s", std::nullopt)).id;
  const FetchResult fetched =
      run(context, service.fetch("s", id, 10, 60s) &&
                       when_waiting(service, 1, [&]() -> asio::awaitable<void> {
                         service.stop_waiting();
                         co_return;
                       }));
  EXPECT_TRUE(fetched.messages.empty());
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(run(context, service.fetch("s", id, 10, 60s)).messages.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);
}

TEST(BrokerService, ExpirySweepsRunOnceStarted) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{.subscriber_ttl = 20ms}, 8);
  run(context, service.subscribe("s", std::nullopt));
  service.start();
  run(context, [&]() -> asio::awaitable<void> {
    while ((co_await service.snapshot()).totals.subscriptions > 0) {
      asio::steady_timer tick(co_await asio::this_coro::executor, 5ms);
      co_await tick.async_wait(asio::use_awaitable);
    }
    co_await service.shutdown();
  }());
  EXPECT_EQ(run(context, service.snapshot()).totals.subscriptions, 0U);
}

// Shutdown can land while a timer's completion is already queued behind it on the strand, where
// cancel() cannot stop it; the periodic work must end all the same, or run() never returns. The
// first heartbeat holds the strand while shutdown queues its step there (at about 1 ms) and the
// expiry timer fires behind it (at 50 ms); then the strand is let go.
TEST(BrokerService, ShutdownEndsThePeriodicWorkEvenWhenATimerHasJustFired) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{.subscriber_ttl = 500ms}, 8);
  std::promise<void> holding;
  std::promise<void> release;
  auto released = release.get_future();
  bool first = true;
  service.start({1ms, [&] {
                   if (std::exchange(first, false)) {
                     holding.set_value();
                     released.wait();
                   }
                 }});
  std::vector<std::thread> runners;
  for (int i = 0; i < 2; ++i) {
    runners.emplace_back([&] { context.run(); });
  }
  holding.get_future().wait();
  auto shut = asio::co_spawn(context, service.shutdown(), asio::use_future);
  std::this_thread::sleep_for(100ms);  // past the expiry timer's 50 ms: its completion is queued
  release.set_value();
  const bool shut_down = shut.wait_for(2s) == std::future_status::ready;
  // With nothing periodic left, both runners return once the context runs out of work.
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (!context.stopped() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  const bool ran_out_of_work = context.stopped();
  context.stop();
  for (auto& runner : runners) {
    runner.join();
  }
  EXPECT_TRUE(shut_down);
  EXPECT_TRUE(ran_out_of_work);
}

TEST(BrokerService, HeartbeatBeatsFromTheBrokerStrandUntilShutdown) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{.subscriber_ttl = 0ms}, 8);
  int beats = 0;
  asio::steady_timer three_beats(context, asio::steady_timer::time_point::max());
  service.start({5ms, [&] {
                   if (++beats == 3) {
                     three_beats.cancel();
                   }
                 }});
  run(context, [&]() -> asio::awaitable<void> {
    co_await three_beats.async_wait(asio::as_tuple(asio::use_awaitable));
    co_await service.shutdown();
  }());
  EXPECT_EQ(beats, 3);  // and run() returned: nothing periodic is left after shutdown
}

// Whether a handler posted just before `call` ran before the caller went on: it did when the call
// hopped through the io_context's queue, and did not when it ran at once.
template <typename Call>
bool overtaken_by_a_post(asio::io_context& context, Call call) {
  // Outside the coroutine: the posted handler may run after the coroutine has ended.
  bool overtaken = false;
  return run(context, [&]() -> asio::awaitable<bool> {
    asio::post(context, [&overtaken] { overtaken = true; });
    co_await call();
    co_return overtaken;
  }());
}

TEST(BrokerService, CallsOnTheThreadItSharesWithTheBrokerRunWithoutPosting) {
  asio::io_context context(1);
  BrokerService service(context.get_executor(), Limits{}, 8, 1024,
                        StrandThread::shared_with_callers);
  const std::vector<Message> hello{Message::create("hello")};
  Subscribed subscribed;
  PublishStatus published = PublishStatus::no_subscribers;
  FetchResult fetched;
  ServiceSnapshot snapshot;
  UnsubscribeStatus unsubscribed = UnsubscribeStatus::bad_id;
  EXPECT_FALSE(overtaken_by_a_post(context, [&]() -> asio::awaitable<void> {
    subscribed = co_await service.subscribe("s", std::nullopt);
  }));
  EXPECT_FALSE(overtaken_by_a_post(context, [&]() -> asio::awaitable<void> {
    published = co_await service.publish("s", hello);
  }));
  EXPECT_FALSE(overtaken_by_a_post(context, [&]() -> asio::awaitable<void> {
    fetched = co_await service.fetch("s", subscribed.id, 10);
  }));
  EXPECT_FALSE(overtaken_by_a_post(
      context, [&]() -> asio::awaitable<void> { snapshot = co_await service.snapshot(); }));
  EXPECT_FALSE(overtaken_by_a_post(context, [&]() -> asio::awaitable<void> {
    unsubscribed = co_await service.unsubscribe("s", subscribed.id);
  }));
  EXPECT_EQ(published, PublishStatus::ok);
  EXPECT_EQ(test::texts_of(fetched.messages), std::vector<std::string>{"hello"});
  EXPECT_EQ(snapshot.totals.subscriptions, 1U);
  EXPECT_EQ(unsubscribed, UnsubscribeStatus::ok);
}

TEST(BrokerService, CallsToABrokerStrandOfItsOwnPost) {
  asio::io_context context(1);
  BrokerService service(context.get_executor(), Limits{}, 8);
  EXPECT_TRUE(overtaken_by_a_post(
      context, [&]() -> asio::awaitable<void> { co_await service.subscribe("s", std::nullopt); }));
  EXPECT_TRUE(overtaken_by_a_post(context,
                                  [&]() -> asio::awaitable<void> { co_await service.snapshot(); }));
}

// The shutdown sequence calls from the control thread, which is not the one the strand runs on.
TEST(BrokerService, CallsFromAnotherThreadReachASharedStrandThroughItsQueue) {
  asio::io_context context(1);
  BrokerService service(context.get_executor(), Limits{}, 8, 1024,
                        StrandThread::shared_with_callers);
  auto guard = asio::make_work_guard(context);
  std::thread runner([&] { context.run(); });
  asio::io_context control(1);
  const std::vector<Message> hello{Message::create("hello")};
  const std::string id = run(control, service.subscribe("s", std::nullopt)).id;
  EXPECT_EQ(run(control, service.publish("s", hello)), PublishStatus::ok);
  EXPECT_EQ(test::texts_of(run(control, service.fetch("s", id, 10)).messages),
            std::vector<std::string>{"hello"});
  run(control, service.shutdown());
  guard.reset();
  runner.join();
}

TEST(BrokerService, AStrandSharedWithItsCallersNeedsAnIoContext) {
  asio::io_context context(1);
  EXPECT_THROW(BrokerService(asio::make_strand(context), Limits{}, 8, 1024,
                             StrandThread::shared_with_callers),
               std::invalid_argument);
}

}  // namespace
}  // namespace gophermq::broker

namespace gophermq::broker {
namespace {

// Without TTLs the service arms no periodic timer, so run() returns once the calls are done.
Limits without_expiry() {
  Limits limits;
  limits.subscriber_ttl = std::chrono::milliseconds(0);
  limits.message_ttl = std::chrono::milliseconds(0);
  return limits;
}

// /ready answers 503 until this turns true: after the log is recovered, before any call is served.
// Counts the bytes a checkpoint takes in the log: each record framed.
class CheckpointSize final : public JournalSink {
 public:
  void append(const Record& record) override {
    bytes += storage::frame_header_bytes + encoded_size(record);
  }
  std::uint64_t bytes = 0;
};

TEST(BrokerServiceStorage, TheCheckpointEstimateCoversPendingInFlightAndDedupeState) {
  Broker broker{Limits{}};
  AckOptions ack;
  ack.ack = true;
  ASSERT_EQ(broker.subscribe("plain", "t.a", std::nullopt), SubscribeStatus::ok);
  ASSERT_EQ(broker.subscribe("acked", "t.a", std::nullopt, ack), SubscribeStatus::ok);
  for (int n = 0; n < 500; ++n) {
    const std::string id = "msg-id-" + std::to_string(n) + std::string(40, 'x');
    const std::string_view ids[] = {id};
    const Message message = Message::create("sixteen bytes..." + std::to_string(n % 10));
    ASSERT_EQ(broker.publish("t.a", {&message, 1}, ids).status, PublishStatus::ok);
  }
  Fetched fetched;
  ASSERT_EQ(broker.fetch("t.a", "acked", 300, false, fetched), FetchStatus::ok);
  ASSERT_EQ(broker.totals().in_flight, 300u);
  CheckpointSize size;
  broker.checkpoint(size);
  const std::uint64_t estimate = service::checkpoint_bytes_estimate(broker.totals());
  EXPECT_GE(estimate, size.bytes);
  EXPECT_LE(estimate, 2 * size.bytes) << "an estimate that large refuses checkpoints that fit";
}

TEST(BrokerServiceStorage, IsReadyOnlyOnceTheLogIsRecoveredAndServesWhatItHeld) {
  const test::TempDir dir;
  const service::Storage storage{{dir.string()},
                                 [](const std::string& error) { ADD_FAILURE() << error; },
                                 [](std::chrono::duration<double>) {}};
  std::string id;
  {
    asio::io_context context;
    BrokerService service(context.get_executor(), without_expiry(), 8, 1024, StrandThread::own,
                          storage);
    EXPECT_FALSE(service.ready());
    std::optional<std::uint64_t> recovered_records;
    service.start({}, [&](const storage::RecoveryReport& report) {
      EXPECT_TRUE(service.ready());
      recovered_records = report.records;
    });
    id = run(context, service.subscribe("s", std::nullopt)).id;
    EXPECT_EQ(recovered_records, 0U);
    EXPECT_EQ(run(context, service.publish("s", {Message::create("kept")})), PublishStatus::ok);
    run(context, service.shutdown());
  }
  asio::io_context context;
  BrokerService service(context.get_executor(), without_expiry(), 8, 1024, StrandThread::own,
                        storage);
  std::optional<std::uint64_t> recovered_records;
  service.start({},
                [&](const storage::RecoveryReport& report) { recovered_records = report.records; });
  const FetchResult fetched = run(context, service.fetch("s", id, 10));
  EXPECT_GT(recovered_records.value_or(0), 0U);
  ASSERT_EQ(fetched.messages.size(), 1U);
  EXPECT_EQ(fetched.messages.front().data(), "kept");
  run(context, service.shutdown());
}

}  // namespace
}  // namespace gophermq::broker
