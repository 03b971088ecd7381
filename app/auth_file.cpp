#include "app/auth_file.hpp"

#include <csignal>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "config/log.hpp"

namespace gophermq::app {

namespace {

constexpr std::size_t kMaxFileBytes = std::size_t{16} << 20;

// A value for a log line: quotes and backslashes escaped.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out + "\"";
}

}  // namespace

auth::Table read_auth_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  }
  std::string text(kMaxFileBytes + 1, '\0');
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (file.bad()) {
    throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  }
  text.resize(static_cast<std::size_t>(file.gcount()));
  if (text.size() > kMaxFileBytes) {
    throw std::runtime_error(path + " is larger than 16 MiB");
  }
  try {
    return auth::Table::parse(text);
  } catch (const auth::FileError& error) {
    throw std::runtime_error(path + " " + error.what());
  }
}

AuthReload::AuthReload(boost::asio::io_context& control, std::string path, auth::Keyring& keyring)
    : signals_(control, SIGHUP), path_(std::move(path)), keyring_(keyring) {
  wait();
}

void AuthReload::stop() {
  signals_.cancel();
}

void AuthReload::wait() {
  signals_.async_wait([this](const boost::system::error_code& error, int /*signal*/) {
    if (error) {
      return;
    }
    try {
      auth::Table table = read_auth_file(path_);
      const std::size_t tokens = table.size();
      keyring_.replace(std::move(table));
      config::log(config::LogLevel::info,
                  "msg=\"auth file reloaded\" tokens=" + std::to_string(tokens));
    } catch (const std::exception& failure) {
      config::log(
          config::LogLevel::error,
          "msg=\"auth file not reloaded, the old one stays\" error=" + quoted(failure.what()));
    }
    wait();
  });
}

}  // namespace gophermq::app
