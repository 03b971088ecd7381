#pragma once

#include <memory>
#include <string_view>

#include "http/request_handler.hpp"

namespace gophermq::fuzz {

// A fresh broker behind the real ApiHandler, answering one request at a time to completion on
// one thread, so a run is deterministic.
class ApiExchange {
 public:
  ApiExchange();
  ~ApiExchange();
  ApiExchange(const ApiExchange&) = delete;
  ApiExchange& operator=(const ApiExchange&) = delete;

  http::Response answer(http::Request& request);
  http::Response reject(const http::Request& request, boost::beast::http::status status,
                        std::string_view message);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace gophermq::fuzz
