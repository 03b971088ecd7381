#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker/journal.hpp"
#include "storage/files.hpp"
#include "storage/options.hpp"
#include "storage/writer.hpp"

namespace gophermq::storage {

// Converts the broker clock, which restarts with the machine, to wall-clock time on disk and
// back, so a message stamped before a restart keeps its age after it.
struct TimeBase {
  std::int64_t wall_minus_steady = 0;  // nanoseconds
  static TimeBase now();
};

// What the daemon learns from the log, on the log's threads.
struct LogHooks {
  // An I/O failure: the broker must stop at once (a failed fsync is never retried).
  std::function<void(const std::string&)> fatal;
  std::function<void(std::chrono::duration<double>)> fsync_observed;
  // Reports the broker's whole state to the sink: the checkpoint that replaces older files.
  std::function<void(broker::JournalSink&)> checkpoint;
  // About how many bytes such a checkpoint would take.
  std::function<std::uint64_t()> live_bytes;
};

struct LogFigures {
  std::uint64_t bytes = 0;  // on disk, reserved space included
  std::uint64_t files = 0;
  bool stalled = false;  // a write found the disk full and waits for space
};

// The write-ahead log, on the broker strand. The core reports each state change through append();
// the log frames it into a buffer, and hands what accumulated to its writer thread whenever the
// writer is free, so concurrent publishes share one write and one fdatasync (group commit) and the
// strand never waits for the disk. A caller waits for its records with when_written.
//
// Files have `file_bytes` reserved when they are created, one ahead of the one being written, so a
// publish is refused (admit) before anything is stored rather than failing half way when the disk
// is full. Every `file_bytes` of log or so, and when no new file fits under max-bytes, a checkpoint
// starts the next file: the broker's whole state as records, after which every older file is
// removed. Disk use and recovery time so follow what is pending, not what was ever published.
class Log final : public broker::JournalSink {
 public:
  using Callback = boost::asio::any_completion_handler<void()>;

  // `next_file` is above every file recovery kept, which `first_checkpoint` replaces once written.
  Log(const boost::asio::any_io_executor& strand, const Options& options,
      std::unique_ptr<Directory> directory, std::uint64_t next_file, TimeBase time_base,
      LogHooks hooks);
  ~Log() override;
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Writes a checkpoint of the broker as recovered (on the strand, before any other record).
  void start();

  void append(const broker::Record& record) override;
  bool admit(std::string_view subject, std::span<const broker::Message> messages,
             std::span<const std::string_view> msg_ids) override;

  // The position after the last record appended.
  [[nodiscard]] std::uint64_t end() const noexcept { return appended_; }
  // The position up to which the writer has written.
  [[nodiscard]] std::uint64_t written() const noexcept { return written_; }
  // Calls `done` on the strand once the records up to `position` are written to the file, and,
  // with `durable` in fsync mode `always`, synced. Immediately when they already are.
  void when_written(std::uint64_t position, bool durable, Callback done);
  // For records that only take messages out (a fetch's removals, drops): as when_written, but
  // while a write waits for space on a full disk, at once (up to a bound on what is held), so
  // that the broker keeps serving fetches there (API.md §8). Such records reach the disk once
  // space returns; a crash before that delivers their messages again, which at-least-once
  // allows.
  void when_taken(std::uint64_t position, bool durable, Callback done);
  // Whether records were appended after `position` and every one of them only takes messages out.
  [[nodiscard]] bool only_taken_since(std::uint64_t position) const noexcept;
  // No subscribe, unsubscribe, purge, ack, nack or extend while a write waits for space: its answer
  // could only wait, holding its connection, for as long as the disk stays full.
  bool admit_change() override { return !stalled_; }

  // A publish admit() refused now may be admitted soon: a file is being made (the next one, a
  // larger one for a large record, or a checkpoint's), or a checkpoint is due or under way, which
  // admit() waits for and which frees files. The refusal is then not "storage full".
  [[nodiscard]] bool making_room() const noexcept;
  // Calls `done` on the strand once the log has moved on (a file made or found no room, a
  // checkpoint done, a write done), at once when it is not making room: the moment to ask admit()
  // again.
  void when_room(Callback done);

  [[nodiscard]] LogFigures figures() const noexcept;

  // Writes and syncs everything appended, then stops the writer thread. Calls `done` on the strand.
  void close(Callback done);
  // The broker is shutting down: a write that waits for space ends the broker at its next try
  // (exit 1) instead of holding the shutdown until space returns, which may be never.
  void stop_waiting_for_space();

 private:
  struct Wait {
    std::uint64_t position;
    Callback done;
    bool taken = false;  // when_taken's
  };

  void roll();
  // Prepares the next file with at least `bytes` reserved (and what a wanted checkpoint needs).
  void prepare_next(std::uint64_t bytes = 0);
  // Prepares (or makes again, larger) the spare behind a prepared next file with `bytes`.
  void prepare_spare(std::uint64_t bytes);
  // Has the writer create `file` with `bytes` reserved (or again, larger, under its name).
  void make_file(std::uint64_t file, std::uint64_t bytes);
  // Whether a checkpoint now would let files go.
  [[nodiscard]] bool checkpoint_frees_files() const;
  // Whether it would also leave room under max-bytes for the next file, of at least `bytes`.
  [[nodiscard]] bool compaction_frees_room(std::uint64_t bytes = 0) const;
  void schedule_submit();
  void submit();
  // Whether to keep the buffer on the strand until the sync round under way ends: with fsync
  // always and nothing waiting for a write alone, what is appended during a round can only be
  // synced by the next one, so it goes to the writer in one write when the round ends, instead of
  // a write (and a wake of the writer) for every few publishes.
  bool hold_for_sync();
  // Hands ops_ to the writer.
  void write_ops();
  // Has the writer perform `request`: in flight until its progress comes back.
  void perform(WriteRequest request);
  // A write beyond reserved space found the disk full (records other than publishes, which the
  // room kept in each file did not hold): performs the rest again every kRetryPrepare, holding
  // back what follows and the answers that wait for it, until the disk has room. Nothing is
  // lost and nothing stops; publishes meanwhile get 507. At shutdown the broker exits instead.
  void retry_stalled(WriteRequest request);
  // Ends the broker over a write that waits for space at shutdown.
  void give_up_on_space();
  // Asks for a sync up to what the waiting publishes (or the interval, or close) need.
  void maybe_sync();
  // Runs `job` and the rounds due after it on the sync thread; from any thread.
  void run_sync(SyncJob job);
  void on_synced(std::uint64_t end);
  void finish_close_when_done();
  void on_progress(WriteProgress progress);
  void maybe_checkpoint();
  void write_checkpoint();
  void complete_waits();
  // While a write waits for space: when_taken's callers are answered before their records are
  // written.
  [[nodiscard]] bool answers_taken_unwritten() const noexcept;
  void push_wait(std::uint64_t position, bool durable, bool taken, Callback done);
  // Resumes every caller of when_room: each asks admit() again, and waits again if it must.
  void complete_room_waits();
  void schedule_interval_sync();
  void flush_buffer();

  boost::asio::any_io_executor strand_;
  Options options_;
  std::unique_ptr<Directory> directory_;
  TimeBase time_base_;
  LogHooks hooks_;
  std::uint64_t headroom_;  // kept free in a file for the records that follow a publish

  // The file being appended to and how much of it is taken.
  std::uint64_t file_ = 0;
  std::uint64_t used_ = 0;
  std::uint64_t capacity_ = 0;          // reserved in it: nothing is written beyond
  std::optional<std::uint64_t> next_;   // prepared, empty, reserved
  std::optional<std::uint64_t> spare_;  // prepared after next_, taken when next_ is
  std::uint64_t next_index_;
  bool preparing_ = false;
  std::chrono::steady_clock::time_point retry_prepare_at_{};
  std::map<std::uint64_t, std::uint64_t> files_;  // index -> bytes on disk

  std::string buffer_;  // appended to file_ at buffer_offset_, not yet handed to the writer
  std::uint64_t buffer_offset_ = 0;
  std::vector<WriteOp> ops_;  // not yet handed to the writer
  std::uint64_t appended_ = 0;
  std::uint64_t changed_ = 0;  // the end of the last record that does not only take messages out
  std::uint64_t written_ = 0;
  std::uint64_t synced_ = 0;
  std::uint64_t requested_ = 0;  // the highest sync asked of schedule_
  bool in_flight_ = false;       // a write request is with the writer
  bool stalled_ = false;         // it found the disk full and is performed again on retry_timer_
  bool submit_scheduled_ = false;
  bool sync_wanted_ = false;
  bool closing_ = false;
  bool stopping_ = false;  // stop_waiting_for_space
  std::deque<Wait> written_waits_;
  std::deque<Wait> synced_waits_;
  std::vector<Callback> room_waits_;
  std::optional<Callback> closed_;

  std::uint64_t since_checkpoint_ = 0;  // bytes appended since the last checkpoint began
  std::uint64_t checkpoint_bytes_ = 0;  // the size of the last checkpoint
  bool checkpointing_ = false;          // a checkpoint is being appended or awaits its sync
  bool checkpoint_wanted_ = false;      // at the next turn with a prepared file
  std::uint64_t checkpoint_file_ = 0;   // where the last checkpoint starts
  bool in_checkpoint_ = false;          // records are being appended by the checkpoint

  boost::asio::steady_timer interval_timer_;
  boost::asio::steady_timer retry_timer_;
  std::string scratch_;  // one record's encoding, reused

  // Shared by the strand, the writer and the sync thread.
  std::mutex schedule_mutex_;
  SyncSchedule schedule_;

  // Writes and file changes on one thread, fdatasync on another, so a fetch's record is written
  // (all a fetch waits for) while an earlier publish's sync is still going on.
  boost::asio::io_context writer_context_{1};
  boost::asio::io_context sync_context_{1};
  Writer writer_;
  std::thread writer_thread_;
  std::thread sync_thread_;
};

}  // namespace gophermq::storage
