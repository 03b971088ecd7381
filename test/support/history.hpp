// What the total-queue checkers (TotalQueue for plain fetch, AckQueue for ack mode) have in
// common: the outcome of a recorded request, the errors found while recording, and the report.
#pragma once

#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace gophermq::test {

// ok: answered 200. refused: answered with an error, so nothing was stored. unknown: the
// connection broke before an answer (the broker was killed), so it may or may not have happened.
enum class Outcome { ok, refused, unknown };

// The broken promises a check found.
struct Verdict {
  std::vector<std::string> errors;  // empty when every promise was kept

  // `summary`, then the errors one a line (the first 20: a broken run breaks many promises).
  [[nodiscard]] std::string report(const std::string& summary) const;
};

// A history recorded by several workers at once: each record takes the lock, and a record that
// is wrong in itself (not the broker's fault) is kept as an error for the check to return.
class History {
 protected:
  // With the lock held.
  void history_error(std::string text) { history_errors_.push_back(std::move(text)); }
  // With the lock held: what a check reports before its own findings.
  [[nodiscard]] const std::vector<std::string>& history_errors() const { return history_errors_; }

  mutable std::mutex mutex_;

 private:
  std::vector<std::string> history_errors_;
};

}  // namespace gophermq::test
