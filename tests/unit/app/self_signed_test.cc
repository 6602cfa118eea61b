// --tls-self-signed's files: made once with the names a local client checks, reused after, made
// again when the certificate is unreadable or about to expire.

#include "app/self_signed.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/test_certs.h"

namespace unbroken::app {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

X509* read_cert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return nullptr;
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return x;
}

class SelfSigned : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "self_signed_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/var/tls";  // made by the call
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  std::string root_, dir_;
};

TEST_F(SelfSigned, MakesACertificateForLocalhostOnce) {
  SelfSignedFiles files;
  std::string error;
  ASSERT_TRUE(self_signed_localhost(dir_, files, error)) << error;
  EXPECT_TRUE(files.made);
  EXPECT_EQ(files.cert, dir_ + "/localhost.pem");
  EXPECT_EQ(files.key, dir_ + "/localhost.key");
  struct stat st {};
  ASSERT_EQ(::stat(files.key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  X509* x = read_cert(files.cert);
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(X509_check_host(x, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
  EXPECT_NE(X509_check_host(x, "example.com", 0, 0, nullptr), 1);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(x)), EVP_PKEY_EC);
  // About a year: valid in 360 days, not in 370.
  std::time_t in360 = std::time(nullptr) + 360 * 86400, in370 = std::time(nullptr) + 370 * 86400;
  EXPECT_GT(X509_cmp_time(X509_get0_notAfter(x), &in360), 0);
  EXPECT_LT(X509_cmp_time(X509_get0_notAfter(x), &in370), 0);
  X509_free(x);

  std::string pem = slurp(files.cert);
  SelfSignedFiles again;
  ASSERT_TRUE(self_signed_localhost(dir_, again, error)) << error;
  EXPECT_FALSE(again.made);
  EXPECT_EQ(slurp(again.cert), pem);
}

TEST_F(SelfSigned, MakesItAgainWhenUnreadableOrExpiring) {
  fs::create_directories(dir_);
  std::ofstream(dir_ + "/localhost.pem") << "not a certificate\n";
  std::ofstream(dir_ + "/localhost.key") << "not a key\n";
  SelfSignedFiles files;
  std::string error;
  ASSERT_TRUE(self_signed_localhost(dir_, files, error)) << error;
  EXPECT_TRUE(files.made);
  // A certificate that expires within the day is replaced too.
  testing::CertMaker maker;
  testing::TestCert old = maker.make(dir_, "localhost", {"localhost"}, nullptr, false, 0);
  std::string before = slurp(old.cert);
  ASSERT_TRUE(self_signed_localhost(dir_, files, error)) << error;
  EXPECT_TRUE(files.made);
  EXPECT_NE(slurp(files.cert), before);
}

TEST_F(SelfSigned, ADirectoryThatCannotBeMadeIsOneLineNamingIt) {
  std::ofstream(root_ + "/var") << "a file where the directory would go\n";
  SelfSignedFiles files;
  std::string error;
  EXPECT_FALSE(self_signed_localhost(dir_, files, error));
  EXPECT_EQ(error.rfind(dir_ + ": cannot create: ", 0), 0u) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace unbroken::app
