#include "chaos/chaos_config.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "chaos/tls.h"
#include "common/test_certs.h"

namespace unbroken::chaos {
namespace {

TEST(ChaosUrl, ParsesHostPortAndPath) {
  Target t = parse_url("http://127.0.0.1:8080/diag/bytes/13?x=1");
  EXPECT_EQ(t.address.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(t.host, "127.0.0.1:8080");
  EXPECT_EQ(t.path, "/diag/bytes/13?x=1");
  Target d = parse_url("http://127.0.0.1");
  EXPECT_EQ(d.address.port(), 80);
  EXPECT_EQ(d.path, "/");
  EXPECT_EQ(parse_url("http://[::1]:9000/").address.to_string(), "[::1]:9000");
}

TEST(ChaosUrl, RejectsWhatItCannotTarget) {
  for (const char* bad : {"ftp://127.0.0.1/", "127.0.0.1:80", "https://", "http://", "http:///x",
                          "http://127.0.0.1:99999/", "http://127.0.0.1:80/a b"}) {
    EXPECT_THROW(parse_url(bad), ChaosError) << bad;
  }
}

TEST(ChaosUrl, HttpsTargetsNameTheirHostForSniAndVerification) {
  struct Case {
    const char* url;
    const char* address;
    const char* host;
    const char* name;
  };
  for (const Case& c : std::vector<Case>{{"https://127.0.0.1:8443/x", "127.0.0.1:8443", "127.0.0.1:8443", "127.0.0.1"},
                                         {"https://127.0.0.1", "127.0.0.1:443", "127.0.0.1", "127.0.0.1"},
                                         {"https://localhost:8443/", "127.0.0.1:8443", "localhost:8443", "localhost"},
                                         {"https://[::1]:9000/", "[::1]:9000", "[::1]:9000", "::1"}}) {
    Target t = parse_url(c.url);
    EXPECT_TRUE(t.tls) << c.url;
    EXPECT_EQ(t.address.to_string(), c.address) << c.url;
    EXPECT_EQ(t.host, c.host) << c.url;
    EXPECT_EQ(t.name, c.name) << c.url;
  }
  EXPECT_FALSE(parse_url("http://127.0.0.1:8080/").tls);
}

// finish_chaos_config's one-line errors (exit 2 from main), each naming what is wrong.
std::string config_error(const std::string& url, const std::string& mix, const std::string& cacert = {}) {
  ChaosConfig cfg;
  cfg.url = url;
  cfg.mix = mix;
  cfg.cacert = cacert;
  try {
    finish_chaos_config(cfg);
  } catch (const ChaosError& e) {
    return e.what();
  }
  return {};
}

TEST(ChaosConfigTls, HandshakeKindsNeedAnHttpsTarget) {
  for (std::size_t i = 0; i < kKindCount; ++i) {
    auto k = static_cast<Kind>(i);
    std::string err = config_error("http://127.0.0.1:8080/", fmt::format("good=1,{}=1", name(k)));
    if (tls_only(k)) {
      EXPECT_EQ(err, fmt::format("--mix: {} needs an https:// target", name(k)));
      EXPECT_EQ(config_error("https://127.0.0.1:8443/", fmt::format("{}=1", name(k))), "") << name(k);
    } else {
      EXPECT_EQ(err, "") << name(k);
    }
  }
  // A kind named with weight 0 is not in the mix.
  EXPECT_EQ(config_error("http://127.0.0.1:8080/", "good=1,tls-garbage=0"), "");
  for (Kind k : {Kind::kTlsAbortHandshake, Kind::kTlsRstHandshake, Kind::kTlsSlowHandshake, Kind::kTlsGarbage,
                 Kind::kPlainToTls})
    EXPECT_TRUE(tls_only(k)) << name(k);
}

TEST(ChaosConfigTls, CacertTurnsVerificationOnAndABadOneIsOneLine) {
  char tmpl[] = "/tmp/unbroken-chaos-unit-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  testing::CertMaker maker;
  testing::TestCert ca = maker.make(dir, "ca", {"localhost"});
  std::ofstream(dir + "/junk.pem") << "not a certificate\n";

  ChaosConfig off;
  off.url = "https://127.0.0.1:8443/";
  finish_chaos_config(off);
  ASSERT_TRUE(off.tls);
  EXPECT_FALSE(off.tls->verifies()) << "no --cacert: no certificate checking";
  ChaosConfig on = off;
  on.cacert = ca.cert;
  finish_chaos_config(on);
  EXPECT_TRUE(on.tls->verifies());

  EXPECT_EQ(config_error("https://127.0.0.1:8443/", "good=1", dir + "/missing.pem"),
            fmt::format("--cacert {}/missing.pem: No such file or directory", dir));
  EXPECT_EQ(config_error("https://127.0.0.1:8443/", "good=1", dir + "/junk.pem"),
            fmt::format("--cacert {}/junk.pem: no PEM certificate in it", dir));
  EXPECT_EQ(config_error("http://127.0.0.1:8080/", "good=1", ca.cert), "--cacert: only for an https:// target");
  std::filesystem::remove_all(dir);
}

TEST(ChaosMix, WeightsByKindAndOneLineErrors) {
  auto w = parse_mix("good=3,slowloris=1.5,idle");
  EXPECT_EQ(w[static_cast<std::size_t>(Kind::kGood)], 3);
  EXPECT_EQ(w[static_cast<std::size_t>(Kind::kSlowloris)], 1.5);
  EXPECT_EQ(w[static_cast<std::size_t>(Kind::kIdle)], 1);
  EXPECT_EQ(w[static_cast<std::size_t>(Kind::kStall)], 0);
  try {
    parse_mix("good=1,slowlorris=2");
    FAIL() << "accepted an unknown kind";
  } catch (const ChaosError& e) {
    EXPECT_NE(std::string(e.what()).find("'slowlorris'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_mix("good=-1"), ChaosError);
  EXPECT_THROW(parse_mix("good=x"), ChaosError);
  EXPECT_THROW(parse_mix("good=0"), ChaosError);
}

TEST(ChaosMix, EveryKindWithAWeightGetsAClientAndTheTotalIsExact) {
  auto kinds = assign_clients(parse_mix("good=90,idle=1,stall=1"), 10);
  ASSERT_EQ(kinds.size(), 10u);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), Kind::kIdle), 1);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), Kind::kStall), 1);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), Kind::kGood), 8);
  auto even = assign_clients(parse_mix("good=1,slowloris=1"), 7);
  EXPECT_EQ(std::count(even.begin(), even.end(), Kind::kGood) + std::count(even.begin(), even.end(), Kind::kSlowloris),
            7);
}

TEST(ChaosKinds, NamesRoundTrip) {
  for (std::size_t i = 0; i < kKindCount; ++i) {
    auto k = static_cast<Kind>(i);
    EXPECT_EQ(parse_kind(name(k)), k);
    EXPECT_FALSE(describe(k).empty());
  }
}

}  // namespace
}  // namespace unbroken::chaos
