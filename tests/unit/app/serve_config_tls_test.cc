// serve's TLS settings: the flags, the [tls] table, and the checks that pair certificates with
// keys and listeners. The files themselves are read at start (net::TlsServerContext), not here.

#include <gtest/gtest.h>

#include "serve_config_rig.h"

namespace unbroken::app {
namespace {

TEST_F(ServeConfigTest, TlsIsOffByDefault) {
  ServeConfig cfg = parse({});
  EXPECT_TRUE(cfg.tls_listen.empty());
  EXPECT_TRUE(cfg.tls_cert.empty());
  EXPECT_TRUE(cfg.tls_key.empty());
  EXPECT_FALSE(cfg.tls_self_signed);
  EXPECT_EQ(cfg.limits.tls_handshake_timeout, http::HttpLimits{}.tls_handshake_timeout);
  EXPECT_EQ(cfg.limits.tls_handshake_timeout, milliseconds{10'000});
}

TEST_F(ServeConfigTest, TlsFlagsRepeatAndPairInOrder) {
  ServeConfig cfg =
      parse({"--tls-listen", "127.0.0.1:8443", "--tls-listen", "[::1]:8443", "--tls-cert", "a.pem", "--tls-key",
             "a.key", "--tls-cert", "b.pem", "--tls-key", "b.key", "--tls-handshake-timeout", "300ms"});
  EXPECT_EQ(cfg.tls_listen, (std::vector<std::string>{"127.0.0.1:8443", "[::1]:8443"}));
  EXPECT_EQ(cfg.tls_cert, (std::vector<std::string>{"a.pem", "b.pem"}));
  EXPECT_EQ(cfg.tls_key, (std::vector<std::string>{"a.key", "b.key"}));
  EXPECT_EQ(cfg.limits.tls_handshake_timeout, milliseconds{300});
  EXPECT_EQ(cfg.listen, std::vector<std::string>{"127.0.0.1:8080"}) << "the plain listener stays";
  cfg = parse({"--tls-listen", "127.0.0.1:8443", "--tls-self-signed"});
  EXPECT_TRUE(cfg.tls_self_signed);
  EXPECT_TRUE(cfg.tls_cert.empty());
}

TEST_F(ServeConfigTest, TlsChecksAreOneLineNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case kCases[] = {
      {{"--tls-listen", "127.0.0.1:8443"},
       "--tls-listen: no certificate (give --tls-cert FILE --tls-key FILE, or --tls-self-signed)"},
      {{"--tls-cert", "a.pem", "--tls-key", "a.key"}, "--tls-cert: no --tls-listen to serve it on"},
      {{"--tls-self-signed"}, "--tls-self-signed: no --tls-listen to serve it on"},
      {{"--tls-listen", "127.0.0.1:8443", "--tls-cert", "a.pem"},
       "--tls-key: 1 --tls-cert but 0 --tls-key (each certificate needs its key, in order)"},
      {{"--tls-listen", "127.0.0.1:8443", "--tls-cert", "a.pem", "--tls-key", "a.key", "--tls-key", "b.key"},
       "--tls-key: 1 --tls-cert but 2 --tls-key (each certificate needs its key, in order)"},
      {{"--tls-listen", "nope"},
       "--tls-listen: invalid address 'nope' (use HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080)"},
      {{"--tls-listen", "127.0.0.1:8443", "--tls-cert", "", "--tls-key", "a.key"}, "--tls-cert: must not be empty"},
      {{"--tls-handshake-timeout", "0"}, "--tls-handshake-timeout: invalid duration '0' (must be greater than 0)"},
  };
  for (const Case& c : kCases) {
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    EXPECT_EQ(error_of(c.args), c.message) << joined;
  }
}

TEST_F(ServeConfigTest, TlsTableTakesTheKeysWithoutThePrefix) {
  std::string path = write("serve.toml", R"(listen = "127.0.0.1:8080"
[tls]
listen = ["127.0.0.1:8443"]
cert = ["a.pem", "b.pem"]
key = ["a.key", "b.key"]
handshake_timeout = "2s"
)");
  ServeConfig cfg = parse({"--config", path});
  EXPECT_EQ(cfg.tls_listen, std::vector<std::string>{"127.0.0.1:8443"});
  EXPECT_EQ(cfg.tls_cert, (std::vector<std::string>{"a.pem", "b.pem"}));
  EXPECT_EQ(cfg.tls_key, (std::vector<std::string>{"a.key", "b.key"}));
  EXPECT_EQ(cfg.limits.tls_handshake_timeout, milliseconds{2'000});
  // Single strings where the flag repeats, and a flag over the file's value.
  path = write("one.toml", "[tls]\nlisten = \"127.0.0.1:8443\"\nself_signed = true\n");
  cfg = parse({"--config", path, "--tls-listen", "127.0.0.1:9443"});
  EXPECT_EQ(cfg.tls_listen, std::vector<std::string>{"127.0.0.1:9443"});
  EXPECT_TRUE(cfg.tls_self_signed);
  // The option table's own names work at the top level too.
  path = write("top.toml", "tls_listen = \"127.0.0.1:8443\"\ntls_self_signed = true\n");
  cfg = parse({"--config", path});
  EXPECT_EQ(cfg.tls_listen, std::vector<std::string>{"127.0.0.1:8443"});
}

TEST_F(ServeConfigTest, BadTlsTablesNameFileLineAndKey) {
  struct Case {
    std::string text, message;
  };
  const Case kCases[] = {
      {"[tls]\nlisten = \"127.0.0.1:8443\"\nself_signed = true\nciphers = \"x\"\n", "4: unknown key 'tls.ciphers'"},
      {"[tls]\ntls_cert = \"a.pem\"\n", "2: unknown key 'tls.tls_cert'"},
      {"[tls]\nheader_timeout = \"1s\"\n", "2: unknown key 'tls.header_timeout'"},
      {"[tls]\nlisten = 8443\n", "2: tls.listen: expected a string or an array of strings, got an integer"},
      {"[tls]\nhandshake_timeout = \"soon\"\n",
       "2: tls.handshake_timeout: invalid duration 'soon' (use e.g. 500ms, 2s, 1m)"},
      {"[tls]\nself_signed = \"yes\"\n", "2: tls.self_signed: expected true or false, got a string"},
      {"tls = 1\n", "1: unknown key 'tls'"},
  };
  for (const Case& c : kCases) {
    std::string path = write("bad.toml", c.text);
    EXPECT_EQ(error_of({"--config", path}), path + ":" + c.message) << c.text;
  }
  // A file that is fine by itself but pairs badly fails as the flags do.
  std::string path = write("pairs.toml", "[tls]\nlisten = \"127.0.0.1:8443\"\ncert = \"a.pem\"\n");
  EXPECT_EQ(error_of({"--config", path}),
            "--tls-key: 1 --tls-cert but 0 --tls-key (each certificate needs its key, in order)");
}

}  // namespace
}  // namespace unbroken::app
