#include "http/tls.hpp"

#include <openssl/ssl.h>

#include <utility>

#include "config/log.hpp"

namespace gophermq::http {
namespace ssl = boost::asio::ssl;
using config::log;
using config::LogLevel;

namespace {

// TLS 1.2's ciphers of Mozilla's "intermediate" profile: ECDHE key exchange and AEAD only. TLS
// 1.3 has nothing weaker to leave out.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// Session resumption with client certificates needs one; any fixed value does for one server.
constexpr unsigned char kSessionContext[] = "gophermq";

void check(const boost::system::error_code& error, const char* key, const std::string& file) {
  if (error) {
    throw TlsError(std::string(key) + " " + file + ": " + error.message());
  }
}

}  // namespace

std::shared_ptr<ssl::context> make_tls_context(const TlsFiles& files) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                       ssl::context::single_dh_use | SSL_OP_NO_RENEGOTIATION |
                       SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_cipher_list(native, kTls12Ciphers);
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);

  boost::system::error_code error;
  context->use_certificate_chain_file(files.cert_file, error);
  check(error, "tls.cert-file", files.cert_file);
  context->use_private_key_file(files.key_file, ssl::context::pem, error);
  check(error, "tls.key-file", files.key_file);
  if (SSL_CTX_check_private_key(native) != 1) {
    throw TlsError("tls.key-file " + files.key_file + ": does not match tls.cert-file " +
                   files.cert_file);
  }
  if (!files.client_ca_file.empty()) {
    context->load_verify_file(files.client_ca_file, error);
    check(error, "tls.client-ca-file", files.client_ca_file);
    // Tells clients which CAs to pick their certificate by.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca_file.c_str());
    if (names == nullptr) {
      throw TlsError("tls.client-ca-file " + files.client_ca_file + ": no certificate in it");
    }
    SSL_CTX_set_client_CA_list(native, names);
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return context;
}

TlsContext::TlsContext(TlsFiles files, prometheus::Registry& registry)
    : files_(std::move(files)),
      context_(make_tls_context(files_)),
      handshake_failures_(prometheus::BuildCounter()
                              .Name("gophermq_tls_handshake_failures_total")
                              .Help("TLS handshakes that failed or timed out, on either port.")
                              .Register(registry)
                              .Add({})) {}

std::optional<std::string> TlsContext::reload() {
  try {
    auto replacement = make_tls_context(files_);
    const std::scoped_lock lock(mutex_);
    context_ = std::move(replacement);
  } catch (const TlsError& error) {
    return error.what();
  }
  return std::nullopt;
}

void TlsContext::handshake_failed(const boost::beast::error_code& error) const {
  handshake_failures_.Increment();
  log(LogLevel::debug, "msg=\"tls handshake failed\" error=\"" + error.message() + "\"");
}

}  // namespace gophermq::http
