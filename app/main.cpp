#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "app/daemon.hpp"
#include "auth/auth.hpp"
#include "config/config.hpp"

extern char** environ;

namespace {

// Whatever a value held (a newline in a variable, a YAML block scalar), the error is one line.
std::string one_line(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string line;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      line.append("\\x").push_back(kHex[byte >> 4]);
      line.push_back(kHex[byte & 0xf]);
    } else {
      line.push_back(c);
    }
  }
  return line;
}

constexpr std::string_view kTokenUsage =
    "usage: gophermq token NAME [PERMISSION...] with NAME 1 to 64 of A-Z a-z 0-9 _ - . (not "
    "starting with -), PERMISSION pub:PATTERN, sub:PATTERN or admin\n";

// `gophermq token NAME [PERMISSION...]`: a new token, and the auth.file line that grants it.
int mint(const std::vector<std::string>& arguments) {
  using namespace gophermq;
  if (arguments.size() >= 2 && (arguments[1] == "--help" || arguments[1] == "-h")) {
    std::cout << kTokenUsage;
    return 0;
  }
  // A name that looks like an option is a mistyped option, not a name to mint a token for.
  if (arguments.size() < 2 || !auth::is_valid_name(arguments[1]) || arguments[1].starts_with('-')) {
    std::cerr << "gophermq: " << kTokenUsage;
    return 2;
  }
  std::string line = arguments[1];
  for (std::size_t i = 2; i < arguments.size(); ++i) {
    if (!auth::parse_permission(arguments[i])) {
      std::cerr << "gophermq: invalid permission \"" << one_line(arguments[i])
                << "\" (pub:PATTERN, sub:PATTERN or admin)\n";
      return 2;
    }
  }
  const std::string token = auth::mint_token();
  line += " " + auth::to_hex(auth::sha256(token));
  for (std::size_t i = 2; i < arguments.size(); ++i) {
    line += " " + arguments[i];
  }
  // The token on the first line alone, so a script can take it with `head -1`; it is shown once
  // and stored nowhere.
  std::cout << token << "\n# add to auth.file, then reload (SIGHUP):\n" << line << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gophermq;
  const std::vector<std::string> arguments(argv + 1, argv + argc);
  if (!arguments.empty() && arguments.front() == "token") {
    return mint(arguments);
  }
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    environment.emplace_back(*entry);
  }
  config::Invocation invocation;
  try {
    invocation = config::load(arguments, environment);
  } catch (const std::exception& error) {
    // Whatever a bad setting trips, it is the operator's to fix: one line and exit 2, never an
    // abort.
    std::cerr << "gophermq: " << one_line(error.what()) << "\n";
    return 2;
  }
  switch (invocation.command) {
    case config::Command::show_help:
      std::cout << invocation.help_text;
      return 0;
    case config::Command::show_version:
      std::cout << "gophermq " << GOPHERMQ_VERSION << "\n";
      return 0;
    case config::Command::run_broker:
      break;
  }
  config::set_log_level(invocation.config.log_level);
  if (!invocation.config_file.empty()) {
    config::log(config::LogLevel::info,
                "msg=\"config file read\" file=\"" + invocation.config_file + "\"");
  }
  return app::run_daemon(invocation.config);
}
