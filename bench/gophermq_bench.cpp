// gophermq-bench: a load generator for a running GopherMQ, in the spirit of `nats bench`. Each
// connection is one coroutine sending a request and reading its answer on a keep-alive
// connection. With --rate, every connection follows a fixed schedule and a request's latency is
// measured from when it was due, not from when it was sent, so a stalled server is not hidden by
// the client waiting for it (coordinated omission, as wrk2 avoids it). See README.md and
// docs/performance.md.
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench_client.hpp"

namespace gophermq::bench {
namespace {

namespace json = boost::json;
namespace po = boost::program_options;
// How long a fanout or longpoll fetch waits; short, so fetchers notice the end of the run soon.
constexpr int kFetchWaitMs = 500;

enum class Mode { pub, pub_async, pubfetch, fanout, batch, longpoll, consume };

struct ModeName {
  Mode mode;
  std::string_view name;
};
constexpr ModeName kModes[] = {{Mode::pub, "pub"},           {Mode::pub_async, "pub-async"},
                               {Mode::pubfetch, "pubfetch"}, {Mode::fanout, "fanout"},
                               {Mode::batch, "batch"},       {Mode::longpoll, "longpoll"},
                               {Mode::consume, "consume"}};

std::string_view name_of(Mode mode) {
  for (const auto& entry : kModes) {
    if (entry.mode == mode) {
      return entry.name;
    }
  }
  return "?";
}

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8082;
  Mode mode = Mode::pub;
  std::size_t connections = 64;
  std::size_t threads = 1;
  double duration = 10;
  double warmup = 1;
  std::size_t message_bytes = 16;
  std::size_t subjects = 1;
  std::size_t subscribers = 4;
  std::size_t batch = 100;
  std::size_t fetch_max = 10;
  double rate = 0;   // requests per second over all connections; 0: as fast as answers come
  bool ack = false;  // consume: ack-mode subscriptions, every fetch answer's receipts acked
  bool json = false;
  std::string tls_ca;  // set: https, trusting this CA
};

// What one connection saw during the measured window.
struct Stats {
  std::vector<std::int64_t> latencies_ns;
  std::uint64_t requests = 0;
  std::uint64_t published = 0;
  std::uint64_t delivered = 0;
  std::uint64_t failed = 0;            // answered with a status other than 200
  std::uint64_t transport_errors = 0;  // connect, write, read or timeout

  void add(Stats&& other) {
    latencies_ns.insert(latencies_ns.end(), other.latencies_ns.begin(), other.latencies_ns.end());
    requests += other.requests;
    published += other.published;
    delivered += other.delivered;
    failed += other.failed;
    transport_errors += other.transport_errors;
  }
};

// The measured window: answers outside it are not counted.
struct Window {
  Clock::time_point begin;
  Clock::time_point end;
  [[nodiscard]] bool contains(Clock::time_point t) const { return t >= begin && t < end; }

  // A transport error is counted whenever it happens, and ends the connection's loop.
  [[nodiscard]] bool counts(const Answer& answer, Stats& stats) const {
    if (answer.error) {
      ++stats.transport_errors;
      return false;
    }
    return contains(answer.received);
  }
};

std::string quoted(std::string_view text) {
  return json::serialize(json::string_view(text.data(), text.size()));
}

std::string publish_body(std::string_view subject, std::string_view payload) {
  return "{\"subject\":" + quoted(subject) + ",\"data\":" + quoted(payload) + "}";
}

std::string batch_body(std::string_view subject, std::string_view payload, std::size_t count) {
  std::string body = "{\"subject\":" + quoted(subject) + ",\"data\":[";
  const std::string item = quoted(payload);
  for (std::size_t i = 0; i < count; ++i) {
    body += i == 0 ? "" : ",";
    body += item;
  }
  return body + "]}";
}

std::string fetch_body(std::string_view subject, std::string_view id, std::size_t max,
                       int wait_ms) {
  std::string body = "{\"subject\":" + quoted(subject) + ",\"id\":" + quoted(id) +
                     ",\"max\":" + std::to_string(max);
  if (wait_ms > 0) {
    body += ",\"wait_ms\":" + std::to_string(wait_ms);
  }
  return body + "}";
}

// The `key` array of a fetch answer (`data`, or `messages` in ack mode); empty when the body is
// not one.
json::array fetched_data(std::string_view body, std::string_view key = "data") {
  boost::system::error_code error;
  json::value value = json::parse(body, error);
  if (error || !value.is_object()) {
    return {};
  }
  json::value* data = value.as_object().if_contains(key);
  return data != nullptr && data->is_array() ? std::move(data->as_array()) : json::array();
}

// The `acked` count of an ack answer; 0 when the body is not one.
std::size_t acked_count(std::string_view body) {
  boost::system::error_code error;
  const json::value value = json::parse(body, error);
  const json::value* acked =
      !error && value.is_object() ? value.as_object().if_contains("acked") : nullptr;
  return acked != nullptr && acked->is_int64() ? static_cast<std::size_t>(acked->as_int64()) : 0;
}

// The ack of every message of an ack-mode fetch answer, by its receipt.
std::string ack_body(std::string_view subject, std::string_view id, const json::array& messages) {
  std::string body =
      "{\"subject\":" + quoted(subject) + ",\"id\":" + quoted(id) + ",\"receipts\":[";
  for (const json::value& message : messages) {
    body += body.back() == '[' ? "" : ",";
    body += json::serialize(message.at("receipt"));
  }
  return body + "]}";
}

struct Subscription {
  std::string subject;
  std::string id;
};

// Everything the run needs set up in the broker, and what each connection does with it.
class Workload {
 public:
  Workload(const Options& options, tcp::endpoint endpoint)
      : options_(options), endpoint_(std::move(endpoint)), payload_(options.message_bytes, 'x') {}

  asio::awaitable<void> set_up(Connection& connection) {
    for (const std::string& subject : subjects_to_subscribe()) {
      const Answer answer = co_await connection.post("/api/subscribe", subscribe_body(subject));
      if (answer.error || answer.status != 200) {
        throw std::runtime_error("subscribe to " + subject + " failed: " +
                                 (answer.error ? answer.error.message() : answer.body));
      }
      subscriptions_.push_back(
          {subject, std::string(json::parse(answer.body).at("id").as_string())});
    }
  }

  asio::awaitable<void> tear_down(Connection& connection) {
    for (const Subscription& subscription : subscriptions_) {
      co_await connection.post("/api/unsubscribe",
                               fetch_body(subscription.subject, subscription.id, 1, 0));
    }
  }

  // Publishing connections, then (fanout, longpoll, consume) one fetching connection per
  // subscription.
  [[nodiscard]] std::size_t publishers() const {
    return options_.mode == Mode::longpoll ? 1 : options_.connections;
  }
  [[nodiscard]] std::size_t fetchers() const {
    return options_.mode == Mode::fanout || options_.mode == Mode::longpoll ||
                   options_.mode == Mode::consume
               ? subscriptions_.size()
               : 0;
  }

  asio::awaitable<void> publish_loop(std::size_t index, Window window, Stats& stats) const;
  asio::awaitable<void> fetch_loop(std::size_t index, Window window, Stats& stats) const;

 private:
  [[nodiscard]] std::vector<std::string> subjects_to_subscribe() const {
    std::size_t count = 0;
    switch (options_.mode) {
      case Mode::pub:
      case Mode::pub_async:
      case Mode::batch:
        count = options_.subjects;
        break;
      case Mode::pubfetch:
      case Mode::longpoll:
        count = options_.connections;  // a subscription of its own per connection
        break;
      case Mode::fanout:
        return std::vector<std::string>(options_.subscribers, "bench.fanout");
      case Mode::consume:
        return std::vector<std::string>(options_.subscribers, "bench.consume");
    }
    std::vector<std::string> subjects;
    for (std::size_t i = 0; i < count; ++i) {
      subjects.push_back("bench." + std::to_string(i));
    }
    return subjects;
  }

  // consume: the members of one group, so the consumers share the messages as workers do.
  [[nodiscard]] std::string subscribe_body(std::string_view subject) const {
    if (options_.mode != Mode::consume) {
      return "{\"subject\":" + quoted(subject) + "}";
    }
    return "{\"subject\":" + quoted(subject) + ",\"group\":\"bench\"" +
           (options_.ack ? ",\"ack\":true}" : "}");
  }

  // The request a publishing connection sends as its n-th, and how many messages it publishes.
  [[nodiscard]] std::pair<std::string, std::size_t> publish_request(std::size_t index,
                                                                    std::uint64_t n) const;
  [[nodiscard]] std::string_view publish_target() const {
    switch (options_.mode) {
      case Mode::pub_async:
        return "/api/publish/async";
      case Mode::batch:
        return "/api/publish/batch";
      default:
        return "/api/publish";
    }
  }

  const Options& options_;
  tcp::endpoint endpoint_;
  std::string payload_;
  std::vector<Subscription> subscriptions_;
};

std::pair<std::string, std::size_t> Workload::publish_request(std::size_t index,
                                                              std::uint64_t n) const {
  switch (options_.mode) {
    case Mode::batch:
      return {batch_body("bench." + std::to_string((index + n) % options_.subjects), payload_,
                         options_.batch),
              options_.batch};
    case Mode::fanout:
      return {publish_body("bench.fanout", payload_), 1};
    case Mode::consume:
      return {publish_body("bench.consume", payload_), 1};
    case Mode::pubfetch: {
      const Subscription& own = subscriptions_[index];
      return {publish_body(own.subject, payload_), 1};
    }
    case Mode::longpoll: {
      // The send time travels in the message, so the fetcher can measure delivery latency.
      std::string stamp = std::to_string(Clock::now().time_since_epoch().count());
      stamp.resize(std::max(stamp.size(), options_.message_bytes), 'x');
      return {publish_body(subscriptions_[n % subscriptions_.size()].subject, stamp), 1};
    }
    default:
      return {publish_body("bench." + std::to_string((index + n) % options_.subjects), payload_),
              1};
  }
}

// Waits until the n-th request of a connection is due under --rate; returns when it was due.
asio::awaitable<Clock::time_point> wait_until_due(const Options& options, std::size_t senders,
                                                  Clock::time_point start, std::uint64_t n) {
  if (options.rate <= 0) {
    co_return Clock::now();
  }
  const auto interval = std::chrono::duration<double>(static_cast<double>(senders) / options.rate);
  const auto due = start + std::chrono::duration_cast<Clock::duration>(interval * n);
  if (due > Clock::now()) {
    asio::steady_timer timer(co_await asio::this_coro::executor, due);
    co_await timer.async_wait(kUseTuple);
  }
  co_return due;
}

asio::awaitable<void> Workload::publish_loop(std::size_t index, Window window, Stats& stats) const {
  Connection connection(co_await asio::this_coro::executor);
  if (co_await connection.connect(endpoint_)) {
    ++stats.transport_errors;
    co_return;
  }
  // Spread the connections' schedules over one interval, so they do not fire together.
  const auto start =
      Clock::now() +
      std::chrono::microseconds(
          options_.rate > 0
              ? static_cast<std::int64_t>(1e6 * static_cast<double>(index) / options_.rate)
              : 0);
  const bool alternate_fetch = options_.mode == Mode::pubfetch;
  Answer answer;
  for (std::uint64_t n = 0; !answer.error; ++n) {
    const Clock::time_point due = co_await wait_until_due(options_, publishers(), start, n);
    if (due >= window.end) {
      break;
    }
    const bool fetching = alternate_fetch && n % 2 == 1;
    std::size_t publishing = 0;
    if (fetching) {
      const Subscription& own = subscriptions_[index];
      answer = co_await connection.post("/api/fetch",
                                        fetch_body(own.subject, own.id, options_.fetch_max, 0));
    } else {
      auto [body, count] = publish_request(index, n);
      publishing = count;
      answer = co_await connection.post(publish_target(), std::move(body));
    }
    if (!window.counts(answer, stats)) {
      continue;
    }
    ++stats.requests;
    stats.latencies_ns.push_back(std::chrono::nanoseconds(answer.received - due).count());
    if (answer.status != 200) {
      ++stats.failed;
    } else if (fetching) {
      stats.delivered += fetched_data(answer.body).size();
    } else {
      stats.published += publishing;
    }
  }
  connection.close();
}

asio::awaitable<void> Workload::fetch_loop(std::size_t index, Window window, Stats& stats) const {
  Connection connection(co_await asio::this_coro::executor);
  if (co_await connection.connect(endpoint_)) {
    ++stats.transport_errors;
    co_return;
  }
  const Subscription& own = subscriptions_[index];
  const bool consume = options_.mode == Mode::consume;
  const bool ack = consume && options_.ack;
  const std::string body =
      fetch_body(own.subject, own.id, consume ? options_.fetch_max : 1000, kFetchWaitMs);
  Answer answer;
  while (!answer.error && Clock::now() < window.end) {
    answer = co_await connection.post("/api/fetch", body, std::chrono::milliseconds(kFetchWaitMs));
    const json::array data = fetched_data(answer.body, ack ? "messages" : "data");
    std::size_t consumed = data.size();
    if (ack && !answer.error && answer.status == 200 && !data.empty()) {
      // A message counts once acked, as a consumer is done with it only then.
      answer = co_await connection.post("/api/ack", ack_body(own.subject, own.id, data));
      consumed = acked_count(answer.body);
    }
    if (!window.counts(answer, stats)) {
      continue;
    }
    if (answer.status != 200) {
      ++stats.failed;
      continue;
    }
    stats.delivered += consumed;
    if (options_.mode != Mode::longpoll) {
      continue;
    }
    for (const json::value& item : data) {
      const json::string& text = item.as_string();
      std::int64_t sent = 0;
      std::from_chars(text.data(), text.data() + text.size(), sent);
      stats.latencies_ns.push_back(answer.received.time_since_epoch().count() - sent);
    }
  }
  connection.close();
}

struct Report {
  double seconds = 0;
  Stats total;

  [[nodiscard]] double percentile_ms(double fraction) const {
    const auto& sorted = total.latencies_ns;
    if (sorted.empty()) {
      return 0;
    }
    const auto rank =
        static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(sorted.size())));
    return static_cast<double>(sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1]) / 1e6;
  }
};

constexpr std::pair<std::string_view, double> kPercentiles[] = {
    {"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}, {"max", 1.0}};

void print_text(const Options& options, const Report& report) {
  const Stats& total = report.total;
  std::printf("mode %s, %zu connections, %zu-byte messages, %zu subjects, rate %s, %.1f s\n",
              std::string(name_of(options.mode)).c_str(), options.connections,
              options.message_bytes, options.subjects,
              options.rate > 0 ? std::to_string(static_cast<long>(options.rate)).c_str() : "max",
              report.seconds);
  std::printf("requests  %12llu  %12.0f req/s\n", static_cast<unsigned long long>(total.requests),
              static_cast<double>(total.requests) / report.seconds);
  std::printf("published %12llu  %12.0f msg/s\n", static_cast<unsigned long long>(total.published),
              static_cast<double>(total.published) / report.seconds);
  std::printf("delivered %12llu  %12.0f msg/s\n", static_cast<unsigned long long>(total.delivered),
              static_cast<double>(total.delivered) / report.seconds);
  std::printf("%s latency (ms):", options.mode == Mode::longpoll ? "delivery" : "request");
  for (const auto& [name, fraction] : kPercentiles) {
    std::printf("  %s %.3f", std::string(name).c_str(), report.percentile_ms(fraction));
  }
  std::printf("\nnon-200 answers %llu, transport errors %llu\n",
              static_cast<unsigned long long>(total.failed),
              static_cast<unsigned long long>(total.transport_errors));
}

void print_json(const Options& options, const Report& report) {
  const Stats& total = report.total;
  json::object latency;
  for (const auto& [name, fraction] : kPercentiles) {
    latency[name] = report.percentile_ms(fraction);
  }
  const json::object result{
      {"mode", name_of(options.mode)},
      {"connections", options.connections},
      {"message_bytes", options.message_bytes},
      {"subjects", options.subjects},
      {"rate", options.rate},
      {"seconds", report.seconds},
      {"requests", total.requests},
      {"requests_per_second", static_cast<double>(total.requests) / report.seconds},
      {"published", total.published},
      {"published_per_second", static_cast<double>(total.published) / report.seconds},
      {"delivered", total.delivered},
      {"delivered_per_second", static_cast<double>(total.delivered) / report.seconds},
      {"latency_ms", latency},
      {"failed", total.failed},
      {"transport_errors", total.transport_errors}};
  std::cout << json::serialize(result) << '\n';
}

std::optional<Options> parse_options(int argc, char** argv) {
  Options options;
  std::string mode;
  po::options_description described("gophermq-bench: load for a running GopherMQ");
  described.add_options()("help,h", "this text")(
      "host", po::value(&options.host)->default_value(options.host), "broker address")(
      "port", po::value(&options.port)->default_value(options.port), "broker API port")(
      "mode", po::value(&mode)->default_value("pub"),
      "pub, pub-async, pubfetch (publish and fetch alternately on one subscription per "
      "connection), fanout (--subscribers subscriptions on one subject, each fetched by its own "
      "connection), batch (--batch messages per publish), longpoll (one long-polling fetch per "
      "connection, one publisher at --rate; latency is publish to delivery), consume "
      "(--connections publishers and --subscribers members of one group, each fetching --max "
      "messages at a time; with --ack in ack mode, acking what each fetch got)")(
      "connections,c", po::value(&options.connections)->default_value(options.connections),
      "publishing connections (longpoll: waiting fetches)")(
      "threads,t", po::value(&options.threads)->default_value(options.threads), "client threads")(
      "duration,d", po::value(&options.duration)->default_value(options.duration),
      "measured seconds")("warmup", po::value(&options.warmup)->default_value(options.warmup),
                          "seconds run before measuring")(
      "size,s", po::value(&options.message_bytes)->default_value(options.message_bytes),
      "message bytes")("subjects", po::value(&options.subjects)->default_value(options.subjects),
                       "subjects published to, round robin (pub, pub-async, batch)")(
      "subscribers", po::value(&options.subscribers)->default_value(options.subscribers),
      "fanout subscriptions")("batch", po::value(&options.batch)->default_value(options.batch),
                              "messages per batch publish")(
      "max", po::value(&options.fetch_max)->default_value(options.fetch_max),
      "fetch max in pubfetch and consume")(
      "rate,r", po::value(&options.rate)->default_value(options.rate),
      "requests per second over all connections, each on a fixed schedule; 0 = as fast as "
      "answers come (longpoll: 1000)")(
      "ack", po::bool_switch(&options.ack),
      "consume: ack-mode subscriptions, each fetch's receipts acked in one request")(
      "json", po::bool_switch(&options.json), "print one JSON object")(
      "tls-ca", po::value(&options.tls_ca),
      "speak TLS (https) to the broker, trusting the CA certificates in this PEM file");
  po::variables_map values;
  po::store(po::parse_command_line(argc, argv, described), values);
  po::notify(values);
  if (values.count("help") != 0) {
    std::cout << described << '\n';
    return std::nullopt;
  }
  const auto* found = std::find_if(std::begin(kModes), std::end(kModes),
                                   [&](const ModeName& entry) { return entry.name == mode; });
  if (found == std::end(kModes)) {
    throw po::error("unknown --mode " + mode);
  }
  options.mode = found->mode;
  if (options.connections == 0 || options.threads == 0 || options.subjects == 0 ||
      options.subscribers == 0 || options.batch == 0 || options.fetch_max == 0 ||
      options.duration <= 0 || options.warmup < 0 || options.rate < 0) {
    throw po::error("counts and --duration must be positive");
  }
  if (options.mode == Mode::longpoll && options.rate == 0) {
    options.rate = 1000;
  }
  return options;
}

// Subscriptions before, unsubscriptions after, on one connection of their own.
template <typename Step>
void run_on_one_connection(const tcp::endpoint& endpoint, Step step) {
  asio::io_context context;
  std::exception_ptr failure;
  asio::co_spawn(
      context,
      [&]() -> asio::awaitable<void> {
        Connection connection(co_await asio::this_coro::executor);
        if (auto error = co_await connection.connect(endpoint)) {
          throw std::runtime_error("cannot connect: " + error.message());
        }
        co_await step(connection);
        connection.close();
      },
      [&](std::exception_ptr error) { failure = error; });
  context.run();
  if (failure) {
    std::rethrow_exception(failure);
  }
}

Report run(const Options& options, Workload& workload) {
  const std::size_t loops = workload.publishers() + workload.fetchers();
  std::vector<Stats> stats(loops);
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  for (std::size_t i = 0; i < options.threads; ++i) {
    contexts.push_back(std::make_unique<asio::io_context>(1));
  }
  const auto begin = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(options.warmup));
  const Window window{begin, begin + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(options.duration))};
  for (std::size_t i = 0; i < loops; ++i) {
    auto& context = *contexts[i % contexts.size()];
    if (i < workload.publishers()) {
      asio::co_spawn(context, workload.publish_loop(i, window, stats[i]), asio::detached);
    } else {
      asio::co_spawn(context, workload.fetch_loop(i - workload.publishers(), window, stats[i]),
                     asio::detached);
    }
  }
  std::vector<std::jthread> threads;
  for (auto& context : contexts) {
    threads.emplace_back([&context] { context->run(); });
  }
  threads.clear();
  Report report{options.duration, {}};
  for (Stats& one : stats) {
    report.total.add(std::move(one));
  }
  std::sort(report.total.latencies_ns.begin(), report.total.latencies_ns.end());
  return report;
}

int run_bench(int argc, char** argv) {
  try {
    const std::optional<Options> options = parse_options(argc, argv);
    if (!options) {
      return 0;
    }
    if (!options->tls_ca.empty()) {
      use_tls(options->tls_ca);
    }
    asio::io_context resolving;
    const tcp::endpoint endpoint =
        *tcp::resolver(resolving).resolve(options->host, std::to_string(options->port)).begin();
    Workload workload(*options, endpoint);
    run_on_one_connection(endpoint, [&](Connection& c) { return workload.set_up(c); });
    const Report report = run(*options, workload);
    run_on_one_connection(endpoint, [&](Connection& c) { return workload.tear_down(c); });
    if (options->json) {
      print_json(*options, report);
    } else {
      print_text(*options, report);
    }
    const bool clean =
        report.total.requests > 0 && report.total.failed == 0 && report.total.transport_errors == 0;
    return clean ? 0 : 1;
  } catch (const po::error& error) {
    std::fprintf(stderr, "gophermq-bench: %s (see --help)\n", error.what());
    return 2;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "gophermq-bench: %s\n", error.what());
    return 1;
  }
}

}  // namespace
}  // namespace gophermq::bench

int main(int argc, char** argv) {
  return gophermq::bench::run_bench(argc, argv);
}
