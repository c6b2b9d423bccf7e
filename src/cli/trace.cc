// `flowmesh trace …`: a workflow's lineage, spans and assets (NDJSON), and its analysis.
#include <unistd.h>

#include "cli/context.h"
#include "cli/output.h"

namespace flowmesh::cli {
namespace {

std::string Enc(const std::string& s) { return http::PercentEncode(s); }

int TerminalWidth() {
  if (::isatty(STDOUT_FILENO) == 0) return 40;
  if (const char* cols = std::getenv("COLUMNS")) {
    int c = std::atoi(cols);
    if (c > 60) return std::min(100, c - 50);
  }
  return 40;
}

}  // namespace

int TraceFetch(Context& ctx) {
  auto reply = ctx.Get("/traces/workflows/" + Enc(ctx.inv.names.at(0)) + "/" + ctx.inv.trace_kind);
  if (!reply.ok) return reply.exit_code;
  ctx.io.out << reply.response.body;
  return kExitOk;
}

int TraceAnalyze(Context& ctx) {
  auto reply = ctx.Get("/traces/workflows/analyze/" + Enc(ctx.inv.names.at(0)) + "?view=flowmesh");
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.PrintJson(reply.json);
  } else {
    ctx.io.out << FormatTraceAnalysis(reply.json, TerminalWidth());
  }
  return kExitOk;
}

}  // namespace flowmesh::cli
