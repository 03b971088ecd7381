#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace gophermq::http {

// Every bound one HTTP listener enforces; the config nests one of these and hands it over as is.
struct ServerLimits {
  std::size_t max_connections = 10'000;
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_header_bytes = 8 * 1024;
  // Request bytes being received across all connections of the process.
  std::size_t max_receiving_bytes = 64 * 1024 * 1024;
  std::chrono::milliseconds idle_timeout{60'000};
  // Both from a request's first byte: the head must be in within header_timeout (so a slowloris
  // client is cut off early), the whole request within read_timeout.
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds write_timeout{30'000};
};

// The PEM files a TLS listener is built from (tls.* keys); no cert_file means plain HTTP.
struct TlsFiles {
  std::string cert_file;  // the certificate, optionally followed by its chain
  std::string key_file;
  std::string client_ca_file;  // set: clients must show a certificate this CA signed

  [[nodiscard]] bool enabled() const { return !cert_file.empty(); }
};

}  // namespace gophermq::http
