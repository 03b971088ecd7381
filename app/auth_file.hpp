#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <string>

#include "auth/keyring.hpp"

namespace gophermq::app {

// The table of the auth.file at `path`; throws std::runtime_error with one line ("cannot read
// ...", "line N: ...") when it cannot be read or used. Reads at most 16 MiB.
auth::Table read_auth_file(const std::string& path);

// Reloads the auth.file into the keyring on every SIGHUP (API.md §11): a good file replaces the
// table for the requests that start afterwards; a bad one is logged and the old table stays.
class AuthReload {
 public:
  AuthReload(boost::asio::io_context& control, std::string path, auth::Keyring& keyring);

  // Stops listening for SIGHUP, so the control context can run out of work.
  void stop();

 private:
  void wait();

  boost::asio::signal_set signals_;
  std::string path_;
  auth::Keyring& keyring_;
};

}  // namespace gophermq::app
