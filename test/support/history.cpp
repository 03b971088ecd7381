#include "support/history.hpp"

#include <sstream>

namespace gophermq::test {

std::string Verdict::report(const std::string& summary) const {
  std::ostringstream out;
  out << summary << ", errors " << errors.size();
  std::size_t shown = 0;
  for (const auto& error : errors) {
    if (shown++ == 20) {
      out << "\n  ...";
      break;
    }
    out << "\n  " << error;
  }
  return out.str();
}

}  // namespace gophermq::test
