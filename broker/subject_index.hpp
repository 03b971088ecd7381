#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "broker/string_map.hpp"

namespace gophermq::broker {

class Queue;

// A token trie from subscription patterns to the queues that receive their messages, in the manner
// of NATS's sublist: matching a subject walks its tokens (branching only at `*` and `>` nodes), so
// the cost grows with the subject's length and the number of matches, not with how many
// subscriptions exist.
class SubjectIndex {
 public:
  SubjectIndex();
  ~SubjectIndex();
  SubjectIndex(const SubjectIndex&) = delete;
  SubjectIndex& operator=(const SubjectIndex&) = delete;

  void insert(std::string_view pattern, Queue* queue);
  void erase(std::string_view pattern, Queue* queue);

  // Appends every queue whose pattern matches the literal subject. Each queue is listed once,
  // because a queue belongs to exactly one pattern.
  void match(std::string_view subject, std::vector<Queue*>& out) const;

  [[nodiscard]] bool empty() const noexcept;

 private:
  struct Node;
  std::unique_ptr<Node> root_;
};

}  // namespace gophermq::broker
