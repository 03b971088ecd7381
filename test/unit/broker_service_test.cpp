#include "broker/broker_service.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace gophermq::broker {
namespace {
namespace asio = boost::asio;

template <typename Result>
Result run(asio::io_context& context, asio::awaitable<Result> operation) {
  auto future = asio::co_spawn(context, std::move(operation), asio::use_future);
  context.restart();
  context.run();
  return future.get();
}

TEST(BrokerService, AsyncQueueRefusesBeyondItsCapacityUntilTheWorkerDrains) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{}, 2);
  ASSERT_EQ(run(context, service.subscribe("id", "s", std::nullopt)), SubscribeStatus::ok);
  // Nothing runs between these calls, so the worker cannot drain: the third must be refused.
  EXPECT_EQ(service.publish_async("s", Message::create("1")), AsyncPublishStatus::accepted);
  EXPECT_EQ(service.publish_async("s", Message::create("2")), AsyncPublishStatus::accepted);
  EXPECT_EQ(service.publish_async("s", Message::create("3")), AsyncPublishStatus::queue_full);
  EXPECT_EQ(run(context, service.snapshot()).async_queue_depth, 2U);
  run(context, service.drain_async());
  EXPECT_EQ(run(context, service.snapshot()).async_queue_depth, 0U);
  const FetchResult fetched = run(context, service.fetch("s", "id", 10));
  ASSERT_EQ(fetched.messages.size(), 2U);
  EXPECT_EQ(fetched.messages[0].data(), "1");
  EXPECT_EQ(fetched.messages[1].data(), "2");
  EXPECT_EQ(service.publish_async("s", Message::create("4")), AsyncPublishStatus::accepted);
}

TEST(BrokerService, AsyncFailuresAreCountedByReason) {
  asio::io_context context;
  BrokerService service(context.get_executor(), Limits{.max_pending = 1}, 8);
  run(context, service.subscribe("id", "s", std::nullopt));
  service.publish_async("nobody", Message::create("x"));
  service.publish_async("s", Message::create("1"));
  service.publish_async("s", Message::create("2"));
  run(context, service.drain_async());
  const ServiceSnapshot snapshot = run(context, service.snapshot());
  EXPECT_EQ(snapshot.async_failures[static_cast<std::size_t>(AsyncFailure::no_subscribers)], 1U);
  EXPECT_EQ(snapshot.async_failures[static_cast<std::size_t>(AsyncFailure::overflow)], 1U);
  EXPECT_EQ(snapshot.totals.pending_messages, 1U);
}

}  // namespace
}  // namespace gophermq::broker
