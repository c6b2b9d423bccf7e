#include "scheduler/scheduler.h"

#include <algorithm>
#include <cmath>
#include <future>

#include "common/json_util.h"
#include "common/log.h"
#include "scheduler/rooms.h"

namespace flowmesh::scheduler {

using nlohmann::json;
using state::TaskState;

Scheduler::Impl::Impl(SchedulerConfig c, state::Store* s, std::shared_ptr<bus::Bus> b, EventHub* h,
                      cas::ContentStore* cs)
    : config(std::move(c)),
      time(config.time != nullptr ? config.time : SystemTimeSource::Get()),
      store(s),
      content(cs),
      own_registry(config.metrics == nullptr ? std::make_unique<metrics::Registry>() : nullptr),
      registry(config.metrics != nullptr ? config.metrics : own_registry.get()),
      metrics(registry),
      placer(config.placement),
      deadlines(time),
      outbox(s, std::move(b), h, &deadlines, time),
      graph(&outbox, time),
      workers(s, &placer, time, config.worker_grace_s),
      queue(&placer, &graph, &workers, time),
      dedup(config.dedup_scope, &graph, &outbox, s, &loop, &counters, time),
      ends({&graph, &queue, &workers, &dedup, &outbox, &deadlines, s, cs, &counters, time,
            &metrics},
           RetryPolicy(config.retry_backoff_base_s, config.retry_backoff_max_s)),
      dispatcher({&graph, &queue, &workers, &ends, &dedup, &outbox, cs, &loop, &prepare_loop,
                  &counters, time, &metrics},
                 config.data_dir),
      nodes({s, &outbox, &deadlines, &loop, &workers, &placer, time},
            {config.command_timeout_s, config.elasticity, config.elastic_worker_config,
             config.worker_grace_s}),
      liveness(&graph, &workers, &ends, &counters, time, config.worker_grace_s),
      intake(&graph, &liveness, &ends, &nodes, &outbox, &internal, &counters, time),
      submission(&graph, &outbox, s, h, &loop, &counters, time) {
  graph.SetHooks({[this](Task& t) { queue.Unqueue(t); },
                  [this](Task& t) { dedup.ReleaseFlight(t); }});
  graph.SetMetrics(&metrics);
  AddFleetCollectors();
}

void Scheduler::Impl::UpdateGauges() {
  metrics.queue_depth.Set(static_cast<double>(placer.queued() + graph.ready().size()));
  metrics.tasks_pending.Set(static_cast<double>(graph.count(TaskState::kPending)));
  metrics.tasks_in_flight.Set(static_cast<double>(graph.count(TaskState::kDispatched) +
                                                  graph.count(TaskState::kCancelling)));
  metrics.workflows_active.Set(static_cast<double>(graph.workflows()));
}

void Scheduler::Impl::AddFleetCollectors() {
  using metrics::Sample;
  // Labels of a node: its id and alias (the alias alone need not be unique).
  auto per_node = [this](auto value) {
    return [this, value] {
      json known = nodes.NodesSnapshot();
      std::vector<Sample> out;
      for (const auto& [node_id, load] : workers.Load()) {
        std::string alias = node_id;
        if (auto it = known.find(node_id); it != known.end()) alias = JsonOr(*it, "alias", node_id);
        value(out, std::vector<std::pair<std::string, std::string>>{{"node_id", node_id},
                                                                    {"node", alias}},
              load);
      }
      return out;
    };
  };
  using Labels = std::vector<std::pair<std::string, std::string>>;
  using Load = WorkerRegistry::NodeLoad;
  registry->AddCollector(
      "flowmesh_workers", "Workers by node and status (IDLE, BUSY, DOWN).", metrics::Type::kGauge,
      per_node([](std::vector<Sample>& out, Labels labels, const Load& l) {
        for (const auto& [status, n] : {std::pair{"IDLE", l.idle}, std::pair{"BUSY", l.busy},
                                        std::pair{"DOWN", l.down}}) {
          Labels with = labels;
          with.emplace_back("status", status);
          out.push_back({std::move(with), static_cast<double>(n)});
        }
      }));
  registry->AddCollector("flowmesh_worker_slots", "Task slots of the live workers of a node.",
                         metrics::Type::kGauge,
                         per_node([](std::vector<Sample>& out, Labels labels, const Load& l) {
                           out.push_back({std::move(labels), static_cast<double>(l.slots)});
                         }));
  registry->AddCollector(
      "flowmesh_worker_slots_busy", "Task slots of a node's live workers held by running tasks.",
      metrics::Type::kGauge, per_node([](std::vector<Sample>& out, Labels labels, const Load& l) {
        out.push_back({std::move(labels), static_cast<double>(l.busy_slots)});
      }));
  registry->AddCollector(
      "flowmesh_worker_utilization",
      "Busy slots over slots of a node's live workers (0 to 1; 0 without live workers).",
      metrics::Type::kGauge, per_node([](std::vector<Sample>& out, Labels labels, const Load& l) {
        out.push_back({std::move(labels), l.slots > 0 ? static_cast<double>(l.busy_slots) / l.slots : 0.0});
      }));
  registry->AddCollector(
      "flowmesh_node_up", "1 while a registered node heartbeats within the grace period, else 0.",
      metrics::Type::kGauge, [this] {
        std::vector<Sample> out;
        const json known = nodes.NodesSnapshot();  // (items() of a temporary would dangle)
        for (const auto& [id, n] : known.items()) {
          out.push_back({{{"node_id", id},
                          {"node", JsonOr(n, "alias", id)},
                          {"address", JsonOr(n, "address", "")}},
                         JsonOr(n, "status", "") == "UP" ? 1.0 : 0.0});
        }
        return out;
      });
}

void Scheduler::Impl::AfterBatch() {
  // A pass may unblock more (an in-order epoch member that just went): run until idle.
  while (graph.TakeDispatchRequest()) dispatcher.Pass();
  workers.RefreshSnapshotIfDirty();
  UpdateGauges();
  outbox.Flush();
  ArmWakeup();
}

void Scheduler::Impl::ArmWakeup() {
  if (!time->advances_by_itself()) return;  // a manual clock: Tick() fires deadlines
  std::optional<double> next = deadlines.NextDue();
  if (!next) return;
  if (wakeup != 0 && wakeup_due <= *next) return;  // armed for it (or earlier) already
  if (wakeup != 0) loop.CancelTimer(wakeup);
  double delay_s = std::max(0.0, *next - time->MonoSeconds());
  wakeup_due = *next;
  wakeup = loop.PostDelayed(std::chrono::microseconds(static_cast<int64_t>(std::ceil(delay_s * 1e6))),
                            [this] {
                              wakeup = 0;
                              deadlines.RunDue();
                            });
}

void Scheduler::Impl::Watchdog() {
  liveness.CheckSilent();
  nodes.CheckSilent();
  if (config.unplaceable_grace_s > 0) {
    // Queued tasks no worker of the fleet could ever run fail after the grace period.
    for (const auto& [id, reason] : queue.FindUnplaceable(config.unplaceable_grace_s)) {
      if (Task* t = graph.Find(id)) ends.FailBeforeDispatch(*t, reason);  // Unqueue drops it
    }
  }
  nodes.Elasticity();
  workers.MarkDirty();
  deadlines.After(config.watchdog_interval_s, [this] { Watchdog(); });
}

void Scheduler::Impl::CancelWorkflow(const std::string& workflow_id, const JsonCallback& done) {
  Workflow* wf = graph.FindWorkflow(workflow_id);
  if (wf == nullptr) {
    auto rec = store->GetWorkflow(workflow_id);
    if (!rec.ok()) {
      done(rec.status());
      return;
    }
    done(json{{"ok", true}, {"workflow_id", workflow_id}, {"status", rec->status},
              {"cancelled", 0}, {"cancelling", 0}});
    return;
  }
  int n_cancelled = 0, n_cancelling = 0;
  std::vector<std::string> ids = wf->rec.task_ids;
  for (const auto& id : ids) {
    Task* t = graph.Find(id);
    if (t == nullptr) continue;
    if (t->rec.status == TaskState::kPending) {
      ends.CancelPending(*t);
      ++n_cancelled;
    } else if (t->rec.status == TaskState::kDispatched) {
      ends.RequestInterrupt(*t, "cancel_requested");
      ++n_cancelling;
    }
  }
  graph.RefreshWorkflow(workflow_id);
  Workflow* again = graph.FindWorkflow(workflow_id);
  std::string status = again != nullptr ? again->rec.status : "CANCELLED";
  done(json{{"ok", true}, {"workflow_id", workflow_id}, {"status", status},
            {"cancelled", n_cancelled}, {"cancelling", n_cancelling}});
}

void Scheduler::Impl::StopTask(const std::string& task_id, const JsonCallback& done) {
  Task* t = graph.Find(task_id);
  if (t == nullptr) {  // its workflow has ended (the API answers for ended tasks)
    done(Status(StatusCode::kFailedPrecondition, "task " + task_id + " is not running"));
    return;
  }
  if (t->rec.status == TaskState::kDispatched) {
    ends.RequestInterrupt(*t, "stop_requested");
    graph.RefreshWorkflow(t->rec.workflow_id);  // (a CANCELLING task keeps it open)
  } else if (t->rec.status != TaskState::kCancelling) {
    done(Status(StatusCode::kFailedPrecondition,
                "task " + task_id + " is not running (" +
                    std::string(state::TaskStateName(t->rec.status)) +
                    "); cancel its workflow to drop queued work"));
    return;
  }
  done(json{{"ok", true}, {"task_id", task_id}, {"status", state::TaskStateName(t->rec.status)}});
}

Scheduler::Scheduler(SchedulerConfig config, state::Store* store, std::shared_ptr<bus::Bus> bus,
                     EventHub* hub, cas::ContentStore* content)
    : impl_(std::make_unique<Impl>(std::move(config), store, std::move(bus), hub, content)) {
  impl_->loop.SetAfterBatch([this] { impl_->AfterBatch(); });
}

Scheduler::~Scheduler() {
  Stop();
  // A shared registry outlives the scheduler: drop the collectors that read its rooms.
  for (const char* name : Impl::kFleetCollectors) impl_->registry->Remove(name);
}

void Scheduler::SetUsageSink(std::function<void(const state::UsageRecord&)> sink) {
  impl_->ends.SetUsageSink(std::move(sink));
}

void Scheduler::SetSupplierResolver(
    std::function<std::string(const std::string&, const std::string&)> resolve) {
  impl_->dispatcher.SetSupplierResolver(std::move(resolve));
}

void Scheduler::Start() {
  impl_->prepare_loop.Start();
  impl_->loop.Start();
  impl_->loop.Post([this] { impl_->Watchdog(); });
}

void Scheduler::Stop() {
  impl_->prepare_loop.Stop();
  impl_->loop.Stop();
}

void Scheduler::Tick() {
  impl_->loop.RunSync([this] { impl_->deadlines.RunDue(); });
  impl_->loop.RunSync([] {});  // the first batch's AfterBatch (dispatch, flush) has run
}

void Scheduler::Submit(SubmitRequest request, SubmitCallback done) {
  impl_->loop.Post([this, req = std::move(request), done = std::move(done)]() mutable {
    impl_->submission.Submit(std::move(req), std::move(done));
  });
}

void Scheduler::CancelWorkflow(const std::string& workflow_id, JsonCallback done) {
  impl_->loop.Post([this, workflow_id, done = std::move(done)] { impl_->CancelWorkflow(workflow_id, done); });
}

void Scheduler::StopTask(const std::string& task_id, JsonCallback done) {
  impl_->loop.Post([this, task_id, done = std::move(done)] { impl_->StopTask(task_id, done); });
}

void Scheduler::SetCordon(const std::string& worker_id, bool cordoned, JsonCallback done) {
  impl_->loop.Post([this, worker_id, cordoned, done = std::move(done)] {
    Worker* w = impl_->workers.FindByIdOrName(worker_id);  // an alias is accepted too
    if (w == nullptr) {
      done(NotFound("worker " + worker_id + " not found"));
      return;
    }
    impl_->workers.SetCordoned(*w, cordoned);
    impl_->workers.RefreshSnapshot();
    impl_->graph.RequestDispatch();
    done(json{{"ok", true}, {"worker_id", w->id}, {"cordoned", cordoned}});
  });
}

void Scheduler::SetOrgPolicy(const std::string& org_id, double weight, int max_running_tasks,
                             int max_gpus) {
  impl_->loop.Post([this, org_id, weight, max_running_tasks, max_gpus] {
    impl_->placer.SetOrgPolicy(
        org_id, {weight > 0 ? weight : 1.0, std::max(0, max_running_tasks), std::max(0, max_gpus)});
    impl_->graph.RequestDispatch();
  });
}

void Scheduler::RegisterNode(json body, JsonCallback done) {
  impl_->loop.Post([this, body = std::move(body), done = std::move(done)] {
    impl_->nodes.Register(body, done);
  });
}

void Scheduler::StackWorkerCommand(const std::string& kind, const std::string& name, json body,
                                   JsonCallback done) {
  impl_->loop.Post([this, kind, name, body = std::move(body), done = std::move(done)]() mutable {
    impl_->nodes.StackWorkerCommand(kind, name, std::move(body), std::move(done));
  });
}

void Scheduler::ApplyBusMessages(const std::vector<bus::Message>& batch) {
  std::promise<void> durable;
  ApplyBusMessagesAsync(batch, [&durable] { durable.set_value(); });
  durable.get_future().wait();
}

void Scheduler::ApplyBusMessagesAsync(const std::vector<bus::Message>& batch,
                                      std::function<void()> durable) {
  std::vector<std::string> payloads;
  payloads.reserve(batch.size());
  for (const auto& m : batch) payloads.push_back(m.payload);
  impl_->loop.Post([this, payloads = std::move(payloads), durable = std::move(durable)] {
    for (const auto& p : payloads) impl_->intake.Apply(p);
    // Visible before the caller hears the batch is applied.
    impl_->workers.RefreshSnapshotIfDirty();
    // Writes commit in order: once this empty op commits, everything above has too.
    impl_->store->Write([](state::WriteTxn&) { return Status::Ok(); },
                        [durable](const Status&) { durable(); });
  });
}

void Scheduler::ApplyHeartbeat(const std::string& payload) {
  json m = json::parse(payload, nullptr, false);
  impl_->loop.Post([this, m = std::move(m)] {
    try {
      impl_->liveness.OnHeartbeat(m);
      impl_->nodes.Seen(JsonOr(m, "node_id", ""));
    } catch (const json::exception& e) {
      FM_LOG_WARN("dropping malformed heartbeat: {}", e.what());
    }
  });
}

json Scheduler::WorkersSnapshot() const { return impl_->workers.Snapshot(); }

json Scheduler::StackWorkersSnapshot() const { return impl_->nodes.StackSnapshot(); }

metrics::Registry* Scheduler::metrics_registry() const { return impl_->registry; }

json Scheduler::NodesSnapshot() const { return impl_->nodes.NodesSnapshot(); }

void Scheduler::NodeWorkerCommand(const std::string& node_id, const std::string& kind,
                                  const std::string& name, JsonCallback done) {
  impl_->loop.Post([this, node_id, kind, name, done = std::move(done)]() mutable {
    impl_->nodes.NodeWorkerCommand(node_id, kind, name, std::move(done));
  });
}

std::string Scheduler::local_node_id() const { return impl_->nodes.LocalNodeSnapshot(); }

json Scheduler::InternalUpdate(const std::string& task_id) const {
  return impl_->internal.Get(task_id);
}

json Scheduler::Metrics() const {
  const Counters& c = impl_->counters;
  return {{"workflows_submitted_total", c.submitted_workflows.load()},
          {"tasks_submitted_total", c.submitted_tasks.load()},
          {"tasks_dispatched_total", c.dispatched.load()},
          {"tasks_succeeded_total", c.succeeded.load()},
          {"tasks_failed_total", c.failed.load()},
          {"tasks_cancelled_total", c.cancelled.load()},
          {"tasks_retried_total", c.retried.load()},
          {"workers_lost_total", c.workers_lost.load()},
          {"bus_messages_total", c.bus_messages.load()},
          {"tasks_reused_total", c.reused.load()},
          {"tasks_joined_total", c.joined.load()},
          {"scheduler_loop_backlog", impl_->loop.queued()}};
}

}  // namespace flowmesh::scheduler
