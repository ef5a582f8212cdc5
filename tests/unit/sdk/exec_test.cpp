// The exec runner and exec functions with real child processes (/bin/sh): stdout as the result,
// the RUNNEL_* environment, exit statuses, stderr as the reason, timeouts that kill the process
// group, the output cap, and waiting without blocking the fiber thread.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <boost/fiber/all.hpp>
#include <fstream>

#include "runnel/functions/exec_function.hpp"
#include "runnel/functions/handlers.hpp"
#include "test_context.hpp"

namespace runnel::functions {
namespace {

using namespace std::chrono_literals;
using testing::ErrorOf;
using ::testing::HasSubstr;
using testing::MakeEvent;
using testing::TestContext;

std::unique_ptr<Function> Shell(const std::string& script,
                                const nlohmann::json& params = nlohmann::json::object()) {
  return MakeExecFunction({"/bin/sh", "-c", script}, "", params, "fn");
}

std::filesystem::path TempPath(const std::string& tag) {
  return std::filesystem::temp_directory_path() / ("runnel-exec-" + tag + "-" + std::to_string(::getpid()));
}

// True once `pid` is gone (or a zombie nobody reaped yet: it no longer runs).
bool Gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

TEST(Exec, StdinInStdoutOut) {
  TestContext ctx;
  const Result r = Shell("tr a-z A-Z")->Handle(MakeEvent("make me loud"), ctx);
  EXPECT_EQ(r.output, "MAKE ME LOUD");
  EXPECT_EQ(r.content_type, "application/octet-stream");
  EXPECT_EQ(Shell("cat")->Handle(MakeEvent(R"({"a":1})"), ctx).content_type, "application/json");
  EXPECT_EQ(Shell("cat", {{"content_type", "text/csv"}})->Handle(MakeEvent("a,b"), ctx).content_type,
            "text/csv");
}

TEST(Exec, HeadersAndParamsArriveAsEnvironmentVariables) {
  TestContext ctx(5s);
  auto event = MakeEvent("", "01HZZZ");
  event.key = "device-7";
  event.envelope.attempt = 3;
  event.envelope.content_type = "text/plain";
  event.envelope.extra = {{"x-tenant", "acme"}, {"trace.user", "bob"}};
  const auto fn = Shell(
      R"(printf '%s|%s|%s|%s|%s|%s|%s|%s|%s' "$RUNNEL_ID" "$RUNNEL_KEY" "$RUNNEL_ATTEMPT" "$RUNNEL_CONTENT_TYPE" )"
      R"("$RUNNEL_HEADER_X_TENANT" "$RUNNEL_HEADER_TRACE_USER" "$RUNNEL_PARAMS" "$RUNNEL_TOPIC/$RUNNEL_PARTITION/$RUNNEL_OFFSET" )"
      R"("${RUNNEL_TIMEOUT_MS:+has-timeout}")",
      {{"level", 2}});
  EXPECT_EQ(fn->Handle(event, ctx).output,
            R"(01HZZZ|device-7|3|text/plain|acme|bob|{"level":2}|t/0/7|has-timeout)");
}

TEST(Exec, AFileReferenceIsTheChildsStdin) {
  const auto path = TempPath("input");
  std::ofstream(path) << "from the file";
  TestContext ctx;
  auto event = MakeEvent("");
  event.envelope.file = FileRef{path.string(), std::nullopt, "in.txt"};
  EXPECT_EQ(Shell(R"(printf '%s:%s:' "$RUNNEL_FILE" "$RUNNEL_FILE_NAME"; cat)")->Handle(event, ctx).output,
            path.string() + ":in.txt:from the file");
  std::filesystem::remove(path);
  EXPECT_EQ(ErrorOf([&] { Shell("cat")->Handle(event, ctx); }).Code(), Errc::kBadInput);
}

TEST(Exec, AUrlReferenceIsGivenToTheProgramWithAnEmptyStdin) {
  TestContext ctx;
  auto event = MakeEvent("");
  event.envelope.file = FileRef{{}, std::nullopt, "in.jpg", "https://b.example/in.jpg?X-Amz-Signature=abc"};
  EXPECT_EQ(Shell(R"(printf '%s|%s|%s|' "$RUNNEL_FILE_URL" "${RUNNEL_FILE-unset}" "$RUNNEL_FILE_NAME"; cat)")
                ->Handle(event, ctx)
                .output,
            "https://b.example/in.jpg?X-Amz-Signature=abc|unset|in.jpg|");
}

TEST(Exec, NonZeroExitIsRetriedWithStderrAsTheReason) {
  TestContext ctx;
  auto e = ErrorOf([&] { Shell("echo 'database is down' >&2; exit 1")->Handle(MakeEvent(""), ctx); });
  EXPECT_EQ(e.Code(), Errc::kTransient);
  EXPECT_STREQ(e.what(), "database is down");
  e = ErrorOf([&] { Shell("exit 9")->Handle(MakeEvent(""), ctx); });
  EXPECT_THAT(e.what(), HasSubstr("exited with status 9"));
}

TEST(Exec, ExitTwoIsBadInput) {
  TestContext ctx;
  const auto e = ErrorOf([&] { Shell("echo 'not a reading' >&2; exit 2")->Handle(MakeEvent(""), ctx); });
  EXPECT_EQ(e.Code(), Errc::kBadInput);
  EXPECT_FALSE(e.Retriable());
  EXPECT_STREQ(e.what(), "not a reading");
}

TEST(Exec, OnlyTheLastFourKibOfStderrAreKept) {
  TestContext ctx;
  const auto e = ErrorOf([&] {
    Shell(
        "i=0; while [ $i -lt 2000 ]; do printf 'noise-noise ' >&2; i=$((i+1)); done; echo THE-END >&2; exit "
        "1")
        ->Handle(MakeEvent(""), ctx);
  });
  const std::string what = e.what();
  EXPECT_LE(what.size(), 4096u);
  EXPECT_GT(what.size(), 4000u);
  EXPECT_THAT(what, ::testing::EndsWith("THE-END"));
}

TEST(Exec, ASignalIsAnInternalError) {
  TestContext ctx;
  const auto e = ErrorOf([&] { Shell("kill -SEGV $$")->Handle(MakeEvent(""), ctx); });
  EXPECT_EQ(e.Code(), Errc::kInternal);
  EXPECT_THAT(e.what(), HasSubstr("killed by signal 11"));
}

TEST(Exec, ATimeoutKillsTheWholeProcessGroup) {
  const auto pidfile = TempPath("pid");
  TestContext ctx(300ms);
  // The shell starts a grandchild that would outlive it, reports its pid, then waits.
  const auto e = ErrorOf([&] {
    Shell("sleep 60 & echo $! > " + pidfile.string() + "; echo 'still going' >&2; wait")
        ->Handle(MakeEvent(""), ctx);
  });
  EXPECT_EQ(e.Code(), Errc::kTimeout);
  EXPECT_THAT(e.what(), HasSubstr("ran past its deadline and was killed; stderr: still going"));
  pid_t grandchild = 0;
  std::ifstream(pidfile) >> grandchild;
  ASSERT_GT(grandchild, 0);
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!Gone(grandchild) && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(Gone(grandchild)) << "the grandchild " << grandchild << " survived the timeout";
  std::filesystem::remove(pidfile);
}

TEST(Exec, BackgroundProcessesDoNotOutliveASuccessfulCall) {
  const auto pidfile = TempPath("bg");
  TestContext ctx(10s);
  // The background child keeps no pipe open, so the call ends when the shell does.
  EXPECT_EQ(Shell("sleep 60 >/dev/null 2>&1 & echo $! > " + pidfile.string() + "; echo done")
                ->Handle(MakeEvent(""), ctx)
                .output,
            "done\n");
  pid_t background = 0;
  std::ifstream(pidfile) >> background;
  ASSERT_GT(background, 0);
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!Gone(background) && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(Gone(background));
  std::filesystem::remove(pidfile);
}

TEST(Exec, OutputPastMaxOutputIsALimitError) {
  TestContext ctx(10s);
  const auto e = ErrorOf([&] { Shell("yes", {{"max_output", 1000}})->Handle(MakeEvent(""), ctx); });
  EXPECT_EQ(e.Code(), Errc::kLimitExceeded);
  EXPECT_THAT(e.what(), HasSubstr("more than max_output 1000 bytes"));
}

TEST(Exec, AChildThatIgnoresALargeStdinDoesNotHurtTheWorker) {
  TestContext ctx(10s);
  EXPECT_EQ(Shell("echo ignored")->Handle(MakeEvent(std::string(4 << 20, 'x')), ctx).output, "ignored\n");
}

TEST(Exec, BadParamsAndMissingProgramsAreConfigErrors) {
  EXPECT_EQ(ErrorOf([] { Shell("cat", {{"max_output", 0}}); }).Code(), Errc::kBadConfig);
  EXPECT_EQ(ErrorOf([] { Shell("cat", {{"content_type", 5}}); }).Code(), Errc::kBadConfig);
  const auto e = ErrorOf([] { CreateFunction("exec:/no/such/program --flag", {}); });
  EXPECT_EQ(e.Code(), Errc::kBadConfig);
  EXPECT_THAT(e.what(), HasSubstr("program '/no/such/program' does not exist"));
}

TEST(Exec, RelativeProgramsResolveAgainstTheHandlerDirAndRunThere) {
  const auto dir = TempPath("dir");
  std::filesystem::create_directories(dir);
  {
    std::ofstream script(dir / "hello.sh");
    script << "#!/bin/sh\nprintf '%s' \"$(pwd)\"\n";
  }
  std::filesystem::permissions(dir / "hello.sh", std::filesystem::perms::owner_all);
  TestContext ctx;
  auto fn = CreateFunction("exec:./hello.sh", {}, {"hello", dir.string()});
  EXPECT_EQ(fn->Handle(MakeEvent(""), ctx).output, std::filesystem::canonical(dir).string());
  std::filesystem::remove_all(dir);
}

// The call waits on a helper thread without blocking the fiber's thread: a second fiber on the
// same thread must run while the child waits for it (for the file it creates).
TEST(Exec, TheFibersThreadKeepsRunningWhileTheChildRuns) {
  const auto flag = TempPath("flag");
  std::filesystem::remove(flag);
  auto fn = Shell("while [ ! -e " + flag.string() + " ]; do sleep 0.01; done; echo released");
  std::string output;
  boost::fibers::fiber caller([&] {
    TestContext ctx(20s);
    output = fn->Handle(MakeEvent(""), ctx).output;
  });
  boost::fibers::fiber releaser([&] {
    boost::this_fiber::sleep_for(20ms);
    std::ofstream(flag) << "go";
  });
  releaser.join();
  caller.join();
  EXPECT_EQ(output, "released\n");
  std::filesystem::remove(flag);
}

// ---- outputs and emits through $RUNNEL_CONTROL_FILE

TEST(Exec, ControlFileListsOutputsAndEmitsRecordsAfterSuccess) {
  TestContext ctx;
  const auto fn = Shell(R"(mkdir -p "$RUNNEL_OUTPUT_DIR" && printf 'thumb' > "$RUNNEL_OUTPUT_DIR/a.txt" &&
    echo '{"output": "a.txt", "facts": {"kind": "demo"}}' >> "$RUNNEL_CONTROL_FILE" &&
    echo '{"emit": {"topic": "next", "key": "k1", "payload": "hello", "headers": {"x-step": "2"}}}' >> "$RUNNEL_CONTROL_FILE" &&
    printf done)");
  const Result r = fn->Handle(MakeEvent("", "ev-ctl"), ctx);
  EXPECT_EQ(r.output, "done");
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].path, (ctx.Outputs().Root() / "fn" / "ev-ctl" / "a.txt").string());
  EXPECT_EQ(r.files[0].bytes, 5u);
  EXPECT_EQ(r.files[0].facts, nlohmann::json({{"kind", "demo"}}));
  ASSERT_EQ(ctx.emitted.size(), 1u);
  EXPECT_EQ(ctx.emitted[0].topic, "next");
  EXPECT_EQ(ctx.emitted[0].key, "k1");
  EXPECT_EQ(ctx.emitted[0].payload, "hello");
  EXPECT_EQ(ctx.emitted[0].headers, (Headers{{"x-step", "2"}}));
  std::filesystem::remove_all(ctx.Outputs().Root() / "fn" / "ev-ctl");
}

TEST(Exec, AFailedCallEmitsNothingAndTheControlFileIsRemoved) {
  TestContext ctx;
  const auto marker = TempPath("control");
  const auto fn =
      Shell("echo \"$RUNNEL_CONTROL_FILE\" > " + marker.string() +
            R"( && echo '{"emit": {"topic": "t", "payload": "x"}}' >> "$RUNNEL_CONTROL_FILE" && exit 2)");
  EXPECT_EQ(ErrorOf([&] { fn->Handle(MakeEvent(""), ctx); }).Code(), Errc::kBadInput);
  EXPECT_TRUE(ctx.emitted.empty());
  std::ifstream in(marker);
  std::string control;
  std::getline(in, control);
  ASSERT_FALSE(control.empty());
  EXPECT_FALSE(std::filesystem::exists(control));
  std::filesystem::remove(marker);
}

TEST(Exec, ABadControlLineFailsTheCallNamingTheLineAndEmitsNothing) {
  TestContext ctx;
  struct Case {
    std::string lines;
    std::string message;
  };
  const Case cases[] = {
      {R"({"emit": {"topic": "t", "payload": "ok"}}\nnot json)",
       "RUNNEL_CONTROL_FILE line 2: not valid JSON"},
      {R"({"output": "../escape"})", "line 1: output '../escape' is not a plain file name"},
      {R"({"output": "missing.txt"})", "line 1: output"},
      {R"({"emit": {"topic": "t"}})", "line 1: \"payload\" is missing"},
      {R"({"emit": {"topic": "t", "payload": "x", "partition": 1}})", "unknown key \"partition\""},
      {R"({"publish": 1})", "line 1: unknown request"},
  };
  for (const Case& c : cases) {
    // The lines are printf's format: \n in them is a line break.
    const auto fn = Shell("printf '" + c.lines + "\\n' > \"$RUNNEL_CONTROL_FILE\"");
    const auto e = ErrorOf([&] { fn->Handle(MakeEvent(""), ctx); });
    EXPECT_EQ(e.Code(), Errc::kInternal) << c.lines;
    EXPECT_THAT(e.what(), HasSubstr(c.message)) << c.lines;
  }
  EXPECT_TRUE(ctx.emitted.empty());
}

// ---- batches: one run of the program per batch

// Upper-cases each event's payload; "bad" is bad input; "binary" input arrives as base64; the
// first event also gets an output file and an emitted record.
constexpr const char* kBatchProgram = R"(
import json, os, sys
assert os.environ["RUNNEL_BATCH"] == "4"
control = open(os.environ["RUNNEL_CONTROL_FILE"], "a")
for n, text in enumerate(sys.stdin):
    e = json.loads(text)
    if "payload_base64" in e:
        print(json.dumps({"id": e["id"], "output": {"base64": e["payload_base64"]}}))
    elif e["payload"] == "bad":
        print(json.dumps({"id": e["id"], "error": "bad is bad", "kind": "bad-input"}))
    else:
        print(json.dumps({"id": e["id"], "output": e["payload"].upper()}))
    if n == 0:
        os.makedirs(e["output_dir"], exist_ok=True)
        open(os.path.join(e["output_dir"], "first.txt"), "w").write(e["key"])
        control.write(json.dumps({"output": "first.txt", "event": e["id"]}) + "\n")
        control.write(json.dumps({"emit": {"topic": "next", "payload": e["id"]}}) + "\n")
)";

std::vector<Event> BatchEvents() {
  std::vector<Event> events = {MakeEvent("one", "b1"), MakeEvent("bad", "b2"), MakeEvent("three", "b3"),
                               MakeEvent(std::string("\xff\x00", 2), "b4")};
  events[0].key = "k1";
  return events;
}

TEST(Exec, ABatchIsOneRunWithAResultLinePerEvent) {
  TestContext ctx;
  const auto fn =
      MakeExecFunction({"/usr/bin/python3", "-c", kBatchProgram}, "", nlohmann::json::object(), "fn");
  // One event per run unless runnel.yaml's `batch` key (the program's declaration) says more.
  EXPECT_EQ(fn->Batch().size, 1u);
  EXPECT_TRUE(fn->TakesBatches());
  const std::vector<Event> events = BatchEvents();
  const std::vector<ResultOrError> outcomes = fn->HandleBatch(events, ctx);
  ASSERT_EQ(outcomes.size(), 4u);
  ASSERT_TRUE(outcomes[0].result) << outcomes[0].error->what();
  EXPECT_EQ(outcomes[0].result->output, "ONE");
  EXPECT_EQ(outcomes[0].result->content_type, "text/plain");
  ASSERT_EQ(outcomes[0].result->files.size(), 1u);
  EXPECT_EQ(outcomes[0].result->files[0].path, (ctx.Outputs().Root() / "fn" / "b1" / "first.txt").string());
  EXPECT_EQ(outcomes[0].result->files[0].bytes, 2u);
  ASSERT_TRUE(outcomes[1].error);
  EXPECT_EQ(outcomes[1].error->Code(), Errc::kBadInput);
  EXPECT_STREQ(outcomes[1].error->what(), "bad is bad");
  ASSERT_TRUE(outcomes[2].result);
  EXPECT_EQ(outcomes[2].result->output, "THREE");
  EXPECT_TRUE(outcomes[2].result->files.empty());
  ASSERT_TRUE(outcomes[3].result);
  EXPECT_EQ(outcomes[3].result->output, R"({"base64":"/wA="})");
  EXPECT_EQ(outcomes[3].result->content_type, "application/json");
  ASSERT_EQ(ctx.emitted.size(), 1u);
  EXPECT_EQ(ctx.emitted[0].payload, "b1");
  std::filesystem::remove_all(ctx.Outputs().Root() / "fn" / "b1");
}

TEST(Exec, ABatchLineCarriesAUrlReferenceAsFileUrl) {
  TestContext ctx;
  const auto fn = MakeExecFunction({"/usr/bin/python3", "-c", R"(
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    print(json.dumps({"id": e["id"], "output": e["file"]}))
)"},
                                   "", nlohmann::json::object(), "fn");
  std::vector<Event> events = {MakeEvent("", "u1"), MakeEvent("", "f1")};
  events[0].envelope.file = FileRef{{}, std::nullopt, "a.jpg", "https://b.example/a.jpg?sig=1"};
  events[1].envelope.file = FileRef{"/data/b.jpg", 7, "b.jpg"};
  const std::vector<ResultOrError> outcomes = fn->HandleBatch(events, ctx);
  ASSERT_EQ(outcomes.size(), 2u);
  ASSERT_TRUE(outcomes[0].result) << outcomes[0].error->what();
  EXPECT_EQ(nlohmann::json::parse(outcomes[0].result->output),
            nlohmann::json({{"url", "https://b.example/a.jpg?sig=1"}, {"name", "a.jpg"}}));
  ASSERT_TRUE(outcomes[1].result) << outcomes[1].error->what();
  EXPECT_EQ(nlohmann::json::parse(outcomes[1].result->output),
            nlohmann::json({{"path", "/data/b.jpg"}, {"name", "b.jpg"}, {"size", 7}}));
}

TEST(Exec, ABatchRunThatFailsFailsEveryEventAndAMissingLineFailsItsEvent) {
  TestContext ctx;
  const nlohmann::json batch = nlohmann::json::object();
  const std::vector<Event> events = BatchEvents();
  for (const ResultOrError& o : Shell("echo broken >&2; exit 1", batch)->HandleBatch(events, ctx)) {
    ASSERT_TRUE(o.error);
    EXPECT_EQ(o.error->Code(), Errc::kTransient);
    EXPECT_STREQ(o.error->what(), "broken");
  }
  const auto partial = Shell(R"(echo '{"id": "b3", "output": 1}')", batch)->HandleBatch(events, ctx);
  ASSERT_TRUE(partial[2].result);
  EXPECT_EQ(partial[2].result->output, "1");
  ASSERT_TRUE(partial[0].error);
  EXPECT_EQ(partial[0].error->Code(), Errc::kInternal);
  EXPECT_THAT(partial[0].error->what(), HasSubstr("no result line for this event"));
  const auto garbled =
      Shell(R"(echo '{"id": "b3", "output": 1, "extra": 2}')", batch)->HandleBatch(events, ctx);
  for (const ResultOrError& o : garbled) {
    ASSERT_TRUE(o.error);
    EXPECT_THAT(o.error->what(), HasSubstr("batch stdout line 1: unknown key \"extra\""));
  }
  const auto e = ErrorOf([] { Shell("true", {{"batch", {{"max_events", 4}}}}); });
  EXPECT_EQ(e.Code(), Errc::kBadConfig);
  EXPECT_STREQ(e.what(),
               "exec: params.batch is no longer a param: set the function's batch key instead, e.g. batch: "
               "{size: 100, window: 500ms} (docs/config.md)");
}

}  // namespace
}  // namespace runnel::functions
