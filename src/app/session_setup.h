#pragma once
// Sessions for `serve`: the store named by --session-store, the manager, GET /diag/session, and the
// session metrics.

#include <memory>
#include <string>

#include "app/serve_config.h"
#include "http/router.h"
#include "observe/metrics.h"
#include "session/session_manager.h"

namespace unbroken::app {

// Opens the configured store. Throws std::runtime_error with one line naming the problem.
std::unique_ptr<session::SessionManager> make_session_manager(const ServeConfig& cfg);
// GET /diag/session: counts requests in the session, answers {"count": N}.
void mount_session_diag(http::Router& router, session::SessionManager& sessions);
observe::SessionMetrics session_metrics(const session::SessionManager& sessions);

}  // namespace unbroken::app
