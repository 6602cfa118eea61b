// What the application behind the proxy is told, and the departure signal end to end: the
// forwarding fields and X-Request-Id as gunicorn's Flask app sees them from an untrusted and from a
// trusted peer (with no hop-by-hop field of the client's), and a handler that polls the admin
// listener's GET /requests/{id} stopping once its client has left.

#include <filesystem>
#include <map>

#include "integration/gunicorn_fixture.h"

namespace unbroken::testing {
namespace {

namespace fs = std::filesystem;

class ProxyRequestIdTest : public GunicornTest {};

// The app's /headers answer: one "Name: value" a line, names lower-cased here.
std::map<std::string, std::string> seen_headers(const std::string& body) {
  std::map<std::string, std::string> out;
  std::size_t at = 0;
  for (std::size_t end; (end = body.find('\n', at)) != std::string::npos; at = end + 1) {
    std::string line = body.substr(at, end - at);
    auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out[name] = line.substr(colon + 2);
  }
  return out;
}

std::optional<Response> request_from(const char* source, std::uint16_t port, const std::string& wire) {
  UniqueFd fd = connect_from(source, port);
  send_all(fd.get(), wire);
  return read_response(fd.get());
}

bool is_new_id(const std::string& id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

const std::string kSpoofing =
    "GET /headers HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n"
    "Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nX-Forwarded-For: 6.6.6.6\r\n"
    "X-Forwarded-Proto: https\r\nX-Forwarded-Host: front.example\r\nX-Forwarded-Port: 443\r\n"
    "Forwarded: for=6.6.6.6\r\n";

TEST_F(ProxyRequestIdTest, TheAppSeesForwardingFieldsAndARequestIdTrustedOrNot) {
  auto app = gunicorn("127.0.0.1:0", "headers");
  // 127.0.0.1 is a proxy in front; 127.0.0.2 is any client.
  auto server = Server::start({{"--proxy", "/=" + upstream(*app), "--trusted-proxies", "10.0.0.0/8,127.0.0.1"}});

  auto r = request_from("127.0.0.2", server->port(), kSpoofing + "X-Request-Id: spoofed\r\n\r\n");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto h = seen_headers(r->body);
  EXPECT_EQ(h["x-forwarded-for"], "127.0.0.2");
  EXPECT_EQ(h["x-forwarded-proto"], "http");
  EXPECT_EQ(h["x-forwarded-host"], "app.example");
  EXPECT_EQ(h["forwarded"], "for=127.0.0.2;proto=http;host=app.example");
  EXPECT_EQ(h["via"], "1.1 unbroken");
  EXPECT_TRUE(is_new_id(h["x-request-id"])) << h["x-request-id"];
  for (const char* hop : {"x-secret", "keep-alive", "te", "proxy-connection", "x-forwarded-port"})
    EXPECT_EQ(h.count(hop), 0u) << hop << ": " << h[hop];
  EXPECT_EQ(h["connection"].find("keep-alive"), std::string::npos) << h["connection"];
  std::string untrusted_id = h["x-request-id"];
  auto rec = server->wait_record([&](const Record& x) { return field(x, "client").rfind("127.0.0.2:", 0) == 0; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "request_id"), untrusted_id);

  r = request_from("127.0.0.1", server->port(), kSpoofing + "X-Request-Id: front-7f3a\r\n\r\n");
  ASSERT_TRUE(r);
  h = seen_headers(r->body);
  EXPECT_EQ(h["x-forwarded-for"], "6.6.6.6, 127.0.0.1");
  EXPECT_EQ(h["x-forwarded-proto"], "https");
  EXPECT_EQ(h["x-forwarded-host"], "front.example");
  EXPECT_EQ(h["x-forwarded-port"], "443");
  EXPECT_EQ(h["forwarded"], "for=6.6.6.6, for=127.0.0.1;proto=http;host=app.example");
  EXPECT_EQ(h["x-request-id"], "front-7f3a");
  EXPECT_EQ(h.count("x-secret"), 0u);
  rec = server->wait_record([](const Record& x) { return field(x, "request_id") == "front-7f3a"; });
  EXPECT_TRUE(rec);

  // A trusted peer's id that would not fit a URL path is replaced.
  r = request_from("127.0.0.1", server->port(), "GET /headers HTTP/1.1\r\nHost: a\r\nX-Request-Id: a/b\r\n\r\n");
  ASSERT_TRUE(r);
  h = seen_headers(r->body);
  EXPECT_TRUE(is_new_id(h["x-request-id"])) << h["x-request-id"];
  EXPECT_NE(h["x-request-id"], untrusted_id);
}

TEST_F(ProxyRequestIdTest, ThePollingHandlerStopsOnceItsClientHasLeft) {
  auto app = gunicorn("127.0.0.1:0", "departure", 1);
  auto server = Server::start({{"--proxy", "/=" + upstream(*app)}});
  std::string admin = "127.0.0.1:" + std::to_string(server->admin_port());

  UniqueFd client = connect_to(server->port());
  send_all(client.get(), "GET /wait_for_departure?admin=" + admin + " HTTP/1.1\r\nHost: app\r\n\r\n");
  const std::string polling = "polling for ";
  std::string out = app->wait_output(polling);
  auto at = out.find(polling);
  ASSERT_NE(at, std::string::npos) << out;
  std::string id = out.substr(at + polling.size(), 32);
  ASSERT_TRUE(is_new_id(id)) << out;

  // While the client is there, the handler's polls say so.
  auto r = get(server->admin_port(), "/requests/" + id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"state\":\"waiting\"}\n");

  client.reset();  // FIN: the client leaves
  out = app->wait_output("departure seen for " + id, 10s);
  EXPECT_NE(out.find("departure seen for " + id), std::string::npos) << out;
  EXPECT_EQ(out.find("departure never seen"), std::string::npos) << out;

  r = get(server->admin_port(), "/requests/" + id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 410);
  EXPECT_EQ(r->body, "{\"state\":\"departed\",\"outcome\":\"client_closed\"}\n");
  auto rec = server->wait_record([&](const Record& x) { return field(x, "request_id") == id; });
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "outcome"), "client_closed");

  r = get(server->admin_port(), "/requests/0123456789abcdef0123456789abcdef");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

// docs/request-id.md shows the app's client_gone() as it is: the first python block of the page is
// in flask_app.py word for word.
TEST(ProxyRequestIdDocsTest, TheDocumentedSnippetIsTheTestedCode) {
  fs::path here = fs::path(__FILE__).parent_path();
  std::string doc = slurp((here / "../../docs/request-id.md").string());
  std::string app = slurp((here / "targets/flask_app.py").string());
  const std::string open = "```python\n";
  auto from = doc.find(open);
  ASSERT_NE(from, std::string::npos);
  from += open.size();
  auto to = doc.find("```", from);
  ASSERT_NE(to, std::string::npos);
  std::string snippet = doc.substr(from, to - from);
  EXPECT_NE(snippet.find("def client_gone"), std::string::npos) << snippet;
  EXPECT_NE(app.find(snippet), std::string::npos) << snippet;
}

}  // namespace
}  // namespace unbroken::testing
