#include "moeplan/Report/Diff.h"

#include "moeplan/Description/Finding.h"
#include "moeplan/Plan/PlanFile.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <unordered_map>

namespace moeplan::report {

namespace {

namespace pb = google::protobuf;

// Past this many edits between two programs, instructions are matched by label counts
// instead of aligned (Myers' algorithm costs O((N + M) x edits)).
constexpr size_t kAlignedEdits = 1000;
// Entries of a repeated field shown in a field change.
constexpr int kListedValues = 16;

// ---- deployment fields -------------------------------------------------------------------

std::string valueText(const pb::Message &m, const pb::FieldDescriptor *f, int index) {
  const pb::Reflection *r = m.GetReflection();
  bool repeated = index >= 0;
  switch (f->cpp_type()) {
  case pb::FieldDescriptor::CPPTYPE_INT32:
    return std::to_string(repeated ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
  case pb::FieldDescriptor::CPPTYPE_INT64:
    return std::to_string(repeated ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
  case pb::FieldDescriptor::CPPTYPE_UINT32:
    return std::to_string(repeated ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
  case pb::FieldDescriptor::CPPTYPE_UINT64:
    return std::to_string(repeated ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
  case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    return formatNumber(repeated ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
  case pb::FieldDescriptor::CPPTYPE_FLOAT:
    return formatNumber(repeated ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
  case pb::FieldDescriptor::CPPTYPE_BOOL:
    return (repeated ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
  case pb::FieldDescriptor::CPPTYPE_ENUM: {
    int v = repeated ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f);
    const pb::EnumValueDescriptor *e = f->enum_type()->FindValueByNumber(v);
    return e ? e->name() : std::to_string(v);
  }
  case pb::FieldDescriptor::CPPTYPE_STRING:
    return "\"" + (repeated ? r->GetRepeatedString(m, f, index) : r->GetString(m, f)) + "\"";
  case pb::FieldDescriptor::CPPTYPE_MESSAGE: return "{...}";
  }
  return "?";
}

std::string fieldText(const pb::Message &m, const pb::FieldDescriptor *f) {
  if (!f->is_repeated())
    return f->has_presence() && !m.GetReflection()->HasField(m, f) ? "(absent)"
                                                                   : valueText(m, f, -1);
  int n = m.GetReflection()->FieldSize(m, f);
  std::string s = "[";
  for (int i = 0; i < n && i < kListedValues; ++i) s += (i ? ", " : "") + valueText(m, f, i);
  if (n > kListedValues) s += ", ... (" + std::to_string(n) + " entries)";
  return s + "]";
}

// Every scalar or list of `a` and `b` (messages of one type) that differs, by dotted path.
void compareFields(const pb::Message &a, const pb::Message &b, const std::string &prefix,
                   std::vector<FieldChange> &out) {
  const pb::Descriptor *d = a.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor *f = d->field(i);
    std::string path = prefix.empty() ? f->name() : prefix + "." + f->name();
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated()) {
      compareFields(a.GetReflection()->GetMessage(a, f), b.GetReflection()->GetMessage(b, f), path,
                    out);
      continue;
    }
    std::string ta = fieldText(a, f), tb = fieldText(b, f);
    if (ta != tb) out.push_back({path, ta, tb});
  }
}

template <typename T>
bool sameElements(const pb::RepeatedPtrField<T> &a, const pb::RepeatedPtrField<T> &b) {
  if (a.size() != b.size()) return false;
  for (int i = 0; i < a.size(); ++i)
    if (a.Get(i).SerializeAsString() != b.Get(i).SerializeAsString()) return false;
  return true;
}

std::vector<FieldChange> deploymentChanges(const plan::Plan &a, const plan::Plan &b) {
  std::vector<FieldChange> out;
  // Strategy first: it is what a user changes to compare two plans.
  for (const char *section : {"strategy", "model", "cluster", "workload", "requirements"}) {
    const pb::FieldDescriptor *f = plan::Plan::descriptor()->FindFieldByName(section);
    compareFields(a.GetReflection()->GetMessage(a, f), b.GetReflection()->GetMessage(b, f), section,
                  out);
  }
  for (const char *field : {"name", "source", "notes"}) {
    const pb::FieldDescriptor *f = plan::Plan::descriptor()->FindFieldByName(field);
    std::string ta = fieldText(a, f), tb = fieldText(b, f);
    if (ta != tb) out.push_back({field, ta, tb});
  }
  // The workload's points: figure by figure where both plans judged the same length.
  for (const plan::WorkloadPoint &pa : a.workload_points())
    for (const plan::WorkloadPoint &pb : b.workload_points())
      if (pa.seq_len() == pb.seq_len())
        compareFields(pa, pb, "workload_points[seq_len " + std::to_string(pa.seq_len()) + "]",
                      out);
  auto lengths = [](const plan::Plan &p) {
    std::string t;
    for (const plan::WorkloadPoint &w : p.workload_points())
      t += (t.empty() ? "" : ", ") + std::to_string(w.seq_len());
    return "[" + t + "]";
  };
  if (lengths(a) != lengths(b)) out.push_back({"workload_points.seq_len", lengths(a), lengths(b)});
  auto claims = [](const plan::Plan &p) {
    int consistent = 0;
    for (const plan::ClaimCheck &c : p.claims()) consistent += c.consistent();
    return std::to_string(p.claims_size()) + " claims, " + std::to_string(consistent) +
           " consistent";
  };
  if (!sameElements(a.claims(), b.claims())) out.push_back({"claims", claims(a), claims(b)});
  auto count = [](int n, const char *what) { return std::to_string(n) + " " + what; };
  if (!sameElements(a.groups(), b.groups()))
    out.push_back({"groups", count(a.groups_size(), "groups"),
                   count(b.groups_size(), "groups") +
                       (a.groups_size() == b.groups_size() ? " (members differ)" : "")});
  if (!sameElements(a.ranks(), b.ranks()))
    out.push_back(
        {"ranks", count(a.ranks_size(), "ranks"),
         count(b.ranks_size(), "ranks") +
             (a.ranks_size() == b.ranks_size() ? " (placement or memberships differ)" : "")});
  return out;
}

// ---- instruction edits -------------------------------------------------------------------

// What identifies an instruction across two programs: its label and micro-batch.
std::vector<uint32_t> instructionKeys(const plan::Program &program,
                                      std::unordered_map<std::string, uint32_t> &ids) {
  std::vector<uint32_t> keys;
  keys.reserve(size_t(program.instructions_size()));
  for (const plan::Instruction &inst : program.instructions()) {
    std::string key = inst.label() + '\x1f' + std::to_string(inst.micro_batch());
    keys.push_back(ids.try_emplace(key, uint32_t(ids.size())).first->second);
  }
  return keys;
}

// Matched index pairs of a longest common subsequence of x and y (Myers' O(ND) algorithm);
// nullopt when more than maxEdits insertions and removals separate them.
std::optional<std::vector<std::pair<uint32_t, uint32_t>>>
alignSequences(const std::vector<uint32_t> &x, const std::vector<uint32_t> &y, size_t maxEdits) {
  std::vector<std::pair<uint32_t, uint32_t>> matches;
  size_t prefix = 0;
  while (prefix < x.size() && prefix < y.size() && x[prefix] == y[prefix])
    matches.push_back({uint32_t(prefix), uint32_t(prefix)}), ++prefix;
  size_t suffix = 0;
  while (suffix < x.size() - prefix && suffix < y.size() - prefix &&
         x[x.size() - 1 - suffix] == y[y.size() - 1 - suffix])
    ++suffix;
  const int64_t n = int64_t(x.size() - prefix - suffix), m = int64_t(y.size() - prefix - suffix);
  auto a = [&](int64_t i) { return x[prefix + size_t(i)]; };
  auto b = [&](int64_t j) { return y[prefix + size_t(j)]; };

  const int64_t maxD = std::min<int64_t>(n + m, int64_t(maxEdits));
  const int64_t offset = maxD + 1;
  std::vector<int64_t> v(size_t(2 * maxD + 3), 0);
  std::vector<std::vector<int64_t>> trace;  // v over k in [-d-1, d+1] before round d
  int64_t found = -1;
  for (int64_t d = 0; d <= maxD && found < 0; ++d) {
    trace.emplace_back(v.begin() + (offset - d - 1), v.begin() + (offset + d + 2));
    for (int64_t k = -d; k <= d; k += 2) {
      int64_t i = (k == -d || (k != d && v[size_t(offset + k - 1)] < v[size_t(offset + k + 1)]))
                      ? v[size_t(offset + k + 1)]
                      : v[size_t(offset + k - 1)] + 1;
      int64_t j = i - k;
      while (i < n && j < m && a(i) == b(j)) ++i, ++j;
      v[size_t(offset + k)] = i;
      if (i >= n && j >= m) {
        found = d;
        break;
      }
    }
  }
  if (found < 0) return std::nullopt;

  std::vector<std::pair<uint32_t, uint32_t>> middle;
  int64_t i = n, j = m;
  for (int64_t d = found; d >= 0; --d) {
    const std::vector<int64_t> &before = trace[size_t(d)];
    auto at = [&](int64_t k) { return before[size_t(k + d + 1)]; };
    int64_t k = i - j;
    int64_t prevK = (k == -d || (k != d && at(k - 1) < at(k + 1))) ? k + 1 : k - 1;
    int64_t prevI = d == 0 ? 0 : at(prevK), prevJ = d == 0 ? 0 : prevI - prevK;
    while (i > prevI && j > prevJ)
      --i, --j, middle.push_back({uint32_t(prefix + i), uint32_t(prefix + j)});
    i = prevI, j = prevJ;
  }
  std::reverse(middle.begin(), middle.end());
  matches.insert(matches.end(), middle.begin(), middle.end());
  for (size_t s = suffix; s > 0; --s)
    matches.push_back({uint32_t(x.size() - s), uint32_t(y.size() - s)});
  return matches;
}

// The parts of an instruction a user would call different, each as comparable text.
struct InstructionParts {
  std::string operation, operands, cost, stream;
};

InstructionParts partsOf(const plan::Program &program, const plan::Instruction &inst) {
  InstructionParts parts;
  auto name = [&](uint32_t b) {
    return b < uint32_t(program.buffers_size()) ? program.buffers(int(b)).name() : "?";
  };
  if (inst.has_kernel()) {
    plan::Kernel k = inst.kernel();
    for (uint32_t b : k.inputs()) parts.operands += name(b) + ",";
    parts.operands += ">";
    for (uint32_t b : k.outputs()) parts.operands += name(b) + ",";
    k.clear_inputs(), k.clear_outputs();
    parts.operation = "k" + k.SerializeAsString();
  } else {
    plan::Collective c = inst.collective();
    if (c.kind() != plan::RECV) parts.operands += name(c.input());
    parts.operands += ">";
    if (c.kind() != plan::SEND) parts.operands += name(c.output());
    c.clear_input(), c.clear_output(), c.clear_sequence();  // indices shift with edits
    parts.operation = "c" + c.SerializeAsString();
  }
  parts.cost = inst.cost().SerializeAsString();
  parts.stream = std::to_string(inst.stream());
  return parts;
}

std::string changedParts(const plan::Program &pa, const plan::Instruction &a,
                         const plan::Program &pb, const plan::Instruction &b) {
  InstructionParts x = partsOf(pa, a), y = partsOf(pb, b);
  std::string what;
  auto note = [&](bool differs, const char *part) {
    if (differs) what += (what.empty() ? "" : ", ") + std::string(part);
  };
  note(x.operation != y.operation, "operation");
  note(x.operands != y.operands, "operands");
  note(x.cost != y.cost, "cost");
  note(x.stream != y.stream, "stream");
  return what;
}

void compareInstructions(const plan::Program &pa, const plan::Program &pb, StageDiff &s) {
  std::unordered_map<std::string, uint32_t> ids;
  std::vector<uint32_t> ka = instructionKeys(pa, ids), kb = instructionKeys(pb, ids);
  auto record = [&](char op, uint32_t index, const plan::Instruction &inst, std::string what = "") {
    (op == '+' ? s.inserted : op == '-' ? s.removed : s.changed)++;
    if (s.edits.size() < kListedEdits)
      s.edits.push_back({op, index, inst.label(), inst.micro_batch(), std::move(what)});
    else
      s.editsTruncated = true;
  };
  std::optional<std::vector<std::pair<uint32_t, uint32_t>>> matches =
      alignSequences(ka, kb, kAlignedEdits);
  if (!matches) {
    // Too far apart to align: what each side has more of, by label and micro-batch.
    std::vector<int64_t> balance(ids.size(), 0);
    for (uint32_t k : kb) ++balance[k];
    for (uint32_t i = 0; i < ka.size(); ++i)
      if (balance[ka[i]]-- <= 0) record('-', i, pa.instructions(int(i)));
    std::fill(balance.begin(), balance.end(), 0);
    for (uint32_t k : ka) ++balance[k];
    for (uint32_t j = 0; j < kb.size(); ++j)
      if (balance[kb[j]]-- <= 0) record('+', j, pb.instructions(int(j)));
    return;
  }
  uint32_t i = 0, j = 0;
  matches->push_back({uint32_t(ka.size()), uint32_t(kb.size())});  // sentinel
  for (const auto &[mi, mj] : *matches) {
    for (; i < mi; ++i) record('-', i, pa.instructions(int(i)));
    for (; j < mj; ++j) record('+', j, pb.instructions(int(j)));
    if (mi == ka.size()) break;
    std::string what = changedParts(pa, pa.instructions(int(mi)), pb, pb.instructions(int(mj)));
    if (!what.empty()) record('~', mj, pb.instructions(int(mj)), what);
    i = mi + 1, j = mj + 1;
  }
}

// ---- rendering helpers -------------------------------------------------------------------

std::string changeText(double a, double b) {
  std::optional<double> rel = relativeChange(a, b);
  if (!rel) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, " (%+.1f%%)", 100 * *rel);
  return buf;
}

template <typename T> nlohmann::json pairJson(const Pair<T> &p) { return {{"a", p.a}, {"b", p.b}}; }

nlohmann::json predictionJson(const Pair<double> &p) {
  nlohmann::json j = pairJson(p);
  std::optional<double> rel = relativeChange(p.a, p.b);
  j["relative_change"] = rel ? nlohmann::json(*rel) : nlohmann::json(nullptr);
  return j;
}

} // namespace

std::optional<double> relativeChange(double a, double b) {
  if (a == 0 || !std::isfinite(a) || !std::isfinite(b)) return std::nullopt;
  return (b - a) / a;
}

DiffReport diffPlans(const plan::Plan &a, const plan::Plan &b) {
  DiffReport r;
  r.identical = planfile::serializePlan(a) == planfile::serializePlan(b);
  if (r.identical) return r;
  r.fields = deploymentChanges(a, b);

  std::vector<ProgramSummary> sa = summarizePrograms(a), sb = summarizePrograms(b);
  // Sums bytes per mesh axis, in mesh-axis order, into `volumes` on side A or B.
  using AxisVolumes = std::map<std::pair<size_t, std::string>, Pair<uint64_t>>;
  auto addVolumes = [](AxisVolumes &volumes, const ProgramSummary &s, uint64_t ranks, bool isB) {
    for (const CollectiveTotals &c : s.collectives) {
      size_t order =
          size_t(std::find(meshAxes().begin(), meshAxes().end(), c.axis) - meshAxes().begin());
      Pair<uint64_t> &bytes = volumes[{order, c.axis}];
      (isB ? bytes.b : bytes.a) += c.commBytes * ranks;
    }
  };
  auto listVolumes = [](const AxisVolumes &volumes) {
    std::vector<AxisVolume> list;
    for (const auto &[axis, bytes] : volumes) list.push_back({axis.second, bytes});
    return list;
  };
  std::map<uint32_t, std::pair<const ProgramSummary *, const ProgramSummary *>> stages;
  for (const ProgramSummary &s : sa) stages[s.stage].first = &s;
  for (const ProgramSummary &s : sb) stages[s.stage].second = &s;
  for (const auto &[stage, pair] : stages) {
    const auto [pa, pb] = pair;
    StageDiff d;
    d.stage = stage;
    d.inA = pa != nullptr, d.inB = pb != nullptr;
    auto side = [](auto &pair, bool isB) -> auto & { return isB ? pair.b : pair.a; };
    auto fill = [&](const ProgramSummary *s, bool isB) {
      if (!s) return;
      side(d.ranks, isB) = s->ranks;
      side(d.arenaBytes, isB) = s->memory.arenaBytes;
      side(d.flops, isB) = s->flops;
      side(d.instructions, isB) = s->instructions;
      for (size_t k = 0; k < kMemoryKinds; ++k) side(d.memoryAtPeak[k], isB) = s->memory.byKind[k];
    };
    fill(pa, false);
    fill(pb, true);
    AxisVolumes perGpu;
    if (pa) addVolumes(perGpu, *pa, 1, false);
    if (pb) addVolumes(perGpu, *pb, 1, true);
    d.communicationPerGpu = listVolumes(perGpu);
    if (pa && pb)
      compareInstructions(a.programs(int(pa->program)), b.programs(int(pb->program)), d);
    r.stages.push_back(std::move(d));
  }

  AxisVolumes allRanks;
  for (const ProgramSummary &s : sa) addVolumes(allRanks, s, s.ranks.size(), false);
  for (const ProgramSummary &s : sb) addVolumes(allRanks, s, s.ranks.size(), true);
  r.communication = listVolumes(allRanks);

  std::optional<sim::Prediction> predA, predB;
  try {
    predA = sim::simulate(a);
  } catch (const std::exception &e) {
    r.simulationErrorA = e.what();
  }
  try {
    predB = sim::simulate(b);
  } catch (const std::exception &e) {
    r.simulationErrorB = e.what();
  }
  if (predA && predB) {
    r.latencySeconds = Pair<double>{predA->latencySeconds, predB->latencySeconds};
    r.throughputTokensPerSecond =
        Pair<double>{predA->throughputTokensPerSecond, predB->throughputTokensPerSecond};
  }
  return r;
}

std::string renderDiffText(const DiffReport &r, const std::string &nameA,
                           const std::string &nameB) {
  std::ostringstream out;
  out << "--- " << nameA << "\n+++ " << nameB << "\n";
  if (r.identical) {
    out << "the plans are identical\n";
    return out.str();
  }
  bool listed = false;
  if (!r.fields.empty()) {
    out << "fields\n";
    for (const FieldChange &f : r.fields)
      out << "  " << f.field << ": " << f.a << " -> " << f.b << "\n";
    listed = true;
  }
  for (const StageDiff &s : r.stages) {
    if (!s.inA || !s.inB) {
      const bool onlyA = s.inA;
      out << "stage " << s.stage << ": only in " << (onlyA ? nameA : nameB) << " (ranks "
          << formatRanks(onlyA ? s.ranks.a : s.ranks.b) << ", "
          << (onlyA ? s.instructions.a : s.instructions.b) << " instructions, arena "
          << formatBytes(double(onlyA ? s.arenaBytes.a : s.arenaBytes.b)) << ")\n";
      listed = true;
      continue;
    }
    std::ostringstream lines;
    if (s.ranks.differs())
      lines << "  ranks " << formatRanks(s.ranks.a) << " -> " << formatRanks(s.ranks.b) << "\n";
    if (s.arenaBytes.differs())
      lines << "  arena " << formatBytes(double(s.arenaBytes.a)) << " -> "
            << formatBytes(double(s.arenaBytes.b))
            << changeText(double(s.arenaBytes.a), double(s.arenaBytes.b)) << "\n";
    std::string memory;
    for (size_t k = 0; k < kMemoryKinds; ++k)
      if (s.memoryAtPeak[k].differs())
        memory += (memory.empty() ? "" : ", ") + std::string(memoryKindTitle(MemoryKind(k))) + " " +
                  formatBytes(double(s.memoryAtPeak[k].a)) + " -> " +
                  formatBytes(double(s.memoryAtPeak[k].b));
    if (!memory.empty()) lines << "  memory at peak: " << memory << "\n";
    if (s.flops.differs())
      lines << "  FLOPs " << formatCount(double(s.flops.a)) << " -> "
            << formatCount(double(s.flops.b)) << changeText(double(s.flops.a), double(s.flops.b))
            << "\n";
    std::string comm;
    for (const AxisVolume &v : s.communicationPerGpu)
      if (v.commBytes.differs())
        comm += (comm.empty() ? "" : ", ") + v.axis + " " + formatBytes(double(v.commBytes.a)) +
                " -> " + formatBytes(double(v.commBytes.b));
    if (!comm.empty()) lines << "  communication per GPU: " << comm << "\n";
    if (s.inserted + s.removed + s.changed > 0) {
      lines << "  instructions " << s.instructions.a << " -> " << s.instructions.b << ": "
            << s.inserted << " inserted, " << s.removed << " removed, " << s.changed
            << " changed\n";
      for (const InstructionEdit &e : s.edits) {
        lines << "    " << e.op << " [" << e.index << "] "
              << (e.label.empty() ? "(no label)" : e.label) << " (mb " << e.microBatch << ")";
        if (!e.what.empty()) lines << ": " << e.what;
        lines << "\n";
      }
      if (s.editsTruncated)
        lines << "    ... " << (s.inserted + s.removed + s.changed - s.edits.size()) << " more\n";
    }
    if (!lines.str().empty()) {
      out << "stage " << s.stage << "\n" << lines.str();
      listed = true;
    }
  }
  std::ostringstream comm;
  for (const AxisVolume &v : r.communication)
    if (v.commBytes.differs())
      comm << "  " << v.axis << " " << formatBytes(double(v.commBytes.a)) << " -> "
           << formatBytes(double(v.commBytes.b))
           << changeText(double(v.commBytes.a), double(v.commBytes.b)) << "\n";
  if (!comm.str().empty()) {
    out << "communication (all ranks)\n" << comm.str();
    listed = true;
  }
  if (r.latencySeconds && (r.latencySeconds->differs() || r.throughputTokensPerSecond->differs())) {
    out << "prediction\n"
        << "  latency " << formatSeconds(r.latencySeconds->a) << " -> "
        << formatSeconds(r.latencySeconds->b)
        << changeText(r.latencySeconds->a, r.latencySeconds->b) << "\n"
        << "  throughput " << formatCount(r.throughputTokensPerSecond->a) << " -> "
        << formatCount(r.throughputTokensPerSecond->b) << " tokens/s"
        << changeText(r.throughputTokensPerSecond->a, r.throughputTokensPerSecond->b) << "\n";
    listed = true;
  }
  if (!r.simulationErrorA.empty())
    out << "prediction of " << nameA << " failed: " << r.simulationErrorA << "\n";
  if (!r.simulationErrorB.empty())
    out << "prediction of " << nameB << " failed: " << r.simulationErrorB << "\n";
  if (!listed)
    out << "the plans differ only in details not summarised here (buffer offsets, events, "
           "collective order)\n";
  return out.str();
}

nlohmann::json diffJson(const DiffReport &r) {
  using nlohmann::json;
  json fields = json::array();
  for (const FieldChange &f : r.fields)
    fields.push_back({{"field", f.field}, {"a", f.a}, {"b", f.b}});
  auto volumesJson = [](const std::vector<AxisVolume> &volumes) {
    json list = json::array();
    for (const AxisVolume &v : volumes)
      list.push_back({{"axis", v.axis}, {"comm_bytes", pairJson(v.commBytes)}});
    return list;
  };
  json stages = json::array();
  for (const StageDiff &s : r.stages) {
    json memory = json::object();
    for (size_t k = 0; k < kMemoryKinds; ++k)
      memory[memoryKindName(MemoryKind(k))] = pairJson(s.memoryAtPeak[k]);
    json edits = json::array();
    for (const InstructionEdit &e : s.edits) {
      json edit = {{"op", std::string(1, e.op)},
                   {"index", e.index},
                   {"label", e.label},
                   {"micro_batch", e.microBatch}};
      if (!e.what.empty()) edit["what"] = e.what;
      edits.push_back(std::move(edit));
    }
    stages.push_back({{"stage", s.stage},
                      {"in_a", s.inA},
                      {"in_b", s.inB},
                      {"ranks", pairJson(s.ranks)},
                      {"arena_bytes", pairJson(s.arenaBytes)},
                      {"flops", pairJson(s.flops)},
                      {"instructions", pairJson(s.instructions)},
                      {"memory_at_peak", memory},
                      {"communication_per_gpu", volumesJson(s.communicationPerGpu)},
                      {"inserted", s.inserted},
                      {"removed", s.removed},
                      {"changed", s.changed},
                      {"edits", edits},
                      {"edits_truncated", s.editsTruncated}});
  }
  json communication = volumesJson(r.communication);
  json prediction = json::object();
  if (r.latencySeconds) {
    prediction["latency_s"] = predictionJson(*r.latencySeconds);
    prediction["throughput_tokens_per_s"] = predictionJson(*r.throughputTokensPerSecond);
  }
  if (!r.simulationErrorA.empty()) prediction["error_a"] = r.simulationErrorA;
  if (!r.simulationErrorB.empty()) prediction["error_b"] = r.simulationErrorB;
  return {{"schema", "moeplan-diff"}, {"version", 1},     {"identical", r.identical},
          {"fields", fields},         {"stages", stages}, {"communication", communication},
          {"prediction", prediction}};
}

} // namespace moeplan::report
