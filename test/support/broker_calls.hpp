// Calls on the broker core with plain strings in and out, for the unit tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"

namespace gophermq::test {

using Texts = std::vector<std::string>;

inline std::vector<broker::Message> messages(std::initializer_list<std::string_view> texts) {
  std::vector<broker::Message> result;
  for (const auto text : texts) {
    result.push_back(broker::Message::create(text));
  }
  return result;
}

// The data of each message, in order.
template <typename Messages>
Texts texts_of(const Messages& messages) {
  Texts texts;
  for (const broker::Message& message : messages) {
    texts.emplace_back(message.data());
  }
  return texts;
}

inline broker::PublishStatus publish(broker::Broker& broker, std::string_view subject,
                                     std::initializer_list<std::string_view> texts) {
  const auto batch = messages(texts);
  return broker.publish(subject, batch);
}

inline broker::PublishStatus publish(broker::Broker& broker, std::string_view subject,
                                     std::string_view data) {
  return publish(broker, subject, {data});
}

// Fetches up to `max` messages, which must succeed.
inline Texts fetch_all(broker::Broker& broker, std::string_view subject, std::string_view id,
                       std::size_t max = SIZE_MAX) {
  broker::FetchedMessages out;
  EXPECT_EQ(broker.fetch(subject, id, max, out), broker::FetchStatus::ok);
  return texts_of(out);
}

}  // namespace gophermq::test
