// `flowmesh trace …`: a workflow's lineage, spans and assets (NDJSON), and its analysis.
#include <unistd.h>

#include <fstream>

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
  // `trace fetch TYPE WF` (published) or `trace fetch WF [--kind TYPE]` (ours).
  std::string kind = ctx.inv.trace_kind;
  std::string id = ctx.inv.names.back();
  if (ctx.inv.names.size() == 2) {
    kind = ctx.inv.names[0];
    if (kind != "spans" && kind != "assets" && kind != "lineage") {
      ctx.io.err << "error: trace type '" << kind << "' is not one of spans, assets, lineage\n";
      return kExitUnreachable;
    }
  }
  auto reply = ctx.Get("/traces/workflows/" + Enc(id) + "/" + kind);
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.output.empty()) {
    ctx.io.out << reply.response.body;
    return kExitOk;
  }
  std::ofstream out(ctx.inv.output, std::ios::binary | std::ios::trunc);
  out << reply.response.body;
  out.close();
  if (!out) {
    ctx.io.err << "error: cannot write " << ctx.inv.output << "\n";
    return kExitFailure;
  }
  size_t rows = 0;
  for (char c : reply.response.body) rows += c == '\n' ? 1 : 0;
  if (!reply.response.body.empty() && reply.response.body.back() != '\n') ++rows;
  ctx.io.out << "Wrote " << rows << " " << kind << " rows to " << ctx.inv.output << "\n";
  return kExitOk;
}

int TraceAnalyze(Context& ctx) {
  // `-f json` prints the published ProfileSummary; everything else renders our analysis
  // (critical path, queueing, per-task timing: ?view=flowmesh; older servers ignore it).
  bool published = ctx.inv.analyze_view == "json";
  auto reply = ctx.Get("/traces/workflows/analyze/" + Enc(ctx.inv.names.at(0)) +
                       (published ? "" : "?view=flowmesh"));
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json || published) {
    ctx.PrintJson(reply.json);
  } else {
    ctx.io.out << FormatTraceAnalysis(reply.json, TerminalWidth());
  }
  return kExitOk;
}

}  // namespace flowmesh::cli
