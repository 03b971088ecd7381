#include "storage/log.hpp"

#include <pthread.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

#include "storage/frame.hpp"

namespace gophermq::storage {
namespace asio = boost::asio;

namespace {

// Whether a new file may wait, after a lack of room, before the log tries again.
constexpr std::chrono::milliseconds kRetryPrepare{100};

// The most a buffer is held for the end of a sync round (Log::hold_for_sync): beyond it, writing
// now takes work off the write that starts the next round.
constexpr std::size_t kHoldBytes = 1024 * 1024;

// The most a log waiting for space holds in memory and still answers fetches for (when_taken):
// their records are small next to the messages they free, but a full disk may last for hours.
constexpr std::uint64_t kHeldForSpace = 64ULL * 1024 * 1024;

// Recovery reads at most about this many files after the checkpoint.
constexpr std::uint64_t kFilesPerCheckpoint = 4;

// The records that only take messages out of queues (when_taken): a fetch's removals, and the
// drops the broker makes by itself. Not ack mode's deliveries and acks, which API.md §9 has
// survive any restart: a crash loop must not reset a delivery count.
bool takes_messages_out(broker::RecordType type) {
  return type == broker::RecordType::fetch || type == broker::RecordType::drop;
}

}  // namespace

TimeBase TimeBase::now() {
  const auto wall = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  const auto steady = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch());
  return {(wall - steady).count()};
}

Log::Log(const asio::any_io_executor& strand, const Options& options,
         std::unique_ptr<Directory> directory, std::uint64_t next_file, TimeBase time_base,
         LogHooks hooks)
    : strand_(strand),
      options_(options),
      directory_(std::move(directory)),
      time_base_(time_base),
      hooks_(std::move(hooks)),
      headroom_(options.file_bytes / 16),
      next_index_(next_file),
      interval_timer_(strand),
      retry_timer_(strand),
      writer_(*directory_) {
  for (const std::uint64_t file : directory_->list()) {
    files_[file] = std::filesystem::file_size(directory_->file_path(file));
  }
  writer_thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(writer_context_);
    writer_context_.run();
  });
  sync_thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(sync_context_);
    sync_context_.run();
  });
  // Before the broker reports ready; bench/storage.sh finds the sync thread by its name.
  pthread_setname_np(writer_thread_.native_handle(), "gophermq-write");
  pthread_setname_np(sync_thread_.native_handle(), "gophermq-sync");
}

Log::~Log() {
  writer_context_.stop();
  sync_context_.stop();
  writer_thread_.join();
  sync_thread_.join();
}

void Log::start() {
  // The first file is made before anything else is written: without it there is nowhere to go.
  file_ = next_index_++;
  // The checkpoint of what was recovered stays in this file, with the room kept for other records
  // after it and no more: this file is made while the old ones are still there, and the next file
  // is made once the checkpoint let them go.
  capacity_ = hooks_.live_bytes() + 2 * headroom_;
  ops_.emplace_back(PrepareFile{file_, capacity_});
  files_[file_] = capacity_;
  write_checkpoint();
  prepare_next();
  schedule_interval_sync();
}

void Log::write_checkpoint() {
  checkpointing_ = true;
  checkpoint_wanted_ = false;
  checkpoint_file_ = file_;
  in_checkpoint_ = true;
  const std::uint64_t start = appended_;
  hooks_.checkpoint(*this);
  in_checkpoint_ = false;
  checkpoint_bytes_ = appended_ - start;
  since_checkpoint_ = 0;
  flush_buffer();
  ops_.emplace_back(RemoveBefore{file_});
  schedule_submit();
}

bool Log::admit(std::string_view subject, std::span<const broker::Message> messages,
                std::span<const std::string_view> msg_ids) {
  broker::Record record;
  record.type = msg_ids.empty() ? broker::RecordType::publish : broker::RecordType::publish_ids;
  record.subject = subject;
  record.messages = messages;
  record.msg_ids = msg_ids;
  const std::uint64_t needed = frame_header_bytes + broker::encoded_size(record) + headroom_;
  if (used_ + needed <= capacity_) {
    if (!spare_ && used_ * 2 > capacity_) {
      prepare_next();
    }
    return true;
  }
  // A write beyond a file's reservation could meet a full disk, which only a file's creation may
  // do: the publish goes into the prepared next file, or is refused until one is made.
  if (checkpoint_wanted_ || !next_ || files_[*next_] < needed) {
    prepare_next(needed);
    return false;
  }
  roll();
  return true;
}

void Log::append(const broker::Record& record) {
  broker::Record stored = record;
  if (stored.time != 0) {
    stored.time += time_base_.wall_minus_steady;
  }
  scratch_.clear();
  const std::size_t payload = open_frame(scratch_);
  broker::encode(stored, scratch_);
  seal_frame(scratch_, payload);
  // A checkpoint stays in one file, however large, so recovery finds it whole at a file's start.
  if (!in_checkpoint_ && used_ > 0 && used_ + scratch_.size() > capacity_ && next_ &&
      !checkpoint_wanted_) {
    roll();
  }
  buffer_.append(scratch_);
  used_ += scratch_.size();
  appended_ += scratch_.size();
  if (!takes_messages_out(record.type)) {
    changed_ = appended_;
  }
  since_checkpoint_ += scratch_.size();
  schedule_submit();
}

void Log::flush_buffer() {
  if (buffer_.empty()) {
    return;
  }
  const std::uint64_t size = buffer_.size();
  ops_.emplace_back(WriteBytes{file_, buffer_offset_, std::move(buffer_)});
  buffer_.clear();
  buffer_offset_ += size;
}

void Log::roll() {
  flush_buffer();
  ops_.emplace_back(SealFile{file_, used_});
  file_ = *next_;
  capacity_ = files_[file_];
  next_ = spare_;
  spare_.reset();
  used_ = 0;
  buffer_offset_ = 0;
  prepare_next();
}

bool Log::checkpoint_frees_files() const {
  // The current file counts too when it was reserved beyond what a checkpoint now needs: the one
  // made for a large record that a checkpoint then took, once what it held was consumed.
  return !checkpointing_ &&
         (file_ != checkpoint_file_ || files_.begin()->first < checkpoint_file_ ||
          capacity_ > std::max(options_.file_bytes, hooks_.live_bytes() + 2 * headroom_));
}

bool Log::compaction_frees_room(std::uint64_t bytes) const {
  // Only when what a checkpoint keeps leaves room for the next file: otherwise the log is full of
  // what is pending, and rewriting it would only repeat.
  return checkpoint_frees_files() &&
         hooks_.live_bytes() + options_.file_bytes + std::max(bytes, options_.file_bytes) <=
             options_.max_bytes;
}

void Log::prepare_next(std::uint64_t bytes) {
  if (preparing_ || std::chrono::steady_clock::now() < retry_prepare_at_) {
    return;
  }
  bytes = std::max(bytes, options_.file_bytes);
  const std::uint64_t prepared = next_ ? files_[*next_] : 0;
  if (prepared >= bytes) {
    // A spare behind it once the current file is half full, while room for one more file is left
    // under max-bytes:
    // fast publishers can fill a file in less time than the writer takes to make the next, and a
    // publish finding none is refused.
    if (!spare_ && !checkpoint_wanted_ && used_ * 2 > capacity_ &&
        figures().bytes + 2 * options_.file_bytes <= options_.max_bytes) {
      make_file(next_index_++, options_.file_bytes);
    }
    return;
  }
  if (figures().bytes - prepared + bytes > options_.max_bytes) {
    // A checkpoint frees the files before it, and may go beyond max-bytes for its file to do so.
    if (!checkpoint_wanted_ && !compaction_frees_room(bytes)) {
      return;
    }
    if (!checkpoint_wanted_ && bytes > options_.file_bytes) {
      // The checkpoint takes this file first: reserved for both, the record it is made for still
      // fits after it, instead of needing yet another file (and another checkpoint).
      bytes += hooks_.live_bytes() + 2 * headroom_;
    }
    checkpoint_wanted_ = true;
  }
  // A prepared file that is too small is still empty: it is made again, larger, under its name.
  const std::uint64_t file = next_ ? *next_ : next_index_++;
  next_.reset();
  make_file(file, bytes);
}

void Log::prepare_spare(std::uint64_t bytes) {
  if (preparing_ || !next_ || std::chrono::steady_clock::now() < retry_prepare_at_) {
    return;
  }
  const std::uint64_t prepared = spare_ ? files_[*spare_] : 0;
  if (prepared >= bytes || figures().bytes - prepared + bytes > options_.max_bytes) {
    return;
  }
  const std::uint64_t file = spare_ ? *spare_ : next_index_++;
  spare_.reset();
  make_file(file, bytes);
}

void Log::make_file(std::uint64_t file, std::uint64_t bytes) {
  preparing_ = true;
  files_[file] = bytes;
  ops_.emplace_back(PrepareFile{file, bytes});
  schedule_submit();
}

void Log::maybe_checkpoint() {
  if (checkpointing_ || in_checkpoint_) {
    return;
  }
  // Every few files, and not before the log has grown twice the checkpoint's size again, so
  // rewriting what is pending costs at most as much as writing it did.
  // The checkpoint stays in one file, so it waits for a next file reserved for all of it: made as
  // the spare, so publishes go on into the next file meanwhile.
  if (!checkpoint_wanted_ &&
      since_checkpoint_ >=
          std::max(kFilesPerCheckpoint * options_.file_bytes, 2 * checkpoint_bytes_)) {
    const std::uint64_t needed = hooks_.live_bytes() + 2 * headroom_;
    if (next_ && files_[*next_] >= needed) {
      checkpoint_wanted_ = true;
    } else {
      prepare_spare(needed);
    }
  }
  // Consumption that emptied the old files compacts the log as soon as the next file would not
  // fit under max-bytes, not on the first publish that finds no room (which would get a 507).
  if (!checkpoint_wanted_ && figures().bytes + options_.file_bytes > options_.max_bytes &&
      compaction_frees_room()) {
    checkpoint_wanted_ = true;
  }
  if (!checkpoint_wanted_) {
    return;
  }
  // Here the log is at max-bytes, where publishes that need a new file are refused anyway.
  if (const std::uint64_t needed = hooks_.live_bytes() + 2 * headroom_;
      !next_ || files_[*next_] < needed) {
    prepare_next(needed);
    return;
  }
  roll();
  write_checkpoint();
}

void Log::schedule_submit() {
  if (submit_scheduled_ || in_flight_) {
    return;
  }
  submit_scheduled_ = true;
  // After the current strand handler: what the rest of it appends joins the same request.
  asio::post(strand_, [this] {
    submit_scheduled_ = false;
    submit();
  });
}

void Log::submit() {
  if (in_flight_) {
    return;
  }
  maybe_checkpoint();
  if (!hold_for_sync()) {
    flush_buffer();
    if (!ops_.empty()) {
      write_ops();
    }
  }
  maybe_sync();
  // A submit that starts nothing ends what a publish waited for.
  if (!room_waits_.empty() && !making_room()) {
    complete_room_waits();
  }
}

bool Log::hold_for_sync() {
  if (options_.fsync != FsyncMode::always || !written_waits_.empty() || closing_ || !ops_.empty() ||
      buffer_.size() >= kHoldBytes) {
    return false;
  }
  const std::lock_guard lock(schedule_mutex_);
  return schedule_.running();
}

void Log::write_ops() {
  WriteRequest request{std::move(ops_), appended_};
  ops_.clear();
  perform(std::move(request));
}

void Log::perform(WriteRequest request) {
  in_flight_ = true;
  asio::post(writer_context_, [this, request = std::move(request)]() mutable {
    try {
      WriteProgress progress = writer_.perform(std::move(request), hooks_.fsync_observed);
      // The next round starts here when one is asked for: the strand is not on the way.
      std::optional<SyncJob> job;
      {
        const std::lock_guard lock(schedule_mutex_);
        schedule_.wrote(progress.written, progress.dirtied, progress.synced);
        job = schedule_.start();
      }
      progress.dirtied.clear();
      asio::post(strand_, [this, progress = std::move(progress)]() mutable {
        on_progress(std::move(progress));
      });
      if (job) {
        run_sync(std::move(*job));
      }
    } catch (const std::exception& error) {
      hooks_.fatal(error.what());
    }
  });
}

void Log::maybe_sync() {
  std::uint64_t wanted = synced_waits_.empty() ? 0 : synced_waits_.back().position;
  if (sync_wanted_ || closing_) {
    wanted = appended_;
  }
  sync_wanted_ = false;
  if (wanted <= requested_ || wanted <= synced_) {
    return;
  }
  requested_ = wanted;
  std::optional<SyncJob> job;
  {
    const std::lock_guard lock(schedule_mutex_);
    schedule_.request(wanted);
    job = schedule_.start();
  }
  if (job) {
    run_sync(std::move(*job));
  }
}

void Log::run_sync(SyncJob job) {
  asio::post(sync_context_, [this, job = std::move(job)]() mutable {
    for (;;) {
      try {
        Writer::sync(job, hooks_.fsync_observed);
      } catch (const std::exception& error) {
        {
          const std::lock_guard lock(schedule_mutex_);
          schedule_.fail();
        }
        hooks_.fatal(error.what());
        return;
      }
      std::optional<SyncJob> next;
      {
        const std::lock_guard lock(schedule_mutex_);
        schedule_.finish();
        next = schedule_.start();
      }
      // One post per round, however many publishes it answers. After finish(): a strand that
      // finds no round running writes what it held for this one.
      asio::post(strand_, [this, end = job.end] { on_synced(end); });
      if (!next) {
        return;
      }
      job = std::move(*next);
    }
  });
}

void Log::on_synced(std::uint64_t end) {
  synced_ = std::max(synced_, end);
  complete_waits();
  finish_close_when_done();
  submit();  // what was held for this round
  maybe_sync();
}

void Log::finish_close_when_done() {
  if (!closed_ || in_flight_ || written_ != appended_ || synced_ != written_ || !ops_.empty() ||
      !buffer_.empty()) {
    return;
  }
  auto done = std::move(*closed_);
  closed_.reset();
  std::move(done)();
}

void Log::on_progress(WriteProgress progress) {
  stalled_ = progress.stalled.has_value();
  if (stalled_) {
    retry_stalled(std::move(*progress.stalled));
  } else {
    in_flight_ = false;
    written_ = progress.written;
    if (progress.synced) {
      synced_ = std::max(synced_, progress.written);
    }
  }
  for (const auto& [file, length] : progress.sealed) {
    files_[file] = length;
  }
  for (const auto& [file, ok] : progress.prepared) {
    if (file == file_) {  // the first file, made at start: the writer stops when it has no room
      continue;
    }
    preparing_ = false;
    if (ok) {
      (next_ ? spare_ : next_) = file;
    } else {
      files_.erase(file);
      // Files are taken in the order of their names, which recovery reads them in.
      if (!next_ && spare_) {
        next_ = spare_;
        spare_.reset();
      }
      retry_prepare_at_ = std::chrono::steady_clock::now() + kRetryPrepare;
    }
  }
  for (const std::uint64_t file : progress.removed) {
    files_.erase(file);
  }
  if (progress.checkpointed) {
    checkpointing_ = false;
    prepare_next();
  }
  complete_waits();
  finish_close_when_done();
  submit();
  complete_room_waits();
}

void Log::complete_room_waits() {
  for (auto& done : std::exchange(room_waits_, {})) {
    std::move(done)();
  }
}

void Log::complete_waits() {
  const auto complete = [](std::deque<Wait>& waits, std::uint64_t reached) {
    while (!waits.empty() && waits.front().position <= reached) {
      auto done = std::move(waits.front().done);
      waits.pop_front();
      std::move(done)();
    }
  };
  complete(written_waits_, written_);
  complete(synced_waits_, synced_);
  if (!answers_taken_unwritten()) {
    return;
  }
  std::vector<Callback> released;
  for (std::deque<Wait>* waits : {&written_waits_, &synced_waits_}) {
    for (auto wait = waits->begin(); wait != waits->end();) {
      if (wait->taken) {
        released.push_back(std::move(wait->done));
        wait = waits->erase(wait);
      } else {
        ++wait;
      }
    }
  }
  for (auto& done : released) {
    std::move(done)();
  }
}

bool Log::answers_taken_unwritten() const noexcept {
  return stalled_ && appended_ - written_ <= kHeldForSpace;
}

bool Log::only_taken_since(std::uint64_t position) const noexcept {
  return appended_ > position && changed_ <= position;
}

void Log::when_taken(std::uint64_t position, bool durable, Callback done) {
  if (answers_taken_unwritten()) {
    std::move(done)();
    return;
  }
  push_wait(position, durable, true, std::move(done));
}

void Log::when_written(std::uint64_t position, bool durable, Callback done) {
  push_wait(position, durable, false, std::move(done));
}

void Log::push_wait(std::uint64_t position, bool durable, bool taken, Callback done) {
  const bool sync = durable && options_.fsync == FsyncMode::always;
  if (position <= (sync ? synced_ : written_)) {
    std::move(done)();
    return;
  }
  (sync ? synced_waits_ : written_waits_).push_back({position, std::move(done), taken});
  if (sync) {
    maybe_sync();  // at once, even while a write is in flight: its end may be all this needs
  }
  schedule_submit();
}

bool Log::making_room() const noexcept {
  if (stalled_) {  // only space freed on the disk ends it, which may never come
    return false;
  }
  // A wanted checkpoint starts at the next submit, after the write in flight: a publish admit()
  // refused meanwhile waits for it, but not while a lack of room holds the log's next file back.
  return preparing_ || checkpointing_ ||
         (checkpoint_wanted_ && (in_flight_ || submit_scheduled_) &&
          std::chrono::steady_clock::now() >= retry_prepare_at_);
}

void Log::when_room(Callback done) {
  if (!making_room()) {
    std::move(done)();
    return;
  }
  room_waits_.push_back(std::move(done));
}

void Log::schedule_interval_sync() {
  if (options_.fsync != FsyncMode::interval) {
    return;
  }
  interval_timer_.expires_after(options_.fsync_interval);
  interval_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error || closing_) {
      return;
    }
    if (synced_ < appended_) {
      sync_wanted_ = true;
      schedule_submit();
    }
    schedule_interval_sync();
  });
}

LogFigures Log::figures() const noexcept {
  LogFigures figures;
  for (const auto& [file, bytes] : files_) {
    figures.bytes += bytes;
  }
  figures.files = files_.size();
  figures.stalled = stalled_;
  return figures;
}

void Log::retry_stalled(WriteRequest request) {
  if (closing_ || stopping_) {
    give_up_on_space();
    return;
  }
  retry_timer_.expires_after(kRetryPrepare);
  retry_timer_.async_wait(
      [this, request = std::move(request)](const boost::system::error_code& error) mutable {
        if (error) {
          return;
        }
        if (stopping_) {
          give_up_on_space();
          return;
        }
        perform(std::move(request));
      });
}

void Log::give_up_on_space() {
  // No publish, subscribe or ack that waits was answered: exiting loses nothing acknowledged but
  // the removals of fetches answered meanwhile, whose messages come again after the restart.
  // Waiting could be forever.
  hooks_.fatal("no room on the disk for the log's last " + std::to_string(appended_ - written_) +
               " bytes at shutdown; messages fetched since the disk filled may be delivered again");
}

void Log::stop_waiting_for_space() {
  stopping_ = true;
}

void Log::close(Callback done) {
  closing_ = true;
  interval_timer_.cancel();
  closed_.emplace(std::move(done));
  finish_close_when_done();
  if (closed_) {
    schedule_submit();
  }
}

}  // namespace gophermq::storage
