#include "moeplan/Report/Html.h"

#include "moeplan/Description/Finding.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

namespace moeplan::report {

namespace {

// ---- small helpers ----

// A JSON count: a non-negative integer (parsed files hold them unsigned, built ones signed).
bool isCount(const nlohmann::json &j) {
  return j.is_number_unsigned() || (j.is_number_integer() && j.get<int64_t>() >= 0);
}

std::string esc(const std::string &s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    default: out += c;
    }
  return out;
}

// A coordinate: one decimal is finer than a pixel.
std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Shares and throughputs as the requirement tables write them (one formatter for both).
std::string percentText(double fraction) {
  return formatRequirementValue(RequirementCheck::Unit::Fraction, fraction);
}
std::string formatThroughput(double v) {
  return formatRequirementValue(RequirementCheck::Unit::TokensPerSecond, v);
}

// Stage colours (Tableau 10): distinct at a glance, readable under black text.
const char *stageColor(uint32_t stage) {
  static const char *colors[] = {"#a0cbe8", "#ffbe7d", "#8cd17d", "#ff9d9a", "#86bcb6",
                                 "#f1ce63", "#d4a6c8", "#fabfd2", "#d7b5a6", "#bab0ac"};
  return colors[stage % 10];
}

const char *memoryColor(MemoryKind k) {
  static const char *colors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#9c755f"};
  return colors[size_t(k)];
}

// What a timeline span is, for its colour and legend.
struct SpanClass {
  const char *name, *title, *color;
};
const std::vector<SpanClass> &spanClasses() {
  static const std::vector<SpanClass> classes = {
      {"matmul", "GEMM / grouped GEMM", "#4e79a7"},
      {"attention", "attention", "#b07aa1"},
      {"routing", "router / dispatch / combine", "#59a14f"},
      {"elementwise", "norm / activation / add / other kernels", "#76b7b2"},
      {"collective", "all-reduce / all-gather / reduce-scatter", "#e15759"},
      {"alltoall", "all-to-all", "#f28e2b"},
      {"p2p", "pipeline send / receive", "#9c755f"}};
  return classes;
}
size_t spanClassOf(const plan::Instruction &inst) {
  if (inst.has_kernel()) switch (inst.kernel().kind()) {
    case plan::GEMM:
    case plan::GROUPED_GEMM: return 0;
    case plan::ATTENTION: return 1;
    case plan::ROUTER:
    case plan::DISPATCH:
    case plan::COMBINE: return 2;
    default: return 3;
    }
  switch (inst.collective().kind()) {
  case plan::ALL_TO_ALL: return 5;
  case plan::SEND:
  case plan::RECV: return 6;
  default: return 4;
  }
}

// Tick values for an axis over [0, max]: 1, 2 or 5 times a power of ten, about `count`.
std::vector<double> ticks(double max, int count) {
  std::vector<double> out;
  if (!(max > 0) || !std::isfinite(max)) return {0};
  double raw = max / count, power = std::pow(10, std::floor(std::log10(raw)));
  double step = power;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * power >= raw) {
      step = m * power;
      break;
    }
  for (double v = 0; v <= max * (1 + 1e-9); v += step) out.push_back(v);
  return out;
}

// Tick values for a log axis over [lo, hi]: the powers of ten, and 2 and 5 times them when
// the range is narrow.
std::vector<double> logTicks(double lo, double hi) {
  std::vector<double> out;
  if (!(lo > 0) || !(hi >= lo) || !std::isfinite(hi)) return out;
  const double span = std::log10(hi / lo);
  for (double p = std::floor(std::log10(lo)); p <= std::ceil(std::log10(hi)); ++p)
    for (double m : {1.0, 2.0, 5.0}) {
      if (m != 1 && span > 3) continue;
      double v = m * std::pow(10, p);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push_back(v);
    }
  return out;
}

// The strategy in one line.
std::string strategyLine(const plan::Strategy &s) {
  std::ostringstream o;
  o << "tp " << s.tp() << " · pp " << s.pp() << " · dp " << s.dp() << " · ep " << s.ep()
    << " · expert_tp " << s.expert_tp() << " · "
    << (s.overlap() == plan::DUAL_MICRO_BATCH ? s.micro_batches() / 2 : s.micro_batches())
    << " micro-batches" << (s.overlap() == plan::DUAL_MICRO_BATCH ? " (in halves)" : "") << " · "
    << plan::Schedule_Name(s.schedule());
  if (s.capacity_factor() > 0) o << " · capacity factor " << formatNumber(s.capacity_factor());
  o << " · rank order " << s.rank_order();
  return o.str();
}

const char *kStyle = R"(
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       color: #222; margin: 24px auto; max-width: 1240px; padding: 0 16px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.sub { color: #555; margin: 2px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; min-width: 130px; }
.card .v { font-size: 20px; font-weight: 600; }
.card .k { color: #666; font-size: 12px; }
.card.pass { border-color: #59a14f; background: #f1f8ef; }
.card.fail { border-color: #e15759; background: #fdf0f0; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f5f5f5; }
td.l, th.l { text-align: left; }
td.pass { background: #eaf5e6; }
td.fail { background: #fbe3e3; font-weight: 600; }
svg { display: block; margin: 6px 0; }
svg text { font-family: system-ui, "DejaVu Sans", sans-serif; }
.note { color: #666; font-size: 12px; }
.cols { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px;
            vertical-align: -2px; border: 1px solid #888; }
)";

std::string legendItem(const std::string &color, const std::string &label) {
  return "<span><i style=\"background:" + color + "\"></i>" + esc(label) + "</span>";
}

// ---- the plan's figures ----

struct PlanView {
  const plan::Plan &p;
  const sim::Prediction &pred;
  std::vector<ProgramSummary> programs;  // by program index
  plan::WorkloadPoint own;               // the plan's own length
  std::vector<RequirementCheck> checks;  // at its own length

  PlanView(const plan::Plan &plan, const sim::Prediction &prediction)
      : p(plan), pred(prediction) {
    for (ProgramSummary &s : summarizePrograms(p)) {
      if (programs.size() <= s.program) programs.resize(s.program + 1);
      programs[s.program] = std::move(s);
    }
    own = workloadPoint(p, pred);
    checks = judgeRequirements(p, own);
  }
  const ProgramSummary &programOf(uint32_t rank) const {
    return programs[p.ranks(int(rank)).program()];
  }
  uint64_t maxArena() const {
    uint64_t m = 0;
    for (const ProgramSummary &s : programs) m = std::max(m, s.memory.arenaBytes);
    return m;
  }
  double end() const {
    double e = 0;
    for (const sim::RankTimeline &t : pred.ranks) e = std::max(e, t.end);
    return e;
  }
};

const RequirementCheck *findCheck(const std::vector<RequirementCheck> &checks,
                                  const std::string &field) {
  for (const RequirementCheck &c : checks)
    if (c.field == field) return &c;
  return nullptr;
}

std::string card(const std::string &label, const std::string &value,
                 const RequirementCheck *check) {
  std::string cls = check ? (check->pass ? " pass" : " fail") : "";
  std::string out = "<div class=\"card" + cls + "\"><div class=\"k\">" + esc(label) +
                    "</div><div class=\"v\">" + esc(value) + "</div>";
  if (check)
    out += "<div class=\"k\">" + std::string(check->atMost ? "&le; " : "&ge; ") +
           esc(formatRequirementValue(check->unit, check->required)) +
           (check->pass ? " ✓" : " ✗ FAIL") + "</div>";
  return out + "</div>";
}

std::string headerCards(const PlanView &v) {
  const plan::WorkloadPoint &w = v.own;
  std::ostringstream o;
  o << "<div class=\"cards\">";
  // A GENERATE plan's latency and throughput are its prefill's (sim::Prediction).
  const bool generates = v.p.workload().phase() == plan::GENERATE;
  o << card(std::string(generates ? "prefill latency at " : "latency at ") +
                std::to_string(w.seq_len()) + " tokens",
            formatSeconds(w.latency_s()),
            findCheck(v.checks, "requirements.max_latency_s"));
  o << card("throughput", formatThroughput(w.throughput_tokens_per_s()),
            findCheck(v.checks, "requirements.min_throughput_tokens_per_s"));
  const RequirementCheck *mem = findCheck(v.checks, "requirements.max_memory_per_gpu_bytes");
  o << card("memory per GPU (largest)", formatBytes(double(w.memory_bytes())),
            mem ? mem : findCheck(v.checks, "cluster.memory_bytes"));
  o << card("GPU utilization", percentText(w.utilization()),
            findCheck(v.checks, "requirements.min_gpu_utilization"));
  o << card("exposed communication", percentText(w.exposed_comm_share()),
            findCheck(v.checks, "requirements.max_comm_overhead"));
  o << card("pipeline bubble", percentText(w.bubble_fraction()), nullptr);
  if (v.p.workload().phase() == plan::GENERATE) {
    o << card("time to first token", formatSeconds(w.ttft_s()),
              findCheck(v.checks, "requirements.max_ttft_s"));
    o << card("time per output token (p99)", formatSeconds(w.tpot_p99_s()),
              findCheck(v.checks, "requirements.max_tpot_s"));
    o << card("decode throughput", formatThroughput(w.decode_tokens_per_s()),
              findCheck(v.checks, "requirements.min_decode_tokens_per_s"));
  }
  o << card("load balance", percentText(w.load_balance()),
            findCheck(v.checks, "requirements.min_load_balance"));
  o << "</div>";
  return o.str();
}

// ---- the device mesh ----

std::string meshSvg(const PlanView &v, double maxWidth) {
  const plan::Plan &p = v.p;
  const uint32_t nodes = std::max<uint32_t>(1, p.cluster().nodes());
  const uint32_t perNode = std::max<uint32_t>(1, p.cluster().gpus_per_node());
  const uint32_t ranks = uint32_t(p.ranks_size());
  // Per axis, groups numbered in the order the plan lists them.
  std::vector<uint32_t> ordinal(size_t(p.groups_size()));
  std::map<std::string, uint32_t> perAxis;
  for (int g = 0; g < p.groups_size(); ++g) ordinal[size_t(g)] = perAxis[p.groups(g).axis()]++;
  auto groupSize = [&](const plan::GroupMembership &m) {
    return m.group() < uint32_t(p.groups_size()) ? p.groups(int(m.group())).ranks_size() : 0;
  };
  const bool compact = uint64_t(nodes) * perNode > 64;
  const double w = compact ? 18 : 132, h = compact ? 18 : 66, gap = compact ? 3 : 8;
  const uint32_t cols = std::min<uint32_t>(
      perNode, std::max<uint32_t>(1, std::min<uint32_t>(compact ? 16 : 8, uint32_t((maxWidth - 24) / (w + gap)))));
  const uint32_t rows = (perNode + cols - 1) / cols;
  const double nodeW = cols * (w + gap) + gap, nodeH = rows * (h + gap) + gap + 18;
  const uint32_t nodesPerLine = std::max<uint32_t>(1, uint32_t(maxWidth / (nodeW + 12)));
  const uint32_t lines = (nodes + nodesPerLine - 1) / nodesPerLine;
  const double width = std::min<uint32_t>(nodes, nodesPerLine) * (nodeW + 12) + 4;
  const double height = lines * (nodeH + 12) + 4;
  std::ostringstream o;
  o << "<svg class=\"mesh\" width=\"" << px(width) << "\" height=\"" << px(height)
    << "\" viewBox=\"0 0 " << px(width) << " " << px(height)
    << "\" role=\"img\" aria-label=\"device mesh\">\n";
  for (uint32_t n = 0; n < nodes; ++n) {
    const double nx = 2 + (n % nodesPerLine) * (nodeW + 12), ny = 2 + (n / nodesPerLine) * (nodeH + 12);
    o << "<g class=\"node\"><rect x=\"" << px(nx) << "\" y=\"" << px(ny) << "\" width=\"" << px(nodeW)
      << "\" height=\"" << px(nodeH) << "\" rx=\"6\" fill=\"#fafafa\" stroke=\"#999\"/>"
      << "<text x=\"" << px(nx + 6) << "\" y=\"" << px(ny + 13) << "\" font-size=\"12\" fill=\"#444\">node "
      << n << "</text>\n";
    for (uint32_t l = 0; l < perNode; ++l) {
      const uint32_t gpu = n * perNode + l;
      const double x = nx + gap + (l % cols) * (w + gap), y = ny + 18 + gap + (l / cols) * (h + gap);
      if (gpu >= ranks) {
        o << "<g class=\"gpu idle\"><title>GPU " << gpu << ": idle (the strategy occupies "
          << ranks << ")</title><rect x=\"" << px(x) << "\" y=\"" << px(y) << "\" width=\"" << px(w)
          << "\" height=\"" << px(h)
          << "\" rx=\"3\" fill=\"#f0f0f0\" stroke=\"#aaa\" stroke-dasharray=\"4 3\"/>";
        if (!compact)
          o << "<text x=\"" << px(x + 6) << "\" y=\"" << px(y + 16) << "\" font-size=\"12\" fill=\"#888\">GPU "
            << gpu << "</text><text x=\"" << px(x + 6) << "\" y=\"" << px(y + 34)
            << "\" font-size=\"12\" fill=\"#888\">idle</text>";
        o << "</g>\n";
        continue;
      }
      const plan::Rank &r = p.ranks(int(gpu));
      const plan::Program &program = p.programs(int(r.program()));
      std::ostringstream title, groups;
      title << "GPU " << gpu << " (node " << r.node() << ", local " << r.local_gpu() << "): stage "
            << program.stage() << ", layers " << program.first_layer() << "-"
            << (program.end_layer() > 0 ? program.end_layer() - 1 : 0);
      for (const plan::GroupMembership &m : r.groups()) {
        if (m.group() >= uint32_t(p.groups_size())) continue;
        title << "; " << m.axis() << " group " << ordinal[m.group()] << " (" << groupSize(m)
              << " GPUs), position " << m.index();
        if (groupSize(m) > 1 && (m.axis() == "tp" || m.axis() == "ep" || m.axis() == "etp"))
          groups << (groups.tellp() > 0 ? " · " : "") << m.axis() << " " << ordinal[m.group()] << "."
                 << m.index();
      }
      o << "<g class=\"gpu stage-" << program.stage() << "\" data-rank=\"" << gpu << "\"><title>"
        << esc(title.str()) << "</title><rect x=\"" << px(x) << "\" y=\"" << px(y) << "\" width=\""
        << px(w) << "\" height=\"" << px(h) << "\" rx=\"3\" fill=\"" << stageColor(program.stage())
        << "\" stroke=\"#555\"/>";
      if (!compact) {
        o << "<text x=\"" << px(x + 6) << "\" y=\"" << px(y + 16)
          << "\" font-size=\"12\" font-weight=\"600\">GPU " << gpu << "</text>"
          << "<text x=\"" << px(x + 6) << "\" y=\"" << px(y + 33) << "\" font-size=\"11\">stage "
          << program.stage() << " · layers " << program.first_layer() << "-"
          << (program.end_layer() > 0 ? program.end_layer() - 1 : 0) << "</text>"
          << "<text x=\"" << px(x + 6) << "\" y=\"" << px(y + 50) << "\" font-size=\"11\">"
          << esc(groups.str()) << "</text>";
      }
      o << "</g>\n";
    }
    o << "</g>\n";
  }
  o << "</svg>\n";
  return o.str();
}

std::string meshSection(const PlanView &v, double maxWidth) {
  std::ostringstream o;
  o << "<div class=\"legend\">";
  for (const ProgramSummary &s : v.programs)
    o << legendItem(stageColor(s.stage), "stage " + std::to_string(s.stage) + ": layers " +
                                            std::to_string(s.firstLayer) + "-" +
                                            std::to_string(s.endLayer > 0 ? s.endLayer - 1 : 0));
  const uint64_t cluster = uint64_t(v.p.cluster().nodes()) * v.p.cluster().gpus_per_node();
  if (cluster > uint64_t(v.p.ranks_size())) o << legendItem("#f0f0f0", "idle");
  o << "</div>\n" << meshSvg(v, maxWidth);
  o << "<p class=\"note\">Each box is a GPU; \"tp g.i\" is position i in tensor-parallel group g "
       "(likewise ep, and etp for expert tensor parallelism). Hover a GPU for all its groups.</p>\n";
  return o.str();
}

// ---- memory per GPU ----

std::string memorySvg(const PlanView &v, double scaleMax, double width) {
  const plan::Plan &p = v.p;
  const uint32_t ranks = uint32_t(p.ranks_size());
  const double left = 64, top = 12, plotH = 240, bottom = 36;
  const double plotW = width - left - 150;
  const double slot = plotW / std::max<uint32_t>(1, ranks);
  const double barW = std::max(1.0, std::min(36.0, slot * 0.7));
  const double height = top + plotH + bottom;
  auto y = [&](double bytes) { return top + plotH - plotH * bytes / scaleMax; };
  std::ostringstream o;
  o << "<svg class=\"memory\" width=\"" << px(width) << "\" height=\"" << px(height)
    << "\" role=\"img\" aria-label=\"memory per GPU\">\n";
  for (double t : ticks(scaleMax, 5)) {
    o << "<line x1=\"" << px(left) << "\" x2=\"" << px(left + plotW) << "\" y1=\"" << px(y(t))
      << "\" y2=\"" << px(y(t)) << "\" stroke=\"#eee\"/><text x=\"" << px(left - 6) << "\" y=\""
      << px(y(t) + 4) << "\" font-size=\"11\" text-anchor=\"end\">" << esc(formatBytes(t)) << "</text>\n";
  }
  o << "<text x=\"12\" y=\"" << px(top + plotH / 2) << "\" font-size=\"12\" transform=\"rotate(-90 12 "
    << px(top + plotH / 2) << ")\" text-anchor=\"middle\">bytes per GPU</text>\n";
  const uint32_t labelEvery = std::max<uint32_t>(1, uint32_t(std::ceil(28 / slot)));
  for (uint32_t r = 0; r < ranks; ++r) {
    const MemoryAtPeak &m = v.programOf(r).memory;
    const double x = left + r * slot + (slot - barW) / 2;
    o << "<g class=\"memory-bar\" data-rank=\"" << r << "\"><title>GPU " << r << ": "
      << esc(formatBytes(double(m.arenaBytes))) << " arena";
    for (size_t k = 0; k < kMemoryKinds; ++k)
      o << "; " << memoryKindTitle(MemoryKind(k)) << " " << esc(formatBytes(double(m.byKind[k])));
    o << "; fragmentation " << esc(formatBytes(double(m.fragmentationBytes()))) << "</title>";
    double base = 0;
    auto segment = [&](double bytes, const std::string &color, const char *cls) {
      if (bytes <= 0) return;
      o << "<rect class=\"" << cls << "\" x=\"" << px(x) << "\" y=\"" << px(y(base + bytes))
        << "\" width=\"" << px(barW) << "\" height=\"" << px(y(base) - y(base + bytes))
        << "\" fill=\"" << color << "\"/>";
      base += bytes;
    };
    for (size_t k = 0; k < kMemoryKinds; ++k)
      segment(double(m.byKind[k]), memoryColor(MemoryKind(k)), memoryKindName(MemoryKind(k)));
    segment(double(m.fragmentationBytes()), "#d9d9d9", "fragmentation");
    o << "</g>";
    if (r % labelEvery == 0)
      o << "<text x=\"" << px(left + r * slot + slot / 2) << "\" y=\"" << px(top + plotH + 14)
        << "\" font-size=\"10\" text-anchor=\"middle\">" << r << "</text>";
    o << "\n";
  }
  o << "<text x=\"" << px(left + plotW / 2) << "\" y=\"" << px(top + plotH + 30)
    << "\" font-size=\"12\" text-anchor=\"middle\">GPU (rank)</text>\n";
  double lastLabelY = -100;
  auto limit = [&](double bytes, const std::string &label, const char *color, const char *cls) {
    if (!(bytes > 0) || bytes > scaleMax) return;
    // Two limits at one height (a requirement of the GPU's own capacity): labels stacked.
    const double labelY = std::abs(y(bytes) - lastLabelY) < 13 ? lastLabelY + 13 : y(bytes);
    lastLabelY = labelY;
    o << "<line class=\"" << cls << "\" x1=\"" << px(left) << "\" x2=\"" << px(left + plotW)
      << "\" y1=\"" << px(y(bytes)) << "\" y2=\"" << px(y(bytes)) << "\" stroke=\"" << color
      << "\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/><text x=\"" << px(left + plotW + 6)
      << "\" y=\"" << px(labelY + 4) << "\" font-size=\"11\" fill=\"" << color << "\">"
      << esc(label) << "</text>\n";
  };
  limit(p.cluster().memory_bytes(), "GPU memory " + formatBytes(p.cluster().memory_bytes()), "#333",
        "capacity");
  if (p.cluster().memory_bytes() > scaleMax)
    o << "<text x=\"" << px(left + plotW) << "\" y=\"" << px(top + 10)
      << "\" font-size=\"11\" text-anchor=\"end\" fill=\"#333\">GPU memory "
      << esc(formatBytes(p.cluster().memory_bytes()))
      << " and the requirement are far above this scale</text>\n";
  if (p.requirements().has_max_memory_per_gpu_bytes())
    limit(p.requirements().max_memory_per_gpu_bytes(),
          "required ≤ " + formatBytes(p.requirements().max_memory_per_gpu_bytes()), "#e15759",
          "requirement");
  o << "</svg>\n";
  return o.str();
}

// The memory axis: up to the GPU's capacity and the requirement, unless the plan uses under
// a tenth of them (its bars would be slivers): then its own largest arena, the limits noted.
double memoryScale(const PlanView &v) {
  double limits = v.p.cluster().memory_bytes();
  if (v.p.requirements().has_max_memory_per_gpu_bytes())
    limits = std::max(limits, v.p.requirements().max_memory_per_gpu_bytes());
  const double arena = double(v.maxArena());
  return (limits > 10 * arena ? arena : std::max(arena, limits)) * 1.08;
}

std::string memoryLegend() {
  std::ostringstream o;
  o << "<div class=\"legend\">";
  for (size_t k = 0; k < kMemoryKinds; ++k)
    o << legendItem(memoryColor(MemoryKind(k)), memoryKindTitle(MemoryKind(k)));
  o << legendItem("#d9d9d9", "fragmentation (arena bytes no live buffer uses at the peak)");
  o << "</div>\n";
  return o.str();
}

// ---- timelines ----

// Rows: every rank's streams that run something, ranks in order, the first kTimelineRanks
// ranks (a page of a thousand GPUs' rows would be unreadable).
constexpr uint32_t kTimelineRanks = 64;

std::string timelineSvg(const plan::Plan &p, const std::vector<TimelineSpan> &spans,
                        double timeMax, double width, const std::string &cls) {
  const uint32_t ranks = std::min<uint32_t>(uint32_t(p.ranks_size()), kTimelineRanks);
  std::map<std::pair<uint32_t, uint32_t>, std::vector<const TimelineSpan *>> rows;
  for (const TimelineSpan &s : spans)
    if (s.rank < ranks) rows[{s.rank, s.stream}].push_back(&s);
  const double left = 150, top = 8, rowH = 13, axisH = 36;
  const double plotW = width - left - 20;
  const double height = top + rows.size() * rowH + (ranks > 0 ? ranks - 1 : 0) * 4 + axisH;
  auto x = [&](double t) { return left + plotW * t / timeMax; };
  std::ostringstream o;
  o << "<svg class=\"timeline " << cls << "\" width=\"" << px(width) << "\" height=\"" << px(height)
    << "\" role=\"img\" aria-label=\"" << cls << " timeline\">\n";
  double rowY = top;
  uint32_t lastRank = UINT32_MAX;
  const std::vector<std::string> &streams = trace::planStreamNames();
  const double plotTop = top;
  for (auto &[key, list] : rows) {
    const auto [rank, stream] = key;
    if (lastRank != UINT32_MAX && rank != lastRank) rowY += 4;
    lastRank = rank;
    o << "<rect x=\"" << px(left) << "\" y=\"" << px(rowY) << "\" width=\"" << px(plotW)
      << "\" height=\"" << px(rowH - 2) << "\" fill=\"" << (stream == 0 ? "#ffffff" : "#fcfcfc")
      << "\" stroke=\"#eee\"/>";
    o << "<text x=\"" << px(left - 6) << "\" y=\"" << px(rowY + 9.5)
      << "\" font-size=\"10\" text-anchor=\"end\">GPU " << rank << " "
      << (stream < streams.size() ? streams[stream] : "stream " + std::to_string(stream))
      << "</text>\n";
    std::sort(list.begin(), list.end(),
              [](const TimelineSpan *a, const TimelineSpan *b) { return a->start < b->start; });
    const plan::Program &program = p.programs(int(p.ranks(int(rank)).program()));
    // Adjacent spans of one class closer than half a pixel are drawn as one rectangle: a
    // plan has tens of thousands of instructions, a screen a thousand pixels.
    size_t curClass = SIZE_MAX;
    double x0 = 0, x1 = 0;
    uint32_t merged = 0;
    auto flush = [&]() {
      if (curClass == SIZE_MAX) return;
      const SpanClass &c = spanClasses()[curClass];
      o << "<rect class=\"span " << c.name << "\" x=\"" << px(x0) << "\" y=\"" << px(rowY)
        << "\" width=\"" << px(std::max(0.6, x1 - x0)) << "\" height=\"" << px(rowH - 2)
        << "\" fill=\"" << c.color << "\"><title>" << c.title << ": " << merged
        << " instruction" << (merged == 1 ? "" : "s") << "</title></rect>";
    };
    for (const TimelineSpan *s : list) {
      if (s->instruction >= uint32_t(program.instructions_size())) continue;
      const size_t k = spanClassOf(program.instructions(int(s->instruction)));
      const double a = x(s->start), b = x(s->end);
      if (k == curClass && a <= x1 + 0.5) {
        x1 = std::max(x1, b);
        ++merged;
        continue;
      }
      flush();
      curClass = k, x0 = a, x1 = b, merged = 1;
    }
    flush();
    o << "\n";
    rowY += rowH;
  }
  // The time axis.
  const double axisY = rowY + 4;
  for (double t : ticks(timeMax, 8)) {
    o << "<line x1=\"" << px(x(t)) << "\" x2=\"" << px(x(t)) << "\" y1=\"" << px(plotTop)
      << "\" y2=\"" << px(axisY) << "\" stroke=\"#000\" stroke-opacity=\"0.08\"/><text x=\""
      << px(x(t)) << "\" y=\"" << px(axisY + 12) << "\" font-size=\"10\" text-anchor=\"middle\">"
      << esc(formatSeconds(t)) << "</text>";
  }
  o << "<text x=\"" << px(left + plotW / 2) << "\" y=\"" << px(axisY + 28)
    << "\" font-size=\"12\" text-anchor=\"middle\">time since the start of the forward pass</text>\n";
  o << "</svg>\n";
  return o.str();
}

std::string timelineLegend() {
  std::ostringstream o;
  o << "<div class=\"legend\">";
  for (const SpanClass &c : spanClasses()) o << legendItem(c.color, c.title);
  o << legendItem("#ffffff", "idle (waiting: bubble or exposed communication)") << "</div>\n";
  return o.str();
}

double spansEnd(const std::vector<TimelineSpan> &spans) {
  double e = 0;
  for (const TimelineSpan &s : spans) e = std::max(e, s.end);
  return e;
}

// ---- communication per axis ----

std::string communicationSvg(const PlanView &v, double width) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> byAxis;  // bytes, collectives
  for (const ProgramSummary &s : v.programs)
    for (const CollectiveTotals &c : s.collectives) {
      byAxis[c.axis].first += c.commBytes * s.ranks.size();
      byAxis[c.axis].second += c.count * s.ranks.size();
    }
  std::vector<std::string> axes;
  for (const std::string &a : meshAxes())
    if (byAxis.count(a)) axes.push_back(a);
  if (axes.empty()) return "<p class=\"note\">No communication: one GPU, or nothing to exchange.</p>\n";
  uint64_t most = 0;
  for (const auto &[axis, t] : byAxis) most = std::max(most, t.first);
  const double left = 60, rowH = 24, barMax = std::max(100.0, width - left - 260);
  std::ostringstream o;
  o << "<svg class=\"communication\" width=\"" << px(width) << "\" height=\""
    << px(axes.size() * rowH + 8)
    << "\" role=\"img\" aria-label=\"communication per axis\">\n";
  static const std::map<std::string, std::string> titles = {
      {"tp", "tensor parallel"}, {"dp", "data parallel"},       {"pp", "pipeline"},
      {"ep", "expert parallel"}, {"etp", "expert tensor par."}, {"edp", "expert data par."}};
  for (size_t i = 0; i < axes.size(); ++i) {
    const auto &[bytes, count] = byAxis[axes[i]];
    const double y = 4 + i * rowH, w = most > 0 ? barMax * double(bytes) / double(most) : 0;
    o << "<g class=\"axis-volume\"><title>" << esc(titles.count(axes[i]) ? titles.at(axes[i]) : axes[i])
      << ": " << count << " collectives over all GPUs</title><text x=\"" << px(left - 8) << "\" y=\""
      << px(y + 15) << "\" font-size=\"12\" text-anchor=\"end\">" << axes[i] << "</text><rect x=\""
      << px(left) << "\" y=\"" << px(y + 2) << "\" width=\"" << px(std::max(1.0, w)) << "\" height=\""
      << px(rowH - 6) << "\" fill=\"#e15759\"/><text x=\"" << px(left + w + 8) << "\" y=\""
      << px(y + 15) << "\" font-size=\"12\">" << esc(formatBytes(double(bytes))) << " ("
      << formatCount(double(count)) << " collectives)</text></g>\n";
  }
  o << "</svg>\n<p class=\"note\">Bytes each axis's collectives move in one forward pass, summed "
       "over every GPU (each member counts what it sends).</p>\n";
  return o.str();
}

// ---- requirements, claims, measurement ----

std::string requirementsTable(const PlanView &v) {
  std::vector<plan::WorkloadPoint> points(v.p.workload_points().begin(), v.p.workload_points().end());
  if (points.empty()) points.push_back(v.own);
  std::vector<std::vector<RequirementCheck>> checks;
  for (const plan::WorkloadPoint &w : points) checks.push_back(judgeRequirements(v.p, w));
  std::ostringstream o;
  o << "<table class=\"requirements\"><tr><th class=\"l\">requirement</th><th>limit</th>";
  for (const plan::WorkloadPoint &w : points) o << "<th>at " << w.seq_len() << " tokens</th>";
  o << "</tr>\n";
  for (size_t i = 0; i < checks.front().size(); ++i) {
    const RequirementCheck &c = checks.front()[i];
    o << "<tr><td class=\"l\">" << esc(c.name) << " <span class=\"note\">(" << esc(c.field)
      << ")</span></td><td>" << (c.atMost ? "&le; " : "&ge; ")
      << esc(formatRequirementValue(c.unit, c.required)) << "</td>";
    for (const std::vector<RequirementCheck> &at : checks) {
      const RequirementCheck &k = at[i];
      o << "<td class=\"" << (k.pass ? "pass" : "fail") << "\">"
        << esc(formatRequirementValue(k.unit, k.predicted)) << (k.pass ? "" : " ✗") << "</td>";
    }
    o << "</tr>\n";
  }
  o << "</table>\n";
  return o.str();
}

std::string claimsTable(const plan::Plan &p) {
  if (p.claims_size() == 0) return "";
  std::ostringstream o;
  o << "<h2>Claims</h2><p class=\"sub\">What the description asserts, beside what moeplan "
       "derives (ratio derived / claimed).</p>\n<table class=\"claims\"><tr><th class=\"l\">claim"
       "</th><th>claimed</th><th class=\"l\">derived</th><th>tolerance</th><th>verdict</th></tr>\n";
  for (const plan::ClaimCheck &c : p.claims()) {
    o << "<tr><td class=\"l\">" << esc(c.name()) << " <span class=\"note\">(" << esc(c.field())
      << ")</span></td><td>" << esc(formatClaimValue(c.unit(), c.claimed())) << "</td><td class=\"l\">";
    const bool perPoint = c.derived_size() > 1 && c.derived_size() == p.workload_points_size();
    for (int k = 0; k < c.derived_size(); ++k) {
      o << (k ? "; " : "") << esc(formatClaimValue(c.unit(), c.derived(k)));
      if (perPoint) o << " at " << p.workload_points(k).seq_len();
      o << " (" << esc(formatRatio(c.derived(k), c.claimed())) << ")";
    }
    o << "</td><td>" << esc(percentText(c.tolerance())) << "</td><td class=\""
      << (c.consistent() ? "pass\">consistent" : "fail\">inconsistent") << "</td></tr>\n";
  }
  o << "</table>\n";
  return o.str();
}

std::string measuredTable(const MeasuredComparison &c) {
  std::ostringstream o;
  o << "<h2>Predicted against measured</h2><p class=\"sub\">moeplan-run (" << esc(c.backend)
    << " / " << esc(c.comm) << "); kinds summed over ranks; ratio predicted / measured.</p>\n"
    << "<table class=\"measured\"><tr><th class=\"l\">component</th><th>count</th><th>predicted"
       "</th><th>measured</th><th>ratio</th></tr>\n";
  for (const MeasuredRow &r : c.rows) {
    const double ratio = r.measured > 0 ? r.predicted / r.measured : 0;
    const bool close = ratio > 0.7 && ratio < 1.3;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", ratio);
    o << "<tr><td class=\"l\">" << esc(r.component) << "</td><td>"
      << (r.count ? std::to_string(r.count) : "") << "</td><td>" << esc(formatSeconds(r.predicted))
      << "</td><td>" << esc(formatSeconds(r.measured)) << "</td><td class=\""
      << (close ? "pass" : "fail") << "\">" << buf << "</td></tr>\n";
  }
  o << "</table><p class=\"note\">Ratios outside 0.7-1.3 are marked.</p>\n";
  return o.str();
}

// ---- search ----

std::string searchSection(const nlohmann::json &s) {
  const nlohmann::json &all = s["evaluated_strategies"];
  const nlohmann::json &limits = s["limits"];
  struct Point {
    double latency, throughput, memory;
    bool feasible, frontier, best;
    std::string title;
  };
  std::vector<Point> points;
  for (const nlohmann::json &e : all) {
    Point pt{e["latency_s"].get<double>(), e["throughput_tokens_per_s_per_gpu"].get<double>(),
             e["memory_bytes"].get<double>(), e["feasible"].get<bool>(),
             e["frontier"].get<bool>(), e["best"].get<bool>(), ""};
    // Figures a plot can place (a search writes positive finite ones; a damaged file may not).
    auto plottable = [](double v) { return v > 0 && v < 1e30; };
    if (!plottable(pt.latency) || !plottable(pt.throughput) || !(pt.memory >= 0 && pt.memory < 1e30))
      continue;
    const nlohmann::json &st = e["strategy"];
    std::ostringstream t;
    t << "tp " << st.value("tp", 0) << " pp " << st.value("pp", 0) << " dp " << st.value("dp", 0)
      << " ep " << st.value("ep", 0) << " expert_tp " << st.value("expert_tp", 0)
      << " micro_batches " << st.value("micro_batches", 0) << " " << st.value("schedule", "")
      << " on " << st.value("gpus", 0) << " GPUs: latency " << formatSeconds(pt.latency) << ", "
      << formatCount(pt.throughput) << " tokens/s per GPU, " << formatBytes(pt.memory)
      << " per GPU" << (pt.feasible ? "" : " (fails a requirement)") << (pt.best ? " — best" : "");
    pt.title = t.str();
    points.push_back(pt);
  }
  std::ostringstream o;
  const uint64_t feasible = std::count_if(points.begin(), points.end(), [](const Point &p) { return p.feasible; });
  const uint64_t frontier = std::count_if(points.begin(), points.end(), [](const Point &p) { return p.frontier; });
  o << "<p class=\"sub\">Search \"" << esc(s.value("name", "")) << "\" on " << s.value("cluster_gpus", 0)
    << " GPUs, objective " << esc(s.value("objective", "")) << ": " << s.value("enumerated", 0)
    << " strategies enumerated, " << points.size() << " evaluated (" << feasible
    << " meet every requirement the cluster can meet), " << frontier << " on the Pareto frontier.</p>\n";
  if (points.empty()) return o.str() + "<p class=\"note\">No strategy was evaluated.</p>\n";
  double xlo = INFINITY, xhi = 0, ylo = INFINITY, yhi = 0, mmax = 0;
  for (const Point &p : points) {
    xlo = std::min(xlo, p.latency), xhi = std::max(xhi, p.latency);
    ylo = std::min(ylo, p.throughput), yhi = std::max(yhi, p.throughput);
    mmax = std::max(mmax, p.memory);
  }
  auto unreachable = [&](const std::string &rule) {
    if (!s.contains("unreachable") || !s["unreachable"].is_array()) return false;
    for (const nlohmann::json &f : s["unreachable"])
      if (f.is_object() && f.value("rule", "") == rule) return true;
    return false;
  };
  std::optional<double> maxLatency;
  if (limits.is_object() && limits.contains("max_latency_s") && limits["max_latency_s"].is_number())
    maxLatency = limits["max_latency_s"].get<double>();
  if (maxLatency && !(*maxLatency > 0 && *maxLatency < 1e30)) maxLatency.reset();
  if (maxLatency) xlo = std::min(xlo, *maxLatency), xhi = std::max(xhi, *maxLatency);
  // A decade's margin at most a fifth of the range, so points do not sit on the frame.
  auto pad = [](double &lo, double &hi) {
    double span = std::max(std::log10(hi / lo), 0.3);
    lo /= std::pow(10, span * 0.08), hi *= std::pow(10, span * 0.08);
  };
  pad(xlo, xhi), pad(ylo, yhi);
  const double left = 90, top = 16, plotW = 860, plotH = 420, width = left + plotW + 230;
  const double height = top + plotH + 56;
  auto x = [&](double v) { return left + plotW * std::log10(v / xlo) / std::log10(xhi / xlo); };
  auto y = [&](double v) { return top + plotH - plotH * std::log10(v / ylo) / std::log10(yhi / ylo); };
  auto radius = [&](double memory) { return 2.5 + 9 * std::sqrt(mmax > 0 ? memory / mmax : 0); };
  o << "<svg class=\"search\" width=\"" << px(width) << "\" height=\"" << px(height)
    << "\" role=\"img\" aria-label=\"search: latency against "
       "throughput per GPU\">\n";
  o << "<rect x=\"" << px(left) << "\" y=\"" << px(top) << "\" width=\"" << px(plotW) << "\" height=\""
    << px(plotH) << "\" fill=\"#fff\" stroke=\"#999\"/>\n";
  for (double t : logTicks(xlo, xhi))
    o << "<line x1=\"" << px(x(t)) << "\" x2=\"" << px(x(t)) << "\" y1=\"" << px(top) << "\" y2=\""
      << px(top + plotH) << "\" stroke=\"#eee\"/><text x=\"" << px(x(t)) << "\" y=\""
      << px(top + plotH + 14) << "\" font-size=\"11\" text-anchor=\"middle\">"
      << esc(formatSeconds(t)) << "</text>\n";
  for (double t : logTicks(ylo, yhi))
    o << "<line x1=\"" << px(left) << "\" x2=\"" << px(left + plotW) << "\" y1=\"" << px(y(t))
      << "\" y2=\"" << px(y(t)) << "\" stroke=\"#eee\"/><text x=\"" << px(left - 6) << "\" y=\""
      << px(y(t) + 4) << "\" font-size=\"11\" text-anchor=\"end\">" << esc(formatCount(t))
      << "</text>\n";
  o << "<text x=\"" << px(left + plotW / 2) << "\" y=\"" << px(top + plotH + 34)
    << "\" font-size=\"12\" text-anchor=\"middle\">latency, worst over the workload (log scale; "
       "left is better)</text>\n<text x=\"20\" y=\""
    << px(top + plotH / 2) << "\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 20 "
    << px(top + plotH / 2)
    << ")\">throughput per GPU, tokens/s (log scale; up is better)</text>\n";
  if (maxLatency)
    o << "<line class=\"limit\" x1=\"" << px(x(*maxLatency)) << "\" x2=\"" << px(x(*maxLatency))
      << "\" y1=\"" << px(top) << "\" y2=\"" << px(top + plotH)
      << "\" stroke=\"#e15759\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/><text x=\""
      << px(x(*maxLatency) + 4) << "\" y=\"" << px(top + 12) << "\" font-size=\"11\" fill=\"#e15759\">"
      << "required latency ≤ " << esc(formatSeconds(*maxLatency))
      << (unreachable("requirements.latency-reachable") ? " (no strategy on this cluster can meet it)" : "")
      << "</text>\n";
  // Infeasible first, then feasible, then the frontier, the best last: on top.
  auto rank = [](const Point &p) { return p.best ? 3 : p.frontier ? 2 : p.feasible ? 1 : 0; };
  std::vector<const Point *> order;
  for (const Point &p : points) order.push_back(&p);
  std::stable_sort(order.begin(), order.end(),
                   [&](const Point *a, const Point *b) { return rank(*a) < rank(*b); });
  for (const Point *p : order) {
    const char *cls = p->best ? "strategy best" : p->frontier ? "strategy frontier"
                      : p->feasible ? "strategy feasible" : "strategy infeasible";
    const char *fill = p->best ? "#d62728" : p->frontier ? "#f28e2b" : p->feasible ? "#4e79a7" : "none";
    const char *stroke = p->best ? "#000" : p->feasible ? "#fff" : "#999";
    o << "<circle class=\"" << cls << "\" cx=\"" << px(x(p->latency)) << "\" cy=\"" << px(y(p->throughput))
      << "\" r=\"" << px(radius(p->memory) + (p->best ? 2 : 0)) << "\" fill=\"" << fill
      << "\" fill-opacity=\"" << (p->feasible ? "0.75" : "0") << "\" stroke=\"" << stroke
      << "\"><title>" << esc(p->title) << "</title></circle>\n";
    if (p->best)
      o << "<text x=\"" << px(x(p->latency) + radius(p->memory) + 6) << "\" y=\""
        << px(y(p->throughput) + 4) << "\" font-size=\"12\" font-weight=\"600\">best</text>\n";
  }
  // Legend: kinds of point, and the marker area's scale.
  const double lx = left + plotW + 20;
  double ly = top + 10;
  for (auto [label, fill, stroke] :
       {std::tuple{"best", "#d62728", "#000"}, std::tuple{"Pareto frontier", "#f28e2b", "#fff"},
        std::tuple{"meets the requirements", "#4e79a7", "#fff"},
        std::tuple{"fails a requirement", "none", "#999"}}) {
    o << "<circle cx=\"" << px(lx + 6) << "\" cy=\"" << px(ly) << "\" r=\"6\" fill=\"" << fill
      << "\" fill-opacity=\"0.75\" stroke=\"" << stroke << "\"/><text x=\"" << px(lx + 18) << "\" y=\""
      << px(ly + 4) << "\" font-size=\"12\">" << label << "</text>\n";
    ly += 22;
  }
  ly += 10;
  o << "<text x=\"" << px(lx) << "\" y=\"" << px(ly) << "\" font-size=\"12\">marker area: memory per GPU</text>\n";
  ly += 20;
  for (double share : {1.0, 0.25}) {
    const double r = radius(mmax * share);
    o << "<circle cx=\"" << px(lx + 12) << "\" cy=\"" << px(ly + r) << "\" r=\"" << px(r)
      << "\" fill=\"none\" stroke=\"#555\"/><text x=\"" << px(lx + 30) << "\" y=\"" << px(ly + r + 4)
      << "\" font-size=\"12\">" << esc(formatBytes(mmax * share)) << "</text>\n";
    ly += 2 * r + 10;
  }
  o << "</svg>\n";
  if (limits.is_object() && limits.contains("min_throughput_tokens_per_s") &&
      limits["min_throughput_tokens_per_s"].is_number())
    o << "<p class=\"note\">The throughput requirement (≥ "
      << esc(formatThroughput(limits["min_throughput_tokens_per_s"].get<double>()))
      << ") is on the whole deployment, not per GPU: the points above are judged against it in "
         "the search, not by the axis.</p>\n";
  // The frontier as a table, best first (the search lists it so).
  o << "<table class=\"frontier\"><tr><th class=\"l\">Pareto frontier (best first)</th><th>latency</th>"
       "<th>tokens/s per GPU</th><th>memory per GPU</th></tr>\n";
  size_t listed = 0;
  for (const Point &p : points)
    if (p.frontier && listed++ < 12)
      o << "<tr><td class=\"l\">" << esc(p.title.substr(0, p.title.find(':'))) << (p.best ? " (best)" : "")
        << "</td><td>" << esc(formatSeconds(p.latency)) << "</td><td>" << esc(formatCount(p.throughput))
        << "</td><td>" << esc(formatBytes(p.memory)) << "</td></tr>\n";
  o << "</table>\n";
  return o.str();
}

std::string page(const std::string &title, const std::string &body) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" + esc(title) +
         "</title>\n<style>" + kStyle + "</style></head>\n<body>\n" + body +
         "<p class=\"note\">Written by moeplan. Every figure comes from the plan, its simulation "
         "or the measurements given.</p>\n</body></html>\n";
}

std::string planHeader(const PlanView &v) {
  const plan::Plan &p = v.p;
  std::ostringstream o;
  o << "<p class=\"sub\">" << esc(strategyLine(p.strategy())) << "</p>\n<p class=\"sub\">"
    << p.ranks_size() << " of " << p.cluster().nodes() * p.cluster().gpus_per_node() << " GPUs ("
    << p.cluster().nodes() << " node" << (p.cluster().nodes() == 1 ? "" : "s") << " × "
    << p.cluster().gpus_per_node() << "), " << esc(formatCount(p.cluster().peak_flops()))
    << "FLOP/s peak × mfu " << formatNumber(p.cluster().mfu()) << ", "
    << esc(formatBytes(p.cluster().memory_bytes())) << " each; " << p.workload().sequences()
    << " sequences of " << p.workload().seq_len() << " tokens ("
    << plan::Phase_Name(p.workload().phase()) << ")</p>\n";
  o << headerCards(v);
  return o.str();
}

} // namespace

std::vector<TimelineSpan> simulatedSpans(const plan::Plan &p, const sim::Prediction &prediction) {
  std::vector<TimelineSpan> out;
  for (const sim::RankTimeline &t : prediction.ranks) {
    const plan::Program &program = p.programs(int(p.ranks(int(t.rank)).program()));
    for (const sim::InstructionTiming &i : t.instructions)
      out.push_back({t.rank, program.instructions(int(i.instruction)).stream(), i.instruction,
                     i.start, i.end});
  }
  return out;
}

std::vector<TimelineSpan> measuredSpans(const plan::Plan &p, const nlohmann::json &trace,
                                        std::string &error) {
  std::vector<TimelineSpan> out;
  if (!trace.is_object() || !trace.contains("traceEvents") || !trace["traceEvents"].is_array()) {
    error = "traceEvents: missing (not a moeplan-run --trace file)";
    return {};
  }
  const nlohmann::json &events = trace["traceEvents"];
  for (size_t i = 0; i < events.size(); ++i) {
    const nlohmann::json &e = events[i];
    if (!e.is_object() || !e.contains("ph") || e["ph"] != "X") continue;
    auto fail = [&](const std::string &what) {
      error = "traceEvents[" + std::to_string(i) + "]: " + what;
      return std::vector<TimelineSpan>{};
    };
    if (!e.contains("pid") || !isCount(e["pid"]) || !e.contains("tid") || !isCount(e["tid"]) ||
        !e.contains("ts") || !e["ts"].is_number() ||
        !e.contains("dur") || !e["dur"].is_number())
      return fail("needs pid, tid, ts and dur");
    const uint64_t rank = e["pid"].get<uint64_t>();
    if (rank >= uint64_t(p.ranks_size()))
      return fail("pid " + std::to_string(rank) + ": the plan has " + std::to_string(p.ranks_size()) +
                  " ranks (a trace of another plan)");
    const nlohmann::json args = e.contains("args") ? e["args"] : nlohmann::json();
    const std::string index = args.is_object() && args.contains("instruction") &&
                                      args["instruction"].is_string()
                                  ? args["instruction"].get<std::string>()
                                  : "";
    char *end = nullptr;
    const unsigned long long instruction = std::strtoull(index.c_str(), &end, 10);
    const plan::Program &program = p.programs(int(p.ranks(int(rank)).program()));
    if (index.empty() || *end != '\0' || instruction >= uint64_t(program.instructions_size()))
      return fail("args.instruction \"" + index + "\": not an instruction of GPU " +
                  std::to_string(rank) + "'s program (a trace of another plan)");
    // A GENERATE plan's run also traces a decode step; the timeline is the prefill's, as
    // the simulated one.
    if (program.decode_begin() > 0 && instruction >= program.decode_begin()) continue;
    const double start = e["ts"].get<double>() / 1e6, dur = e["dur"].get<double>() / 1e6;
    if (!std::isfinite(start) || !std::isfinite(dur) || dur < 0 || !std::isfinite(start + dur))
      return fail("ts or dur not a time");
    out.push_back({uint32_t(rank), uint32_t(e["tid"].get<uint64_t>()), uint32_t(instruction), start,
                   start + dur});
  }
  if (out.empty()) error = "traceEvents: no instruction events";
  return out;
}

std::string checkSearchJson(const nlohmann::json &s) {
  if (!s.is_object() || !s.contains("schema") || s["schema"] != "moeplan-search")
    return "schema: not a moeplan search --json document";
  if (!s.contains("evaluated_strategies") || !s["evaluated_strategies"].is_array())
    return "evaluated_strategies: missing (written by an older moeplan search?)";
  for (const char *f : {"name", "objective"})
    if (!s.contains(f) || !s[f].is_string()) return std::string(f) + ": not a string";
  for (const char *f : {"cluster_gpus", "enumerated"})
    if (!s.contains(f) || !isCount(s[f])) return std::string(f) + ": not a count";
  if (!s.contains("limits") || !s["limits"].is_object()) return "limits: missing";
  for (const auto &[key, v] : s["limits"].items())
    if (!v.is_null() && !v.is_number()) return "limits." + key + ": not a number";
  if (s.contains("unreachable")) {
    if (!s["unreachable"].is_array()) return "unreachable: not a list";
    for (const nlohmann::json &f : s["unreachable"])
      if (!f.is_object() || !f.contains("rule") || !f["rule"].is_string())
        return "unreachable: an entry without its rule";
  }
  const nlohmann::json &all = s["evaluated_strategies"];
  for (size_t i = 0; i < all.size(); ++i) {
    const nlohmann::json &e = all[i];
    const std::string at = "evaluated_strategies[" + std::to_string(i) + "]";
    if (!e.is_object()) return at + ": not an object";
    for (const char *f : {"latency_s", "throughput_tokens_per_s_per_gpu", "memory_bytes"})
      if (!e.contains(f) || !e[f].is_number()) return at + "." + f + ": not a number";
    for (const char *f : {"feasible", "frontier", "best"})
      if (!e.contains(f) || !e[f].is_boolean()) return at + "." + f + ": not true or false";
    if (!e.contains("strategy") || !e["strategy"].is_object()) return at + ".strategy: missing";
    const nlohmann::json &st = e["strategy"];
    for (const char *f : {"tp", "pp", "dp", "ep", "expert_tp", "micro_batches", "gpus"})
      if (!st.contains(f) || !isCount(st[f]))
        return at + ".strategy." + f + ": not a count";
    if (!st.contains("schedule") || !st["schedule"].is_string())
      return at + ".strategy.schedule: not a string";
  }
  return "";
}

std::string renderHtmlReport(const HtmlInputs &in) {
  std::ostringstream body;
  std::string title = "moeplan report";
  if (in.plan && in.prediction) {
    PlanView v(*in.plan, *in.prediction);
    title += ": " + in.plan->name();
    body << "<h1>" << esc(title) << "</h1>\n" << planHeader(v);
    body << "<h2>Device mesh</h2>\n" << meshSection(v, 1180);
    body << "<h2>Memory per GPU</h2><p class=\"sub\">At each GPU's peak: what is live, and the "
            "arena bytes no live buffer uses.</p>\n"
         << memoryLegend() << memorySvg(v, memoryScale(v), 1180);
    const double simEnd = v.end(), measuredEnd = spansEnd(in.measured);
    // One time scale when the two are comparable; each its own when one would be a sliver
    // (a CPU run of a plan costed for GPUs).
    const bool oneScale = in.measured.empty() || (measuredEnd < 3 * simEnd && simEnd < 3 * measuredEnd);
    const double scale = std::max(simEnd, measuredEnd) * 1.02;
    body << "<h2>Timeline" << (in.measured.empty() ? " (simulated)" : "s: simulated and measured")
         << "</h2><p class=\"sub\">One row per stream of each GPU"
         << (in.plan->ranks_size() > int(kTimelineRanks)
                 ? " (the first " + std::to_string(kTimelineRanks) + " of " +
                       std::to_string(in.plan->ranks_size()) + " GPUs)"
                 : std::string())
         << "; simulated " << (in.plan->workload().phase() == plan::GENERATE ? "prefill " : "forward pass ")
         << esc(formatSeconds(simEnd));
    if (!in.measured.empty())
      body << ", measured " << esc(formatSeconds(measuredEnd))
           << (oneScale ? ", on one time scale" : ", each on its own time scale (they differ over 3x)");
    body << ".</p>\n" << timelineLegend();
    if (!in.measured.empty()) body << "<h3>simulated</h3>\n";
    body << timelineSvg(*in.plan, simulatedSpans(*in.plan, *in.prediction),
                        oneScale ? scale : simEnd * 1.02, 1180, "simulated");
    if (!in.measured.empty())
      body << "<h3>measured (moeplan-run --trace)</h3>\n"
           << timelineSvg(*in.plan, in.measured, oneScale ? scale : measuredEnd * 1.02, 1180,
                          "measured");
    body << "<h2>Communication per mesh axis</h2>\n" << communicationSvg(v, 1020);
    body << "<h2>Requirements</h2><p class=\"sub\">Each requirement at each judged sequence "
            "length (" << (in.plan->workload_points_size() > 0 ? "compiled and simulated at each" : "the plan's own")
         << ").</p>\n" << requirementsTable(v);
    body << claimsTable(*in.plan);
    if (in.comparison) body << measuredTable(*in.comparison);
  } else {
    title += in.search ? ": search \"" + in.search->value("name", std::string()) + "\"" : "";
    body << "<h1>" << esc(title) << "</h1>\n";
  }
  if (in.search) body << "<h2>Search</h2>\n" << searchSection(*in.search);
  return page(title, body.str());
}

std::string renderHtmlDiff(const plan::Plan &a, const sim::Prediction &predA,
                           const std::string &nameA, const plan::Plan &b,
                           const sim::Prediction &predB, const std::string &nameB) {
  PlanView va(a, predA), vb(b, predB);
  std::ostringstream body;
  const std::string title = "moeplan diff: " + nameA + " → " + nameB;
  body << "<h1>" << esc(title) << "</h1>\n";
  // The figures side by side, with the change.
  struct Row {
    std::string name;
    double x, y;
    std::string (*format)(double);
    bool lessIsBetter;
  };
  auto sec = [](double v) { return formatSeconds(v); };
  auto bytes = [](double v) { return formatBytes(v); };
  auto tput = [](double v) { return formatThroughput(v); };
  auto share = [](double v) { return percentText(v); };
  auto count = [](double v) { return formatCount(v); };
  const plan::WorkloadPoint &wa = va.own, &wb = vb.own;
  std::vector<Row> rows = {
      {"GPUs", double(a.ranks_size()), double(b.ranks_size()), +count, true},
      {"latency", wa.latency_s(), wb.latency_s(), +sec, true},
      {"throughput", wa.throughput_tokens_per_s(), wb.throughput_tokens_per_s(), +tput, false},
      {"memory per GPU (largest)", double(wa.memory_bytes()), double(wb.memory_bytes()), +bytes, true},
      {"GPU utilization", wa.utilization(), wb.utilization(), +share, false},
      {"exposed communication", wa.exposed_comm_share(), wb.exposed_comm_share(), +share, true},
      {"pipeline bubble", wa.bubble_fraction(), wb.bubble_fraction(), +share, true},
      {"load balance", wa.load_balance(), wb.load_balance(), +share, false}};
  body << "<table class=\"diff\"><tr><th class=\"l\">figure</th><th>" << esc(nameA) << "</th><th>"
       << esc(nameB) << "</th><th>change</th></tr>\n";
  for (const Row &r : rows) {
    std::string change = "same";
    std::string cls;
    if (r.x != r.y) {
      char buf[32];
      if (r.x != 0) std::snprintf(buf, sizeof buf, "%+.1f%%", 100 * (r.y / r.x - 1));
      else std::snprintf(buf, sizeof buf, "new");
      change = buf;
      cls = ((r.y < r.x) == r.lessIsBetter) ? "pass" : "fail";
    }
    body << "<tr><td class=\"l\">" << esc(r.name) << "</td><td>" << esc(r.format(r.x)) << "</td><td>"
         << esc(r.format(r.y)) << "</td><td class=\"" << cls << "\">" << esc(change) << "</td></tr>\n";
  }
  body << "</table>\n<p class=\"note\">At each plan's own sequence length; green: better, red: "
          "worse.</p>\n";
  const double memScale = std::max(memoryScale(va), memoryScale(vb));
  const double timeScale = std::max(va.end(), vb.end()) * 1.02;
  auto column = [&](const PlanView &v, const std::string &name) {
    std::ostringstream o;
    o << "<div><h2>" << esc(name) << "</h2>\n<p class=\"sub\">" << esc(strategyLine(v.p.strategy()))
      << "</p>\n" << headerCards(v) << "<h3>Device mesh</h3>\n" << meshSection(v, 600)
      << "<h3>Memory per GPU</h3>\n" << memorySvg(v, memScale, 600) << "<h3>Timeline (simulated)</h3>\n"
      << timelineSvg(v.p, simulatedSpans(v.p, v.pred), timeScale, 600, "simulated")
      << "<h3>Communication per mesh axis</h3>\n" << communicationSvg(v, 600) << "</div>\n";
    return o.str();
  };
  body << memoryLegend() << timelineLegend() << "<div class=\"cols\">\n"
       << column(va, nameA) << column(vb, nameB) << "</div>\n";
  return page(title, body.str());
}

} // namespace moeplan::report
