#include "app/daemon.hpp"

#include <prometheus/histogram.h>
#include <pthread.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "app/auth_file.hpp"
#include "app/cpus.hpp"
#include "http/api_handler.hpp"
#include "http/metrics_endpoint.hpp"
#include "http/server.hpp"
#include "http/tls.hpp"
#include "service/broker_service.hpp"

namespace gophermq::app {
namespace asio = boost::asio;
using config::log;
using config::LogLevel;

namespace {

using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;

// Threads that each run one io_context until its guard is released and its work is done.
class ContextPool {
 public:
  explicit ContextPool(unsigned size) {
    for (unsigned i = 0; i < size; ++i) {
      contexts_.push_back(std::make_unique<asio::io_context>(1));
      guards_.emplace_back(contexts_.back()->get_executor());
    }
  }

  [[nodiscard]] std::vector<asio::any_io_executor> executors() const {
    std::vector<asio::any_io_executor> executors;
    for (const auto& context : contexts_) {
      executors.emplace_back(context->get_executor());
    }
    return executors;
  }

  void start() {
    for (auto& context : contexts_) {
      threads_.emplace_back([&context] { context->run(); });
      // Named for top -H, perf and gdb, and for the benchmarks that read per-thread CPU time;
      // from here, so the name is set before the broker reports ready.
      pthread_setname_np(threads_.back().native_handle(), "gophermq-io");
    }
  }

  void finish() {
    guards_.clear();
    for (auto& thread : threads_) {
      thread.join();
    }
    threads_.clear();
  }

  ~ContextPool() {
    if (!threads_.empty()) {
      for (auto& context : contexts_) {
        context->stop();
      }
      finish();
    }
  }

  ContextPool(const ContextPool&) = delete;
  ContextPool& operator=(const ContextPool&) = delete;

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<WorkGuard> guards_;
  std::vector<std::thread> threads_;
};

asio::ip::tcp::endpoint endpoint_of(const config::Endpoint& endpoint) {
  return {asio::ip::make_address(endpoint.host), endpoint.port};
}

std::string describe(const asio::ip::tcp::endpoint& endpoint) {
  return endpoint.address().to_string() + " port=" + std::to_string(endpoint.port());
}

unsigned http_threads(const config::Config& config) {
  return config.threads != 0 ? config.threads : usable_cpus();
}

// Under systemd with WatchdogSec=, WATCHDOG=1 goes out at half the watchdog period from the
// broker strand itself, so a wedged broker, not only a dead process, gets restarted.
service::Heartbeat watchdog_heartbeat() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
    return {};
  }
  const auto interval =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::microseconds(usec / 2));
  return {std::max(interval, std::chrono::milliseconds(1)), [] { sd_notify(0, "WATCHDOG=1"); }};
}

// Logged, and told to systemd, once the broker serves: after recovery when storage is on.
void announce_ready(const config::Config& config, unsigned threads,
                    const storage::RecoveryReport& report) {
  if (!config.storage.dir.empty()) {
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(report.took).count();
    log(LogLevel::info,
        "msg=recovered dir=" + config.storage.dir + " files=" + std::to_string(report.files) +
            " records=" + std::to_string(report.records) +
            " bytes=" + std::to_string(report.bytes) +
            " truncated_bytes=" + std::to_string(report.truncated_bytes) +
            " skipped=" + std::to_string(report.skipped) + " ms=" + std::to_string(millis));
  }
  log(LogLevel::info, "msg=ready http_threads=" + std::to_string(threads));
  sd_notify(0, "READY=1");
}

// On each SIGHUP the certificates are read anew for the connections that follow; open ones keep
// theirs. Files that cannot be used are logged and the certificates in use stay.
void watch_tls_reload(asio::signal_set& signal, http::TlsContext& tls) {
  signal.async_wait([&signal, &tls](const boost::system::error_code& error, int) {
    if (error) {
      return;
    }
    if (const auto failure = tls.reload()) {
      log(LogLevel::error,
          "msg=\"tls reload failed, keeping the old certificates\" error=\"" + *failure + "\"");
    } else {
      log(LogLevel::info, "msg=\"tls reloaded\"");
    }
    watch_tls_reload(signal, tls);
  });
}

}  // namespace

int run_daemon(const config::Config& config) {
  const auto started = std::chrono::system_clock::now();
  // Contexts are declared first so they outlive everything that holds their executors. The
  // shutdown sequence ends every coroutine before the objects they use are destroyed.
  asio::io_context control(1);
  const unsigned threads = http_threads(config);
  // One HTTP thread runs the broker strand too: a second thread would only add a hand-over per
  // call on the CPU the first one needs.
  const bool one_thread = threads == 1;
  ContextPool core(one_thread ? 0 : 1);
  ContextPool workers(threads);

  prometheus::Registry registry;
  auto& fsync_seconds = prometheus::BuildHistogram()
                            .Name("gophermq_storage_fsync_seconds")
                            .Help("Time each fdatasync of the write-ahead log took.")
                            .Register(registry)
                            .Add({}, prometheus::Histogram::BucketBoundaries{
                                         0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05, 0.1, 0.25, 0.5, 1});
  service::Storage storage{config.storage,
                           [](const std::string& error) {
                             // The process ends here: after a failed write or fdatasync the kernel
                             // may have dropped the pages it could not write, so nothing that
                             // follows could be trusted. A restart recovers what reached the disk.
                             log(LogLevel::error,
                                 "msg=\"storage failure\" error=\"" + error + "\"");
                             std::fflush(stderr);
                             std::_Exit(1);
                           },
                           [&fsync_seconds](std::chrono::duration<double> took) {
                             fsync_seconds.Observe(took.count());
                           }};
  service::BrokerService service(
      (one_thread ? workers : core).executors().front(), config.broker, config.async_queue_size,
      config.async_queue_bytes,
      one_thread ? service::StrandThread::shared_with_callers : service::StrandThread::own,
      std::move(storage));

  metrics::LimitMetrics limit_metrics(registry);
  // Access control (API.md §11): a file that cannot be used stops the start, as a bad setting does.
  metrics::AuthMetrics auth_metrics(registry);
  std::optional<auth::Keyring> keyring;
  if (!config.auth_file.empty()) {
    try {
      keyring.emplace(read_auth_file(config.auth_file));
    } catch (const std::exception& error) {
      std::cerr << "gophermq: auth.file: " << error.what() << "\n";
      return 2;
    }
  }
  std::optional<auth::Digest> metrics_token;
  if (!config.monitoring_token.empty()) {
    metrics_token = auth::sha256(config.monitoring_token);
  }
  http::ApiHandler api(service, registry, limit_metrics, config.max_wait, config.stream_heartbeat,
                       http::CorsPolicy(config.cors_origins), config.console,
                       keyring ? &*keyring : nullptr, &auth_metrics);
  http::MetricsEndpoint metrics(service, registry, started, metrics_token, &auth_metrics);
  std::optional<http::TlsContext> tls;
  if (config.tls.enabled()) {
    try {
      tls.emplace(config.tls, registry);
    } catch (const http::TlsError& error) {
      // A setting the operator must fix, like those config::load refuses.
      log(LogLevel::error, std::string("msg=\"cannot use tls\" error=\"") + error.what() + "\"");
      return 2;
    }
  }
  const http::TlsContext* api_tls = tls ? &*tls : nullptr;
  const http::TlsContext* metrics_tls = config.monitoring_tls ? api_tls : nullptr;
  // Both listeners draw on one budget: it bounds the memory of the process.
  http::ReceiveBudget receive_budget(config.server.max_receiving_bytes);
  std::optional<http::Server> api_server;
  std::optional<http::Server> metrics_server;
  try {
    api_server.emplace(control.get_executor(), workers.executors(), endpoint_of(config.api), api,
                       config.server, limit_metrics, receive_budget, api_tls);
    if (config.monitoring_enable) {
      metrics_server.emplace(control.get_executor(), workers.executors(),
                             endpoint_of(config.monitoring), metrics, config.server, limit_metrics,
                             receive_budget, metrics_tls);
    }
  } catch (const std::exception& error) {
    log(LogLevel::error, std::string("msg=\"cannot listen\" error=\"") + error.what() + "\"");
    return 1;
  }

  std::optional<AuthReload> auth_reload;
  if (keyring) {
    auth_reload.emplace(control, config.auth_file, *keyring);
  }
  asio::signal_set reload_tls_signal(control, SIGHUP);
  if (tls) {
    watch_tls_reload(reload_tls_signal, *tls);
  }

  asio::signal_set signals(control, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& error, int signal) {
    if (error) {
      return;
    }
    sd_notify(0, "STOPPING=1");
    api.stop_accepting();
    api_server->stop_accepting();
    if (metrics_server) {
      metrics_server->stop_accepting();
    }
    // After the servers: the long polls it ends are answered with Connection: close.
    service.stop_waiting();
    log(LogLevel::info, "msg=\"shutting down\" signal=" + std::to_string(signal));
    // A second signal means the operator will not wait for the drain. The exit status says
    // whether that abandoned work: requests read and not answered, or async publishes accepted
    // and not yet in the broker.
    signals.async_wait([&](const boost::system::error_code& again_error, int again) {
      if (again_error) {
        return;
      }
      const std::size_t requests = api_server->requests_in_flight();
      const std::uint64_t async_publishes = service.async_queue_depth();
      log(LogLevel::warn, "msg=\"forced shutdown\" signal=" + std::to_string(again) +
                              " requests_in_flight=" + std::to_string(requests) +
                              " async_publishes=" + std::to_string(async_publishes));
      std::fflush(stderr);
      std::_Exit(requests > 0 || async_publishes > 0 ? 1 : 0);
    });
    asio::co_spawn(
        control,
        [&]() -> asio::awaitable<void> {
          const auto deadline = std::chrono::steady_clock::now() + config.shutdown_timeout;
          co_await api_server->drain(deadline);
          co_await service.shutdown();
          if (metrics_server) {
            co_await metrics_server->drain(deadline);
          }
        },
        [&](const std::exception_ptr&) {
          signals.cancel();
          if (auth_reload) {
            auth_reload->stop();
          }
          reload_tls_signal.cancel();
          workers.finish();
          core.finish();
        });
  });

  service.start(watchdog_heartbeat(), [&](const storage::RecoveryReport& report) {
    // Through the control thread, so the listeners are logged first.
    asio::post(control, [&config, threads, report] { announce_ready(config, threads, report); });
  });
  core.start();
  workers.start();
  api_server->start();
  log(LogLevel::info,
      "msg=listening listener=api address=" + describe(api_server->local_endpoint()) +
          (api_tls != nullptr ? " tls=true" : ""));
  if (metrics_server) {
    metrics_server->start();
    log(LogLevel::info,
        "msg=listening listener=metrics address=" + describe(metrics_server->local_endpoint()) +
            (metrics_tls != nullptr ? " tls=true" : ""));
  }
  control.run();
  log(LogLevel::info, "msg=stopped");
  return 0;
}

}  // namespace gophermq::app
