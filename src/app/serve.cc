#include "app/serve.h"

#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "app/admin.h"
#include "app/diag_routes.h"
#include "app/proxy_setup.h"
#include "app/self_signed.h"
#include "app/session_setup.h"
#include "app/static_route.h"
#include "app/systemd_notify.h"
#include "app/systemd_sockets.h"
#include "base/build_info.h"
#include "http/server.h"
#include "observe/access_log.h"
#include "observe/metrics.h"
#include "observe/noise_control.h"

namespace unbroken::app {
namespace {

constexpr const char* kSelfSignedDir = "var/tls";

std::vector<net::SocketAddress> addresses(const std::vector<std::string>& specs, const char* flag = "--listen") {
  std::vector<net::SocketAddress> out;
  for (const auto& s : specs) {
    auto a = net::SocketAddress::parse(s);
    if (!a) throw std::runtime_error(std::string(flag) + ": cannot resolve '" + s + "'");
    out.push_back(*a);
  }
  return out;
}

// Sockets systemd passed for one kind of listener replace the addresses its flag gave.
void replace_with(const std::vector<UniqueFd>& passed, std::vector<net::SocketAddress>& listen,
                  std::vector<int>& adopt) {
  if (passed.empty()) return;
  listen.clear();
  adopt = descriptors(passed);
}

std::string joined(const std::vector<net::SocketAddress>& addrs) {
  std::string out;
  for (const auto& a : addrs) out += (out.empty() ? "http://" : " http://") + a.to_string();
  return out;
}

// Descriptors the server needs besides its client connections: stdio, the log, the session store,
// an epoll, an eventfd and the listeners per loop, the admin listener and its 256 connections.
std::uint64_t own_descriptors(const ServeConfig& cfg, unsigned threads) {
  return 64 + 256 + std::uint64_t{threads} * (2 + cfg.listen.size() + cfg.tls_listen.size());
}

// Like Go (os: raise the open file soft limit at start), the soft RLIMIT_NOFILE goes up to the hard
// limit when it cannot hold --max-connections; one line says so if even the hard limit cannot.
void fit_descriptor_limit(const ServeConfig& cfg, unsigned threads) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  std::uint64_t need = cfg.max_connections + own_descriptors(cfg, threads);
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) return;
  rlim_t was = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = was;
  if (rl.rlim_cur >= need) {
    spdlog::info("descriptor limit raised from {} to {} for --max-connections {}", was, rl.rlim_cur,
                 cfg.max_connections);
    return;
  }
  spdlog::warn(
      "--max-connections {} needs about {} descriptors but the limit is {} (hard limit): accepting will pause "
      "at EMFILE before the connection limit; raise it (ulimit -n, LimitNOFILE= in a systemd unit) or lower "
      "--max-connections",
      cfg.max_connections, need, rl.rlim_cur);
}

void setup_operational_log() {
  auto logger = spdlog::stderr_logger_mt("unbroken");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ unbroken %l: %v", spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
}

// The TLS listeners' certificates: the --tls-cert/--tls-key pairs, or with --tls-self-signed and
// none given, var/tls/localhost.pem (made on first run). nullptr after one error line: exit 2.
std::shared_ptr<net::TlsServerContext> make_tls_context(const ServeConfig& cfg) {
  net::TlsServerConfig tls;
  for (std::size_t i = 0; i < cfg.tls_cert.size(); ++i) tls.certs.push_back({cfg.tls_cert[i], cfg.tls_key[i]});
  if (tls.certs.empty()) {
    SelfSignedFiles files;
    if (std::string error; !self_signed_localhost(kSelfSignedDir, files, error)) {
      spdlog::error("--tls-self-signed: {}", error);
      return nullptr;
    }
    spdlog::info("tls: {} self-signed certificate for localhost: {} (curl --cacert {})",
                 files.made ? "made a" : "using the", files.cert, files.cert);
    tls.certs.push_back({files.cert, files.key});
  }
  net::TlsSetupError error;
  std::unique_ptr<net::TlsServerContext> ctx = net::TlsServerContext::create(tls, error);
  if (!ctx) {
    // The message names the file; the flag says which kind it was given as.
    bool key = std::any_of(tls.certs.begin(), tls.certs.end(),
                           [&](const net::TlsCertFiles& f) { return error.message.starts_with(f.key + ":"); });
    spdlog::error("{}: {}", key ? "--tls-key" : "--tls-cert", error.message);
    return nullptr;
  }
  net::KtlsSupport ktls = net::detect_ktls();
  if (ktls.available) {
    // The kTLS path is not built yet (docs/tls.md): say so rather than claim SSL_sendfile.
    spdlog::info("tls: kernel TLS is available but not used yet; static files are encrypted in user space");
  } else {
    spdlog::info("tls: {}", ktls.reason);  // which part is missing, and that files are encrypted in user space
  }
  return ctx;
}

}  // namespace

int run_serve(const ServeConfig& cfg) {
  // Backstop: sends use MSG_NOSIGNAL, but sendfile(2) and libraries may write without it.
  ::signal(SIGPIPE, SIG_IGN);
  // Block the shutdown signals before any thread starts, so that only sigwait() below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  setup_operational_log();
  SystemdSockets passed;  // socket activation: before anything is bound
  if (std::string error; !take_systemd_sockets(passed, error)) {
    spdlog::error("{}", error);
    return 1;
  }
  if (!passed.https.empty() && cfg.tls_listen.empty()) {
    spdlog::error(
        "LISTEN_FDNAMES: a socket named https needs --tls-listen and its certificates (it replaces the address)");
    return 2;
  }

  try {
    // First: a bad certificate is an exit before anything is opened or created (the session store).
    std::shared_ptr<net::TlsServerContext> tls;
    if (!cfg.tls_listen.empty() && !(tls = make_tls_context(cfg))) return 2;
    // --log off: no access log (the metrics and the operational log remain).
    std::optional<observe::AccessLog> access_log;
    if (cfg.log != "off")
      access_log.emplace(cfg.log, cfg.log_format == "text" ? observe::LogFormat::kText : observe::LogFormat::kJson);
    observe::NoiseControl noise(cfg.noise_interval);
    // Declared before the server but reset after its loops stop (below): store threads post their
    // results to those loops.
    auto sessions = make_session_manager(cfg);
    http::Router router;
    if (cfg.diag) {
      mount_diag_routes(router);
      mount_session_diag(router, *sessions);
    }
    // The routes' settings stay with the router's handlers; the list is for the health checks.
    auto requests = std::make_shared<proxy::RequestRegistry>();  // the proxy routes' and the admin's
    std::vector<std::shared_ptr<const proxy::ProxySettings>> proxies = mount_proxies(router, cfg, requests);
    HealthChecks health_checks(proxies);
    if (!cfg.root.empty()) {
      auto files = http::StaticFiles::open(cfg.root);
      if (!files) {
        spdlog::error("--root: cannot open '{}': {}", cfg.root, files.error().message());
        return 2;
      }
      files->set_vary_compressible(cfg.limits.gzip.enabled);
      mount_static_files(router, std::make_shared<const http::StaticFiles>(std::move(*files)));
    }

    unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    http::ServerOptions opts;
    opts.listen = addresses(cfg.listen);
    opts.tls_listen = addresses(cfg.tls_listen, "--tls-listen");
    opts.tls = std::move(tls);
    replace_with(passed.http, opts.listen, opts.adopt);
    replace_with(passed.https, opts.tls_listen, opts.adopt_tls);
    opts.threads = cfg.threads ? cfg.threads : cores;
    opts.workers = cfg.workers ? cfg.workers : cores;
    opts.limits = cfg.limits;
    opts.max_connections = cfg.max_connections;
    opts.max_connections_per_ip = cfg.max_connections_per_ip;
    fit_descriptor_limit(cfg, opts.threads);
    opts.on_accept_limit = [limit = cfg.max_connections](bool paused, std::uint64_t open) {
      if (paused) {
        spdlog::warn(
            "accepting paused: {} connections open, the --max-connections limit; new clients wait in the listen "
            "backlog until some close (raise it with --max-connections N or max_connections in the config)",
            limit);
      } else {
        spdlog::info("accepting resumed: {} connections open", open);
      }
    };
    // Fed by the record sink (every loop's thread); the proxy sets its gauge source on it. Counted
    // before the record is logged: a record in the log is in the next scrape.
    observe::UpstreamMetrics upstream_metrics;
    if (!proxies.empty()) upstream_metrics.set_gauge_source(upstream_gauges(proxies));
    http::Server server(opts, router, [&access_log, &noise, &upstream_metrics](const http::RequestRecord& r) {
      upstream_metrics.observe(r);
      if (access_log) access_log->write(r);
      noise.observe(r);
    });
    if (auto r = server.start(); !r) {
      std::vector<std::string> all = cfg.listen;
      all.insert(all.end(), cfg.tls_listen.begin(), cfg.tls_listen.end());
      spdlog::error("cannot listen on {}: {}", fmt::join(all, ", "), r.error().message());
      return 1;
    }

    http::Router admin_router;
    std::vector<std::string> route_names;
    for (std::size_t slot = 0; slot <= router.unmatched_slot(); ++slot)
      route_names.emplace_back(router.slot_name(slot));
    auto started = std::chrono::steady_clock::now();
    mount_admin_routes(admin_router,
                       AdminSources{[&server] { return server.draining(); },
                                    [&server, &access_log, &route_names, &sessions, started, &upstream_metrics] {
                                      std::chrono::duration<double> up = std::chrono::steady_clock::now() - started;
                                      return observe::MetricsSources{server.stats(),
                                                                     access_log ? access_log->dropped() : 0,
                                                                     route_names,
                                                                     up.count(),
                                                                     session_metrics(*sessions),
                                                                     &upstream_metrics};
                                    },
                                    requests});
    std::unique_ptr<http::Server> admin;
    if (cfg.admin != "off" || !passed.admin.empty()) {
      http::ServerOptions aopts;
      if (cfg.admin != "off") aopts.listen = addresses({cfg.admin});
      replace_with(passed.admin, aopts.listen, aopts.adopt);
      aopts.threads = 1;
      aopts.max_connections = 256;
      admin = std::make_unique<http::Server>(aopts, admin_router, nullptr);
      if (auto r = admin->start(); !r) {
        spdlog::error("cannot listen on {} (--admin): {}", cfg.admin, r.error().message());
        server.drain();
        return 1;
      }
      spdlog::info("admin on {}", joined(admin->addresses()));
    }
    // Before the plain line, which tests and scripts take as "started".
    for (const net::SocketAddress& a : server.tls_addresses())
      spdlog::info("tls listening on https://{}", a.to_string());
    spdlog::info("listening on {} ({} threads, {} workers; {})", joined(server.addresses()), opts.threads, opts.workers,
                 build::version_line());
    // Declared after the servers, so destroyed (its watchdog stopped) before them.
    SystemdNotifier systemd;
    systemd.ready("listening on " + joined(server.addresses()));
    std::vector<net::EventLoop*> loops = server.event_loops();
    if (admin)
      for (net::EventLoop* l : admin->event_loops()) loops.push_back(l);
    systemd.start_watchdog(std::move(loops));

    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig == SIGHUP) {
        systemd.reloading();
        if (access_log) access_log->reopen();
        spdlog::info("SIGHUP: reopening the access log");
        // Here, not in a handler: sigwait() made this an ordinary thread. Open connections keep
        // the certificates they were made with.
        if (net::TlsSetupError error; opts.tls && !opts.tls->reload(error)) {
          spdlog::error("tls: certificates not reloaded, keeping the old ones: {}", error.message);
        } else if (opts.tls) {
          spdlog::info("tls: certificates reloaded");
        }
        systemd.reloaded();
        continue;
      }
      spdlog::info("{}: draining (up to {} ms); send it again to exit at once", strsignal(sig),
                   cfg.limits.drain_timeout.count());
      systemd.stopping();
      break;
    }
    // A second SIGTERM or SIGINT during the drain (Ctrl-C twice): the operator will not wait. The
    // watcher touches nothing of this function's (it may outlive it by an instant at exit).
    std::thread([signals] {
      for (;;) {
        int sig = 0;
        if (sigwait(&signals, &sig) != 0 || sig == SIGHUP) continue;
        spdlog::warn("second {}: exiting without finishing the drain", strsignal(sig));
        spdlog::default_logger()->flush();
        std::_Exit(128 + sig);
      }
    }).detach();
    server.drain();
    server.wait();
    if (admin) {
      admin->drain();
      admin->wait();
    }
    sessions.reset();  // the loops are stopped but alive: the store threads' last posts are harmless
    spdlog::info("stopped");
    return 0;
  } catch (const ProxySetupError& e) {
    spdlog::error("{}", e.what());
    return 2;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}

}  // namespace unbroken::app
