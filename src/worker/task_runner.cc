#include "worker/task_runner.h"

#include "spec/task_spec.h"

#include <chrono>

#include "common/clock.h"
#include "common/log.h"
#include "common/thread_annotations.h"

namespace flowmesh::worker {

using Clock = std::chrono::steady_clock;

struct TaskRunner::Task {
  Assignment assignment;
  std::string key;
  std::atomic<bool> cancelled{false};
  std::atomic<bool> reported{false};
  Mutex emit_mu;  // orders progress events before the terminal one
  Clock::time_point deadline = Clock::time_point::max();  // guarded by TaskRunner::mu_
};

namespace {

std::string Key(const std::string& task_id, int attempt) {
  return task_id + "#" + std::to_string(attempt);
}

std::string FormatSeconds(double s) {
  std::string text = fmt::format("{:.3f}", s);
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text;
}

v1::TaskEvent MakeEvent(const Assignment& a, const std::string& type, const std::string& error,
                        bool retryable, const nlohmann::json& payload) {
  v1::TaskEvent event;
  event.set_task_id(a.task_id);
  event.set_attempt(a.attempt);
  event.set_type(type);
  event.set_ts(WallSeconds());
  event.set_error(error);
  event.set_retryable(retryable);
  event.set_payload_json(payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return event;
}

}  // namespace

nlohmann::json TokenUsage(const nlohmann::json& result) {
  if (!result.is_object()) return nullptr;
  auto usage = result.find("usage");
  if (usage == result.end() || !usage->is_object()) return nullptr;
  nlohmann::json tokens = nlohmann::json::object();
  for (const char* key : {"prompt_tokens", "completion_tokens"}) {
    auto v = usage->find(key);
    if (v != usage->end() && v->is_number_integer() && v->get<int64_t>() >= 0) tokens[key] = *v;
  }
  return tokens.empty() ? nlohmann::json(nullptr) : tokens;
}

Result<Assignment> AssignmentFromProto(const v1::TaskAssignment& proto) {
  Assignment a;
  a.task_id = proto.task_id();
  a.workflow_id = proto.workflow_id();
  a.attempt = proto.attempt();
  a.task_type = proto.task_type();
  a.timeout_s = proto.timeout_s();
  if (a.task_id.empty()) return InvalidArgument("assignment without task_id");
  if (proto.spec_version() > spec::kTaskSpecVersion) {
    return InvalidArgument("task " + a.task_id + " has task spec version " +
                           std::to_string(proto.spec_version()) + ", newer than this worker's (" +
                           std::to_string(spec::kTaskSpecVersion) + "): upgrade the worker");
  }
  if (!proto.spec_json().empty()) {
    a.spec = nlohmann::json::parse(proto.spec_json(), nullptr, /*allow_exceptions=*/false);
    if (a.spec.is_discarded() || !a.spec.is_object()) {
      return InvalidArgument("spec_json of task " + a.task_id + " is not a JSON object");
    }
  }
  return a;
}

TaskRunner::TaskRunner(const executors::ExecutorRegistry* registry, int slots, EventSink sink,
                       ResultUploader uploader, size_t inline_result_max)
    : registry_(registry),
      sink_(std::move(sink)),
      uploader_(std::move(uploader)),
      inline_result_max_(inline_result_max) {
  if (slots < 1) slots = 1;
  for (int i = 0; i < slots; ++i) pool_.emplace_back([this] { PoolLoop(); });
  timer_ = std::thread([this] { TimerLoop(); });
}

TaskRunner::~TaskRunner() { StopAll("worker stopping"); }

bool TaskRunner::Submit(Assignment assignment) {
  auto task = std::make_shared<Task>();
  task->key = Key(assignment.task_id, assignment.attempt);
  task->assignment = std::move(assignment);
  {
    MutexLock lock(mu_);
    if (stopping_ || tasks_.count(task->key) > 0) return false;
    tasks_[task->key] = task;
    queue_.push_back(task);
  }
  queue_cv_.notify_one();
  return true;
}

void TaskRunner::Interrupt(const std::string& task_id, int attempt) {
  std::shared_ptr<Task> task;
  {
    MutexLock lock(mu_);
    auto it = tasks_.find(Key(task_id, attempt));
    if (it == tasks_.end()) return;
    task = it->second;
  }
  task->cancelled = true;
  Finish(*task, "TASK_CANCELLED", "cancelled", false, nlohmann::json::object());
}

void TaskRunner::StopAll(const std::string& reason) {
  MutexLock stop_lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  std::vector<std::shared_ptr<Task>> unfinished;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    for (auto& [key, task] : tasks_) unfinished.push_back(task);
    queue_.clear();
  }
  queue_cv_.notify_all();
  timer_cv_.notify_all();
  for (auto& task : unfinished) {
    Finish(*task, "TASK_FAILED", reason, true, nlohmann::json::object());  // report, then stop it
    task->cancelled = true;
  }
  for (auto& t : pool_) t.join();
  timer_.join();
  MutexLock lock(mu_);
  tasks_.clear();
}

std::vector<std::string> TaskRunner::ActiveTaskIds() const {
  MutexLock lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [key, task] : tasks_) {
    if (!task->reported.load()) ids.push_back(task->assignment.task_id);
  }
  return ids;
}

void TaskRunner::PoolLoop() {
  for (;;) {
    std::shared_ptr<Task> task;
    {
      MutexLock lock(mu_);
      lock.Wait(queue_cv_, [this]() FM_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      task = queue_.front();
      queue_.pop_front();
      if (task->assignment.timeout_s > 0) {
        task->deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(task->assignment.timeout_s));
      }
    }
    timer_cv_.notify_all();
    if (!task->reported.load()) Execute(task);
    MutexLock lock(mu_);
    tasks_.erase(task->key);
  }
}

void TaskRunner::TimerLoop() {
  MutexLock lock(mu_);
  while (!stopping_) {
    auto next = Clock::time_point::max();
    std::vector<std::shared_ptr<Task>> expired;
    auto now = Clock::now();
    for (auto& [key, task] : tasks_) {
      if (task->reported.load()) continue;
      if (task->deadline <= now) {
        expired.push_back(task);
      } else {
        next = std::min(next, task->deadline);
      }
    }
    if (!expired.empty()) {
      lock.Unlock();
      for (auto& task : expired) {
        // Report first, then stop the executor: the other order lets the executor see the
        // flag and report TASK_CANCELLED before the timeout is reported.
        Finish(*task, "TASK_FAILED",
               "timed out after " + FormatSeconds(task->assignment.timeout_s) + "s", true,
               nlohmann::json::object());
        task->cancelled = true;
      }
      lock.Lock();
      continue;
    }
    if (next == Clock::time_point::max()) {
      lock.Wait(timer_cv_);
    } else {
      lock.WaitUntil(timer_cv_, next);
    }
  }
}

void TaskRunner::Execute(const std::shared_ptr<Task>& task) {
  const Assignment& a = task->assignment;
  auto executor = registry_->Create(a.task_type);
  if (!executor.ok()) {
    Finish(*task, "TASK_FAILED", executor.status().message(), false, nlohmann::json::object());
    return;
  }
  Emit(*task, "TASK_STARTED", "", false, nlohmann::json::object());
  executors::TaskContext ctx{
      a.task_id,
      a.workflow_id,
      a.attempt,
      a.task_type,
      a.spec,
      [this, task](std::string line) {
        Emit(*task, "TASK_LOG", "", false, {{"line", std::move(line)}, {"stream", "stdout"}});
      },
      [this, task](nlohmann::json update) {
        Emit(*task, "TASK_UPDATE", "", false,
             update.is_object() ? update : nlohmann::json{{"value", update}});
      },
      task->cancelled};
  if (credentials_) {
    ctx.credentials = [this, &a](const std::vector<std::string>& names, bool default_endpoint) {
      return credentials_(a, names, default_endpoint);
    };
  }
  if (file_uploader_) {
    ctx.put_files = [this, &a](const std::vector<executors::OutputFile>& files) {
      return file_uploader_(a, files);
    };
  }
  if (collections_) {
    ctx.fetch_collection = [this, &a](const std::string& name, int64_t version) {
      return collections_(a, name, version);
    };
  }
  int64_t start = MonoMicros();
  Result<nlohmann::json> result = (*executor)->Run(ctx);
  double duration = (MonoMicros() - start) / 1e6;
  if (task->reported.load()) return;  // interrupted, timed out or stopped meanwhile
  if (!result.ok()) {
    if (result.status().code() == StatusCode::kCancelled || task->cancelled.load()) {
      Finish(*task, "TASK_CANCELLED", result.status().message(), false, nlohmann::json::object());
    } else {
      Finish(*task, "TASK_FAILED", result.status().message(),
             executors::IsRetryable(result.status()), nlohmann::json::object());
    }
    return;
  }
  nlohmann::json metadata = {{"executor", a.task_type}, {"duration_sec", duration}};
  nlohmann::json usage = TokenUsage(*result);
  size_t size = result->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size();
  if (size <= inline_result_max_) {
    nlohmann::json payload = {{"result", std::move(*result)}, {"metadata", std::move(metadata)}};
    if (!usage.is_null()) payload["usage"] = std::move(usage);
    Finish(*task, "TASK_SUCCEEDED", "", false, payload);
    return;
  }
  Result<std::string> digest = uploader_(a, metadata, *result);
  if (!digest.ok()) {
    FM_LOG_WARN("result upload for task {} attempt {} failed: {}", a.task_id, a.attempt,
                digest.status().ToString());
    Finish(*task, "TASK_FAILED", "result upload failed: " + digest.status().message(), true,
           nlohmann::json::object());
    return;
  }
  nlohmann::json payload = {{"result_digest", *digest}};
  if (!usage.is_null()) payload["usage"] = std::move(usage);
  Finish(*task, "TASK_SUCCEEDED", "", false, payload);
}

void TaskRunner::Emit(Task& task, const std::string& type, const std::string& error,
                      bool retryable, const nlohmann::json& payload) {
  MutexLock lock(task.emit_mu);
  if (task.reported.load()) return;
  sink_(MakeEvent(task.assignment, type, error, retryable, payload));
}

bool TaskRunner::Finish(Task& task, const std::string& type, const std::string& error,
                        bool retryable, const nlohmann::json& payload) {
  MutexLock lock(task.emit_mu);
  if (task.reported.exchange(true)) return false;
  sink_(MakeEvent(task.assignment, type, error, retryable, payload));
  return true;
}

}  // namespace flowmesh::worker
