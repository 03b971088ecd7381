// What push delivery sustains (docs/delivery.md): STREAMS ephemeral streams (SSE or WebSocket) on
// one subject, so every published message is pushed to each of them, while one publisher sends
// POST /api/publish/batch. The streams are read by one epoll loop that counts events (SSE) or
// frames (WebSocket) as their bytes pass, without parsing JSON, so the client is not what limits
// the rate. The publisher stays at most --window messages ahead of the average stream, so the
// queues stay bounded however fast it could publish.
//
// Usage: gophermq_push_bench --port P [--mode sse|ws] [--streams N] [--duration S] [--warmup S]
//        [--batch B] [--size BYTES] [--window M] [--subject S]
// Prints one JSON object.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::uint16_t port = 0;
  bool websocket = false;
  std::size_t streams = 1;
  double duration = 5;
  double warmup = 1;
  std::size_t batch = 100;
  std::size_t size = 64;
  std::uint64_t window = 1024;
  std::string subject = "bench.push";
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "%s\nusage: gophermq_push_bench --port P [--mode sse|ws] [--streams N] "
               "[--duration S] [--warmup S] [--batch B] [--size BYTES] [--window M] "
               "[--subject S]\n",
               problem.c_str());
  std::exit(2);
}

template <typename Number>
Number number(std::string_view text, std::string_view name) {
  Number value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) {
    usage("bad " + std::string(name) + ": " + std::string(text));
  }
  return value;
}

Options parse(int argc, char** argv) {
  Options options;
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view name = args[i];
    if (i + 1 == args.size()) {
      usage("missing value of " + std::string(name));
    }
    const std::string_view value = args[++i];
    if (name == "--port") {
      options.port = number<std::uint16_t>(value, name);
    } else if (name == "--mode") {
      if (value != "sse" && value != "ws") {
        usage("unknown --mode " + std::string(value));
      }
      options.websocket = value == "ws";
    } else if (name == "--streams") {
      options.streams = number<std::size_t>(value, name);
    } else if (name == "--duration") {
      options.duration = std::strtod(std::string(value).c_str(), nullptr);
    } else if (name == "--warmup") {
      options.warmup = std::strtod(std::string(value).c_str(), nullptr);
    } else if (name == "--batch") {
      options.batch = number<std::size_t>(value, name);
    } else if (name == "--size") {
      options.size = number<std::size_t>(value, name);
    } else if (name == "--window") {
      options.window = number<std::uint64_t>(value, name);
    } else if (name == "--subject") {
      options.subject = value;
    } else {
      usage("unknown option " + std::string(name));
    }
  }
  if (options.port == 0 || options.streams == 0 || options.batch == 0 || options.duration <= 0) {
    usage("--port, --streams, --batch and --duration must be above zero");
  }
  return options;
}

int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sockaddr addr{};
  static_assert(sizeof addr <= sizeof address);
  std::memcpy(&addr, &address, sizeof addr);
  if (::connect(fd, &addr, sizeof address) != 0) {
    throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  }
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  return fd;
}

void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) {
      continue;
    }
    if (sent <= 0) {
      throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  }
}

// One stream's bytes as they arrive: the answer's head, then events or frames, counted as they
// end.
class Stream {
 public:
  explicit Stream(bool websocket) : websocket_(websocket) {}

  // Counts what `bytes` completes; false once the stream ended (an SSE answer that is not 200, or
  // a WebSocket close frame).
  bool take(const char* bytes, std::size_t size) {
    const char* at = bytes;
    const char* const end = bytes + size;
    while (!ready_ && at < end) {
      head_ += *at++;
      if (head_.ends_with("\r\n\r\n")) {
        ready_ = true;
        const bool accepted = head_.starts_with(websocket_ ? "HTTP/1.1 101 " : "HTTP/1.1 200 ");
        if (!accepted) {
          std::fprintf(stderr, "stream refused: %s\n", head_.c_str());
          return false;
        }
      }
    }
    return websocket_ ? frames(at, end) : events(at, end);
  }

  [[nodiscard]] bool ready() const noexcept { return ready_; }
  [[nodiscard]] std::uint64_t messages() const noexcept { return messages_; }

 private:
  // An event ends at an empty line; its first byte tells its kind: `id:` starts a message, `:` a
  // ping and `event:` the subscribed event.
  bool events(const char* at, const char* end) {
    while (at < end) {
      if (at_start_) {
        first_ = *at;
        at_start_ = false;
      }
      const auto* newline =
          static_cast<const char*>(std::memchr(at, '\n', static_cast<std::size_t>(end - at)));
      if (newline == nullptr) {
        after_newline_ = false;
        return true;
      }
      if (after_newline_ && newline == at) {
        messages_ += first_ == 'i' ? 1 : 0;
        at_start_ = true;
        after_newline_ = false;
      } else {
        after_newline_ = true;
      }
      at = newline + 1;
    }
    return true;
  }

  // Frames from the server are unmasked; a message ends with its FIN frame (Beast may fragment).
  bool frames(const char* at, const char* end) {
    while (at < end) {
      if (payload_left_ > 0) {
        const auto take =
            std::min<std::uint64_t>(payload_left_, static_cast<std::uint64_t>(end - at));
        at += take;
        payload_left_ -= take;
        continue;
      }
      header_[header_size_++] = static_cast<unsigned char>(*at++);
      if (header_size_ < 2) {
        continue;
      }
      const unsigned length7 = header_[1] & 0x7FU;
      const std::size_t extended = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
      if (header_size_ < 2 + extended) {
        continue;
      }
      std::uint64_t length = length7;
      if (extended > 0) {
        length = 0;
        for (std::size_t i = 0; i < extended; ++i) {
          length = (length << 8U) | header_[2 + i];
        }
      }
      const bool fin = (header_[0] & 0x80U) != 0;
      const unsigned opcode = header_[0] & 0x0FU;
      if (opcode == 8) {
        return false;
      }
      if (fin && (opcode == 1 || opcode == 0)) {
        ++messages_;
      }
      payload_left_ = length;
      header_size_ = 0;
    }
    return true;
  }

  bool websocket_;
  bool ready_ = false;
  std::string head_;
  std::uint64_t messages_ = 0;
  bool at_start_ = true;
  bool after_newline_ = false;
  char first_ = 0;
  std::array<unsigned char, 10> header_{};
  std::size_t header_size_ = 0;
  std::uint64_t payload_left_ = 0;
};

std::string stream_request(const Options& options) {
  if (options.websocket) {
    return "GET /api/ws?subject=" + options.subject +
           " HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  }
  return "GET /api/stream?subject=" + options.subject + " HTTP/1.1\r\nHost: bench\r\n\r\n";
}

// Publishes the same batch over one keep-alive connection while `running`, no more than
// `window` messages ahead of what the average stream received.
class Publisher {
 public:
  Publisher(const Options& options, const std::atomic<std::uint64_t>& received)
      : options_(options), received_(received), fd_(connect_to(options.port)) {
    std::string body = "{\"subject\":\"" + options.subject + "\",\"data\":[";
    const std::string data = "\"" + std::string(options.size, 'x') + "\"";
    for (std::size_t i = 0; i < options.batch; ++i) {
      body += (i == 0 ? "" : ",") + data;
    }
    body += "]}";
    request_ =
        "POST /api/publish/batch HTTP/1.1\r\nHost: bench\r\nContent-Type: "
        "application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  ~Publisher() { ::close(fd_); }
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  void run(const std::atomic<bool>& running) {
    while (running.load(std::memory_order_relaxed)) {
      const std::uint64_t ahead = published_.load(std::memory_order_relaxed) -
                                  received_.load(std::memory_order_relaxed) / options_.streams;
      if (ahead + options_.batch > options_.window + options_.batch / 2) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        continue;
      }
      send_all(fd_, request_);
      if (read_status() == 200) {
        published_ += options_.batch;
      } else {
        ++failed_;
      }
    }
  }

  [[nodiscard]] std::uint64_t published() const { return published_.load(); }
  [[nodiscard]] std::uint64_t failed() const { return failed_.load(); }

 private:
  // Reads one answer (its head and Content-Length bytes) and returns its status.
  int read_status() {
    std::size_t head_end = std::string::npos;
    std::size_t total = 0;
    while (true) {
      if (head_end == std::string::npos) {
        head_end = buffer_.find("\r\n\r\n");
        if (head_end != std::string::npos) {
          const auto at = buffer_.find("Content-Length: ");
          const std::size_t length =
              at == std::string::npos ? 0 : std::strtoul(buffer_.c_str() + at + 16, nullptr, 10);
          total = head_end + 4 + length;
        }
      }
      if (head_end != std::string::npos && buffer_.size() >= total) {
        const int status = std::atoi(buffer_.c_str() + 9);
        buffer_.erase(0, total);
        return status;
      }
      std::array<char, 4096> chunk{};
      const ssize_t got = ::recv(fd_, chunk.data(), chunk.size(), 0);
      if (got <= 0) {
        throw std::runtime_error("publisher: connection ended");
      }
      buffer_.append(chunk.data(), static_cast<std::size_t>(got));
    }
  }

  const Options& options_;
  const std::atomic<std::uint64_t>& received_;
  int fd_;
  std::string request_;
  std::string buffer_;
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> failed_{0};
};

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

int run(const Options& options) {
  const int epoll = ::epoll_create1(0);
  std::vector<int> fds;
  std::vector<Stream> streams(options.streams, Stream(options.websocket));
  const std::string request = stream_request(options);
  for (std::size_t i = 0; i < options.streams; ++i) {
    const int fd = connect_to(options.port);
    send_all(fd, request);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = i;
    ::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
    fds.push_back(fd);
  }
  std::atomic<std::uint64_t> received{0};
  std::size_t ready = 0;
  std::size_t ended = 0;
  std::uint64_t bytes = 0;
  std::vector<char> buffer(1 << 18);
  std::array<epoll_event, 256> events{};
  // Reads whatever is there; returns once `until` passes.
  const auto pump = [&](Clock::time_point until, bool stop_when_ready) {
    while (Clock::now() < until && !(stop_when_ready && ready == options.streams)) {
      const int count = ::epoll_wait(epoll, events.data(), static_cast<int>(events.size()), 20);
      for (int e = 0; e < count; ++e) {
        const auto index = static_cast<std::size_t>(events[static_cast<std::size_t>(e)].data.u64);
        Stream& stream = streams[index];
        const bool was_ready = stream.ready();
        const std::uint64_t before = stream.messages();
        bool open = true;
        while (open) {
          const ssize_t got = ::recv(fds[index], buffer.data(), buffer.size(), 0);
          if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
          }
          if (got <= 0 || !stream.take(buffer.data(), static_cast<std::size_t>(got))) {
            open = false;
            break;
          }
          bytes += static_cast<std::uint64_t>(got);
        }
        if (!open) {
          ::epoll_ctl(epoll, EPOLL_CTL_DEL, fds[index], nullptr);
          ++ended;
        }
        ready += !was_ready && stream.ready() ? 1 : 0;
        received.fetch_add(stream.messages() - before, std::memory_order_relaxed);
      }
    }
  };
  pump(Clock::now() + std::chrono::seconds(60), /*stop_when_ready=*/true);
  if (ready != options.streams || ended > 0) {
    std::fprintf(stderr, "only %zu of %zu streams opened\n", ready - ended, options.streams);
    return 1;
  }

  Publisher publisher(options, received);
  std::atomic<bool> running{true};
  std::thread publishing([&] { publisher.run(running); });
  const auto started = Clock::now();
  pump(started + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double>(options.warmup)),
       false);
  const std::uint64_t received_before = received.load();
  const std::uint64_t bytes_before = bytes;
  const std::uint64_t published_before = publisher.published();
  const auto measured = Clock::now();
  pump(measured + std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(options.duration)),
       false);
  const auto finished = Clock::now();
  const std::uint64_t pushed = received.load() - received_before;
  const std::uint64_t pushed_bytes = bytes - bytes_before;
  const std::uint64_t published = publisher.published() - published_before;
  running = false;
  publishing.join();
  const auto [fewest, most] = std::minmax_element(
      streams.begin(), streams.end(),
      [](const Stream& a, const Stream& b) { return a.messages() < b.messages(); });
  for (const int fd : fds) {
    ::close(fd);
  }
  ::close(epoll);
  const double elapsed = seconds_between(measured, finished);
  std::printf(
      "{\"mode\":\"%s\",\"streams\":%zu,\"batch\":%zu,\"size\":%zu,\"duration_s\":%.3f,"
      "\"pushed\":%llu,\"pushed_per_second\":%.0f,\"bytes_per_second\":%.0f,"
      "\"published_per_second\":%.0f,\"fewest_per_stream\":%llu,\"most_per_stream\":%llu,"
      "\"ended\":%zu,\"failed\":%llu}\n",
      options.websocket ? "ws" : "sse", options.streams, options.batch, options.size, elapsed,
      static_cast<unsigned long long>(pushed), static_cast<double>(pushed) / elapsed,
      static_cast<double>(pushed_bytes) / elapsed, static_cast<double>(published) / elapsed,
      static_cast<unsigned long long>(fewest->messages()),
      static_cast<unsigned long long>(most->messages()), ended,
      static_cast<unsigned long long>(publisher.failed()));
  return ended == 0 && publisher.failed() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "gophermq_push_bench: %s\n", error.what());
    return 1;
  }
}
