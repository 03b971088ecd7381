#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "broker/clock.hpp"
#include "broker/message.hpp"

namespace gophermq::broker {

// The kinds of state change the core reports; the values are written to disk, so they never
// change meaning.
enum class RecordType : std::uint8_t {
  subscribe = 1,    // id, subject, group when grouped; time: its first activity; ephemeral
  unsubscribe = 2,  // id; reason: unsubscribe or subscriber_ttl (its messages left in drops)
  publish = 3,      // subject, the stored messages; seq: the batch's first number; count: how
                    // many of the batch's oldest no queue stored (queue_full); time: the stamp
  fetch = 4,        // id; count: messages taken from its queue; time: its activity
  drop = 5,         // the queue (id, or subject and group when grouped), count, reason
  // A snapshot of the whole core (Broker::checkpoint): this record, a subscribe record per
  // subscription, the queue_state records of every non-empty queue, then checkpoint_end.
  checkpoint = 6,      // seq: the newest published sequence number; time: when it was taken
  queue_state = 7,     // the queue, named as by drop; messages: some of its pending ones, oldest
                       // first, each with its own seq; time: their shared publish stamp (0: none)
  checkpoint_end = 8,  // count: the records between checkpoint and this one
  // Ack mode (API.md §9). Replay keeps no message in flight: a delivered message is pending again
  // with its delivery count, so a restart makes every message in flight pending again.
  subscribe_ack = 9,  // a subscribe whose queue is in ack mode; options: the queue's AckOptions
  deliver = 10,       // id; time: its activity; count: never-delivered messages taken from the
                      // front of its queue; numbers: the seqs of the redelivered ones, rising
  ack = 11,           // id; time: its activity; numbers: the seqs acked (they leave the queue)
  nack = 12,          // id; time: its activity; numbers: the seqs nacked
  extend = 13,        // id; time: its activity; numbers: the seqs whose ack_wait restarted
  settle = 14,        // the queue, named as by drop; reason: max_deliveries; numbers: the seqs
                      // that left it past max_deliveries (a dead letter follows as a publish)
  publish_ids = 15,   // a publish with msg_ids: as publish, time always set; msg_ids: one per
                      // message of the batch, those never stored (count) first
  // Checkpoint only: after the subscribe records, an ack-mode queue's delivered messages as
  // ack_state records before its queue_state records; the dedupe window at the end.
  ack_state = 16,     // the queue; messages: delivered ones, each with its seq; numbers: their
                      // delivery counts; published: as queue_state
  dedupe_state = 17,  // subject; time: when its msg_ids were published there
  purge = 18,         // the queue, named as by drop; reason: purged; numbers: the seqs of the
                      // pending messages an operator purged from it, rising
  // Right after the subscribe (or subscribe_ack) record of a subscription made with access
  // control on (API.md §11), live and in checkpoints; a log without them reads as before.
  owner = 19,  // id; owner: the name of the token that made it
};

// A purge record names at most this many seqs: a large purge is written as several records.
inline constexpr std::size_t purge_record_seqs = 65536;

// A queue_state record holds at most this many messages, and more than this many message bytes
// only when it holds a single message: a long queue is written as several records.
inline constexpr std::size_t queue_state_max_messages = 4096;
inline constexpr std::size_t queue_state_max_bytes = std::size_t{1} << 20;

// The AckOptions of a subscribe_ack record, as numbers.
struct RecordAckOptions {
  std::uint64_t ack_wait_ms = 0;
  std::uint64_t max_deliveries = 0;
  std::uint64_t max_in_flight = 0;
  std::string_view dead_letter;
};

// One state change of the core, as a view valid during the sink's call. Every field is a number
// or a length and bytes once encoded; replaying the records of a core, in order, into an
// empty one with the same limits rebuilds its state (Broker::apply).
struct Record {
  RecordType type = RecordType::subscribe;
  std::uint8_t reason = 0;  // a DropReason for unsubscribe and drop
  bool grouped = false;
  // subscribe and subscribe_ack: made for a push stream (API.md §10), so it ends with the stream
  // and recovery removes it; a log written before this flag has none set.
  bool ephemeral = false;
  std::int64_t time = 0;  // the broker clock in nanoseconds, where replay needs a time
  std::uint64_t seq = 0;
  std::uint64_t count = 0;
  std::string_view subject;
  std::string_view id;
  std::string_view group;
  std::span<const Message> messages;
  // queue_state and ack_state: the subject their messages were published to; empty where that is
  // the queue's pattern (a pattern without wildcards).
  std::string_view published;
  // Seqs (deliver, ack, nack, extend, settle) or, in ack_state, each message's delivery count.
  std::span<const std::uint64_t> numbers;
  std::span<const std::string_view> msg_ids;  // publish_ids, dedupe_state
  RecordAckOptions options;                   // subscribe_ack
  std::string_view owner;                     // owner
};

// Where decode keeps what a Record views besides its bytes.
struct RecordStorage {
  std::vector<Message> messages;
  std::vector<std::uint64_t> numbers;
  std::vector<std::string_view> msg_ids;
};

// Where the core reports its state changes, on its own thread, as they happen.
class JournalSink {
 public:
  virtual void append(const Record& record) = 0;
  // Asked before a publish of these messages (with these msg_ids, if any) stores anything: false
  // refuses it (storage_full), for a sink that has no room for its record.
  virtual bool admit(std::string_view /*subject*/, std::span<const Message> /*messages*/,
                     std::span<const std::string_view> /*msg_ids*/) {
    return true;
  }
  // Asked before a subscribe, unsubscribe, purge, ack, nack or extend a client asked for changes
  // anything: false refuses it (storage_full), for a sink that cannot write now (a full disk). Not
  // asked for a fetch, which a broker keeps serving on a full disk, nor for what the broker does
  // by itself (expiry).
  virtual bool admit_change() { return true; }

 protected:
  JournalSink() = default;
  virtual ~JournalSink() = default;
  JournalSink(const JournalSink&) = default;
  JournalSink& operator=(const JournalSink&) = default;
};

[[nodiscard]] std::int64_t to_record_time(TimePoint time) noexcept;
[[nodiscard]] TimePoint from_record_time(std::int64_t time) noexcept;

// The version of the encoding below, written in every checkpoint record (and so at the start of
// every log file); version 1 wrote fixed-width fields and no version.
// Version 2 had no ack-mode records and no published subject in queue_state. Version 3 logs
// written before purge records existed read the same: the type only adds to them.
inline constexpr std::uint8_t log_format = 3;

// Appends the record's bytes: its type (one byte); for a checkpoint, log_format (one byte); the
// reason shifted left by one, or'd with grouped and with 0x80 when ephemeral (one byte); time (as
// its 64 bits), seq and count; then subject, id and group, each as its length and the bytes; the
// message count and each message as its length and the bytes, a queue_state or ack_state message
// preceded by its seq. Then, only for the types that have them: published (its length and bytes);
// numbers (their count, then each); msg_ids (their count, then each as its length and bytes);
// options (ack_wait_ms, max_deliveries, max_in_flight, dead_letter); owner (its length and bytes).
// Every number and length is an unsigned LEB128 varint, so the records of version 2's types cost
// what they did.
void encode(const Record& record, std::string& out);

// How many bytes encode appends for `record`.
[[nodiscard]] std::size_t encoded_size(const Record& record) noexcept;

// The format a checkpoint record's payload was written in, whatever its version; nullopt when it
// is not a checkpoint.
[[nodiscard]] std::optional<std::uint8_t> checkpoint_format(std::string_view payload) noexcept;

// The record encoded in `bytes`, its strings viewing `bytes`, what else it views in `storage`;
// nullopt when the bytes are not exactly one record the core could have written: a known type,
// only the fields that type uses set (the others zero or empty), varints in their shortest form
// that fit 64 bits, a checkpoint in log_format, a group exactly when grouped, ephemeral only
// on a subscribe or subscribe_ack, a reason that is a DropReason, sequence numbers that fit a
// Message, a queue_state or ack_state within its bounds, valid msg_ids and AckOptions in range.
// What it allocates is bounded by the size of `bytes`.
[[nodiscard]] std::optional<Record> decode(std::string_view bytes, RecordStorage& storage);

}  // namespace gophermq::broker
