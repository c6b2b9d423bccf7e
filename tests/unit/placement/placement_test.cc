#include "placement/placement.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

namespace flowmesh::placement {
namespace {

WorkerSpec Worker(const std::string& id, int slots = 1, double cost = 1.0, const std::string& gpu = "",
                  int gpus = 0, double speed = 1.0, std::vector<std::string> types = {"echo"}) {
  WorkerSpec w;
  w.id = id;
  w.task_types = std::move(types);
  w.gpu_type = gpu;
  w.capacity.cpu = 8;
  w.capacity.memory_mb = 16384;
  w.capacity.gpus = gpus;
  w.slots = slots;
  w.cost_per_hour = cost;
  w.speed = speed;
  return w;
}

TaskRequest Task(uint64_t h, const std::string& org = "o", const std::string& key = "echo", double t = 0) {
  TaskRequest r;
  r.handle = h;
  r.org = org;
  r.batch_key = key;
  r.task_type = "echo";
  r.enqueue_time = t;
  return r;
}

TEST(PlacerTest, PlacesOnTheRequestedGpuType) {
  Placer p;
  p.UpsertWorker(Worker("a100", 1, 3.0, "A100", 1, 2.0, {"infer"}));
  p.UpsertWorker(Worker("l4", 1, 0.8, "L4", 1, 0.5, {"infer"}));
  TaskRequest t = Task(1);
  t.task_type = "infer";
  t.gpu_type = "L4";
  t.demand.gpus = 1;
  ASSERT_TRUE(p.Enqueue(t));
  auto out = p.Schedule(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "l4");
}

TEST(PlacerTest, CpuTaskNeverGoesToAWorkerWithoutItsType) {
  Placer p;
  p.UpsertWorker(Worker("w1", 1, 1.0, "", 0, 1.0, {"other"}));
  ASSERT_TRUE(p.Enqueue(Task(1)));
  EXPECT_TRUE(p.Schedule(0).empty());
  p.UpsertWorker(Worker("w2"));
  auto out = p.Schedule(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "w2");
}

TEST(PlacerTest, BatchesCompatibleTasksUpToFreeSlots) {
  Placer p;
  p.UpsertWorker(Worker("w", 4));
  for (uint64_t i = 1; i <= 6; ++i) p.Enqueue(Task(i, "o", "k", static_cast<double>(i)));
  auto out = p.Schedule(10);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tasks, (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(p.queued(), 2u);
  p.Finished(1, -1, 11);
  out = p.Schedule(11);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tasks, (std::vector<uint64_t>{5}));
}

TEST(PlacerTest, DifferentBatchKeysAreNotMixed) {
  Placer p;
  p.UpsertWorker(Worker("w", 4));
  p.Enqueue(Task(1, "o", "a"));
  p.Enqueue(Task(2, "o", "b"));
  auto out = p.Schedule(0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].tasks.size(), 1u);
  EXPECT_EQ(out[1].tasks.size(), 1u);
}

TEST(PlacerTest, ResourcesLimitTheBatch) {
  Placer p;
  p.UpsertWorker(Worker("w", 8));  // 8 cpus
  for (uint64_t i = 1; i <= 5; ++i) {
    TaskRequest t = Task(i);
    t.demand.cpu = 3;
    p.Enqueue(t);
  }
  auto out = p.Schedule(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tasks.size(), 2u);
}

TEST(PlacerTest, CheaperWorkerWinsWhenNothingElseDiffers) {
  Placer p;
  p.UpsertWorker(Worker("dear", 1, 4.0));
  p.UpsertWorker(Worker("cheap", 1, 1.0));
  p.Enqueue(Task(1));
  auto out = p.Schedule(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "cheap");
}

TEST(PlacerTest, LocalityBeatsACheaperColdWorkerWhenTheUtilitySaysSo) {
  PlacementConfig c;
  c.alpha_locality = 1.0;
  Placer p(c);
  WorkerSpec warm = Worker("warm", 1, 1.5, "L4", 1, 1.0, {"infer"});
  warm.keys = {"hf:llama-1b"};
  p.UpsertWorker(warm);
  p.UpsertWorker(Worker("cold", 1, 1.0, "L4", 1, 1.0, {"infer"}));
  TaskRequest t = Task(1);
  t.task_type = "infer";
  t.category = Category::kInference;
  t.locality_keys = {"hf:llama-1b"};
  p.Enqueue(t);
  auto out = p.Schedule(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "warm");

  // With locality weighted at nothing, the cheaper cold worker wins.
  c.alpha_locality = 0;
  Placer q(c);
  q.UpsertWorker(warm);
  q.UpsertWorker(Worker("cold", 1, 1.0, "L4", 1, 1.0, {"infer"}));
  q.Enqueue(t);
  out = q.Schedule(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "cold");
}

TEST(PlacerTest, TrainingPrefersThroughputInferencePrefersCost) {
  Placer p;
  p.UpsertWorker(Worker("h100", 1, 4.0, "H100", 1, 3.0, {"infer", "train"}));
  p.UpsertWorker(Worker("l4", 1, 0.8, "L4", 1, 0.5, {"infer", "train"}));
  TaskRequest train = Task(1);
  train.task_type = "train";
  train.category = Category::kTraining;
  train.demand.gpus = 1;
  p.Enqueue(train);
  auto out = p.Schedule(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "h100");  // per unit of work h100 is 1.33/h, l4 1.6/h
}

TEST(PlacerTest, WeightedFairShareUnderSaturation) {
  Placer p;
  p.SetOrgPolicy("a", {1.0, 0, 0});
  p.SetOrgPolicy("b", {3.0, 0, 0});
  p.UpsertWorker(Worker("w", 1));
  uint64_t h = 1;
  for (int i = 0; i < 400; ++i) {
    p.Enqueue(Task(h++, "a", "k"));
    p.Enqueue(Task(h++, "b", "k"));
  }
  std::map<uint64_t, bool> is_a;
  for (uint64_t i = 1; i < h; ++i) is_a[i] = (i % 2) == 1;
  int a = 0, b = 0;
  for (int step = 0; step < 400; ++step) {
    auto out = p.Schedule(step);
    ASSERT_EQ(out.size(), 1u);
    for (uint64_t t : out[0].tasks) {
      (is_a[t] ? a : b)++;
      p.Finished(t, 1.0, step + 1);
    }
  }
  double share_a = static_cast<double>(a) / (a + b);
  EXPECT_NEAR(share_a, 0.25, 0.02);
}

TEST(PlacerTest, PriorityOrdersWithinAnOrganisation) {
  Placer p;
  p.UpsertWorker(Worker("w", 1));
  TaskRequest low = Task(1, "o", "k", 0);
  TaskRequest high = Task(2, "o", "k", 5);
  high.priority = 10;
  p.Enqueue(low);
  p.Enqueue(high);
  auto out = p.Schedule(10);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tasks, (std::vector<uint64_t>{2}));
}

TEST(PlacerTest, NoTenantStarvesAnother) {
  Placer p;
  p.UpsertWorker(Worker("w", 1));
  uint64_t h = 1;
  for (int i = 0; i < 1000; ++i) p.Enqueue(Task(h++, "big", "k"));
  p.Enqueue(Task(9999, "small", "k", 5));
  bool small_ran = false;
  for (int step = 0; step < 5 && !small_ran; ++step) {
    for (const auto& pl : p.Schedule(step)) {
      for (uint64_t t : pl.tasks) {
        small_ran |= t == 9999;
        p.Finished(t, 1.0, step);
      }
    }
  }
  EXPECT_TRUE(small_ran);
}

TEST(PlacerTest, QuotaCapsRunningTasks) {
  Placer p;
  p.SetOrgPolicy("o", {1.0, 2, 0});
  p.UpsertWorker(Worker("w", 8));
  for (uint64_t i = 1; i <= 5; ++i) p.Enqueue(Task(i));
  auto out = p.Schedule(0);
  size_t n = 0;
  for (const auto& pl : out) n += pl.tasks.size();
  EXPECT_EQ(n, 2u);
  p.Finished(out[0].tasks[0], -1, 1);
  out = p.Schedule(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tasks.size(), 1u);
}

TEST(PlacerTest, RetryAvoidsTheWorkerThatFailed) {
  Placer p;
  p.UpsertWorker(Worker("a", 1, 1.0));
  p.UpsertWorker(Worker("b", 1, 5.0));
  TaskRequest t = Task(1);
  t.failed_on = {"a"};
  p.Enqueue(t);
  auto out = p.Schedule(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "b");
}

TEST(PlacerTest, RetryWaitsForAnUnfailedBusyWorkerThenFallsBack) {
  Placer p;
  p.UpsertWorker(Worker("a", 1, 1.0));
  p.UpsertWorker(Worker("b", 1, 1.0));
  p.Enqueue(Task(7));
  auto busy = p.Schedule(0);  // task 7 takes one worker
  ASSERT_EQ(busy.size(), 1u);
  std::string other = busy[0].worker_id == "a" ? "b" : "a";
  TaskRequest t = Task(1);
  t.failed_on = {other};
  p.Enqueue(t);
  EXPECT_TRUE(p.Schedule(1).empty());  // waits for the busy, unfailed one
  p.Finished(7, -1, 2);
  auto out = p.Schedule(2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, busy[0].worker_id);

  Placer q;
  q.UpsertWorker(Worker("only"));
  TaskRequest u = Task(2);
  u.failed_on = {"only"};
  q.Enqueue(u);
  out = q.Schedule(0);
  ASSERT_EQ(out.size(), 1u);  // every capable worker failed it: reuse one
  EXPECT_EQ(out[0].worker_id, "only");
}

TEST(PlacerTest, PinnedTasksGoOnlyToTheirWorker) {
  Placer p;
  WorkerSpec named = Worker("wkr-1", 1, 9.0);
  named.names = {"gpu-box"};
  p.UpsertWorker(named);
  p.UpsertWorker(Worker("wkr-2", 1, 1.0));
  TaskRequest t = Task(1);
  t.pinned = {"gpu-box"};
  p.Enqueue(t);
  auto out = p.Schedule(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "wkr-1");
}

TEST(PlacerTest, CordonedWorkersGetNothingUntilUncordoned) {
  Placer p;
  p.UpsertWorker(Worker("w"));
  p.SetCordoned("w", true);
  p.Enqueue(Task(1));
  EXPECT_TRUE(p.Schedule(0).empty());
  p.SetCordoned("w", false);
  EXPECT_EQ(p.Schedule(1).size(), 1u);
}

TEST(PlacerTest, RemovedTasksAreNotPlaced) {
  Placer p;
  p.Enqueue(Task(1));
  p.Enqueue(Task(2));
  EXPECT_TRUE(p.Remove(1));
  EXPECT_FALSE(p.Remove(1));
  p.UpsertWorker(Worker("w", 4));
  auto out = p.Schedule(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tasks, (std::vector<uint64_t>{2}));
}

TEST(PlacerTest, UnplaceableTasksNameWhatWasAskedAndWhatTheFleetOffers) {
  Placer p;
  p.UpsertWorker(Worker("small", 1, 1.0, "", 0));
  TaskRequest t = Task(1);
  t.demand.gpus = 2;
  t.gpu_type = "H100";
  p.Enqueue(t);
  EXPECT_TRUE(p.Schedule(0).empty());
  EXPECT_TRUE(p.FindUnplaceable(5, 30).empty());  // still within the grace period
  auto bad = p.FindUnplaceable(31, 30);
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].handle, 1u);
  EXPECT_NE(bad[0].reason.find("H100"), std::string::npos) << bad[0].reason;
  EXPECT_NE(bad[0].reason.find("gpus=2"), std::string::npos) << bad[0].reason;
  EXPECT_NE(bad[0].reason.find("gpus=0"), std::string::npos) << bad[0].reason;
}

TEST(PlacerTest, RemovedWorkerReleasesAndNewWorkerTakesOver) {
  Placer p;
  p.UpsertWorker(Worker("a"));
  p.Enqueue(Task(1));
  auto out = p.Schedule(0);
  ASSERT_EQ(out.size(), 1u);
  p.RemoveWorker("a");
  p.Finished(1, -1, 1);
  p.Enqueue(Task(1));  // the retry
  EXPECT_TRUE(p.Schedule(1).empty());
  p.UpsertWorker(Worker("b"));
  out = p.Schedule(2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "b");
}

TEST(PlacerTest, ElasticityAsksForWorkersAndRetiresIdleOnes) {
  Placer p;
  ElasticityConfig e;
  e.enabled = true;
  e.max_workers = 3;
  e.min_workers = 1;
  e.idle_timeout_s = 10;
  p.UpsertWorker(Worker("a"), 0);
  for (uint64_t i = 1; i <= 5; ++i) p.Enqueue(Task(i));
  p.Schedule(0);
  EXPECT_EQ(p.Advise(e, 0).start, 2);  // 4 waiting, capped at 3 workers
  for (uint64_t i = 2; i <= 5; ++i) p.Remove(i);
  p.UpsertWorker(Worker("b"), 0);
  p.UpsertWorker(Worker("c"), 0);
  p.Finished(1, -1, 1);
  auto advice = p.Advise(e, 20);
  EXPECT_EQ(advice.start, 0);
  EXPECT_EQ(advice.retire.size(), 2u);  // down to min_workers
}

TEST(PlacerTest, ElasticityCountsOnlyFreeSlotsThatCanHoldTheQueue) {
  // An idle worker with 4 free slots but too little GPU memory for the queued task: the
  // free slots do not absorb it, a new worker is wanted.
  Placer p;
  ElasticityConfig e;
  e.enabled = true;
  WorkerSpec small = Worker("small", 4);
  small.capacity.gpu_memory_mb = 24 * 1024;
  p.UpsertWorker(small, 0);
  TaskRequest big = Task(1);
  big.demand.gpu_memory_mb = 60 * 1024;
  ASSERT_TRUE(p.Enqueue(big));
  EXPECT_TRUE(p.Schedule(0).empty());
  EXPECT_EQ(p.Advise(e, 0).start, 1);
  // One that fits the idle worker is absorbed by its free slots.
  ASSERT_TRUE(p.Remove(1));
  ASSERT_TRUE(p.Enqueue(Task(2)));
  EXPECT_EQ(p.Advise(e, 0).start, 0);
}


// Training: a fast GPU (speed 1, 4/h: 4 per unit of work) and a slow one (speed 0.32,
// 1.8/h: 5.6 per unit), both serving "train"; each task takes the whole worker.
TaskRequest Training(uint64_t h, double est, double t = 0) {
  TaskRequest r = Task(h, "o", "train", t);
  r.task_type = "train";
  r.category = Category::kTraining;
  r.demand.gpus = 1;
  r.est_seconds = est;
  r.est_known = true;
  return r;
}

void AddTrainingFleet(Placer& p) {
  WorkerSpec fast = Worker("h100", 1, 4.0, "H100", 1, 1.0, {"train"});
  WorkerSpec slow = Worker("a100", 1, 1.8, "A100", 1, 0.32, {"train"});
  p.UpsertWorker(fast);
  p.UpsertWorker(slow);
}

TEST(PlacerTest, TrainingWaitsForABusyFasterCheaperWorkerWhenThatFinishesSooner) {
  Placer p;
  AddTrainingFleet(p);
  ASSERT_TRUE(p.Enqueue(Training(1, 900)));
  auto out = p.Schedule(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "h100");  // 900 s there, 2,812 s on the A100
  // At t=100 the H100 is expected free at 900: waiting 800 s + 900 s beats 2,812 s.
  ASSERT_TRUE(p.Enqueue(Training(2, 900, 100)));
  EXPECT_TRUE(p.Schedule(100).empty());
  EXPECT_TRUE(p.Deferred(2));
  EXPECT_EQ(p.deferrals(), 1u);
  // The waiting task does not ask for a new worker.
  ElasticityConfig e;
  e.enabled = true;
  EXPECT_EQ(p.Advise(e, 100).start, 0);
  // A third one would wait 800 + 900 (reserved) + 900 > 0.8 × 2,812: it takes the A100.
  ASSERT_TRUE(p.Enqueue(Training(3, 900, 101)));
  out = p.Schedule(101);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "a100");
  EXPECT_EQ(out[0].tasks, (std::vector<uint64_t>{3}));
  // The H100 frees: the waiting task goes there.
  p.Finished(1, 900, 900);
  out = p.Schedule(900);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "h100");
  EXPECT_EQ(out[0].tasks, (std::vector<uint64_t>{2}));
  EXPECT_FALSE(p.Deferred(2));
}

TEST(PlacerTest, NoWaitWhenTheFreeWorkerFinishesSoonEnough) {
  Placer p;
  AddTrainingFleet(p);
  ASSERT_TRUE(p.Enqueue(Training(1, 900)));
  ASSERT_EQ(p.Schedule(0).size(), 1u);
  // Short job: 30 s on the A100 against 890 s of waiting.
  ASSERT_TRUE(p.Enqueue(Training(2, 10, 10)));
  auto out = p.Schedule(10);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "a100");
}

TEST(PlacerTest, NoWaitForAFasterWorkerThatCostsMorePerUnitOfWork) {
  // Inference: the A100 (0.6 speed, 1.8/h = 3 per unit) is cheaper per unit of work than
  // the H100 (4 per unit); waiting for the H100 would trade cost for time: the utility's call.
  Placer p;
  p.UpsertWorker(Worker("h100", 1, 4.0, "H100", 1, 1.0, {"infer"}));
  p.UpsertWorker(Worker("a100", 1, 1.8, "A100", 1, 0.6, {"infer"}));
  TaskRequest a = Task(1);
  a.task_type = "infer";
  a.category = Category::kInference;
  a.est_seconds = 100;
  a.est_known = true;
  a.pinned = {"h100"};
  ASSERT_TRUE(p.Enqueue(a));
  ASSERT_EQ(p.Schedule(0).size(), 1u);
  TaskRequest b = a;
  b.handle = 2;
  b.pinned.clear();
  b.batch_key = "other";
  ASSERT_TRUE(p.Enqueue(b));
  auto out = p.Schedule(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "a100");
}

TEST(PlacerTest, AWaitingTaskLooksAgainWhenItsWorkerIsOverdueOrGone) {
  Placer p;
  AddTrainingFleet(p);
  ASSERT_TRUE(p.Enqueue(Training(1, 900)));
  ASSERT_EQ(p.Schedule(0).size(), 1u);
  ASSERT_TRUE(p.Enqueue(Training(2, 900, 100)));
  EXPECT_TRUE(p.Schedule(100).empty());
  ASSERT_TRUE(p.Deferred(2));
  // Past the H100's estimate the job there is expected to run as long again; by
  // t = 2,300 waiting (1,400 + 900) no longer beats 0.8 × 2,812 s on the A100.
  EXPECT_TRUE(p.Schedule(899).empty());
  EXPECT_TRUE(p.Schedule(1000).empty());  // overdue by 100 s: 100 + 900 still beats 2,250
  auto out = p.Schedule(2300);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "a100");

  Placer q;
  AddTrainingFleet(q);
  ASSERT_TRUE(q.Enqueue(Training(1, 900)));
  ASSERT_EQ(q.Schedule(0).size(), 1u);
  ASSERT_TRUE(q.Enqueue(Training(2, 900, 100)));
  EXPECT_TRUE(q.Schedule(100).empty());
  q.RemoveWorker("h100");  // preempted: nothing to wait for
  out = q.Schedule(101);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "a100");
}

TEST(PlacerTest, ATaskWithoutAnEstimateNeverWaits) {
  Placer p;
  AddTrainingFleet(p);
  ASSERT_TRUE(p.Enqueue(Training(1, 900)));
  ASSERT_EQ(p.Schedule(0).size(), 1u);
  TaskRequest t = Training(2, 900, 100);
  t.est_known = false;
  ASSERT_TRUE(p.Enqueue(t));
  auto out = p.Schedule(100);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "a100");
}

TEST(PlacerTest, InferenceBatchesStopAtTheFreeDecodeSequences) {
  Placer p;
  WorkerSpec w = Worker("gpu", 8, 1.0, "", 0, 1.0, {"infer", "echo"});
  w.free_sequence_slots = 2;  // its engine is nearly full
  p.UpsertWorker(w);
  for (uint64_t h = 1; h <= 4; ++h) {
    TaskRequest t = Task(h, "o", "m");
    t.task_type = "infer";
    t.category = Category::kInference;
    ASSERT_TRUE(p.Enqueue(t));
  }
  ASSERT_TRUE(p.Enqueue(Task(10, "o", "echo")));  // not inference: only task slots count
  auto out = p.Schedule(0);
  size_t inference = 0, other = 0;
  for (const auto& pl : out) {
    for (uint64_t h : pl.tasks) (h < 10 ? inference : other)++;
  }
  EXPECT_EQ(inference, 2u);
  EXPECT_EQ(other, 1u);
  // One ends: its sequence is free again before the next report.
  p.Finished(1, -1, 1);
  out = p.Schedule(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tasks, (std::vector<uint64_t>{3}));
  // A fresh report of 8 free sequences takes the last one.
  p.SetSequenceSlots("gpu", 8);
  out = p.Schedule(2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tasks, (std::vector<uint64_t>{4}));
}

TEST(PlacerTest, WaitingNeverStrandsATask) {
  // Random training jobs on 2 fast and 3 slow workers, each run to its estimate: every job
  // is placed exactly once and the queue drains, whatever waits and wakes happen between.
  Placer p;
  for (int i = 0; i < 2; ++i) p.UpsertWorker(Worker("fast" + std::to_string(i), 1, 4.0, "H100", 1, 1.0, {"train"}));
  for (int i = 0; i < 3; ++i) p.UpsertWorker(Worker("slow" + std::to_string(i), 1, 1.8, "A100", 1, 0.32, {"train"}));
  std::map<std::string, double> speed = {{"fast0", 1}, {"fast1", 1}, {"slow0", 0.32}, {"slow1", 0.32}, {"slow2", 0.32}};
  uint64_t seed = 12345;
  auto rnd = [&seed] {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(seed >> 11) / static_cast<double>(1ULL << 53);
  };
  std::map<uint64_t, double> est;
  std::multimap<double, uint64_t> ends;  // end time -> handle
  std::set<uint64_t> placed;
  double now = 0;
  uint64_t next = 1;
  for (int step = 0; step < 2000 && (next <= 200 || !ends.empty() || p.queued() > 0); ++step) {
    if (next <= 200 && rnd() < 0.5) {
      double e = 10 + 500 * rnd();
      est[next] = e;
      ASSERT_TRUE(p.Enqueue(Training(next, e, now)));
      ++next;
    }
    for (const auto& pl : p.Schedule(now)) {
      for (uint64_t h : pl.tasks) {
        ASSERT_TRUE(placed.insert(h).second) << "placed twice: " << h;
        ends.emplace(now + est[h] / speed[pl.worker_id], h);
      }
    }
    // Advance to the next end (or a little, while arrivals continue).
    double to = ends.empty() ? now + 5 : std::min(ends.begin()->first, next <= 200 ? now + 5 : ends.begin()->first);
    now = to;
    while (!ends.empty() && ends.begin()->first <= now + 1e-9) {
      p.Finished(ends.begin()->second, -1, now);
      ends.erase(ends.begin());
    }
  }
  EXPECT_EQ(placed.size(), 200u);
  EXPECT_EQ(p.queued(), 0u);
  EXPECT_GT(p.deferrals(), 0u);
}

TEST(PlacerTest, ATaskBecomesUnplaceableWhenItsLastCapableWorkerLeaves) {
  Placer p;
  p.UpsertWorker(Worker("gpu", 1, 1.0, "L4", 1, 1.0, {"infer"}));
  TaskRequest hold = Task(1);
  hold.task_type = "infer";
  hold.demand.gpus = 1;
  ASSERT_TRUE(p.Enqueue(hold));
  ASSERT_EQ(p.Schedule(0).size(), 1u);  // the only GPU worker is busy
  TaskRequest t = Task(2, "o", "other");
  t.task_type = "infer";
  t.demand.gpus = 1;
  ASSERT_TRUE(p.Enqueue(t));
  EXPECT_TRUE(p.FindUnplaceable(100, 60).empty());  // runnable once the worker frees
  EXPECT_TRUE(p.FindUnplaceable(101, 60).empty());  // (not scanned again: same fleet)
  p.RemoveWorker("gpu");
  p.UpsertWorker(Worker("cpu", 4));
  auto u = p.FindUnplaceable(102, 60);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].handle, 2u);
  // No live worker offers the type at all: that is the reason, with what is on offer.
  EXPECT_EQ(u[0].reason.rfind("no worker offers taskType infer; workers offer: ", 0), 0u)
      << u[0].reason;
}

TEST(PlacementOptionsTest, ParsesKeyValueListsAndNamesWhatIsWrong) {
  PlacementConfig c;
  EXPECT_EQ(ParsePlacementOptions(c, "lambda_inference=0.3, alpha_locality=2,candidate_batches=5"), "");
  EXPECT_DOUBLE_EQ(c.lambda_inference, 0.3);
  EXPECT_DOUBLE_EQ(c.alpha_locality, 2);
  EXPECT_EQ(c.candidate_batches, 5);
  EXPECT_EQ(ParsePlacementOptions(c, ""), "");
  // Errors name the key and leave the config as it was.
  std::string e = ParsePlacementOptions(c, "beta_age=0.2,lambda_training=1.5");
  EXPECT_NE(e.find("lambda_training"), std::string::npos) << e;
  EXPECT_DOUBLE_EQ(c.beta_age, 0.1);
  e = ParsePlacementOptions(c, "speediness=3");
  EXPECT_NE(e.find("unknown option 'speediness'"), std::string::npos) << e;
  EXPECT_NE(e.find("defer_gain"), std::string::npos) << e;  // lists the known ones
  EXPECT_NE(ParsePlacementOptions(c, "scan_limit=2.5").find("scan_limit"), std::string::npos);
  EXPECT_NE(ParsePlacementOptions(c, "beta_age=fast").find("not a number"), std::string::npos);
  EXPECT_NE(ParsePlacementOptions(c, "beta_age").find("key=value"), std::string::npos);
  EXPECT_NE(SetPlacementOption(c, "beta_age", std::nan("")), "");
}

TEST(PlacerTest, WaitingCanBeTurnedOff) {
  PlacementConfig c;
  c.defer_gain = 0;
  Placer p(c);
  AddTrainingFleet(p);
  ASSERT_TRUE(p.Enqueue(Training(1, 900)));
  ASSERT_EQ(p.Schedule(0).size(), 1u);
  ASSERT_TRUE(p.Enqueue(Training(2, 900, 100)));
  auto out = p.Schedule(100);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker_id, "a100");
}

}  // namespace
}  // namespace flowmesh::placement
