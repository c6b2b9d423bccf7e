// Runs task attempts on a fixed pool of `slots` threads and reports their lifecycle as
// TaskEvents: TASK_STARTED, TASK_LOG, TASK_UPDATE, then exactly one terminal event
// (TASK_SUCCEEDED, TASK_FAILED or TASK_CANCELLED) per accepted attempt.
//
// Interrupts, timeouts and StopAll report the terminal event at once and set the
// attempt's cancelled flag; whatever the executor returns afterwards is dropped (its
// slot stays busy until it returns). Owns its pool and timer threads; every public
// method is thread-safe. The event sink and uploader are called from those threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "executors/executor.h"
#include "flowmesh/v1/worker.pb.h"

namespace flowmesh::worker {

struct Assignment {
  std::string task_id;
  std::string workflow_id;
  int attempt = 1;
  std::string task_type;
  nlohmann::json spec = nlohmann::json::object();
  double timeout_s = 0;  // 0: none
};

// Parses a TaskAssignment (spec_json must be a JSON object or empty).
// The tokens an executor's result reports (`usage.prompt_tokens` / `completion_tokens`, as
// inference, api and agent results carry them), sent with TASK_SUCCEEDED for the usage
// rows; null when it reports none.
nlohmann::json TokenUsage(const nlohmann::json& result);

Result<Assignment> AssignmentFromProto(const v1::TaskAssignment& proto);

class TaskRunner {
 public:
  using EventSink = std::function<void(const v1::TaskEvent& event)>;
  // Stores `result` and returns its digest. `metadata` is {executor, duration_sec}.
  using ResultUploader = std::function<Result<std::string>(
      const Assignment& assignment, const nlohmann::json& metadata, const nlohmann::json& result)>;

  // Results whose JSON is at most `inline_result_max` bytes travel inside the
  // TASK_SUCCEEDED event (payload {result, metadata}) instead of a separate upload: one
  // message instead of an HTTP round trip per task. Larger ones go through `uploader`.
  static constexpr size_t kDefaultInlineResultMax = 64 << 10;
  TaskRunner(const executors::ExecutorRegistry* registry, int slots, EventSink sink,
             ResultUploader uploader, size_t inline_result_max = kDefaultInlineResultMax);
  ~TaskRunner();  // StopAll("worker stopping").
  TaskRunner(const TaskRunner&) = delete;
  TaskRunner& operator=(const TaskRunner&) = delete;

  // How an attempt fetches its credentials (see executors::TaskContext::credentials). Set
  // before the first Submit; unset: executors get none.
  using CredentialFetcher = std::function<Result<executors::CredentialGrant>(
      const Assignment& assignment, const std::vector<std::string>& names, bool default_endpoint)>;
  void SetCredentialFetcher(CredentialFetcher fetcher) { credentials_ = std::move(fetcher); }
  // How an attempt keeps its result files (see executors::TaskContext::put_files). Set
  // before the first Submit; unset: files are listed, not stored.
  using FileUploader = std::function<Result<std::vector<executors::StoredFile>>(
      const Assignment& assignment, const std::vector<executors::OutputFile>& files)>;
  void SetFileUploader(FileUploader uploader) { file_uploader_ = std::move(uploader); }
  // How an attempt fetches a collection (see executors::TaskContext::fetch_collection). Set
  // before the first Submit; unset: executors get none.
  using CollectionFetcher = std::function<Result<std::shared_ptr<const rag::Collection>>(
      const Assignment& assignment, const std::string& name, int64_t version)>;
  void SetCollectionFetcher(CollectionFetcher fetcher) { collections_ = std::move(fetcher); }

  // Queues an attempt. Returns false (and does nothing) when that attempt is already
  // queued or running, or after StopAll.
  bool Submit(Assignment assignment);
  // Cancels that attempt: reports TASK_CANCELLED. Unknown attempts are ignored.
  void Interrupt(const std::string& task_id, int attempt);
  // Stops accepting work, fails every unfinished attempt (retryable, `reason`), and joins
  // the threads (executors see their cancelled flag). Idempotent.
  void StopAll(const std::string& reason);

  // Task ids of attempts queued or running that have not reported a terminal event.
  std::vector<std::string> ActiveTaskIds() const;

 private:
  struct Task;
  void PoolLoop();
  void TimerLoop();
  void Execute(const std::shared_ptr<Task>& task);
  void Emit(Task& task, const std::string& type, const std::string& error, bool retryable,
            const nlohmann::json& payload);
  // Reports the terminal event unless one was already reported. Returns whether it did.
  bool Finish(Task& task, const std::string& type, const std::string& error, bool retryable,
              const nlohmann::json& payload);

  const executors::ExecutorRegistry* registry_;
  EventSink sink_;
  ResultUploader uploader_;
  CredentialFetcher credentials_;
  FileUploader file_uploader_;
  CollectionFetcher collections_;

  mutable Mutex mu_;
  std::condition_variable queue_cv_;  // pool threads wait for work
  std::condition_variable timer_cv_;  // timer thread waits for the next deadline
  std::deque<std::shared_ptr<Task>> queue_ FM_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Task>> tasks_ FM_GUARDED_BY(mu_);  // key id#attempt
  bool stopping_ FM_GUARDED_BY(mu_) = false;
  std::vector<std::thread> pool_;
  std::thread timer_;
  Mutex stop_mu_;  // serialises StopAll
  bool stopped_ FM_GUARDED_BY(stop_mu_) = false;
  size_t inline_result_max_;
};

}  // namespace flowmesh::worker
