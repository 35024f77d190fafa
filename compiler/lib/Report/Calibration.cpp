#include "moeplan/Report/Calibration.h"

#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Simulate/CostModel.h"

#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

namespace moeplan::report {

double causalAttentionFlops(double sequences, double seqLen, double heads, double headDim) {
  return 4 * sequences * heads * headDim * seqLen * (seqLen + 1) / 2;
}

namespace {

struct Fail {
  std::string what;
};

double number(const nlohmann::json &j, const char *field, const std::string &at, double least = 0,
              bool strictly = true) {
  const nlohmann::json &v = j.is_object() ? j.value(field, nlohmann::json()) : nlohmann::json();
  if (!v.is_number() || !std::isfinite(v.get<double>()) ||
      (strictly ? !(v.get<double>() > least) : !(v.get<double>() >= least)))
    throw Fail{at + field + ": missing, or not a number " + (strictly ? "above " : "of at least ") +
               std::to_string(least)};
  return v.get<double>();
}

// Non-negative least squares over few terms: every subset of the terms that includes
// `required`, solved by its normal equations; the least residual whose terms are all
// non-negative; fewer terms unless more fit measurably better (points the terms fit exactly
// do not get a term of rounding noise). rows[i][j] is point i's coefficient of term j, each
// row weighed so that the target is 1.
std::optional<std::vector<double>> nonNegativeFit(const std::vector<std::vector<double>> &rows,
                                                  size_t terms, size_t required) {
  std::optional<std::vector<double>> best;
  double bestResidual = INFINITY;
  std::vector<unsigned> masks;
  for (unsigned mask = 1; mask < (1u << terms); ++mask)
    if (mask & (1u << required)) masks.push_back(mask);
  std::stable_sort(masks.begin(), masks.end(), [](unsigned a, unsigned b) {
    return __builtin_popcount(a) < __builtin_popcount(b);
  });
  for (unsigned mask : masks) {
    std::vector<size_t> cols;
    for (size_t j = 0; j < terms; ++j)
      if (mask & (1u << j)) cols.push_back(j);
    const size_t k = cols.size();
    // [A^T A | A^T 1], Gaussian elimination with partial pivoting.
    std::vector<std::vector<double>> m(k, std::vector<double>(k + 1, 0));
    for (const std::vector<double> &r : rows)
      for (size_t a = 0; a < k; ++a) {
        for (size_t b = 0; b < k; ++b) m[a][b] += r[cols[a]] * r[cols[b]];
        m[a][k] += r[cols[a]];
      }
    bool singular = false;
    for (size_t c = 0; c < k && !singular; ++c) {
      size_t pivot = c;
      for (size_t r = c + 1; r < k; ++r)
        if (std::fabs(m[r][c]) > std::fabs(m[pivot][c])) pivot = r;
      if (!(std::fabs(m[pivot][c]) > 1e-12 * std::fabs(m[c][c] == 0 ? 1 : m[c][c])) ||
          m[pivot][c] == 0) {
        singular = true;
        break;
      }
      std::swap(m[c], m[pivot]);
      for (size_t r = 0; r < k; ++r)
        if (r != c) {
          const double f = m[r][c] / m[c][c];
          for (size_t q = c; q <= k; ++q) m[r][q] -= f * m[c][q];
        }
    }
    if (singular) continue;
    std::vector<double> theta(terms, 0);
    bool negative = false;
    for (size_t a = 0; a < k; ++a) {
      theta[cols[a]] = m[a][k] / m[a][a];
      negative = negative || !(theta[cols[a]] >= 0) || !std::isfinite(theta[cols[a]]);
    }
    if (negative || !(theta[required] > 0)) continue;
    double residual = 0;
    for (const std::vector<double> &r : rows) {
      double y = 0;
      for (size_t j = 0; j < terms; ++j) y += r[j] * theta[j];
      residual += (y - 1) * (y - 1);
    }
    if (residual < bestResidual - 1e-12 * double(rows.size()))
      bestResidual = residual, best = theta;
  }
  return best;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

} // namespace

std::optional<FittedCluster> fitCluster(const nlohmann::json &m, std::string &error) {
  try {
    if (!m.is_object() || m.value("schema", "") != "moeplan-calibration")
      throw Fail{"schema: not moeplan-calibrate's measurements"};
    const double ranks = number(m, "ranks", "", 1, false);
    FittedCluster f;
    desc::Cluster &c = f.cluster;
    desc::Gpu &gpu = *c.mutable_gpu();
    c.set_nodes(1);
    c.set_gpus_per_node(uint32_t(ranks));
    std::ostringstream summary;

    // GEMMs: the fastest sets the peak, each point its share.
    const nlohmann::json &gemms = m.value("gemm", nlohmann::json());
    if (!gemms.is_array() || gemms.empty()) throw Fail{"gemm: missing or empty"};
    std::vector<std::pair<double, double>> rates;  // rows, FLOP/s
    for (size_t i = 0; i < gemms.size(); ++i) {
      const std::string at = "gemm[" + std::to_string(i) + "].";
      const double rows = number(gemms[i], "m", at, 1, false), n = number(gemms[i], "n", at),
                   k = number(gemms[i], "k", at), s = number(gemms[i], "seconds", at);
      if (!rates.empty() && rows <= rates.back().first) throw Fail{at + "m: rows must increase"};
      rates.emplace_back(rows, 2 * rows * n * k / s);
    }
    double peak = 0;
    for (auto [rows, rate] : rates) peak = std::max(peak, rate);
    gpu.set_peak_tflops(peak / 1e12);
    summary << "GEMM (n = k = " << gemms[0].value("n", 0) << "), measured FLOP/s by rows:";
    for (auto [rows, rate] : rates) {
      desc::GemmEfficiency &e = *gpu.add_gemm_efficiency();
      e.set_rows(rows);
      e.set_efficiency(rate / peak);
      summary << " " << fixed(rows, 6) << ": " << fixed(rate / 1e9, 3) << " G";
    }
    summary << "\n";

    const nlohmann::json &att = m.value("attention", nlohmann::json());
    const double attFlops = causalAttentionFlops(number(att, "sequences", "attention."), number(att, "seq_len", "attention."),
                                                 number(att, "heads", "attention."), number(att, "head_dim", "attention."));
    const double attRate = attFlops / number(att, "seconds", "attention.");
    gpu.set_mfu(std::min(1.0, attRate / peak));
    summary << "causal prefill attention: " << fixed(attRate / 1e9, 3) << " G FLOP/s\n";

    const double launch = number(m, "launch_seconds", "", 0);
    gpu.set_launch_overhead_us(launch * 1e6);
    const nlohmann::json &mem = m.value("memory", nlohmann::json());
    const double memBytes = number(mem, "bytes", "memory."), memSeconds = number(mem, "seconds", "memory.");
    if (!(memSeconds > launch)) throw Fail{"memory.seconds: not above launch_seconds"};
    const double bandwidth = memBytes / (memSeconds - launch);
    gpu.set_memory_bandwidth_tb_per_s(bandwidth / 1e12);
    gpu.set_memory_bandwidth_utilization(1);
    summary << "elementwise ADD: " << fixed(bandwidth / 1e9, 3) << " GB/s; a kernel launch "
            << fixed(launch * 1e6, 3) << " us\n";
    // Kernels the memory roofline may misjudge: their operands' bytes per second. Absent
    // from older measurements: the description leaves them to the memory bandwidth.
    const nlohmann::json &kernels = m.value("kernels", nlohmann::json::array());
    if (!kernels.is_array()) throw Fail{"kernels: not an array"};
    if (!kernels.empty()) summary << "bytes per second of";
    for (size_t i = 0; i < kernels.size(); ++i) {
      const std::string at = "kernels[" + std::to_string(i) + "].";
      const std::string variant = kernels[i].is_object() ? kernels[i].value("variant", "") : "";
      const double bytes = number(kernels[i], "bytes", at), seconds = number(kernels[i], "seconds", at);
      if (!(seconds > launch)) throw Fail{at + "seconds: not above launch_seconds"};
      const double rate = bytes / (seconds - launch);
      desc::KernelRates &r = *gpu.mutable_kernel_rates();
      if (variant == "LAYER_NORM") r.set_layer_norm_gb_per_s(rate / 1e9);
      else if (variant == "RMS_NORM") r.set_rms_norm_gb_per_s(rate / 1e9);
      else if (variant == "GELU") r.set_gelu_gb_per_s(rate / 1e9);
      else if (variant == "SWIGLU") r.set_swiglu_gb_per_s(rate / 1e9);
      else if (variant == "ROUTER") r.set_router_gb_per_s(rate / 1e9);
      else throw Fail{at + "variant: \"" + variant + "\" is not a kernel with a rate"};
      summary << (i ? ", " : " ") << variant << " " << fixed(rate / 1e9, 3) << " GB/s";
    }
    if (!kernels.empty()) summary << "\n";
    const double memory = m.contains("device_memory_bytes") ? number(m, "device_memory_bytes", "")
                                                            : number(m, "host_memory_bytes", "");
    gpu.set_memory_gb(memory / 1e9);

    const std::string measuredOn = "measured on " + m.value("device", std::string("?")) + " (" +
                                   m.value("backend", std::string("?")) + ", " +
                                   m.value("comm", std::string("?")) + ", " + fixed(ranks, 6) +
                                   (ranks == 1 ? " rank)\n" : " ranks)\n");
    if (ranks == 1) {
      // One GPU (or core): no collective to time, and a one-GPU cluster needs no link.
      summary << "one rank: no collectives measured, so the cluster is this one device\n" << measuredOn;
      f.summary = summary.str();
      return f;
    }
    // The link (sim::collectiveSeconds): t = steps x L + bus x S / B + reduced x S / R,
    // linear in (L, 1/B, 1/R); rows scaled by 1 / t so that every point's relative error
    // weighs alike; no term negative (one that fits noise is left out).
    const nlohmann::json &colls = m.value("collectives", nlohmann::json());
    if (!colls.is_array() || colls.empty()) throw Fail{"collectives: missing or empty"};
    struct Point {
      double steps, bus, reduced, t;
    };
    std::vector<Point> points;
    std::vector<std::vector<double>> rows;
    for (size_t i = 0; i < colls.size(); ++i) {
      const std::string at = "collectives[" + std::to_string(i) + "].";
      plan::CollectiveKind kind;
      if (!colls[i].is_object() || !colls[i].value("kind", nlohmann::json()).is_string() ||
          !plan::CollectiveKind_Parse(colls[i]["kind"].get<std::string>(), &kind) ||
          kind == plan::COLLECTIVE_KIND_UNSPECIFIED)
        throw Fail{at + "kind: not a collective kind"};
      const double n = number(colls[i], "ranks", at, 2, false), bytes = number(colls[i], "bytes", at),
                   t = number(colls[i], "seconds", at);
      const Point p{double(sim::algorithmSteps(kind, uint32_t(n))),
                    sim::busFactor(kind, uint32_t(n)) * bytes,
                    sim::reduceFactor(kind, uint32_t(n)) * bytes, t};
      points.push_back(p);
      rows.push_back({p.steps / t, p.bus / t, p.reduced / t});
    }
    const std::optional<std::vector<double>> theta = nonNegativeFit(rows, 3, 1);
    if (!theta)
      throw Fail{"collectives: their times do not grow with their bytes; no bandwidth fits"};
    const double latency = (*theta)[0], inverseBandwidth = (*theta)[1],
                 inverseReduce = (*theta)[2];
    c.mutable_intra_node()->set_latency_us(latency * 1e6);
    c.mutable_intra_node()->set_bandwidth_gb_per_s(1 / inverseBandwidth / 1e9);
    if (inverseReduce > 0) c.mutable_intra_node()->set_reduce_gb_per_s(1 / inverseReduce / 1e9);
    for (const Point &p : points)
      f.worstCollectiveError = std::max(
          f.worstCollectiveError,
          std::fabs(p.steps * latency + p.bus * inverseBandwidth + p.reduced * inverseReduce - p.t) /
              p.t);
    summary << colls.size() << " collective points over 2-" << fixed(ranks, 6)
            << " ranks: latency " << fixed(latency * 1e6, 3) << " us per step, bus bandwidth "
            << fixed(1 / inverseBandwidth / 1e9, 3) << " GB/s, "
            << (inverseReduce > 0 ? "reductions at " + fixed(1 / inverseReduce / 1e9, 3) + " GB/s"
                                  : std::string("reductions within the bandwidth"))
            << "; worst point off by " << fixed(100 * f.worstCollectiveError, 3) << " %\n";
    // On the host each point is timed alone after a sweep evicted the caches (the fit's
    // "seconds"), and back to back on cached buffers ("warm_seconds"), for the record.
    if (m.contains("evicted_bytes")) {
      const double evicted = number(m, "evicted_bytes", "");
      double least = INFINITY, most = 0;
      for (size_t i = 0; i < colls.size(); ++i) {
        const std::string at = "collectives[" + std::to_string(i) + "].";
        const double share = number(colls[i], "warm_seconds", at) / points[i].t;
        least = std::min(least, share), most = std::max(most, share);
      }
      summary << "collectives timed alone after a sweep of " << fixed(evicted / double(1 << 20), 4)
              << " MiB evicted the caches, as a pass's kernels do; back to back on cached "
                 "buffers they took "
              << fixed(least, 2) << " to " << fixed(most, 2) << " of that\n";
    }
    // Jitter (optional: older measurements have no skew): the excess wait over the stretch
    // of none, w = jitter x jitterWaitFactor(n) x stretch (the simulator's own rule for n
    // members of equal stretch), fitted through the origin; none below 0.
    if (m.contains("skew")) {
      const nlohmann::json &skew = m["skew"];
      const double n = number(skew, "ranks", "skew.", 2, false);
      const nlohmann::json &pts = skew.is_object() ? skew.value("points", nlohmann::json()) : nlohmann::json();
      if (!pts.is_array() || pts.size() < 2) throw Fail{"skew.points: missing, or fewer than 2"};
      std::vector<std::pair<double, double>> stretchWait;
      for (size_t i = 0; i < pts.size(); ++i) {
        const std::string at = "skew.points[" + std::to_string(i) + "].";
        stretchWait.emplace_back(number(pts[i], "stretch_seconds", at, 0, false),
                                 number(pts[i], "wait_seconds", at, 0, false));
        if (i > 0 && !(stretchWait[i].first > stretchWait[0].first))
          throw Fail{at + "stretch_seconds: not above the first point's (the stretch of none)"};
      }
      const double base = stretchWait[0].second, factor = sim::jitterWaitFactor(uint32_t(n));
      double sxy = 0, sxx = 0;
      for (size_t i = 1; i < stretchWait.size(); ++i) {
        const double x = factor * (stretchWait[i].first - stretchWait[0].first);
        sxy += x * std::max(0.0, stretchWait[i].second - base);
        sxx += x * x;
      }
      const double jitter = std::min(1.0, sxx > 0 ? sxy / sxx : 0);
      gpu.set_compute_jitter(jitter);
      summary << "ranks with equal work: after " << fixed(1e3 * stretchWait.back().first, 3)
              << " ms of GEMMs a rank waits " << fixed(1e6 * (stretchWait.back().second - base), 3)
              << " us for the last of " << fixed(n, 6) << " (after none " << fixed(1e6 * base, 3)
              << " us): compute varies by " << fixed(100 * jitter, 3) << " % of a stretch\n";
    }
    summary << measuredOn;
    f.summary = summary.str();
    return f;
  } catch (const Fail &fail) {
    error = fail.what;
    return std::nullopt;
  }
}

std::string renderCluster(const FittedCluster &fitted) {
  std::string body;
  google::protobuf::TextFormat::Printer printer;
  printer.SetInitialIndentLevel(1);
  printer.PrintToString(fitted.cluster, &body);
  std::ostringstream out;
  out << "# moeplan calibrate: this machine as a cluster description.\n";
  std::istringstream lines(fitted.summary);
  for (std::string line; std::getline(lines, line);) out << "# " << line << "\n";
  out << "cluster {\n" << body << "}\n";
  return out.str();
}

} // namespace moeplan::report
