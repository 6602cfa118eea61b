// WebSocket through the reverse proxy: a real echo server (targets/ws_echo.py, Debian
// python3-websockets) on a free port, and a client made by hand over a raw socket, so that the
// test decides how each side closes. A 101 turns the exchange into a tunnel; its end is one record,
// phase tunnel, whose outcome says who closed (client_closed, client_reset, ok for the upstream,
// timeout with timer tunnel_idle), with the bytes each way.

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "integration/child_process.h"
#include "integration/harness.h"

namespace unbroken::testing {
namespace {

namespace fs = std::filesystem;

// RFC 6455 1.3's sample key and the accept value it must get back.
constexpr const char* kHandshake =
    "GET /chat HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
constexpr const char* kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// A client frame (RFC 6455 5.2): final, masked as a client's must be.
std::string client_frame(std::uint8_t opcode, std::string_view payload) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  EXPECT_LT(payload.size(), 65536u);  // no 64-bit lengths here
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(0x80 | payload.size()));
  } else {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  }
  const char mask[4] = {0x12, 0x34, 0x56, 0x78};
  f.append(mask, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return f;
}

// Reads exactly n bytes (false on EOF, reset or the socket's receive timeout).
bool read_exact(int fd, std::string& out, std::size_t n) {
  while (out.size() < n) {
    char buf[65536];
    ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (r <= 0) return false;
    out.append(buf, static_cast<std::size_t>(r));
  }
  return true;
}

struct Frame {
  int opcode = -1;  // -1: none arrived
  std::string payload;
  std::size_t wire_size = 0;
};

// One server frame (unmasked), read byte-exact so nothing after it is taken.
Frame read_frame(int fd) {
  Frame f;
  std::string h;
  if (!read_exact(fd, h, 2)) return f;
  std::size_t len = static_cast<unsigned char>(h[1]) & 0x7f;
  std::size_t ext = len == 126 ? 2 : len == 127 ? 8 : 0;
  if (ext > 0) {
    std::string e;
    if (!read_exact(fd, e, ext)) return f;
    len = 0;
    for (char c : e) len = len << 8 | static_cast<unsigned char>(c);
  }
  if (!read_exact(fd, f.payload, len)) return f;
  f.opcode = static_cast<unsigned char>(h[0]) & 0x0f;
  f.wire_size = 2 + ext + len;
  return f;
}

// The 101 head, read up to its blank line and no further.
std::string read_head(int fd) {
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos)
    if (!read_exact(fd, head, head.size() + 1)) break;
  return head;
}

class ProxyTunnelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/unbroken-tunnel-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    fs::path script = fs::path(__FILE__).parent_path() / "targets" / "ws_echo.py";
    // Debian's interpreter, where python3-websockets is installed (a python3 first on PATH may not have it).
    ws_ = std::make_unique<Child>(std::vector<std::string>{"/usr/bin/python3", script.string()}, dir_ + "/ws.out");
    std::string out = ws_->wait_output("port ");
    auto at = out.find("port ");
    ASSERT_NE(at, std::string::npos) << out;
    ws_port_ = static_cast<std::uint16_t>(std::stoi(out.substr(at + 5)));
  }
  void TearDown() override {
    server_.reset();
    ws_.reset();
    fs::remove_all(dir_);
  }
  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--proxy", "/=http://127.0.0.1:" + std::to_string(ws_port_)};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = Server::start({args});
  }
  // Connects, sends the handshake with `first` right behind it in the same write (bytes the server
  // has buffered after the request head when the 101 comes), and checks the 101.
  UniqueFd open_tunnel(std::string_view first, std::string* head_out = nullptr) {
    UniqueFd fd = connect_to(server_->port());
    send_all(fd.get(), std::string(kHandshake) + std::string(first));
    sent_ = std::strlen(kHandshake) + first.size();
    std::string head = read_head(fd.get());
    auto r = parse_response(head);
    EXPECT_TRUE(r) << head;
    if (r) {
      EXPECT_EQ(r->status, 101) << head;
      EXPECT_EQ(r->headers["upgrade"], "websocket") << head;
      EXPECT_EQ(r->headers["sec-websocket-accept"], kAccept) << head;
      EXPECT_NE(r->headers["connection"].find("pgrade"), std::string::npos) << head;
    }
    received_ = head.size();
    if (head_out) *head_out = head;
    return fd;
  }
  void send(int fd, std::uint8_t opcode, std::string_view payload) {
    std::string f = client_frame(opcode, payload);
    send_all(fd, f);
    sent_ += f.size();
  }
  Frame receive(int fd) {
    Frame f = read_frame(fd);
    received_ += f.wire_size;
    return f;
  }
  std::optional<Record> tunnel_record() {
    return server_->wait_record([](const Record& x) { return field(x, "path") == "/chat"; });
  }

  std::string dir_;
  std::unique_ptr<Child> ws_;
  std::uint16_t ws_port_ = 0;
  std::unique_ptr<Server> server_;
  std::size_t sent_ = 0;      // bytes the client sent, head included
  std::size_t received_ = 0;  // bytes the client read
};

TEST_F(ProxyTunnelTest, EchoesBothWaysThenTheClientClosesOneRecordWithTheBytes) {
  start();
  // The first message rides with the handshake: it waits in the connection's input until the 101.
  UniqueFd fd = open_tunnel(client_frame(0x1, "early"));
  Frame f = receive(fd.get());
  EXPECT_EQ(f.opcode, 0x1);
  EXPECT_EQ(f.payload, "early");
  std::vector<std::string> messages{"one", "two", std::string(300, 'm'), std::string(40'000, 'x'), "last"};
  for (const auto& m : messages) {
    send(fd.get(), 0x1, m);
    f = receive(fd.get());
    EXPECT_EQ(f.opcode, 0x1);
    EXPECT_EQ(f.payload, m);
  }
  fd.reset();  // FIN, no close frame: the client just leaves
  auto rec = tunnel_record();
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "phase"), "tunnel");
  EXPECT_EQ(field(*rec, "status"), "101");
  EXPECT_EQ(field(*rec, "outcome"), "client_closed");
  EXPECT_EQ(field(*rec, "upstream_status"), "101");
  EXPECT_EQ(field(*rec, "bytes_in"), std::to_string(sent_));
  EXPECT_EQ(field(*rec, "bytes_out"), std::to_string(received_));
  // Upstream: our forwarded head plus every client frame out; its 101 head plus every echo in.
  EXPECT_GT(std::stoull(field(*rec, "upstream_bytes_out")), sent_ - std::strlen(kHandshake));
  EXPECT_GT(std::stoull(field(*rec, "upstream_bytes_in")), received_ - 100);
  EXPECT_GT(std::stod(field(*rec, "duration_ms")), 0);
  EXPECT_GT(std::stod(field(*rec, "upstream_ms")), 0);
  // The upstream connection was closed with it: the application saw its client go.
  EXPECT_NE(ws_->wait_output("closed ").find("closed "), std::string::npos);
  // One record for the tunnel, never a second one for the connection.
  std::size_t n = 0;
  for (const auto& r : server_->records()) n += field(r, "path") == "/chat";
  EXPECT_EQ(n, 1u);
}

TEST_F(ProxyTunnelTest, AClientThatDoesNotReadIsHeldBackAndLosesNoByte) {
  start();
  UniqueFd fd = open_tunnel("");
  auto rss_before = server_->rss_kib();
  // Binary frames of 60 000 bytes (a 16-bit length), sent without reading anything,
  // until no byte is taken for a second: the echoes pile up towards the client, the tunnel stops
  // reading the application, which stops reading us, and the tunnel stops reading the client.
  constexpr std::size_t kPayload = 60'000;
  const std::string frame = client_frame(0x2, std::string(kPayload, 'p'));
  constexpr std::size_t kMaxFrames = 4000;  // 240 MB: far more than every buffer on the way holds
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
  std::size_t frames = 0;
  std::string_view pending;
  bool blocked = false;
  while (!blocked) {
    if (pending.empty()) {
      ASSERT_LT(frames, kMaxFrames) << "never held back";
      pending = frame;
      ++frames;
    }
    ssize_t n = ::send(fd.get(), pending.data(), pending.size(), MSG_NOSIGNAL);
    if (n > 0) {
      pending.remove_prefix(static_cast<std::size_t>(n));
      sent_ += static_cast<std::size_t>(n);
      continue;
    }
    ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << errno;
    pollfd p{fd.get(), POLLOUT, 0};
    blocked = ::poll(&p, 1, 1000) == 0;
  }
  // What the server holds meanwhile is bounded by its high-water marks, not by what was sent.
  EXPECT_LT(server_->rss_kib(), rss_before + 24 * 1024) << frames << " frames sent";
  // Now read: every echo arrives whole and in order, while the rest of the last frame goes out.
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  std::string rest(pending);
  sent_ += rest.size();
  std::thread writer([&] { send_all(fd.get(), rest); });
  for (std::size_t i = 0; i < frames; ++i) {
    Frame f = receive(fd.get());
    ASSERT_EQ(f.opcode, 0x2) << i;
    ASSERT_EQ(f.payload.size(), kPayload) << i;
  }
  writer.join();
  fd.reset();
  auto rec = tunnel_record();
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "outcome"), "client_closed");
  EXPECT_EQ(field(*rec, "bytes_in"), std::to_string(sent_));
  EXPECT_EQ(field(*rec, "bytes_out"), std::to_string(received_));
}

TEST_F(ProxyTunnelTest, ClientResetIsClientReset) {
  start();
  UniqueFd fd = open_tunnel("");
  send(fd.get(), 0x1, "hello");
  EXPECT_EQ(receive(fd.get()).payload, "hello");
  reset(fd);
  auto rec = tunnel_record();
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "phase"), "tunnel");
  EXPECT_EQ(field(*rec, "outcome"), "client_reset");
}

TEST_F(ProxyTunnelTest, TheUpstreamClosesAndTheClientSeesTheClose) {
  start();
  UniqueFd fd = open_tunnel("");
  send(fd.get(), 0x1, "close");  // ws_echo.py closes on this
  Frame f = receive(fd.get());
  ASSERT_EQ(f.opcode, 0x8);  // its close frame, relayed
  ASSERT_GE(f.payload.size(), 2u);
  EXPECT_EQ((static_cast<unsigned char>(f.payload[0]) << 8) | static_cast<unsigned char>(f.payload[1]), 1000);
  send(fd.get(), 0x8, f.payload.substr(0, 2));  // the closing handshake's answer; then it sends FIN
  bool eof = false;
  std::string rest = read_until_close(fd.get(), &eof);
  EXPECT_TRUE(eof);
  EXPECT_EQ(rest, "");
  received_ += rest.size();
  auto rec = tunnel_record();
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "phase"), "tunnel");
  EXPECT_EQ(field(*rec, "status"), "101");
  EXPECT_EQ(field(*rec, "outcome"), "ok");
  EXPECT_EQ(field(*rec, "bytes_in"), std::to_string(sent_));
  EXPECT_EQ(field(*rec, "bytes_out"), std::to_string(received_));
  EXPECT_NE(ws_->wait_output("closed 1000").find("closed 1000"), std::string::npos);
}

TEST_F(ProxyTunnelTest, NoByteEitherWayForTheIdleTimeoutClosesBothSides) {
  start({"--tunnel-idle-timeout", "300ms"});
  UniqueFd fd = open_tunnel("");
  send(fd.get(), 0x1, "ping");
  EXPECT_EQ(receive(fd.get()).payload, "ping");
  auto before = std::chrono::steady_clock::now();
  bool eof = false;
  read_until_close(fd.get(), &eof);  // the socket's receive timeout (10 s) bounds this
  EXPECT_TRUE(eof);
  EXPECT_GE(std::chrono::steady_clock::now() - before, 250ms);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
  auto rec = tunnel_record();
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "phase"), "tunnel");
  EXPECT_EQ(field(*rec, "outcome"), "timeout");
  EXPECT_EQ(field(*rec, "timer"), "tunnel_idle");
  EXPECT_EQ(field(*rec, "timeout_ms"), "300");
  // The upstream's side was closed too: the application saw the connection end.
  EXPECT_NE(ws_->wait_output("closed ").find("closed "), std::string::npos);
}

TEST_F(ProxyTunnelTest, AnythingButA101IsAnOrdinaryResponse) {
  start();
  // No Sec-WebSocket-Key: websockets answers 400, which goes to the client as any response does.
  auto r = get(server_->port(), "/chat", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  auto rec = tunnel_record();
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "status"), "400");
  EXPECT_EQ(field(*rec, "outcome"), "ok");
  EXPECT_NE(field(*rec, "phase"), "tunnel");
}

TEST_F(ProxyTunnelTest, AServerDrainClosesATunnel) {
  start();
  UniqueFd fd = open_tunnel("");
  send(fd.get(), 0x1, "hi");
  EXPECT_EQ(receive(fd.get()).payload, "hi");
  ::kill(server_->pid(), SIGTERM);
  bool eof = false;
  read_until_close(fd.get(), &eof);
  EXPECT_TRUE(eof);
  EXPECT_EQ(server_->wait_exit(), 0);
  auto rec = tunnel_record();
  ASSERT_TRUE(rec);
  EXPECT_EQ(field(*rec, "phase"), "tunnel");
  EXPECT_EQ(field(*rec, "outcome"), "shutdown");
}

}  // namespace
}  // namespace unbroken::testing
