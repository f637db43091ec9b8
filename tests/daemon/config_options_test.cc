#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "daemon/config/options.h"

namespace mnemo::daemon::config {
namespace {

struct Env {
  std::map<std::string, std::string> vars;
  Getenv fn() const {
    return [this](const std::string& name) -> std::optional<std::string> {
      auto it = vars.find(name);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }
};

Options run(std::vector<std::string> args, const Env& env = {}) { return parse(args, env.fn()); }

// The ConfigError message of a parse that must fail.
std::string error_of(std::vector<std::string> args, const Env& env = {}) {
  try {
    run(std::move(args), env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError";
  return "";
}

TEST(ConfigOptions, DefaultsWithEmptyEnvironment) {
  const Options o = run({});
  EXPECT_FALSE(o.model.has_value());
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 8420);
  EXPECT_EQ(o.kv_cache_bytes, int64_t(1) << 30);
  EXPECT_EQ(o.threads, 0);
  EXPECT_EQ(o.weights, Weights::Resident);
  EXPECT_EQ(o.weights_dtype, WeightsDType::Auto);
  EXPECT_EQ(o.log_level, LogLevel::Info);
  EXPECT_TRUE(o.api_key.empty());
  EXPECT_FALSE(o.log_file.has_value());
  EXPECT_EQ(o.max_frame_bytes, int64_t(4) << 20);
  EXPECT_FALSE(o.help);
}

TEST(ConfigOptions, DataDirDefaultsToMnemoHomeThenHomeCache) {
  Env env;
  env.vars["HOME"] = "/home/ada";
  EXPECT_EQ(run({}, env).data_dir, "/home/ada/.cache/mnemo");
  env.vars["MNEMO_HOME"] = "/srv/mnemo";
  EXPECT_EQ(run({}, env).data_dir, "/srv/mnemo");
  env.vars["MNEMO_DATA_DIR"] = "/var/lib/mnemo";
  EXPECT_EQ(run({}, env).data_dir, "/var/lib/mnemo");
  EXPECT_EQ(run({"--data-dir", "/tmp/d"}, env).data_dir, "/tmp/d");
}

TEST(ConfigOptions, EveryFlagHasItsVariable) {
  Env env;
  env.vars = {{"MNEMO_MODEL", "/m"},           {"MNEMO_HOST", "0.0.0.0"},       {"MNEMO_PORT", "9000"},
              {"MNEMO_DATA_DIR", "/d"},        {"MNEMO_API_KEY", "k1"},         {"MNEMO_KV_CACHE_BYTES", "2G"},
              {"MNEMO_LOG_LEVEL", "debug"},    {"MNEMO_LOG_FILE", "/l.log"},    {"MNEMO_THREADS", "3"},
              {"MNEMO_WEIGHTS", "mapped"},     {"MNEMO_CHAT_TEMPLATE", "chatml"}, {"MNEMO_MAX_SESSIONS", "7"},
              {"MNEMO_MAX_CONNECTIONS", "8"},  {"MNEMO_MAX_FRAME_BYTES", "64K"}, {"MNEMO_MAX_BODY_BYTES", "1M"},
              {"MNEMO_OUTBOUND_QUEUE", "9"},   {"MNEMO_MAX_QUEUED_REQUESTS", "10"}, {"MNEMO_TOKEN_BUDGET", "11"},
              {"MNEMO_WEIGHTS_DTYPE", "q8_0"}};
  const Options o = run({}, env);
  EXPECT_EQ(o.model, std::filesystem::path("/m"));
  EXPECT_EQ(o.host, "0.0.0.0");
  EXPECT_EQ(o.port, 9000);
  EXPECT_EQ(o.data_dir, "/d");
  EXPECT_EQ(o.api_key, "k1");
  EXPECT_EQ(o.kv_cache_bytes, int64_t(2) << 30);
  EXPECT_EQ(o.log_level, LogLevel::Debug);
  EXPECT_EQ(o.log_file, std::filesystem::path("/l.log"));
  EXPECT_EQ(o.threads, 3);
  EXPECT_EQ(o.weights, Weights::Mapped);
  EXPECT_EQ(o.weights_dtype, WeightsDType::Q8_0);
  EXPECT_EQ(o.chat_template, "chatml");
  EXPECT_EQ(o.max_sessions, 7);
  EXPECT_EQ(o.max_connections, 8);
  EXPECT_EQ(o.max_frame_bytes, 64 << 10);
  EXPECT_EQ(o.max_body_bytes, 1 << 20);
  EXPECT_EQ(o.outbound_queue, 9);
  EXPECT_EQ(o.max_queued_requests, 10);
  EXPECT_EQ(o.token_budget, 11);
}

TEST(ConfigOptions, ConnectionAdmissionFlags) {
  const Options d = run({});
  EXPECT_EQ(d.max_pending_connections, 256);
  EXPECT_EQ(d.header_timeout_s, 5);
  Env env;
  env.vars = {{"MNEMO_MAX_PENDING_CONNECTIONS", "16"}, {"MNEMO_HEADER_TIMEOUT", "2"}};
  const Options o = run({}, env);
  EXPECT_EQ(o.max_pending_connections, 16);
  EXPECT_EQ(o.header_timeout_s, 2);
  EXPECT_EQ(run({"--header-timeout=9", "--max-pending-connections", "3"}, env).header_timeout_s, 9);
  EXPECT_NE(error_of({"--header-timeout", "0"}).find("--header-timeout"), std::string::npos);
  EXPECT_NE(error_of({"--max-pending-connections", "0"}).find("--max-pending-connections"), std::string::npos);
  const std::string h = help_text();
  EXPECT_NE(h.find("--max-pending-connections N   (MNEMO_MAX_PENDING_CONNECTIONS; default: 256)"), std::string::npos);
  EXPECT_NE(h.find("--header-timeout SECONDS   (MNEMO_HEADER_TIMEOUT; default: 5)"), std::string::npos);
  EXPECT_NE(h.find("Connection limits:"), std::string::npos);
  EXPECT_NE(describe(o).find("max_pending_connections=16"), std::string::npos);
}

TEST(ConfigOptions, FlagWinsOverVariable) {
  Env env;
  env.vars = {{"MNEMO_PORT", "9000"}, {"MNEMO_LOG_LEVEL", "debug"}, {"MNEMO_API_KEY", "from-env"}};
  const Options o = run({"--port", "9001", "--log-level=warn"}, env);
  EXPECT_EQ(o.port, 9001);
  EXPECT_EQ(o.log_level, LogLevel::Warn);
  EXPECT_EQ(o.api_key, "from-env");
}

TEST(ConfigOptions, OverriddenBadVariableIsNotAnError) {
  Env env;
  env.vars["MNEMO_PORT"] = "not-a-port";
  EXPECT_EQ(run({"--port", "1234"}, env).port, 1234);
}

TEST(ConfigOptions, EmptyVariableCountsAsUnset) {
  Env env;
  env.vars = {{"MNEMO_PORT", ""}, {"MNEMO_HOST", ""}};
  const Options o = run({}, env);
  EXPECT_EQ(o.port, 8420);
  EXPECT_EQ(o.host, "127.0.0.1");
}

TEST(ConfigOptions, LastRepeatedFlagWins) { EXPECT_EQ(run({"--port", "1", "--port", "2"}).port, 2); }

TEST(ConfigOptions, PortZeroMeansAnyFreePort) { EXPECT_EQ(run({"--port", "0"}).port, 0); }

TEST(ConfigOptions, HelpIsReportedNotThrown) {
  EXPECT_TRUE(run({"--help"}).help);
  EXPECT_TRUE(run({"--port", "1", "-h"}).help);
}

TEST(ConfigOptions, HelpListsEveryFlagWithItsVariableAndDefault) {
  const std::string h = help_text();
  for (const char* flag : {"model", "host", "port", "data-dir", "api-key", "kv-cache-bytes", "kv-dtype", "log-level",
                           "log-file", "threads", "weights", "weights-dtype", "chat-template", "max-sessions",
                           "max-connections",
                           "max-frame-bytes", "max-body-bytes", "outbound-queue", "max-queued-requests",
                           "token-budget"}) {
    EXPECT_NE(h.find(std::string("--") + flag + " "), std::string::npos) << flag;
    std::string var = std::string("MNEMO_") + flag;
    for (char& c : var) c = c == '-' ? '_' : char(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_NE(h.find(var), std::string::npos) << var;
  }
  EXPECT_NE(h.find("(MNEMO_PORT; default: 8420)"), std::string::npos);
  EXPECT_NE(h.find("MNEMO_HOME"), std::string::npos);
}

TEST(ConfigOptions, ByteSizeSuffixes) {
  EXPECT_EQ(parse_byte_size("x", "1048576"), 1048576);
  EXPECT_EQ(parse_byte_size("x", "512K"), 512 << 10);
  EXPECT_EQ(parse_byte_size("x", "512M"), int64_t(512) << 20);
  EXPECT_EQ(parse_byte_size("x", "2G"), int64_t(2) << 30);
  EXPECT_EQ(parse_byte_size("x", "2g"), int64_t(2) << 30);
  EXPECT_EQ(parse_byte_size("x", "3T"), int64_t(3) << 40);
  EXPECT_EQ(parse_byte_size("x", "64KiB"), 64 << 10);
  EXPECT_EQ(parse_byte_size("x", "64MB"), int64_t(64) << 20);
  EXPECT_EQ(parse_byte_size("x", "100B"), 100);
  for (const char* bad : {"", "G", "1.5G", "-1", "12X", "1GG", " 1G", "99999999999999999999", "16777216T"})
    EXPECT_THROW(parse_byte_size("x", bad), ConfigError) << bad;
  EXPECT_EQ(run({"--kv-cache-bytes", "512M"}).kv_cache_bytes, int64_t(512) << 20);
}

TEST(ConfigOptions, KvDtypeDefaultsToBf16AndRefusesOtherTypes) {
  EXPECT_EQ(run({}).kv_dtype, kernels::KvDType::BF16);
  EXPECT_EQ(run({"--kv-dtype", "f32"}).kv_dtype, kernels::KvDType::F32);
  Env env;
  env.vars["MNEMO_KV_DTYPE"] = "f32";
  EXPECT_EQ(run({}, env).kv_dtype, kernels::KvDType::F32);
  EXPECT_EQ(run({"--kv-dtype", "bf16"}, env).kv_dtype, kernels::KvDType::BF16);
  EXPECT_EQ(error_of({"--kv-dtype", "fp8"}), "--kv-dtype: expected bf16 or f32, got 'fp8'");
  EXPECT_EQ(error_of({"--kv-dtype", "BF16"}), "--kv-dtype: expected bf16 or f32, got 'BF16'");
  EXPECT_NE(help_text().find("--kv-dtype bf16|f32"), std::string::npos);
}

TEST(ConfigOptions, UnknownFlagIsNamed) {
  EXPECT_EQ(error_of({"--prot", "1"}), "unknown flag '--prot' (see --help)");
  EXPECT_NE(error_of({"serve"}).find("unexpected argument 'serve'"), std::string::npos);
  EXPECT_NE(error_of({"--"}).find("unexpected argument '--'"), std::string::npos);
}

TEST(ConfigOptions, MissingValueIsNamed) {
  EXPECT_NE(error_of({"--port"}).find("--port needs a value"), std::string::npos);
  EXPECT_NE(error_of({"--api-key", "--port", "1"}).find("--api-key needs a value"), std::string::npos);
}

TEST(ConfigOptions, BadNumbersNameTheFlagAndValue) {
  EXPECT_EQ(error_of({"--threads", "many"}), "--threads: expected an integer in [0, 4096], got 'many'");
  EXPECT_EQ(error_of({"--token-budget=12abc"}), "--token-budget: expected an integer in [1, 1048576], got '12abc'");
  EXPECT_NE(error_of({"--max-sessions", "0"}).find("--max-sessions"), std::string::npos);
  EXPECT_NE(error_of({"--kv-cache-bytes", "lots"}).find("--kv-cache-bytes: expected a byte size"), std::string::npos);
  EXPECT_NE(error_of({"--max-frame-bytes", "10"}).find("at least 1024 bytes"), std::string::npos);
}

TEST(ConfigOptions, PortOutOfRange) {
  EXPECT_EQ(error_of({"--port", "65536"}), "--port: expected an integer in [0, 65535], got '65536'");
  EXPECT_EQ(error_of({"--port", "-1"}), "--port: expected an integer in [0, 65535], got '-1'");
  Env env;
  env.vars["MNEMO_PORT"] = "70000";
  EXPECT_EQ(error_of({}, env), "MNEMO_PORT: expected an integer in [0, 65535], got '70000'");
}

TEST(ConfigOptions, UnknownLogLevel) {
  EXPECT_NE(error_of({"--log-level", "loud"}).find("--log-level: expected a log level"), std::string::npos);
  Env env;
  env.vars["MNEMO_LOG_LEVEL"] = "verbose";
  const std::string e = error_of({}, env);
  EXPECT_NE(e.find("MNEMO_LOG_LEVEL"), std::string::npos);
  EXPECT_NE(e.find("'verbose'"), std::string::npos);
  EXPECT_EQ(run({"--log-level", "warning"}).log_level, LogLevel::Warn);
  EXPECT_EQ(run({"--log-level", "off"}).log_level, LogLevel::Off);
}

TEST(ConfigOptions, BadEnumAndEmptyValues) {
  EXPECT_EQ(run({"--weights", "copy"}).weights, Weights::Copy);
  EXPECT_EQ(error_of({"--weights", "disk"}), "--weights: expected resident, mapped or copy, got 'disk'");
  EXPECT_EQ(error_of({"--weights-dtype", "q4_0"}), "--weights-dtype: expected auto or q8_0, got 'q4_0'");
  EXPECT_NE(error_of({"--model="}).find("--model: expected a directory"), std::string::npos);
  // An empty API key is allowed: it means no authentication.
  EXPECT_TRUE(run({"--api-key="}).api_key.empty());
}

TEST(ConfigOptions, DescribeRedactsTheApiKey) {
  const std::string d = describe(run({"--api-key", "s3cret"}));
  EXPECT_EQ(d.find("s3cret"), std::string::npos);
  EXPECT_NE(d.find("api_key=set"), std::string::npos);
  EXPECT_NE(d.find("listen=127.0.0.1:8420"), std::string::npos);
}

}  // namespace
}  // namespace mnemo::daemon::config

namespace mnemo::daemon::config {
namespace {

TEST(ConfigOptions, RepairIsASwitchWithAVariable) {
  EXPECT_FALSE(run({}).repair);
  // No value after the switch: the next flag is not swallowed.
  const Options o = run({"--repair", "--port", "7"});
  EXPECT_TRUE(o.repair);
  EXPECT_EQ(o.port, 7);
  EXPECT_TRUE(run({"--repair=yes"}).repair);
  EXPECT_FALSE(run({"--repair=0"}).repair);
  Env env;
  env.vars["MNEMO_REPAIR"] = "1";
  EXPECT_TRUE(run({}, env).repair);
  EXPECT_FALSE(run({"--repair=false"}, env).repair);  // the flag wins
  env.vars["MNEMO_REPAIR"] = "sometimes";
  EXPECT_EQ(error_of({}, env), "MNEMO_REPAIR: expected 1, true, yes, on, 0, false, no or off, got 'sometimes'");
}

TEST(ConfigOptions, HelpExplainsRepair) {
  const std::string h = help_text();
  const auto at = h.find("--repair   (MNEMO_REPAIR=1; default: off)");
  ASSERT_NE(at, std::string::npos) << h;
  EXPECT_NE(h.find("quick_check", at), std::string::npos);
  EXPECT_NE(h.find("mnemo.db.damaged-", at), std::string::npos);
  EXPECT_NE(describe(run({"--repair"})).find("repair=on"), std::string::npos);
}

}  // namespace
}  // namespace mnemo::daemon::config

namespace mnemo::daemon::config {
namespace {

using memory::ttl::RetentionMode;

TEST(ConfigOptions, KvRetentionAndHostTier) {
  const Options d = run({});
  EXPECT_EQ(d.kv_retention.kind, RetentionMode::Kind::Continuum);
  EXPECT_EQ(d.host_kv_bytes, 0);
  EXPECT_EQ(run({"--kv-retention", "none"}).kv_retention.kind, RetentionMode::Kind::None);
  const Options f = run({"--kv-retention=fixed:2.5", "--host-kv-bytes", "512M"});
  EXPECT_EQ(f.kv_retention.kind, RetentionMode::Kind::Fixed);
  EXPECT_DOUBLE_EQ(f.kv_retention.fixed_seconds, 2.5);
  EXPECT_EQ(f.host_kv_bytes, int64_t(512) << 20);
  Env env;
  env.vars = {{"MNEMO_KV_RETENTION", "fixed"}, {"MNEMO_HOST_KV_BYTES", "1G"}};
  const Options e = run({}, env);
  EXPECT_EQ(e.kv_retention.kind, RetentionMode::Kind::Fixed);
  EXPECT_EQ(e.host_kv_bytes, int64_t(1) << 30);
  EXPECT_EQ(error_of({"--kv-retention", "forever"}),
            "--kv-retention: expected none, fixed, fixed:SECONDS (0 to 3600) or continuum, got 'forever'");
  env.vars = {{"MNEMO_KV_RETENTION", "fixed:-1"}};
  EXPECT_NE(error_of({}, env).find("MNEMO_KV_RETENTION: expected"), std::string::npos);
  EXPECT_NE(error_of({"--host-kv-bytes", "lots"}).find("--host-kv-bytes: expected a byte size"), std::string::npos);
  const std::string desc = describe(f);
  EXPECT_NE(desc.find("kv_retention=fixed:2.5"), std::string::npos) << desc;
  EXPECT_NE(desc.find("host_kv_bytes=536870912"), std::string::npos) << desc;
  const std::string h = help_text();
  EXPECT_NE(h.find("--kv-retention none|fixed[:SECONDS]|continuum   (MNEMO_KV_RETENTION; default: continuum)"),
            std::string::npos);
  EXPECT_NE(h.find("--host-kv-bytes BYTES   (MNEMO_HOST_KV_BYTES; default: 0)"), std::string::npos);
}

}  // namespace
TEST(ConfigOptions, MemoryCacheBytes) {
  EXPECT_EQ(run({}).memory_cache_bytes, int64_t(256) << 20);
  EXPECT_EQ(run({"--memory-cache-bytes", "1G"}).memory_cache_bytes, int64_t(1) << 30);
  EXPECT_NE(error_of({"--memory-cache-bytes", "1K"}).find("--memory-cache-bytes"), std::string::npos);
  EXPECT_NE(error_of({"--memory-cache-bytes", "lots"}).find("--memory-cache-bytes: expected a byte size"),
            std::string::npos);
  EXPECT_NE(describe(run({"--memory-cache-bytes", "2M"})).find("memory_cache_bytes=2097152"), std::string::npos);
}

}  // namespace mnemo::daemon::config
