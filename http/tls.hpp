#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/error.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "http/server_limits.hpp"

namespace gophermq::http {

// A TLS file that cannot be used (unreadable, not PEM, a key that does not match); what() is one
// line naming the key and the file.
class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A server context from `files`: TLS 1.2 and 1.3 only, forward-secret AEAD ciphers in the
// server's order, no compression, no renegotiation; client certificates required and verified
// when files.client_ca_file is set. Throws TlsError.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const TlsFiles& files);

// The context TLS listeners hand to new connections. reload() swaps in one built from the files
// anew; a connection keeps the context it started with, so it outlives a reload.
class TlsContext {
 public:
  // Throws TlsError.
  TlsContext(TlsFiles files, prometheus::Registry& registry);

  // Under a mutex, as auth::Keyring: GCC 12's std::atomic<std::shared_ptr> is opaque to TSan.
  [[nodiscard]] std::shared_ptr<boost::asio::ssl::context> current() const {
    const std::scoped_lock lock(mutex_);
    return context_;
  }

  // The error when the files cannot be used now, in which case the current context stays.
  std::optional<std::string> reload();

  // Counts and logs (at debug: any client can cause it) a handshake that did not complete.
  void handshake_failed(const boost::beast::error_code& error) const;

 private:
  TlsFiles files_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  prometheus::Counter& handshake_failures_;
};

}  // namespace gophermq::http
