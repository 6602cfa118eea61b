// Request smuggling and framing: a generated table of Transfer-Encoding and Content-Length variants
// (case, whitespace, tabs, duplicates, coding lists, control and high bytes, obs-fold, bare LF, chunk
// extensions, oversized chunk sizes, trailers) sent to the running server. Every body ends with the
// text of a second request: a server that frames the message differently from the one interpretation
// below would run it. Each variant must be rejected (4xx/5xx, then the connection closes) or read in
// that one interpretation (the echoed body is exactly the intended one, and the next request on the
// connection gets the next response). Never two requests out of one, never a hang.

#include <algorithm>
#include <set>

#include "integration/harness.h"

namespace unbroken::testing {
namespace {

constexpr std::string_view kSmuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";

enum class Expect {
  kAccept,  // valid: must be read, and read as `body`
  kReject,  // invalid or ambiguous in a way a proxy could read differently: must be refused
  kEither,  // a strict server may refuse it; if it reads it, then only as `body`
};

struct Variant {
  std::string name;
  std::string head_fields;  // header lines after Host, each ending in CRLF
  std::string body;         // bytes after the head
  std::string intended;     // the body a correct reading yields
  Expect expect;
};

std::string chunked(std::string_view data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx", data.size());
  return std::string(size) + "\r\n" + std::string(data) + "\r\n0\r\n\r\n";
}

std::vector<Variant> variants() {
  std::vector<Variant> out;
  const std::string payload = "hello " + std::string(kSmuggled);
  const std::string framed = chunked(payload);
  const std::string cl = "Content-Length: " + std::to_string(payload.size()) + "\r\n";

  // 1. Transfer-Encoding header names, each with a clean value and a chunked body.
  struct Name {
    std::string text;
    Expect expect;
  };
  const std::vector<Name> names = {
      {"Transfer-Encoding", Expect::kAccept},         {"transfer-encoding", Expect::kAccept},
      {"TRANSFER-ENCODING", Expect::kAccept},         {"Transfer-encoding", Expect::kAccept},
      {"Transfer-Encoding ", Expect::kReject},        {"Transfer-Encoding\t", Expect::kReject},
      {" Transfer-Encoding", Expect::kReject},        {"\tTransfer-Encoding", Expect::kReject},
      {"Transfer-Encoding\x0b", Expect::kReject},     {std::string("Transfer-Encoding\0", 18), Expect::kReject},
      {"Transfer\xc3\xa9-Encoding", Expect::kReject}, {"Transfer_Encoding", Expect::kEither},
      {"X-Transfer-Encoding", Expect::kEither},       {"Transfer-Encodings", Expect::kEither},
  };
  // 2. Values.
  struct Value {
    std::string text;
    Expect expect;  // with a standard name
  };
  const std::vector<Value> values = {
      {"chunked", Expect::kAccept},
      {"Chunked", Expect::kAccept},
      {"CHUNKED", Expect::kAccept},
      {" chunked", Expect::kAccept},
      {"chunked ", Expect::kAccept},
      {"\tchunked", Expect::kEither},
      {"chunked\t", Expect::kEither},
      {"identity, chunked", Expect::kReject},
      {"chunked, identity", Expect::kReject},
      {"gzip, chunked", Expect::kReject},
      {"chunked, chunked", Expect::kReject},
      {"chunked,", Expect::kEither},
      {",chunked", Expect::kEither},
      {"chunked;q=1", Expect::kReject},
      {"\x0b"
       "chunked",
       Expect::kReject},
      {"chunked\x0b", Expect::kReject},
      {"chu nked", Expect::kReject},
      {"chunk", Expect::kReject},
      {"\"chunked\"", Expect::kReject},
      {"chunked\xff", Expect::kReject},
      {"xchunked", Expect::kReject},
      {"", Expect::kReject},
  };
  // 3. What comes with it: nothing, a matching or conflicting Content-Length, a duplicate TE.
  struct Companion {
    std::string name;
    std::string fields;
    bool forces_reject;
  };
  const std::vector<Companion> companions = {
      {"alone", "", false},
      {"with content-length", cl, true},
      {"with content-length 0", "Content-Length: 0\r\n", true},
      {"with a second te", "Transfer-Encoding: chunked\r\n", true},
  };
  for (const auto& n : names) {
    for (const auto& v : values) {
      for (const auto& c : companions) {
        Variant var;
        var.name = "te name [" + n.text + "] value [" + v.text + "] " + c.name;
        var.head_fields = n.text + ": " + v.text + "\r\n" + c.fields;
        var.body = framed;
        var.intended = payload;
        Expect e = n.expect == Expect::kReject || v.expect == Expect::kReject   ? Expect::kReject
                   : n.expect == Expect::kEither || v.expect == Expect::kEither ? Expect::kEither
                                                                                : Expect::kAccept;
        if (c.forces_reject && e != Expect::kEither) e = Expect::kReject;
        if (n.expect == Expect::kEither) {
          // An unknown header name leaves the message without a body (or with the CL one): the
          // chunked bytes would be the next "request". Give it the length of what was sent instead.
          var.head_fields = n.text + ": " + v.text + "\r\nContent-Length: " + std::to_string(framed.size()) + "\r\n";
          var.intended = framed;
          e = v.expect == Expect::kReject ? Expect::kEither : Expect::kEither;
        }
        var.expect = e;
        out.push_back(std::move(var));
      }
    }
  }
  // 4. Content-Length alone.
  const std::size_t len = payload.size();
  const std::string ls = std::to_string(len);
  const std::vector<std::pair<std::string, Expect>> lengths = {
      {ls, Expect::kAccept},
      {" " + ls, Expect::kAccept},
      {ls + " ", Expect::kAccept},
      {"\t" + ls, Expect::kAccept},
      {"+" + ls, Expect::kReject},
      {"-" + ls, Expect::kReject},
      {"0" + ls, Expect::kEither},
      {"0x" + ls, Expect::kReject},
      {ls + ", " + ls, Expect::kEither},
      {ls + "," + ls, Expect::kEither},
      {ls + ", " + std::to_string(len + 1), Expect::kReject},
      {ls + "\x0b", Expect::kReject},
      {ls + ".0", Expect::kReject},
      {"99999999999999999999999", Expect::kReject},
      {"", Expect::kReject},
      {ls + "a", Expect::kReject},
  };
  for (const auto& [value, expect] : lengths) {
    out.push_back({"content-length [" + value + "]", "Content-Length: " + value + "\r\n", payload, payload, expect});
  }
  for (const auto& [value, expect] : lengths) {
    // The same value twice, and a second different value.
    out.push_back({"duplicate content-length [" + value + "]",
                   "Content-Length: " + value + "\r\nContent-Length: " + value + "\r\n", payload, payload,
                   expect == Expect::kAccept ? Expect::kEither : Expect::kReject});
  }
  out.push_back({"two different content-lengths", cl + "Content-Length: 6\r\n", payload, payload, Expect::kReject});

  // 5. Chunked bodies: sizes, extensions, trailers, line ends.
  const std::string p = payload;
  char hex[16];
  std::snprintf(hex, sizeof hex, "%zx", p.size());
  const std::string h = hex;
  std::string upper = h;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  const std::vector<std::pair<std::string, std::pair<std::string, Expect>>> bodies = {
      {"plain", {h + "\r\n" + p + "\r\n0\r\n\r\n", Expect::kAccept}},
      {"upper-case size", {upper + "\r\n" + p + "\r\n0\r\n\r\n", Expect::kAccept}},
      {"leading zeros", {"000" + h + "\r\n" + p + "\r\n0\r\n\r\n", Expect::kAccept}},
      {"extension", {h + ";ext\r\n" + p + "\r\n0\r\n\r\n", Expect::kAccept}},
      {"extension with value", {h + ";a=b\r\n" + p + "\r\n0;c=\"d\"\r\n\r\n", Expect::kAccept}},
      {"two pieces", {"6\r\n" + p.substr(0, 6) + "\r\n" + std::to_string(0) + "\r\n\r\n", Expect::kEither}},
      {"trailer", {h + "\r\n" + p + "\r\n0\r\nX-Trailer: yes\r\n\r\n", Expect::kAccept}},
      {"size with 0x", {"0x" + h + "\r\n" + p + "\r\n0\r\n\r\n", Expect::kReject}},
      {"size with +", {"+" + h + "\r\n" + p + "\r\n0\r\n\r\n", Expect::kReject}},
      {"size with -", {"-" + h + "\r\n" + p + "\r\n0\r\n\r\n", Expect::kReject}},
      {"size then space", {h + " \r\n" + p + "\r\n0\r\n\r\n", Expect::kEither}},
      {"space then size", {" " + h + "\r\n" + p + "\r\n0\r\n\r\n", Expect::kReject}},
      {"oversized size", {"ffffffffffffffffff\r\n" + p + "\r\n0\r\n\r\n", Expect::kReject}},
      {"64-bit size", {"10000000000000000\r\n" + p + "\r\n0\r\n\r\n", Expect::kReject}},
      {"size bare lf", {h + "\n" + p + "\r\n0\r\n\r\n", Expect::kReject}},
      {"data bare lf", {h + "\r\n" + p + "\n0\r\n\r\n", Expect::kReject}},
      {"last chunk bare lf", {h + "\r\n" + p + "\r\n0\n\n", Expect::kReject}},
      {"size bare cr", {h + "\r" + p + "\r\n0\r\n\r\n", Expect::kReject}},
      {"short data", {h + "\r\n" + p.substr(1) + "\r\n0\r\n\r\n", Expect::kReject}},
      {"long data", {h + "\r\n" + p + "x\r\n0\r\n\r\n", Expect::kReject}},
      {"control in extension", {h + ";a\x01=b\r\n" + p + "\r\n0\r\n\r\n", Expect::kReject}},
      {"high byte in size", {h + "\xff\r\n" + p + "\r\n0\r\n\r\n", Expect::kReject}},
      // Trailers are read and dropped; a folded one does not move the message's end.
      {"obs-fold trailer", {h + "\r\n" + p + "\r\n0\r\nX: a\r\n b\r\n\r\n", Expect::kEither}},
      {"nul in data", {"3\r\na\0b\r\n0\r\n\r\n", Expect::kEither}},
  };
  for (const auto& [name, spec] : bodies) {
    const auto& [body, expect] = spec;
    std::string intended = name == "two pieces" ? p.substr(0, 6) : name == "nul in data" ? std::string("a\0b", 3) : p;
    out.push_back({"chunked body: " + name, "Transfer-Encoding: chunked\r\n", body, intended, expect});
  }
  // 6. Folding and line ends in the head around the framing fields.
  out.push_back(
      {"obs-fold before te", "X-A: a\r\n b\r\nTransfer-Encoding: chunked\r\n", framed, payload, Expect::kReject});
  out.push_back({"te folded", "Transfer-Encoding:\r\n chunked\r\n", framed, payload, Expect::kReject});
  out.push_back({"te bare lf", "Transfer-Encoding: chunked\n", framed, payload, Expect::kReject});
  out.push_back({"cl folded", "Content-Length:\r\n " + ls + "\r\n", payload, payload, Expect::kReject});
  out.push_back({"cl bare cr", "Content-Length: " + ls + "\r", payload, payload, Expect::kReject});
  return out;
}

class Smuggling : public SharedServerTest {
 protected:
  static void SetUpTestSuite() { start_shared({{"--body-timeout", "1s", "--header-timeout", "1s"}}); }
};

TEST_F(Smuggling, EveryVariantIsRefusedOrReadInExactlyOneWay) {
  auto table = variants();
  ASSERT_GE(table.size(), 500u);
  std::size_t accepted = 0, refused = 0;
  for (const auto& v : table) {
    SCOPED_TRACE(v.name);
    UniqueFd fd = connect_to(server_->port(), 3s);
    ASSERT_TRUE(fd);
    send_all(fd.get(), "POST /diag/echo HTTP/1.1\r\nHost: a\r\n" + v.head_fields + "\r\n" + v.body);
    auto r = read_response(fd.get());
    if (!r) {
      // No response at all: the server must at least have closed (a silent close of a half-read
      // message), within the timeouts, never left the connection hanging.
      bool eof = false;
      read_until_close(fd.get(), &eof);
      EXPECT_TRUE(eof) << "no response and no close: a hang";
      EXPECT_NE(v.expect, Expect::kAccept) << "a valid message was not answered";
      ++refused;
      continue;
    }
    bool read_as_intended = r->status == 200 && r->complete && r->body == v.intended;
    if (r->status >= 400 || (r->status == 200 && !r->complete)) {
      // Refused: the connection ends there.
      EXPECT_NE(v.expect, Expect::kAccept) << "refused a valid message with " << r->status;
      bool eof = false;
      read_until_close(fd.get(), &eof);
      EXPECT_TRUE(eof) << "refused but not closed";
      ++refused;
      continue;
    }
    EXPECT_NE(v.expect, Expect::kReject) << "accepted an invalid message";
    EXPECT_TRUE(read_as_intended) << "read differently: status " << r->status << ", body [" << r->body << "]";
    // The next request gets the next response: nothing was left over to run as a request.
    send_all(fd.get(), "GET /diag/bytes/3 HTTP/1.1\r\nHost: a\r\n\r\n");
    auto next = read_response(fd.get());
    ASSERT_TRUE(next) << "no response to the request that followed";
    EXPECT_EQ(next->status, 200);
    EXPECT_EQ(next->body, "abc");
    ++accepted;
  }
  // Neither extreme: the table exercises both paths.
  EXPECT_GT(accepted, 50u);
  EXPECT_GT(refused, 300u);
  for (const auto& rec : records_since_start()) EXPECT_NE(rec.at("path"), "/smuggled") << "a smuggled request ran";
  std::printf("%zu variants: %zu read in the one interpretation, %zu refused\n", table.size(), accepted, refused);
}

}  // namespace
}  // namespace unbroken::testing
