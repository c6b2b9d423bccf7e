// Worker::Run against an in-process fake WorkerSupervisor service.
#include "worker/worker.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <future>

#include "flowmesh/v1/worker.grpc.pb.h"

namespace flowmesh::worker {
namespace {

// Accepts one worker; `on_connect` decides what happens on its stream after the Hello.
class FakeSupervisor : public v1::WorkerSupervisor::Service {
 public:
  using OnConnect = std::function<grpc::Status(
      grpc::ServerReaderWriter<v1::SupervisorMessage, v1::WorkerMessage>*)>;
  std::string required_token;
  OnConnect on_connect;
  std::promise<v1::WorkerInfo> registered;

  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest* request,
                        v1::RegisterReply* reply) override {
    if (!required_token.empty() && request->token() != required_token) {
      return {grpc::StatusCode::UNAUTHENTICATED, "bad token"};
    }
    registered.set_value(request->info());
    reply->set_worker_id("wkr-test");
    reply->set_root_url("http://127.0.0.1:1");
    reply->set_heartbeat_interval_ms(50);
    return grpc::Status::OK;
  }
  grpc::Status Connect(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::SupervisorMessage, v1::WorkerMessage>* stream) override {
    v1::WorkerMessage hello;
    if (!stream->Read(&hello) || !hello.has_hello() || hello.worker_id() != "wkr-test") {
      return {grpc::StatusCode::FAILED_PRECONDITION, "expected Hello"};
    }
    return on_connect(stream);
  }
};

class WorkerRunTest : public ::testing::Test {
 protected:
  void StartServer() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }
  WorkerConfig Config() {
    WorkerConfig c;
    c.supervisor = "127.0.0.1:" + std::to_string(port_);
    c.name = "cpu-test";
    c.slots = 2;
    c.tags = {"a"};
    c.register_timeout = std::chrono::milliseconds(3000);
    return c;
  }

  FakeSupervisor fake_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(WorkerRunTest, StreamLossExitsNonZero) {
  fake_.on_connect = [](auto*) { return grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone"); };
  StartServer();
  Worker worker(Config(), executors::BuiltinExecutors());
  EXPECT_EQ(worker.Run(), kExitStreamLost);
  v1::WorkerInfo info = fake_.registered.get_future().get();
  EXPECT_EQ(info.name(), "cpu-test");
  EXPECT_EQ(info.alias(), "cpu-test");
  EXPECT_EQ(info.slots(), 2);
  EXPECT_GT(info.cpu_cores(), 0);
  EXPECT_EQ(info.pid(), static_cast<int>(::getpid()));
  EXPECT_EQ(std::vector<std::string>(info.task_types().begin(), info.task_types().end()),
            (std::vector<std::string>{"api", "data_profiling", "echo"}));
}

TEST_F(WorkerRunTest, StopMessageFailsRunningTaskAndExitsZero) {
  fake_.on_connect = [](auto* stream) {
    v1::SupervisorMessage task;
    task.mutable_task()->set_task_id("tsk-1");
    task.mutable_task()->set_attempt(1);
    task.mutable_task()->set_task_type("echo");
    task.mutable_task()->set_spec_json(R"({"echo":{"sleep_seconds":60}})");
    stream->Write(task);
    stream->Write(task);  // duplicate: ignored
    v1::WorkerMessage m;
    bool started = false, heartbeat_named_task = false;
    while (!(started && heartbeat_named_task) && stream->Read(&m)) {
      if (m.has_event() && m.event().type() == "TASK_STARTED") started = true;
      if (m.has_heartbeat() && m.heartbeat().running_task_ids_size() == 1) {
        heartbeat_named_task = true;
      }
    }
    v1::SupervisorMessage stop;
    stop.mutable_stop()->set_reason("test");
    stream->Write(stop);
    std::vector<std::string> terminal;
    while (stream->Read(&m)) {
      if (m.has_event() && m.event().type() != "TASK_LOG") terminal.push_back(m.event().type());
      if (m.has_event()) {
        EXPECT_TRUE(m.event().retryable());
      }
    }
    EXPECT_EQ(terminal, std::vector<std::string>{"TASK_FAILED"});  // once, despite the duplicate
    return grpc::Status::OK;
  };
  StartServer();
  Worker worker(Config(), executors::BuiltinExecutors());
  EXPECT_EQ(worker.Run(), kExitOk);
}

TEST_F(WorkerRunTest, RequestStopEndsRun) {
  std::promise<void> connected;
  fake_.on_connect = [&](auto* stream) {
    connected.set_value();
    v1::WorkerMessage m;
    while (stream->Read(&m)) {
    }
    return grpc::Status::OK;
  };
  StartServer();
  Worker worker(Config(), executors::BuiltinExecutors());
  auto run = std::async(std::launch::async, [&] { return worker.Run(); });
  connected.get_future().wait();
  worker.RequestStop();
  EXPECT_EQ(run.get(), kExitOk);
}

TEST_F(WorkerRunTest, RejectedTokenFailsFast) {
  fake_.required_token = "secret";
  StartServer();
  WorkerConfig config = Config();
  config.token = "wrong";
  config.register_timeout = std::chrono::seconds(60);
  auto start = std::chrono::steady_clock::now();
  Worker worker(config, executors::BuiltinExecutors());
  EXPECT_EQ(worker.Run(), kExitRegisterFailed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(WorkerRunTest, GivesUpWhenNoSupervisorAnswers) {
  StartServer();
  WorkerConfig config = Config();
  server_->Shutdown(std::chrono::system_clock::now());
  server_.reset();
  config.register_timeout = std::chrono::milliseconds(500);
  Worker worker(config, executors::BuiltinExecutors());
  EXPECT_EQ(worker.Run(), kExitRegisterFailed);
}

}  // namespace
}  // namespace flowmesh::worker
