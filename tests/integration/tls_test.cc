// HTTPS through the real binary and real clients (curl, Python's ssl, openssl s_client, our own
// OpenSSL client): the flags' errors, the TLS fields of the record, SNI, SIGHUP reload, session
// resumption and --tls-self-signed.

#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "child_process.h"
#include "harness.h"

namespace unbroken::testing {
namespace {

namespace fs = std::filesystem;

// Records of TLS connections carry the handshake's facts.
void expect_tls_fields(const Record& r, const std::string& sni, const std::string& resumed) {
  EXPECT_EQ(field(r, "tls_version"), "TLSv1.3");
  EXPECT_EQ(field(r, "tls_cipher"), "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(field(r, "sni"), sni);
  EXPECT_EQ(field(r, "tls_resumed"), resumed);
  EXPECT_EQ(field(r, "tls_error"), "");
}

class Tls : public ::testing::Test {
 protected:
  // `unbroken serve` with `args` that must not start: its exit status and stderr.
  ChildResult refused(std::vector<std::string> args) {
    std::vector<std::string> argv{UNBROKEN_BINARY, "serve", "--listen",  "127.0.0.1:0", "--admin",         "off",
                                  "--log",         "off",   "--threads", "1",           "--session-store", "memory"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_isolated(argv, files_.dir, 15s);
  }
  // The stderr of a refused start: exactly one line, which names `flag` and `file`.
  void expect_one_line(const ChildResult& r, const std::string& flag, const std::string& needle) {
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(occurrences(r.err, "\n"), 1u) << r.err;
    EXPECT_NE(r.err.find(flag + ": "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  }
  std::unique_ptr<Server> start(const std::vector<TestCert>& certs, std::vector<std::string> more = {}) {
    std::vector<std::string> args = TlsTestFiles::serve_args(certs);
    args.insert(args.end(), more.begin(), more.end());
    auto s = Server::start({args});
    EXPECT_NE(s->tls_port(), 0) << s->stderr_text();
    return s;
  }
  TlsClientOptions verified() const { return {"localhost", files_.localhost.cert}; }

  TlsTestFiles files_;
};

TEST_F(Tls, ConfigErrorsAreOneLineNamingTheFileAndExit2) {
  std::string missing = files_.dir + "/missing.pem";
  expect_one_line(refused({"--tls-listen", "127.0.0.1:0", "--tls-cert", missing, "--tls-key", files_.localhost.key}),
                  "--tls-cert", missing);
  // The other certificate's key: it does not match.
  expect_one_line(
      refused({"--tls-listen", "127.0.0.1:0", "--tls-cert", files_.localhost.cert, "--tls-key", files_.other.key}),
      "--tls-key", files_.other.key);
  std::string garbage = files_.dir + "/garbage.pem";
  std::ofstream(garbage) << "not a certificate\n";
  expect_one_line(refused({"--tls-listen", "127.0.0.1:0", "--tls-cert", garbage, "--tls-key", files_.localhost.key}),
                  "--tls-cert", garbage);
  expect_one_line(refused({"--tls-listen", "127.0.0.1:0", "--tls-cert", files_.localhost.cert, "--tls-cert",
                           files_.other.cert, "--tls-key", files_.localhost.key}),
                  "--tls-key", "2 --tls-cert but 1 --tls-key");
  expect_one_line(refused({"--tls-listen", "127.0.0.1:0"}), "--tls-listen", "no certificate");
  expect_one_line(refused({"--tls-cert", files_.localhost.cert, "--tls-key", files_.localhost.key}), "--tls-cert",
                  "no --tls-listen");
}

TEST_F(Tls, CurlGetWithItsCaHasTheTlsFieldsInTheRecord) {
  auto s = start({files_.localhost});
  std::string port = std::to_string(s->tls_port());
  ChildResult c = run_isolated({"/usr/bin/curl", "-sS", "--cacert", files_.localhost.cert, "--resolve",
                                "localhost:" + port + ":127.0.0.1", "https://localhost:" + port + "/hello.txt"},
                               files_.dir, 15s);
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out, "hello, world\n");
  auto r = s->wait_record([](const Record& r) { return r.at("path") == "/hello.txt"; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("outcome"), "ok");
  EXPECT_EQ(r->at("status"), "200");
  expect_tls_fields(*r, "localhost", "false");
  // The plain listener still serves plain HTTP beside it.
  auto plain = get(s->port(), "/hello.txt");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200);
}

TEST_F(Tls, PythonSslClientGet) {
  auto s = start({files_.localhost});
  std::string script =
      "import socket, ssl, sys\n"
      "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
      "with ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[2]))), "
      "server_hostname='localhost') as s:\n"
      "    s.sendall(b'GET /hello.txt HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n')\n"
      "    data = b''\n"
      "    while chunk := s.recv(4096): data += chunk\n"
      "    print(s.version(), data.split(b'\\r\\n')[0].decode())\n";
  ChildResult c = run_isolated({"/usr/bin/python3", "-c", script, files_.localhost.cert, std::to_string(s->tls_port())},
                               files_.dir, 15s);
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out, "TLSv1.3 HTTP/1.1 200 OK\n");
  auto r = s->wait_record([](const Record& r) { return r.at("path") == "/hello.txt"; });
  ASSERT_TRUE(r);
  expect_tls_fields(*r, "localhost", "false");
}

TEST_F(Tls, SniChoosesBetweenTwoCertificates) {
  auto s = start({files_.localhost, files_.other});
  struct Case {
    std::string sni, cn;
  };
  // No SNI and an unknown name get the default: the first.
  for (const Case& c : {Case{"localhost", "localhost"}, Case{"other.test", "other.test"}, Case{"", "localhost"},
                        Case{"unknown.test", "localhost"}}) {
    TlsClient client(s->tls_port(), {c.sni, ""});
    ASSERT_TRUE(client.connected()) << c.sni << ": " << client.error();
    EXPECT_EQ(peer_common_name(client), c.cn) << "SNI '" << c.sni << "'";
  }
  // openssl s_client says the same, verifying against the other certificate as its CA.
  ChildResult c =
      run_isolated({"/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(s->tls_port()),
                    "-servername", "other.test", "-verify_return_error", "-CAfile", files_.other.cert},
                   files_.dir, 15s);
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_NE(c.out.find("subject=CN = other.test"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("Verify return code: 0 (ok)"), std::string::npos) << c.out;
}

// Writes `from`'s certificate and key over the files the server was started with.
void install(const TestCert& from, const TestCert& to) {
  fs::copy_file(from.cert, to.cert, fs::copy_options::overwrite_existing);
  fs::copy_file(from.key, to.key, fs::copy_options::overwrite_existing);
}

TEST_F(Tls, SighupReloadsAGoodCertificateAndKeepsTheOldOnAFailure) {
  TestCert live{files_.dir + "/live.pem", files_.dir + "/live.key"};
  install(files_.localhost, live);
  TestCert renewed = files_.maker.make(files_.dir, "renewed", {"renewed.test", "localhost"});
  auto s = start({live});
  TlsClient kept(s->tls_port(), {"localhost", ""});
  ASSERT_TRUE(kept.connected()) << kept.error();
  ASSERT_TRUE(kept.write("GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto first = read_response(kept);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);

  install(renewed, live);
  ::kill(s->pid(), SIGHUP);
  ASSERT_TRUE(s->wait_stderr("tls: certificates reloaded")) << s->stderr_text();
  {
    TlsClient fresh(s->tls_port(), {"localhost", ""});
    ASSERT_TRUE(fresh.connected()) << fresh.error();
    EXPECT_EQ(peer_common_name(fresh), "renewed.test");
  }
  // The open keep-alive connection goes on with the certificate it was made with.
  ASSERT_TRUE(kept.write("GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto second = read_response(kept);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(peer_common_name(kept), "localhost");

  std::ofstream(live.cert, std::ios::trunc) << "broken\n";
  ::kill(s->pid(), SIGHUP);
  ASSERT_TRUE(s->wait_stderr("tls: certificates not reloaded")) << s->stderr_text();
  std::string err = s->stderr_text();
  EXPECT_EQ(occurrences(err, " error: "), 1u) << err;
  EXPECT_NE(err.find("not reloaded, keeping the old ones: " + live.cert), std::string::npos) << err;
  TlsClient after(s->tls_port(), {"localhost", ""});
  ASSERT_TRUE(after.connected()) << after.error();
  EXPECT_EQ(peer_common_name(after), "renewed.test");
  EXPECT_TRUE(s->alive());
}

TEST_F(Tls, SessionResumptionIsReported) {
  auto s = start({files_.localhost});
  SSL_SESSION* session = nullptr;
  {
    TlsClient first(s->tls_port(), verified());
    ASSERT_TRUE(first.connected()) << first.error();
    ASSERT_TRUE(first.write("GET /hello.txt?n=1 HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(read_response(first));  // TLS 1.3 tickets come after the handshake, with the response
    session = first.take_session();
    // A close_notify: OpenSSL marks the session of a connection freed without one not resumable.
    SSL_shutdown(first.ssl());
  }
  ASSERT_NE(session, nullptr);
  TlsClientOptions again = verified();
  again.resume = session;
  {
    TlsClient second(s->tls_port(), again);
    ASSERT_TRUE(second.connected()) << second.error();
    EXPECT_EQ(SSL_session_reused(second.ssl()), 1);
    ASSERT_TRUE(second.write("GET /hello.txt?n=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    ASSERT_TRUE(read_response(second));
  }
  SSL_SESSION_free(session);
  ASSERT_TRUE(s->wait_record([](const Record&) { return true; }, 10s, 1));  // the second connection's
  auto records = s->records();
  ASSERT_EQ(records.size(), 2u);
  expect_tls_fields(records[0], "localhost", "false");
  expect_tls_fields(records[1], "localhost", "true");
  // openssl s_client: -sess_out, then -sess_in reports "Reused".
  std::string port = std::to_string(s->tls_port()), sess = files_.dir + "/sess.pem";
  // A request on stdin, read to the server's close: the TLS 1.3 ticket comes in with the response.
  auto s_client = [&](const std::string& flag) {
    return run_isolated(
        {"/bin/sh", "-c",
         "printf 'GET /hello.txt HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n' | "
         "/usr/bin/openssl s_client -ign_eof -connect 127.0.0.1:" +
             port + " -servername localhost -CAfile " + files_.localhost.cert + " " + flag + " " + sess},
        files_.dir, 15s);
  };
  ChildResult out = s_client("-sess_out");
  EXPECT_EQ(out.status, 0) << out.err;
  ChildResult in = s_client("-sess_in");
  EXPECT_EQ(in.status, 0) << in.err;
  EXPECT_NE(in.out.find("Reused, TLSv1.3"), std::string::npos) << in.out;
}

TEST_F(Tls, SelfSignedMakesTheFilesOnceAndReusesThem) {
  std::string pem = files_.dir + "/var/tls/localhost.pem", key = files_.dir + "/var/tls/localhost.key";
  ServeOptions opts{{"--tls-listen", "127.0.0.1:0", "--tls-self-signed"}};
  opts.cwd = files_.dir;
  std::string made;
  {
    auto s = Server::start(opts);
    ASSERT_NE(s->tls_port(), 0) << s->stderr_text();
    EXPECT_NE(s->stderr_text().find("tls: made a self-signed certificate for localhost: var/tls/localhost.pem"),
              std::string::npos)
        << s->stderr_text();
    made = slurp(pem);
    ASSERT_FALSE(made.empty());
    struct stat st {};
    ASSERT_EQ(::stat(key.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "the key is readable by its owner only";
    // A verifying client takes it for localhost and for 127.0.0.1.
    for (const char* name : {"localhost", "127.0.0.1"}) {
      auto r = https_get(s->tls_port(), "/hello.txt", {name, pem});
      ASSERT_TRUE(r) << name;
      EXPECT_EQ(r->status, 200);
    }
  }
  auto s = Server::start(opts);
  ASSERT_NE(s->tls_port(), 0) << s->stderr_text();
  EXPECT_NE(s->stderr_text().find("tls: using the self-signed certificate for localhost: var/tls/localhost.pem"),
            std::string::npos)
      << s->stderr_text();
  EXPECT_EQ(slurp(pem), made) << "reused, not made again";
  auto r = https_get(s->tls_port(), "/hello.txt", {"localhost", pem});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// testssl.sh (Debian's package installs it as testssl) against the listener: protocols and the
// cipher categories only, about 25 s, not the full scan.
TEST_F(Tls, TestsslFindsNothingBelowTls12AndNoWeakCipher) {
  const std::string testssl = "/usr/bin/testssl";
  if (::access(testssl.c_str(), X_OK) != 0) GTEST_SKIP() << "testssl.sh is not installed (scripts/install-deps)";
  auto s = start({files_.localhost}, {"--log", "off"});
  std::string json = files_.dir + "/testssl.json";
  ChildResult c = run_isolated({testssl, "--jsonfile-pretty", json, "--protocols", "--std", "--warnings", "off",
                                "--quiet", "--color", "0", "127.0.0.1:" + std::to_string(s->tls_port())},
                               files_.dir, 90s);
  ASSERT_EQ(c.status, 0) << c.out << c.err;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.load(json).get(doc), simdjson::SUCCESS) << slurp(json);
  std::map<std::string, std::string> findings;
  for (simdjson::dom::element result : doc["scanResult"].get_array()) {
    for (const char* section : {"protocols", "ciphers"}) {
      simdjson::dom::array items;
      if (result[section].get_array().get(items) != simdjson::SUCCESS) continue;
      for (simdjson::dom::element item : items)
        findings[std::string(item["id"].get_string().value())] = std::string(item["finding"].get_string().value());
    }
  }
  for (const char* id : {"SSLv2", "SSLv3", "TLS1", "TLS1_1", "cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT",
                         "cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"})
    EXPECT_EQ(findings[id], "not offered") << id;
  for (const char* id : {"TLS1_2", "TLS1_3", "cipherlist_STRONG"})
    EXPECT_TRUE(findings[id].starts_with("offered")) << id << ": " << findings[id];
}

}  // namespace
}  // namespace unbroken::testing
