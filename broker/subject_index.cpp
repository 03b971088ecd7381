#include "broker/subject_index.hpp"

#include <algorithm>

#include "broker/subject.hpp"

namespace gophermq::broker {

struct SubjectIndex::Node {
  StringMap<std::unique_ptr<Node>> literals;
  std::unique_ptr<Node> single_wildcard;
  // Queues whose pattern ends at this node.
  std::vector<Queue*> queues;
  // Queues whose pattern ends with `>` right after this node.
  std::vector<Queue*> trailing_queues;

  [[nodiscard]] bool empty() const noexcept {
    return literals.empty() && !single_wildcard && queues.empty() && trailing_queues.empty();
  }

  Node* child(std::string_view token) const {
    if (token == kSingleTokenWildcard) {
      return single_wildcard.get();
    }
    const auto found = literals.find(token);
    return found == literals.end() ? nullptr : found->second.get();
  }

  Node& child_or_create(std::string_view token) {
    if (token == kSingleTokenWildcard) {
      if (!single_wildcard) {
        single_wildcard = std::make_unique<Node>();
      }
      return *single_wildcard;
    }
    auto found = literals.find(token);
    if (found == literals.end()) {
      found = literals.emplace(std::string(token), std::make_unique<Node>()).first;
    }
    return *found->second;
  }

  void erase_child_if_empty(std::string_view token) {
    if (token == kSingleTokenWildcard) {
      if (single_wildcard && single_wildcard->empty()) {
        single_wildcard.reset();
      }
      return;
    }
    const auto found = literals.find(token);
    if (found != literals.end() && found->second->empty()) {
      literals.erase(found);
    }
  }
};

namespace {

std::vector<std::string_view> split_tokens(std::string_view subject) {
  std::vector<std::string_view> tokens;
  for_each_token(subject, [&](std::string_view token) { tokens.push_back(token); });
  return tokens;
}

void remove_queue(std::vector<Queue*>& queues, Queue* queue) {
  const auto found = std::find(queues.begin(), queues.end(), queue);
  if (found != queues.end()) {
    *found = queues.back();
    queues.pop_back();
  }
}

}  // namespace

SubjectIndex::SubjectIndex() : root_(std::make_unique<Node>()) {}
SubjectIndex::~SubjectIndex() = default;

void SubjectIndex::insert(std::string_view pattern, Queue* queue) {
  Node* node = root_.get();
  for (const std::string_view token : split_tokens(pattern)) {
    if (token == kTrailingWildcard) {
      node->trailing_queues.push_back(queue);
      return;
    }
    node = &node->child_or_create(token);
  }
  node->queues.push_back(queue);
}

void SubjectIndex::erase(std::string_view pattern, Queue* queue) {
  const std::vector<std::string_view> tokens = split_tokens(pattern);
  std::vector<Node*> path{root_.get()};
  for (const std::string_view token : tokens) {
    if (token == kTrailingWildcard) {
      break;
    }
    Node* next = path.back()->child(token);
    if (next == nullptr) {
      return;
    }
    path.push_back(next);
  }
  const bool trailing = tokens.back() == kTrailingWildcard;
  remove_queue(trailing ? path.back()->trailing_queues : path.back()->queues, queue);
  // Prune the nodes this pattern leaves empty, deepest first, so the trie only ever holds live
  // patterns and memory returns to baseline when subscribers leave.
  for (std::size_t depth = path.size() - 1; depth > 0; --depth) {
    path[depth - 1]->erase_child_if_empty(tokens[depth - 1]);
  }
}

void SubjectIndex::match(std::string_view subject, std::vector<Queue*>& out) const {
  const std::vector<std::string_view> tokens = split_tokens(subject);
  // Depth-first over (node, next token) pairs; only wildcard nodes add branches.
  std::vector<std::pair<const Node*, std::size_t>> pending{{root_.get(), 0}};
  while (!pending.empty()) {
    const auto [node, position] = pending.back();
    pending.pop_back();
    if (position == tokens.size()) {
      out.insert(out.end(), node->queues.begin(), node->queues.end());
      continue;
    }
    out.insert(out.end(), node->trailing_queues.begin(), node->trailing_queues.end());
    if (node->single_wildcard) {
      pending.emplace_back(node->single_wildcard.get(), position + 1);
    }
    const auto literal = node->literals.find(tokens[position]);
    if (literal != node->literals.end()) {
      pending.emplace_back(literal->second.get(), position + 1);
    }
  }
}

bool SubjectIndex::empty() const noexcept {
  return root_->empty();
}

}  // namespace gophermq::broker
