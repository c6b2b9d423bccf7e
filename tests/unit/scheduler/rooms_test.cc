// The scheduler's rooms on their own: deadlines on a manual clock, retry backoff, the task
// state machine of the workflow graph, and de-duplication's single flight. The graph and
// dedup rooms run against a real SQLite store and the in-process bus (their writes are
// not read back here: these tests are about the in-memory decisions).
#include <gtest/gtest.h>

#include "bus/bus.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "scheduler/counters.h"
#include "scheduler/deadlines.h"
#include "scheduler/dedup.h"
#include "scheduler/event_hub.h"
#include "scheduler/internal_updates.h"
#include "scheduler/outbox.h"
#include "scheduler/retry_policy.h"
#include "scheduler/task_graph.h"
#include "spec/task_spec.h"
#include "state/store.h"
#include "support/temp_dir.h"

namespace flowmesh::scheduler {
namespace {

using nlohmann::json;
using state::TaskState;

TEST(ManualTimeSourceTest, MovesOnlyWhenAdvanced) {
  ManualTimeSource clock(1000.0, 5'000'000);
  EXPECT_FALSE(clock.advances_by_itself());
  EXPECT_DOUBLE_EQ(clock.WallSeconds(), 1000.0);
  EXPECT_EQ(clock.MonoMicros(), 5'000'000);
  clock.Advance(1.5);
  EXPECT_DOUBLE_EQ(clock.WallSeconds(), 1001.5);
  EXPECT_DOUBLE_EQ(clock.MonoSeconds(), 6.5);
  EXPECT_TRUE(SystemTimeSource::Get()->advances_by_itself());
}

TEST(DeadlinesTest, FireInOrderOnlyOnceDueAndCanBeCancelled) {
  ManualTimeSource clock;
  Deadlines d(&clock);
  std::vector<std::string> fired;
  d.After(2, [&] { fired.push_back("b"); });
  d.After(1, [&] { fired.push_back("a"); });
  Deadlines::Id c = d.After(1.5, [&] { fired.push_back("c"); });
  EXPECT_EQ(d.RunDue(), 0);
  EXPECT_DOUBLE_EQ(*d.NextDue(), clock.MonoSeconds() + 1);
  d.Cancel(c);
  d.Cancel(c);  // twice: harmless
  clock.Advance(1.9);
  EXPECT_EQ(d.RunDue(), 1);
  EXPECT_EQ(fired, std::vector<std::string>{"a"});
  clock.Advance(0.1);
  EXPECT_EQ(d.RunDue(), 1);
  EXPECT_EQ(fired, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(d.NextDue().has_value());
}

TEST(DeadlinesTest, ADeadlineSetByADueOneRunsInTheSamePassWhenDue) {
  ManualTimeSource clock;
  Deadlines d(&clock);
  int n = 0;
  d.After(1, [&] {
    ++n;
    d.After(0, [&] { ++n; });   // due now: runs in this pass
    d.After(5, [&] { ++n; });   // not yet
  });
  clock.Advance(1);
  EXPECT_EQ(d.RunDue(), 2);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(d.size(), 1u);
}

TEST(InternalUpdatesTest, UnderscoreKeysLeaveThePayloadAndStayUntilForgotten) {
  InternalUpdates internal;
  nlohmann::json payload = {{"serve", {{"port", 8100}}}, {"_serve", {{"api_key", "k-1"}}}};
  internal.Keep("tsk-1", &payload);
  EXPECT_EQ(payload, (nlohmann::json{{"serve", {{"port", 8100}}}}));  // what is stored and sent
  EXPECT_EQ(internal.Get("tsk-1"), (nlohmann::json{{"_serve", {{"api_key", "k-1"}}}}));
  nlohmann::json plain = {{"progress", 0.5}};
  internal.Keep("tsk-1", &plain);  // an update without internal keys keeps the last ones
  EXPECT_EQ(internal.Get("tsk-1")["_serve"]["api_key"], "k-1");
  internal.Forget("tsk-1");
  EXPECT_TRUE(internal.Get("tsk-1").is_null());
  EXPECT_TRUE(internal.Get("tsk-unknown").is_null());
}

TEST(RetryPolicyTest, BackoffDoublesPerAttemptUpToTheCapWithJitter) {
  RetryPolicy p(0.1, 1.0, /*seed=*/7);
  EXPECT_DOUBLE_EQ(p.Delay(1, 1.0), 0.1);
  EXPECT_DOUBLE_EQ(p.Delay(2, 1.0), 0.2);
  EXPECT_DOUBLE_EQ(p.Delay(3, 1.0), 0.4);
  EXPECT_DOUBLE_EQ(p.Delay(5, 1.0), 1.0);  // capped
  EXPECT_DOUBLE_EQ(p.Delay(3, 0.5), 0.2);
  for (int i = 0; i < 100; ++i) {
    double d = p.Delay(2);
    EXPECT_GE(d, 0.1);
    EXPECT_LE(d, 0.2);
  }
  EXPECT_TRUE(RetryPolicy::ShouldRetry(true, 1, 3));
  EXPECT_TRUE(RetryPolicy::ShouldRetry(true, 2, 3));
  EXPECT_FALSE(RetryPolicy::ShouldRetry(true, 3, 3));
  EXPECT_FALSE(RetryPolicy::ShouldRetry(false, 1, 3));
}

// A graph (and what it writes through) on a real store.
class RoomTest : public ::testing::Test {
 protected:
  static std::unique_ptr<state::Store> OpenStore(const std::string& path) {
    state::StoreConfig sc;
    sc.path = path;
    auto store = state::Store::Open(sc);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  void SetUp() override {
    ASSERT_NE(store_, nullptr);
    loop_.Start();
  }
  // The store first: its pending writes' callbacks post onto the loop.
  void TearDown() override {
    store_.reset();
    loop_.Stop();
  }

  // A workflow of echo tasks; deps[i] lists the indexes task i depends on.
  Workflow& AddWorkflow(const std::string& wf_id, const std::vector<std::vector<int>>& deps,
                        const std::string& org = "org-a", json spec = json{{"echo", {{"message", "x"}}}}) {
    Workflow wf;
    wf.rec.workflow_id = wf_id;
    wf.rec.status = "PENDING";
    std::vector<Task> tasks;
    for (size_t i = 0; i < deps.size(); ++i) {
      Task t;
      t.rec.task_id = wf_id + "-t" + std::to_string(i);
      t.rec.workflow_id = wf_id;
      t.rec.org_id = org;
      t.rec.task_type = "echo";
      t.rec.graph_node_name = "n" + std::to_string(i);
      t.rec.max_attempts = 3;
      for (int d : deps[i]) t.rec.depends_on.push_back(wf_id + "-t" + std::to_string(d));
      t.spec = spec::ParseTaskSpec("echo", spec);
      t.dispatch_spec = spec;
      wf.rec.task_ids.push_back(t.rec.task_id);
      tasks.push_back(std::move(t));
    }
    for (auto& t : tasks) {
      for (const auto& dep : t.rec.depends_on) {
        for (auto& other : tasks) {
          if (other.rec.task_id == dep) other.rec.dependents.push_back(t.rec.task_id);
        }
      }
    }
    return graph_.Add(std::move(wf), std::move(tasks));
  }

  int Count(const Workflow& wf, TaskState s) { return wf.counts[static_cast<int>(s)]; }

  testing::TempDir dir_;
  ManualTimeSource clock_;
  std::unique_ptr<state::Store> store_ = OpenStore(dir_ / "state.db");
  EventHub hub_;
  EventLoop loop_{"rooms-test"};
  Deadlines deadlines_{&clock_};
  Outbox outbox_{store_.get(), bus::MakeInProcessBus(), &hub_, &deadlines_, &clock_};
  TaskGraph graph_{&outbox_, &clock_};
  Counters counters_;
};

TEST_F(RoomTest, StateChangesKeepTheWorkflowCountsAndDeriveItsStatus) {
  int left_pending = 0;
  graph_.SetHooks({[&](Task&) { ++left_pending; }, nullptr});
  Workflow& wf = AddWorkflow("wfl-1", {{}, {0}});
  Task& a = *graph_.Find("wfl-1-t0");
  Task& b = *graph_.Find("wfl-1-t1");
  EXPECT_EQ(a.unmet, 0);
  EXPECT_EQ(b.unmet, 1);
  EXPECT_EQ(Count(wf, TaskState::kPending), 2);
  EXPECT_EQ(TaskGraph::WorkflowStatus(wf.counts), "PENDING");

  graph_.SetState(a, TaskState::kDispatched);
  EXPECT_EQ(left_pending, 1);
  EXPECT_EQ(TaskGraph::WorkflowStatus(wf.counts), "DISPATCHED");
  graph_.SetState(a, TaskState::kPending);  // a retry
  graph_.SetState(a, TaskState::kDispatched);
  EXPECT_EQ(left_pending, 2);
  graph_.SetState(a, TaskState::kCancelling);
  EXPECT_EQ(TaskGraph::WorkflowStatus(wf.counts), "DISPATCHED");
  graph_.SetState(a, TaskState::kDone);
  EXPECT_EQ(Count(wf, TaskState::kDone), 1);
  EXPECT_EQ(Count(wf, TaskState::kPending), 1);
  EXPECT_EQ(TaskGraph::WorkflowStatus(wf.counts), "PENDING");

  // Its dependent becomes ready.
  graph_.ReleaseDependents(a);
  EXPECT_EQ(b.unmet, 0);
  ASSERT_EQ(graph_.ready().size(), 1u);
  EXPECT_EQ(graph_.ready().front(), "wfl-1-t1");
  EXPECT_TRUE(graph_.TakeDispatchRequest());
  EXPECT_FALSE(graph_.TakeDispatchRequest());

  graph_.SetState(b, TaskState::kFailed);
  EXPECT_EQ(TaskGraph::WorkflowStatus(wf.counts), "FAILED");
  // All terminal: closed and dropped from memory.
  graph_.RefreshWorkflow("wfl-1");
  EXPECT_EQ(graph_.FindWorkflow("wfl-1"), nullptr);
  EXPECT_EQ(graph_.Find("wfl-1-t0"), nullptr);
}

TEST_F(RoomTest, WorkflowStatusFollowsThePublishedPrecedence) {
  auto status = [](std::initializer_list<std::pair<TaskState, int>> c) {
    std::array<int, 6> counts{};
    for (auto [s, n] : c) counts[static_cast<int>(s)] = n;
    return TaskGraph::WorkflowStatus(counts);
  };
  EXPECT_EQ(status({{TaskState::kFailed, 1}, {TaskState::kDispatched, 1}}), "FAILED");
  EXPECT_EQ(status({{TaskState::kCancelling, 1}, {TaskState::kPending, 1}}), "DISPATCHED");
  EXPECT_EQ(status({{TaskState::kPending, 1}, {TaskState::kCancelled, 1}}), "PENDING");
  EXPECT_EQ(status({{TaskState::kCancelled, 1}, {TaskState::kDone, 3}}), "CANCELLED");
  EXPECT_EQ(status({{TaskState::kDone, 3}}), "DONE");
}

TEST_F(RoomTest, EpochsGateTasksUntilTheEarlierEpochIsFinished) {
  Workflow wf;
  wf.rec.workflow_id = "wfl-e";
  std::vector<Task> tasks;
  for (int i = 0; i < 3; ++i) {
    Task t;
    t.rec.task_id = "e" + std::to_string(i);
    t.rec.workflow_id = "wfl-e";
    // e0: epoch 0; e1, e2: epoch 1 in order (e2 before e1).
    json hints = i == 0 ? json{{"epoch", 0}, {"pos", 0}, {"in_order", true}}
                        : json{{"epoch", 1}, {"pos", i == 2 ? 0 : 1}, {"in_order", true}};
    t.rec.schedule_json = hints.dump();
    TaskGraph::LoadHints(t);
    wf.rec.task_ids.push_back(t.rec.task_id);
    tasks.push_back(std::move(t));
  }
  graph_.Add(std::move(wf), std::move(tasks));
  Task& e0 = *graph_.Find("e0");
  Task& e1 = *graph_.Find("e1");
  Task& e2 = *graph_.Find("e2");
  EXPECT_TRUE(graph_.EpochAllows(e0));
  EXPECT_FALSE(graph_.EpochAllows(e2));
  graph_.SetState(e0, TaskState::kDispatched);
  EXPECT_FALSE(graph_.EpochAllows(e2));  // dispatched is not finished
  graph_.SetState(e0, TaskState::kDone);
  EXPECT_TRUE(graph_.TakeDispatchRequest());  // the next epoch may go
  EXPECT_TRUE(graph_.EpochAllows(e2));
  EXPECT_FALSE(graph_.EpochAllows(e1));  // e2 comes first in its epoch
  graph_.SetState(e2, TaskState::kDispatched);
  e2.rec.attempts = 1;
  EXPECT_TRUE(graph_.EpochAllows(e1));
}

class DedupRoomTest : public RoomTest {
 protected:
  void SetUp() override {
    RoomTest::SetUp();
      graph_.SetHooks({nullptr, [this](Task& t) { dedup_.ReleaseFlight(t); }});
  }
  Dedup MakeDedup(const std::string& scope) {
    return Dedup(scope, &graph_, &outbox_, store_.get(), &loop_, &counters_, &clock_);
  }
  Dedup dedup_ = MakeDedup("tenant");
};

TEST_F(DedupRoomTest, TwinsJoinTheLeaderAndAreReleasedWhenItFails) {
  AddWorkflow("wfl-1", {{}});
  AddWorkflow("wfl-2", {{}});
  AddWorkflow("wfl-3", {{}}, "org-b");  // another organisation: its own flight
  Task& leader = *graph_.Find("wfl-1-t0");
  Task& twin = *graph_.Find("wfl-2-t0");
  Task& other_org = *graph_.Find("wfl-3-t0");
  EXPECT_TRUE(dedup_.Consider(leader));
  EXPECT_TRUE(leader.dedup_leader);
  EXPECT_FALSE(dedup_.Consider(twin));
  EXPECT_TRUE(twin.dedup_joined);
  EXPECT_EQ(twin.rec.merged_parent_id, leader.rec.task_id);
  EXPECT_EQ(twin.rec.merge_key, leader.rec.merge_key);
  EXPECT_TRUE(dedup_.Consider(other_org));
  EXPECT_EQ(dedup_.flights(), 2u);
  EXPECT_EQ(counters_.joined.load(), 1u);

  // The leader fails: the twin runs on its own (bypassing de-duplication).
  graph_.SetState(leader, TaskState::kDispatched);
  graph_.SetState(leader, TaskState::kFailed);
  EXPECT_FALSE(twin.dedup_joined);
  EXPECT_TRUE(twin.dedup_bypass);
  ASSERT_FALSE(graph_.ready().empty());
  EXPECT_EQ(graph_.ready().back(), twin.rec.task_id);
  EXPECT_TRUE(dedup_.Consider(twin));
  EXPECT_FALSE(twin.dedup_leader);
  EXPECT_EQ(dedup_.flights(), 1u);
}

TEST_F(DedupRoomTest, TwinsCompleteWithTheLeadersResultAndLaterOnesReuseIt) {
  AddWorkflow("wfl-1", {{}});
  AddWorkflow("wfl-2", {{}, {0}});
  Task& leader = *graph_.Find("wfl-1-t0");
  Task& twin = *graph_.Find("wfl-2-t0");
  ASSERT_TRUE(dedup_.Consider(leader));
  ASSERT_FALSE(dedup_.Consider(twin));
  graph_.SetState(leader, TaskState::kDispatched);
  leader.rec.result_digest = "sha256-result";
  leader.result = json{{"items", json::array()}};
  graph_.SetState(leader, TaskState::kDone);
  dedup_.FinishFlight(leader);
  EXPECT_EQ(twin.rec.status, TaskState::kDone);
  EXPECT_EQ(twin.rec.result_digest, "sha256-result");
  EXPECT_EQ(graph_.Find("wfl-2-t1")->unmet, 0);  // its dependent is released
  EXPECT_EQ(counters_.reused.load(), 1u);
  EXPECT_EQ(dedup_.flights(), 0u);

  // A later twin completes at once from the result (still in the group commit, or stored).
  AddWorkflow("wfl-3", {{}});
  Task& late = *graph_.Find("wfl-3-t0");
  EXPECT_FALSE(dedup_.Consider(late));
  EXPECT_EQ(graph_.Find("wfl-3-t0"), nullptr);  // DONE: its one-task workflow closed
  EXPECT_EQ(counters_.reused.load(), 2u);
}

TEST_F(DedupRoomTest, OffScopeRunsEverythingAndTellsExecutorsNotToShare) {
  dedup_ = MakeDedup("off");
  AddWorkflow("wfl-1", {{}});
  AddWorkflow("wfl-2", {{}});
  Task& a = *graph_.Find("wfl-1-t0");
  Task& b = *graph_.Find("wfl-2-t0");
  EXPECT_TRUE(dedup_.Consider(a));
  EXPECT_TRUE(dedup_.Consider(b));
  EXPECT_EQ(a.dispatch_spec["cache"], "never");
  EXPECT_FALSE(a.dedup_leader);
  EXPECT_EQ(dedup_.flights(), 0u);
}

}  // namespace
}  // namespace flowmesh::scheduler
