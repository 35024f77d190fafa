#include "moeplan/Simulate/Simulator.h"
#include "moeplan/Support/Percentile.h"

#include "moeplan/Simulate/CostModel.h"
#include "moeplan/Simulate/Routing.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <tuple>
#include <unordered_map>

namespace moeplan::sim {

namespace {

constexpr uint32_t kComputeStream = 0;
constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
// How many blocked ranks a deadlock report names.
constexpr size_t kReportedBlockedRanks = 3;
const double kUnset = std::numeric_limits<double>::quiet_NaN();

bool isTransfer(plan::CollectiveKind kind) { return kind == plan::SEND || kind == plan::RECV; }

std::string quoted(const plan::Instruction &inst) { return "\"" + inst.label() + "\""; }

// The static structure of one program, shared by every rank that runs it.
struct ProgramIndex {
  std::vector<uint32_t> prevOnStream, nextOnStream;  // kNone at a stream's ends
  std::vector<uint32_t> streamHeads;
  // Per instruction, one producer per wait_events entry (same order): the instruction whose
  // record_event it waits for, kNone when nothing records that event.
  std::vector<uint32_t> producerBegin, producers;
  std::vector<uint32_t> waiterBegin, waiters;  // the inverse of producers
  std::vector<double> kernelSeconds;           // kernels only
  // Kernels only, the roofline parts summarizeRank sums: computed once per program, not once
  // per rank that runs it (a 1024-rank plan has a handful of programs).
  std::vector<double> kernelComputeSeconds, kernelMemorySeconds;
  std::vector<uint32_t> channel;               // collectives only: index into channels
  std::vector<uint32_t> ordinal;               // collectives: position on their channel
  // A channel is a communicator as the program names it: group collectives by axis,
  // transfers by axis, peer position and direction; each rank resolves it to a group or a
  // peer rank. Kept as the channel's first collective.
  std::vector<const plan::Collective *> channels;
};

// The producer of each wait is the latest record of that event issued before the waiter (what
// a CUDA stream wait means); failing that, the first record issued after it.
ProgramIndex indexProgram(const plan::Cluster &cluster, const plan::Program &program,
                          uint32_t programIndex) {
  const uint32_t n = uint32_t(program.instructions_size());
  ProgramIndex index;
  index.prevOnStream.assign(n, kNone);
  index.nextOnStream.assign(n, kNone);
  index.kernelSeconds.assign(n, 0);
  index.kernelComputeSeconds.assign(n, 0);
  index.kernelMemorySeconds.assign(n, 0);
  index.channel.assign(n, kNone);
  index.ordinal.assign(n, 0);

  std::unordered_map<uint32_t, uint32_t> firstRecord, lastRecord, lastOnStream;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t event = program.instructions(int(i)).record_event();
    if (event != 0) firstRecord.emplace(event, i);
  }

  std::map<std::tuple<int, std::string, uint32_t>, uint32_t> channelIds;
  std::vector<uint32_t> channelUses;
  index.producerBegin.reserve(n + 1);
  for (uint32_t i = 0; i < n; ++i) {
    const plan::Instruction &inst = program.instructions(int(i));
    auto [last, isHead] = lastOnStream.try_emplace(inst.stream(), i);
    if (isHead) {
      index.streamHeads.push_back(i);
    } else {
      index.prevOnStream[i] = last->second;
      index.nextOnStream[last->second] = i;
      last->second = i;
    }

    index.producerBegin.push_back(uint32_t(index.producers.size()));
    for (uint32_t event : inst.wait_events()) {
      auto earlier = lastRecord.find(event);
      auto any = firstRecord.find(event);
      index.producers.push_back(earlier != lastRecord.end() ? earlier->second
                                : any != firstRecord.end()  ? any->second
                                                            : kNone);
    }
    if (inst.record_event() != 0) lastRecord[inst.record_event()] = i;

    if (inst.has_kernel()) {
      index.kernelSeconds[i] = kernelSeconds(cluster, inst);
      index.kernelComputeSeconds[i] =
          kernelComputeSeconds(cluster, inst.cost(), kernelEfficiency(cluster, inst));
      index.kernelMemorySeconds[i] = kernelMemorySeconds(cluster, inst);
    } else if (inst.has_collective()) {
      const plan::Collective &c = inst.collective();
      bool transfer = isTransfer(c.kind());
      auto key = std::make_tuple(transfer ? int(c.kind()) : 0, c.axis(), transfer ? c.peer() : 0);
      auto [it, added] = channelIds.try_emplace(key, uint32_t(index.channels.size()));
      if (added) {
        index.channels.push_back(&c);
        channelUses.push_back(0);
      }
      index.channel[i] = it->second;
      index.ordinal[i] = channelUses[it->second]++;
    } else {
      throw std::invalid_argument("program " + std::to_string(programIndex) + " instruction " +
                                  std::to_string(i) + " " + quoted(inst) +
                                  " is neither a kernel nor a collective");
    }
  }
  index.producerBegin.push_back(uint32_t(index.producers.size()));

  // Invert producers into waiters (counting sort by producer).
  index.waiterBegin.assign(n + 1, 0);
  for (uint32_t producer : index.producers)
    if (producer != kNone) ++index.waiterBegin[producer + 1];
  for (uint32_t i = 0; i < n; ++i) index.waiterBegin[i + 1] += index.waiterBegin[i];
  index.waiters.resize(index.waiterBegin[n]);
  std::vector<uint32_t> fill(index.waiterBegin.begin(), index.waiterBegin.end() - 1);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t k = index.producerBegin[i]; k < index.producerBegin[i + 1]; ++k)
      if (index.producers[k] != kNone) index.waiters[fill[index.producers[k]]++] = i;
  return index;
}

// What one rank's program channels resolve to.
struct RankState {
  uint32_t program = 0;
  std::vector<CollectiveRoute> routes;  // per program channel
  // Empty when the rank's channels resolve to distinct communicators (the program's ordinals
  // hold); otherwise ordinals counted per communicator, since two axes that resolve to one
  // group (or two peers that are one rank) share its order.
  std::vector<uint32_t> ordinals;
  uint32_t finished = 0;  // instructions completed
};

struct Participant {
  uint32_t rank, instruction;
};

// Members of one collective (or the two sides of one transfer) gathering: it starts when the
// last arrives and lasts as long as its slowest member's share.
struct Meeting {
  plan::CollectiveKind kind = plan::COLLECTIVE_KIND_UNSPECIFIED;
  uint32_t expected = 0;
  double start = 0, seconds = 0;
  std::vector<Participant> arrived;
};

// The two sides of a transfer: ranks, or when ranks share timelines (Simulation::
// findRepresentatives) the programs they run.
struct TransferKey {
  uint32_t sender, receiver, ordinal;
  bool operator==(const TransferKey &o) const {
    return sender == o.sender && receiver == o.receiver && ordinal == o.ordinal;
  }
};
struct TransferKeyHash {
  size_t operator()(const TransferKey &k) const {
    uint64_t ranks = (uint64_t(k.sender) << 32) | k.receiver;
    return std::hash<uint64_t>()(ranks * 0x9E3779B97F4A7C15ull ^ k.ordinal);
  }
};

// Times are fixed by dependencies alone (durations do not depend on contention), so the
// simulation propagates completions through a worklist: when an instruction completes, the
// next one on its stream and those waiting on its event are tried; a collective waits in its
// meeting until every member has arrived.
class Simulation {
public:
  // `share`: ranks with the same timeline simulated once (findRepresentatives); off, every
  // rank on its own (what tests compare it with).
  explicit Simulation(const plan::Plan &p, bool share = true) : plan_(p), share_(share) {}

  // Every rank's timeline; a rank that shares its representative's (representative(r) != r)
  // has none of its own (empty instructions, no figures): read the representative's.
  std::vector<RankTimeline> run() {
    indexPrograms();
    resolveRanks();
    findRepresentatives();
    allocateTimelines();
    if (!propagate()) {
      // A deadlock is reported as the full simulation sees it, naming every blocked rank.
      if (!shared_) throw deadlock();
      restart();
      if (!propagate()) throw deadlock();
    }
    return std::move(timelines_);
  }

  // The rank whose timeline `r` shares (itself when simulated).
  uint32_t representative(uint32_t r) const { return representative_[r]; }

private:
  // Simulates the representatives; false when some cannot finish.
  bool propagate() {
    for (uint32_t r = 0; r < ranks_.size(); ++r)
      if (representative_[r] == r)
        for (uint32_t head : programs_[ranks_[r].program].streamHeads) tryStart(r, head);
    while (!completed_.empty()) {
      Participant done = completed_.back();
      completed_.pop_back();
      const ProgramIndex &index = programs_[ranks_[done.rank].program];
      if (index.nextOnStream[done.instruction] != kNone)
        tryStart(done.rank, index.nextOnStream[done.instruction]);
      for (uint32_t k = index.waiterBegin[done.instruction];
           k < index.waiterBegin[done.instruction + 1]; ++k)
        tryStart(done.rank, index.waiters[k]);
    }
    for (uint32_t r = 0; r < ranks_.size(); ++r)
      if (representative_[r] == r && ranks_[r].finished < timelines_[r].instructions.size())
        return false;
    return true;
  }

  // Back to the start, every rank simulated.
  void restart() {
    shared_ = false;
    for (uint32_t r = 0; r < ranks_.size(); ++r) {
      representative_[r] = r;
      ranks_[r].finished = 0;
    }
    allocateTimelines();
    completed_.clear();
    collectives_.clear();
    transfers_.clear();
    lastMeeting_.assign(ranks_.size(), 0.0);
  }

  // Ranks that run one program and see their communicators alike have the same timeline:
  // the same group sizes and layouts on nodes per channel, the same ordinals, transfer peers
  // running the same programs, and groups whose members all run that program. By induction
  // over the dependencies every instruction then starts at the latest of the same stream
  // predecessor, events and meeting (a group's members arrive together; a transfer's other
  // side is a rank of the same program each time). So only the first rank of each program
  // is simulated, and a transfer is matched by the programs of its two sides (each rank's
  // transfer channels must then go to distinct programs per direction). A 1024-rank plan of
  // a few programs is simulated as a few ranks. Not under compute_jitter: there a rank's
  // arrival spread depends on the order completions propagate in.
  void findRepresentatives() {
    const uint32_t world = uint32_t(ranks_.size());
    representative_.resize(world);
    for (uint32_t r = 0; r < world; ++r) representative_[r] = r;
    shared_ = false;
    if (!share_ || plan_.cluster().compute_jitter() > 0) return;
    std::vector<uint32_t> first(programs_.size(), kNone);
    for (uint32_t r = 0; r < world; ++r)
      if (first[ranks_[r].program] == kNone) first[ranks_[r].program] = r;
    auto programOf = [&](uint32_t r) { return ranks_[r].program; };
    std::vector<int8_t> groupOfOneProgram(size_t(plan_.groups_size()), -1);  // -1: not checked
    auto oneProgram = [&](uint32_t group, uint32_t program) {
      int8_t &known = groupOfOneProgram[group];
      if (known < 0) {
        known = 1;
        for (uint32_t member : plan_.groups(int(group)).ranks())
          if (member >= world || programOf(member) != programOf(plan_.groups(int(group)).ranks(0)))
            known = 0;
      }
      return known == 1 && programOf(plan_.groups(int(group)).ranks(0)) == program;
    };
    for (uint32_t r = 0; r < world; ++r) {
      const RankState &state = ranks_[r];
      const RankState &model = ranks_[first[state.program]];
      const ProgramIndex &index = programs_[state.program];
      if (state.ordinals != model.ordinals) return;
      std::set<std::pair<int, uint32_t>> peers;  // (direction, peer program)
      for (size_t c = 0; c < index.channels.size(); ++c) {
        const CollectiveRoute &a = state.routes[c], &b = model.routes[c];
        if (a.groupSize != b.groupSize || a.intraNode != b.intraNode ||
            a.span.size != b.span.size || a.span.localMembers != b.span.localMembers)
          return;
        const plan::CollectiveKind kind = index.channels[c]->kind();
        if (isTransfer(kind)) {
          if (a.peerRank >= world || programOf(a.peerRank) != programOf(b.peerRank) ||
              !peers.emplace(int(kind), programOf(a.peerRank)).second)
            return;
        } else if (!oneProgram(a.group, state.program)) {
          return;
        }
      }
    }
    for (uint32_t r = 0; r < world; ++r) representative_[r] = first[ranks_[r].program];
    shared_ = true;
  }

public:
  // Per rank, its compute-stream kernels' time, and the span from its first one's start to
  // its last one's end with no rank waiting for another: every instruction at its own
  // duration (a collective at this rank's cost of it, a transfer at its own), after its
  // stream predecessor and its events, in issue order (a producer issued later, which the
  // compiler never emits, is ignored: it could only delay). What the run of one micro-batch
  // occupies the compute stream at least.
  std::vector<SoloCompute> soloCompute() {
    indexPrograms();
    resolveRanks();
    findRepresentatives();
    std::vector<SoloCompute> out(ranks_.size());
    std::vector<double> end, seconds, longest;
    std::vector<uint32_t> kernels;  // the compute stream's kernels, in issue order
    for (uint32_t r = 0; r < ranks_.size(); ++r) {
      if (representative_[r] != r) {  // an earlier rank, already done
        out[r] = out[representative_[r]];
        continue;
      }
      const RankState &state = ranks_[r];
      const ProgramIndex &index = programs_[state.program];
      const plan::Program &program = plan_.programs(int(state.program));
      const uint32_t n = uint32_t(index.prevOnStream.size());
      end.assign(n, 0.0);
      seconds.assign(n, 0.0);
      kernels.clear();
      double first = INFINITY, last = 0, busy = 0, layerBusy = 0;
      for (uint32_t i = 0; i < n; ++i) {
        double ready = 0;
        if (uint32_t prev = index.prevOnStream[i]; prev != kNone && prev < i) ready = end[prev];
        for (uint32_t k = index.producerBegin[i]; k < index.producerBegin[i + 1]; ++k)
          if (uint32_t producer = index.producers[k]; producer != kNone && producer < i)
            ready = std::max(ready, end[producer]);
        const plan::Instruction &inst = program.instructions(int(i));
        seconds[i] = index.channel[i] == kNone
                         ? index.kernelSeconds[i]
                         : collectiveSeconds(plan_.cluster(), inst, state.routes[index.channel[i]].span);
        end[i] = ready + seconds[i];
        if (index.channel[i] == kNone && inst.stream() == kComputeStream) {
          first = std::min(first, ready);
          last = std::max(last, end[i]);
          busy += seconds[i];
          if (inst.layer() >= 0) layerBusy += seconds[i];
          kernels.push_back(i);
        }
      }
      out[r].busy = busy;
      out[r].layerBusy = layerBusy;
      out[r].span = std::isfinite(first) ? last - first : 0;
      // The chains (SoloCompute): the compute stream's kernels in runs of one `layer` value;
      // per run, the longest path from its first kernel to its last through instructions of
      // that value, each at its own duration, along stream order and producers.
      auto layerOf = [&](uint32_t i) { return program.instructions(int(i)).layer(); };
      for (size_t a = 0; a < kernels.size();) {
        const int32_t layer = layerOf(kernels[a]);
        size_t b = a;
        double runBusy = seconds[kernels[a]];
        while (b + 1 < kernels.size() && layerOf(kernels[b + 1]) == layer)
          runBusy += seconds[kernels[++b]];
        const uint32_t u = kernels[a], v = kernels[b];
        longest.assign(v - u + 1, -1.0);  // -1: not reached from u
        longest[0] = seconds[u];
        for (uint32_t i = u + 1; i <= v; ++i) {
          if (layerOf(i) != layer) continue;
          double from = -1;
          if (uint32_t prev = index.prevOnStream[i]; prev != kNone && prev >= u && prev < i)
            from = std::max(from, longest[prev - u]);
          for (uint32_t k = index.producerBegin[i]; k < index.producerBegin[i + 1]; ++k)
            if (uint32_t producer = index.producers[k];
                producer != kNone && producer >= u && producer < i)
              from = std::max(from, longest[producer - u]);
          if (from >= 0) longest[i - u] = from + seconds[i];
        }
        // Its kernels follow one another on the stream in any case.
        const double chain = std::max(longest[v - u], runBusy);
        (layer >= 0 ? out[r].chainLayers : out[r].chainOutside) += chain;
        a = b + 1;
      }
    }
    return out;
  }

  const ProgramIndex &programOf(uint32_t rank) const { return programs_[ranks_[rank].program]; }
  const RankState &rank(uint32_t r) const { return ranks_[r]; }

private:
  const plan::Plan &plan_;
  std::vector<uint32_t> representative_;  // per rank (findRepresentatives)
  const bool share_;
  bool shared_ = false;                   // some rank shares another's timeline
  std::vector<ProgramIndex> programs_;
  std::vector<RankState> ranks_;
  std::vector<RankTimeline> timelines_;
  std::vector<Participant> completed_;                 // completions not yet propagated
  std::unordered_map<uint64_t, Meeting> collectives_;  // by group << 32 | ordinal
  std::unordered_map<TransferKey, Meeting, TransferKeyHash> transfers_;
  // Per rank, the end of the latest meeting (a collective or transfer) it took part in, as
  // far as completions have propagated: the time since sets how far its arrival at the next
  // may vary (Cluster.compute_jitter). Completions propagate in dependency order, not time
  // order; a later meeting already known only shortens the stretch (to 0 at worst).
  std::vector<double> lastMeeting_;

  void indexPrograms() {
    programs_.reserve(size_t(plan_.programs_size()));
    for (int i = 0; i < plan_.programs_size(); ++i)
      programs_.push_back(indexProgram(plan_.cluster(), plan_.programs(i), uint32_t(i)));
  }

  void resolveRanks() {
    const uint32_t world = uint32_t(plan_.ranks_size());
    ranks_.resize(world);
    timelines_.resize(world);
    lastMeeting_.assign(world, 0.0);
    for (uint32_t r = 0; r < world; ++r) {
      RankState &state = ranks_[r];
      state.program = plan_.ranks(int(r)).program();
      if (state.program >= programs_.size())
        throw std::invalid_argument("rank " + std::to_string(r) + " runs program " +
                                    std::to_string(state.program) + ", which does not exist");
      const ProgramIndex &index = programs_[state.program];
      for (const plan::Collective *channel : index.channels)
        state.routes.push_back(routeCollective(plan_, r, *channel));
      countOrdinalsPerCommunicator(state, index);

      timelines_[r].rank = r;
    }
  }

  // Unset instruction timings for every simulated rank (the others share theirs).
  void allocateTimelines() {
    for (uint32_t r = 0; r < ranks_.size(); ++r) {
      std::vector<InstructionTiming> &times = timelines_[r].instructions;
      times.clear();
      if (representative_[r] != r) continue;
      times.resize(programOf(r).prevOnStream.size());
      for (uint32_t i = 0; i < times.size(); ++i) times[i] = {i, kUnset, kUnset};
    }
  }

  // The communicator a channel resolves to on one rank: a group, or a direction and peer.
  std::pair<int, uint32_t> communicator(const RankState &state, const ProgramIndex &index,
                                        uint32_t channel) const {
    plan::CollectiveKind kind = index.channels[channel]->kind();
    const CollectiveRoute &route = state.routes[channel];
    return isTransfer(kind) ? std::make_pair(int(kind), route.peerRank)
                            : std::make_pair(0, route.group);
  }

  void countOrdinalsPerCommunicator(RankState &state, const ProgramIndex &index) {
    std::map<std::pair<int, uint32_t>, uint32_t> distinct;
    std::vector<uint32_t> communicatorOf;
    for (uint32_t c = 0; c < index.channels.size(); ++c)
      communicatorOf.push_back(
          distinct.try_emplace(communicator(state, index, c), uint32_t(distinct.size()))
              .first->second);
    if (distinct.size() == index.channels.size()) return;
    std::vector<uint32_t> uses(distinct.size(), 0);
    state.ordinals.assign(index.channel.size(), 0);
    for (uint32_t i = 0; i < index.channel.size(); ++i)
      if (index.channel[i] != kNone) state.ordinals[i] = uses[communicatorOf[index.channel[i]]]++;
  }

  uint32_t ordinalOf(const RankState &state, const ProgramIndex &index, uint32_t i) const {
    return state.ordinals.empty() ? index.ordinal[i] : state.ordinals[i];
  }

  // Starts `i` on rank `r` (or lets it arrive at its meeting) if its stream predecessor and
  // every event it waits for have completed. A no-op when it already has.
  void tryStart(uint32_t r, uint32_t i) {
    std::vector<InstructionTiming> &times = timelines_[r].instructions;
    if (!std::isnan(times[i].start)) return;
    const ProgramIndex &index = programOf(r);
    double ready = 0;
    if (uint32_t prev = index.prevOnStream[i]; prev != kNone) {
      if (std::isnan(times[prev].end)) return;
      ready = times[prev].end;
    }
    for (uint32_t k = index.producerBegin[i]; k < index.producerBegin[i + 1]; ++k) {
      uint32_t producer = index.producers[k];
      if (producer == kNone || std::isnan(times[producer].end)) return;
      ready = std::max(ready, times[producer].end);
    }
    times[i].issued = ready;
    if (index.channel[i] == kNone)
      finish(r, i, ready, ready + index.kernelSeconds[i]);
    else
      arrive(r, i, ready);
  }

  void arrive(uint32_t r, uint32_t i, double ready) {
    timelines_[r].instructions[i].start = ready;  // marks arrival; the meeting sets the start
    const RankState &state = ranks_[r];
    const ProgramIndex &index = programs_[state.program];
    const plan::Instruction &inst = plan_.programs(int(state.program)).instructions(int(i));
    const plan::CollectiveKind kind = inst.collective().kind();
    const CollectiveRoute &route = state.routes[index.channel[i]];
    const uint32_t ordinal = ordinalOf(state, index, i);
    const double seconds = collectiveSeconds(plan_.cluster(), inst, route.span);
    if (isTransfer(kind)) {
      bool send = kind == plan::SEND;
      uint32_t self = r, peer = route.peerRank;
      if (shared_) self = state.program, peer = ranks_[peer].program;
      TransferKey key{send ? self : peer, send ? peer : self, ordinal};
      auto it = transfers_.try_emplace(key).first;
      if (join(it->second, kind, 2, r, i, ready, seconds)) transfers_.erase(it);
    } else {
      auto it = collectives_.try_emplace((uint64_t(route.group) << 32) | ordinal).first;
      if (it->second.kind != kind && !it->second.arrived.empty())
        throw std::invalid_argument(
            "collective mismatch on group " + std::to_string(route.group) + ": rank " +
            std::to_string(r) + " issues " + plan::CollectiveKind_Name(kind) + " " + quoted(inst) +
            " where rank " + std::to_string(it->second.arrived.front().rank) + " issued " +
            plan::CollectiveKind_Name(it->second.kind));
      // Sharing timelines, the group's one simulated member stands for all of them.
      if (join(it->second, kind, shared_ ? 1 : route.groupSize, r, i, ready, seconds))
        collectives_.erase(it);
    }
  }

  // Adds a member; when it is the last, completes everyone. Returns whether it completed.
  bool join(Meeting &m, plan::CollectiveKind kind, uint32_t expected, uint32_t r, uint32_t i,
            double ready, double seconds) {
    if (m.arrived.empty()) {
      m.kind = kind;
      m.expected = expected;
      m.arrived.reserve(expected);
    }
    m.start = std::max(m.start, ready);
    m.seconds = std::max(m.seconds, seconds);
    m.arrived.push_back({r, i});
    if (m.arrived.size() < m.expected) return false;
    // Each member's arrival varies with the stretch it ran since it last met another rank:
    // the meeting starts at the expected latest arrival.
    if (const double jitter = plan_.cluster().compute_jitter(); jitter > 0) {
      std::vector<std::pair<double, double>> arrivals;
      arrivals.reserve(m.arrived.size());
      for (const Participant &p : m.arrived) {
        const double arrival = timelines_[p.rank].instructions[p.instruction].start;
        arrivals.emplace_back(arrival, jitter * std::max(0.0, arrival - lastMeeting_[p.rank]));
      }
      m.start = std::max(m.start, expectedLatestArrival(arrivals));
    }
    for (const Participant &p : m.arrived) {
      lastMeeting_[p.rank] = std::max(lastMeeting_[p.rank], m.start + m.seconds);
      finish(p.rank, p.instruction, m.start, m.start + m.seconds);
    }
    return true;
  }

  void finish(uint32_t r, uint32_t i, double start, double end) {
    InstructionTiming &t = timelines_[r].instructions[i];
    t.start = start;
    t.end = end;
    ++ranks_[r].finished;
    completed_.push_back({r, i});
  }

  // Names the first blocked ranks, the instruction each stream is stuck at and what it waits on.
  std::invalid_argument deadlock() const {
    std::vector<uint32_t> blocked;
    for (uint32_t r = 0; r < ranks_.size(); ++r)
      if (ranks_[r].finished < timelines_[r].instructions.size()) blocked.push_back(r);
    std::ostringstream out;
    out << "plan deadlocks: " << blocked.size() << " of " << ranks_.size()
        << " ranks cannot finish";
    for (size_t b = 0; b < std::min(blocked.size(), kReportedBlockedRanks); ++b)
      describeBlockedRank(out, blocked[b]);
    if (blocked.size() > kReportedBlockedRanks)
      out << "; and " << blocked.size() - kReportedBlockedRanks << " more ranks";
    return std::invalid_argument(out.str());
  }

  void describeBlockedRank(std::ostringstream &out, uint32_t r) const {
    const std::vector<InstructionTiming> &times = timelines_[r].instructions;
    const ProgramIndex &index = programOf(r);
    const plan::Program &program = plan_.programs(int(ranks_[r].program));
    out << "; rank " << r << ":";
    const char *separator = "";
    for (uint32_t head : index.streamHeads) {
      uint32_t i = head;
      while (i != kNone && !std::isnan(times[i].end)) i = index.nextOnStream[i];
      if (i == kNone) continue;
      const plan::Instruction &inst = program.instructions(int(i));
      out << separator << " instruction " << i << " " << quoted(inst) << " (stream "
          << inst.stream() << ")";
      if (!std::isnan(times[i].start))
        describeMeeting(out, r, i, inst);
      else
        describeMissingEvents(out, times, index, program, i, inst);
      separator = ",";
    }
  }

  void describeMeeting(std::ostringstream &out, uint32_t r, uint32_t i,
                       const plan::Instruction &inst) const {
    const RankState &state = ranks_[r];
    const ProgramIndex &index = programs_[state.program];
    const plan::Collective &c = inst.collective();
    const CollectiveRoute &route = state.routes[index.channel[i]];
    const uint32_t ordinal = ordinalOf(state, index, i);
    if (c.kind() == plan::SEND) {
      out << " waits for rank " << route.peerRank << " to post RECV #" << ordinal << " from it";
    } else if (c.kind() == plan::RECV) {
      out << " waits for rank " << route.peerRank << " to post SEND #" << ordinal << " to it";
    } else {
      out << " waits in " << plan::CollectiveKind_Name(c.kind()) << " #" << ordinal << " on group "
          << route.group << " (axis " << c.axis() << ") for ranks";
      const Meeting &m = collectives_.at((uint64_t(route.group) << 32) | ordinal);
      for (uint32_t member : plan_.groups(int(route.group)).ranks())
        if (std::none_of(m.arrived.begin(), m.arrived.end(),
                         [&](const Participant &p) { return p.rank == member; }))
          out << " " << member;
    }
  }

  static void describeMissingEvents(std::ostringstream &out,
                                    const std::vector<InstructionTiming> &times,
                                    const ProgramIndex &index, const plan::Program &program,
                                    uint32_t i, const plan::Instruction &inst) {
    out << " waits for";
    for (int w = 0; w < inst.wait_events_size(); ++w) {
      uint32_t producer = index.producers[index.producerBegin[i] + uint32_t(w)];
      if (producer == kNone)
        out << " event " << inst.wait_events(w) << " (which no instruction records)";
      else if (std::isnan(times[producer].end))
        out << " event " << inst.wait_events(w) << " (recorded by instruction " << producer << " "
            << quoted(program.instructions(int(producer))) << ")";
    }
  }
};

double share(double part, double whole) { return whole > 0 ? part / whole : 0; }

// Which kind of wait a stretch of compute-stream idle time is.
enum class IdleCause { Pipeline, Collective, Other };

IdleCause causeOf(const plan::Instruction &releaser) {
  if (!releaser.has_collective()) return IdleCause::Other;
  return isTransfer(releaser.collective().kind()) ? IdleCause::Pipeline : IdleCause::Collective;
}

// Splits the compute stream's time into kernels, exposed communication and bubble; sums the
// rank's roofline parts and the union of its communication intervals.
void summarizeRank(RankTimeline &t, const plan::Plan &p, const plan::Program &program,
                   const ProgramIndex &index, const RankState &state, double makespan) {
  const plan::Cluster &cluster = p.cluster();
  std::vector<std::pair<double, double>> commIntervals;
  for (const InstructionTiming &timing : t.instructions) {
    const uint32_t i = timing.instruction;
    const plan::Instruction &inst = program.instructions(int(i));
    t.end = std::max(t.end, timing.end);
    if (inst.has_kernel()) {
      t.flops += inst.cost().flops();
      t.modelFlops += inst.cost().model_flops();
      t.computeSeconds += index.kernelComputeSeconds[i];
      t.memorySeconds += index.kernelMemorySeconds[i];
    } else {
      const CollectiveRoute &route = state.routes[index.channel[i]];
      t.commSeconds += collectiveSeconds(cluster, inst, route.span);
      commIntervals.emplace_back(timing.start, timing.end);
    }
  }

  std::sort(commIntervals.begin(), commIntervals.end());
  double coveredUntil = 0;
  for (auto [start, end] : commIntervals) {
    start = std::max(start, coveredUntil);
    if (end > start) t.commBusy += end - start;
    coveredUntil = std::max(coveredUntil, end);
  }

  auto addIdle = [&](IdleCause cause, double seconds) {
    if (seconds <= 0) return;
    if (cause == IdleCause::Pipeline) t.bubble += seconds;
    if (cause == IdleCause::Collective) t.exposedComm += seconds;
  };
  // A collective on the compute stream holds it; that time is a wait like any other.
  double streamFreeAt = 0;
  bool first = true;
  for (uint32_t head : index.streamHeads) {
    if (program.instructions(int(head)).stream() != kComputeStream) continue;
    for (uint32_t i = head; i != kNone; i = index.nextOnStream[i]) {
      const plan::Instruction &inst = program.instructions(int(i));
      const InstructionTiming &timing = t.instructions[i];
      if (first) {
        addIdle(IdleCause::Pipeline, timing.start - streamFreeAt);
      } else {
        // The constraint that released it last: its predecessor on the stream (no gap) or
        // the latest of the events it waited for; a collective may then wait for its group.
        double released = streamFreeAt;
        const plan::Instruction *releaser = nullptr;
        for (uint32_t k = index.producerBegin[i]; k < index.producerBegin[i + 1]; ++k) {
          uint32_t producer = index.producers[k];
          if (t.instructions[producer].end > released) {
            released = t.instructions[producer].end;
            releaser = &program.instructions(int(producer));
          }
        }
        if (releaser) addIdle(causeOf(*releaser), released - streamFreeAt);
        addIdle(causeOf(inst), timing.start - released);
      }
      if (inst.has_kernel())
        t.computeBusy += timing.end - timing.start;
      else
        addIdle(causeOf(inst), timing.end - timing.start);
      streamFreeAt = timing.end;
      first = false;
    }
  }
  addIdle(IdleCause::Pipeline, makespan - streamFreeAt);
}

std::string compactRanks(const plan::Group &group) {
  std::string out;
  for (int i = 0; i < group.ranks_size();) {
    int runEnd = i;
    while (runEnd + 1 < group.ranks_size() && group.ranks(runEnd + 1) == group.ranks(runEnd) + 1)
      ++runEnd;
    if (!out.empty()) out += ",";
    out += std::to_string(group.ranks(i));
    if (runEnd > i) out += "-" + std::to_string(group.ranks(runEnd));
    i = runEnd + 1;
  }
  return out;
}

}  // namespace

namespace {

// A SEND of sampled ids to the next decode step (the RECVs of them carry the flag too).
bool feedsNextStep(const plan::Instruction &inst) {
  return inst.has_collective() && inst.collective().kind() == plan::SEND &&
         inst.collective().feeds_next_step();
}

// Makes `inst` take no time while keeping its stream and events, so what waits for it runs.
void skip(plan::Instruction &inst) {
  inst.mutable_kernel();  // in place of the collective (one of)
  inst.clear_cost();
}

// Consecutive parts of a GENERATE plan as the runtime runs them: the prefill (or not), then
// decode steps firstStep, firstStep + 1, ...
struct Chain {
  bool prefill = false;
  uint32_t firstStep = 0, steps = 0;
  bool tokensReady = false;  // mid-generation: the first step's fed tokens are already there
};

struct ChainedPlan {
  plan::Plan *plan;  // on the arena chainPlan was given: a chain copies many instructions
  std::vector<std::vector<uint32_t>> partBegins;  // per program, each part's first instruction,
                                                  // then the end
};

// Per (program, axis, peer) of a RECV, how many of a decode step's feeds_next_step SENDs go
// there: transfers between two ranks match in issue order, so they are the first that many
// RECVs on that channel in the next step. Resolved on one rank of each sending program.
using FedRecvs = std::map<std::tuple<uint32_t, std::string, uint32_t>, uint32_t>;
FedRecvs fedRecvs(const plan::Plan &p) {
  FedRecvs fed;
  std::vector<bool> seen(size_t(p.programs_size()), false);
  for (uint32_t r = 0; r < uint32_t(p.ranks_size()); ++r) {
    const uint32_t x = p.ranks(int(r)).program();
    if (x >= seen.size() || seen[x]) continue;
    seen[x] = true;
    const plan::Program &program = p.programs(int(x));
    for (int i = int(program.decode_begin()); i < program.instructions_size(); ++i) {
      if (!feedsNextStep(program.instructions(i))) continue;
      const plan::Collective &c = program.instructions(i).collective();
      const uint32_t receiver = p.ranks(int(routeCollective(p, r, c).peerRank)).program();
      ++fed[{receiver, c.axis(), membershipOn(p, r, c.axis()).index()}];
    }
  }
  return fed;
}

// Drains the rank's streams between two parts: a no-op on each stream records that stream's
// event once its earlier work is done, then a no-op on each stream waits for all of them.
// Every boundary records the same events: a wait is for the latest record before it.
void appendDrain(google::protobuf::RepeatedPtrField<plan::Instruction> &insts, uint32_t streams,
                 uint32_t firstEvent) {
  for (bool wait : {false, true})
    for (uint32_t s = 0; s < streams; ++s) {
      plan::Instruction &inst = *insts.Add();
      skip(inst);
      inst.set_stream(s);
      inst.set_layer(-1);
      inst.set_label("drain");
      if (!wait) inst.set_record_event(firstEvent + s);
      for (uint32_t e = 0; wait && e < streams; ++e) inst.add_wait_events(firstEvent + e);
    }
}

// The chain as one plan: each program's parts in order (a decode step's per_step kernels cost
// step x step_cost more), drained between them. The plan's own events and communication
// order carry over unchanged: waits resolve within each copy, and SENDs and RECVs of one pair
// of ranks match in issue order across copies, so the last stage's fed tokens meet the first
// stage's RECVs of the next step. The last part feeds nothing.
ChainedPlan chainPlan(const plan::Plan &p, const Chain &chain, google::protobuf::Arena &arena) {
  ChainedPlan out{google::protobuf::Arena::CreateMessage<plan::Plan>(&arena), {}};
  *out.plan = p;
  FedRecvs ready = chain.tokensReady ? fedRecvs(p) : FedRecvs{};
  const uint32_t parts = uint32_t(chain.prefill) + chain.steps;
  for (int x = 0; x < p.programs_size(); ++x) {
    const plan::Program &source = p.programs(x);
    plan::Program &program = *out.plan->mutable_programs(x);
    google::protobuf::RepeatedPtrField<plan::Instruction> &insts = *program.mutable_instructions();
    insts.Clear();
    std::vector<uint32_t> &begins = out.partBegins.emplace_back();
    for (uint32_t k = 0; k < parts; ++k) {
      if (k > 0) appendDrain(insts, source.streams(), source.events() + 1);
      begins.push_back(uint32_t(insts.size()));
      const bool prefill = chain.prefill && k == 0;
      const uint64_t step = prefill ? 0 : chain.firstStep + k - uint32_t(chain.prefill);
      const int begin = prefill ? 0 : int(source.decode_begin());
      const int end = prefill ? int(source.decode_begin()) : source.instructions_size();
      for (int i = begin; i < end; ++i) {
        plan::Instruction &inst = *insts.Add() = source.instructions(i);
        if (!prefill && inst.has_step_cost()) {
          plan::Cost *c = inst.mutable_cost();
          c->set_flops(c->flops() + step * inst.step_cost().flops());
          c->set_memory_bytes(c->memory_bytes() + step * inst.step_cost().memory_bytes());
          c->set_model_flops(c->model_flops() + step * inst.step_cost().model_flops());
        }
        if (feedsNextStep(inst) && k + 1 == parts) skip(inst);
        if (k == 0 && !ready.empty() && inst.has_collective() &&
            inst.collective().kind() == plan::RECV) {
          auto fed = ready.find({uint32_t(x), inst.collective().axis(), inst.collective().peer()});
          if (fed != ready.end() && fed->second > 0) {
            --fed->second;
            skip(inst);
          }
        }
      }
    }
    begins.push_back(uint32_t(insts.size()));
    program.set_events(source.events() + source.streams());
    program.set_decode_begin(0);
  }
  return out;
}

// Per part of the chain, the time from the moment the last rank finished the previous part
// (the chain's start, for the first) to the moment the last rank finished this one: the
// interval between two tokens of a sequence, as the runtime measures it.
std::vector<double> partSeconds(const plan::Plan &p, const Chain &chain, bool shareTimelines) {
  google::protobuf::Arena arena;
  const ChainedPlan chained = chainPlan(p, chain, arena);
  Simulation simulation(*chained.plan, shareTimelines);
  const std::vector<RankTimeline> ranks = simulation.run();
  std::vector<double> lastEnd(uint32_t(chain.prefill) + chain.steps, 0);
  for (const RankTimeline &t : ranks) {
    if (simulation.representative(t.rank) != t.rank) continue;  // the same ends as it
    const std::vector<uint32_t> &begins = chained.partBegins[simulation.rank(t.rank).program];
    double end = 0;
    for (size_t k = 0; k < lastEnd.size(); ++k) {
      for (uint32_t i = begins[k]; i < begins[k + 1]; ++i) end = std::max(end, t.instructions[i].end);
      lastEnd[k] = std::max(lastEnd[k], end);
    }
  }
  std::vector<double> seconds(lastEnd.size());
  for (size_t k = 0; k < lastEnd.size(); ++k) seconds[k] = lastEnd[k] - (k ? lastEnd[k - 1] : 0);
  return seconds;
}

Prediction simulatePass(const plan::Plan &p, bool shareTimelines);

} // namespace

namespace detail {

GenerationPrediction simulateGeneration(const plan::Plan &p, uint32_t maxSimulatedSteps,
                                        bool shareTimelines) {
  GenerationPrediction g;
  g.steps = p.workload().new_tokens() > 0 ? p.workload().new_tokens() - 1 : 0;
  auto take = [&](uint32_t step, double seconds) {
    g.simulatedSteps.push_back(step);
    g.stepSeconds.push_back(seconds);
  };
  // A window: steps for every micro-batch's tokens to go round the pipeline and settle, two
  // samples, and a step for them to feed (one that feeds nothing ends early, as the last).
  const uint32_t window = std::max(1u, p.strategy().pp()) + 4;
  if (g.steps <= std::max(maxSimulatedSteps, 2 * window)) {
    const std::vector<double> chain = partSeconds(p, {true, 0, g.steps, false}, shareTimelines);
    g.ttftSeconds = chain[0];
    for (uint32_t s = 0; s < g.steps; ++s) take(s, chain[s + 1]);
  } else {
    // Windows at evenly spaced starts, the first after the prefill, the others from idle
    // with their first step's tokens ready, the last ending at the last step.
    const uint32_t windows = std::max(2u, maxSimulatedSteps / window);
    for (uint32_t w = 0; w < windows; ++w) {
      const uint32_t start =
          uint32_t(std::llround(double(w) * double(g.steps - window) / double(windows - 1)));
      const std::vector<double> seconds = partSeconds(p, {w == 0, start, window, w > 0}, shareTimelines);
      if (w == 0) g.ttftSeconds = seconds[0];
      take(start + window - 3, seconds[seconds.size() - 3]);
      take(start + window - 2, seconds[seconds.size() - 2]);
    }
  }
  if (!g.stepSeconds.empty()) {
    double total = 0;
    for (double s : g.stepSeconds) total += s;
    g.tpotMedianSeconds = nearestRankPercentile(g.stepSeconds, 0.5);
    g.tpotP99Seconds = nearestRankPercentile(g.stepSeconds, 0.99);
    g.decodeTokensPerSecond =
        share(double(p.workload().sequences()) * double(g.stepSeconds.size()), total);
  }
  return g;
}

} // namespace detail

// ---- routing ----------------------------------------------------------------------------

namespace {

// The routing model of `layer`: the plan's expert loads (its row, when per layer), or
// uniform; its stickiness (the layer's, when per layer), or 0.
RoutingModel routingModel(const plan::Plan &p, int32_t layer) {
  const plan::Model &m = p.model();
  RoutingModel r{int64_t(m.experts()), int64_t(m.top_k()), {}, 0};
  if (const int sticky = m.routing_stickiness_size(); sticky > 0) {
    if (sticky > 1 && (layer < 0 || layer >= sticky))
      throw std::invalid_argument("model.routing_stickiness has " + std::to_string(sticky) +
                                  " entries, none for layer " + std::to_string(layer));
    r.stickiness = m.routing_stickiness(sticky == 1 ? 0 : layer);
  }
  const int64_t n = m.expert_load_size(), experts = m.experts();
  if (n == 0) return r;
  const int64_t row = n == experts ? 0 : layer;
  if (experts == 0 || layer < 0 || (n != experts && n != int64_t(m.layers()) * experts) ||
      (row + 1) * experts > n)
    throw std::invalid_argument("model.expert_load has " + std::to_string(n) + " entries for " +
                                std::to_string(experts) + " experts and " +
                                std::to_string(m.layers()) + " layers");
  r.weights.assign(m.expert_load().begin() + row * experts, m.expert_load().begin() + (row + 1) * experts);
  return r;
}

// One DISPATCH as its layer's expert ranks see it (Routing.h): every rank of the EP group,
// and its expert-TP peers, routes `tokens` tokens in `groups` groups.
Dispatch dispatchOf(const plan::Plan &p, const plan::Kernel &k) {
  const int64_t groups = std::max<int64_t>(1, k.groups());
  const int64_t ep = std::max<uint32_t>(1, p.strategy().ep());
  const int64_t etp = std::max<uint32_t>(1, p.strategy().expert_tp());
  return {k.tokens() / groups, groups, k.capacity(), ep * etp, ep};
}

// Estimates per (layer's expert loads, dispatch shape): layers routing alike share one.
class RoutingCache {
public:
  explicit RoutingCache(const plan::Plan &p) : plan_(p) {}
  const DispatchEstimate &estimate(int32_t layer, const plan::Kernel &k) {
    const Dispatch d = dispatchOf(plan_, k);
    auto key = std::make_tuple(rowOf(layer), d.tokensPerGroup, d.groups, d.capacity);
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(key, estimateDispatch(routingModel(plan_, layer), d)).first;
    return it->second;
  }

  // The layer's load balance over the whole batch's `tokens` tokens: it reads the expert
  // loads only (not the stickiness), so layers sharing a load row share it.
  double loadBalance(int32_t layer, int64_t tokens) {
    const int32_t row = loadRowOf(layer);
    auto it = balance_.find(row);
    if (it == balance_.end())
      it = balance_.emplace(row, expectedLoadBalance(routingModel(plan_, layer), tokens,
                                                     std::max<uint32_t>(1, plan_.strategy().ep())))
               .first;
    return it->second;
  }

private:
  // Which expert loads `layer` routes by: its own row of a per-layer table, or (-1) the
  // plan's one row or uniform routing, shared by every layer.
  int32_t loadRowOf(int32_t layer) const {
    return plan_.model().expert_load_size() > int(plan_.model().experts()) ? layer : -1;
  }
  // Which routing model (loads and stickiness) `layer` routes by, as loadRowOf.
  int32_t rowOf(int32_t layer) const {
    return plan_.model().routing_stickiness_size() > 1 ? layer : loadRowOf(layer);
  }

  const plan::Plan &plan_;
  std::map<std::tuple<int32_t, int64_t, int64_t, int64_t>, DispatchEstimate> cache_;
  std::map<int32_t, double> balance_;
};

bool hasRouted(const plan::Plan &p) {
  for (const plan::Program &program : p.programs())
    for (const plan::Instruction &inst : program.instructions())
      if (inst.routed()) return true;
  return false;
}

std::vector<LayerRouting> predictRouting(const plan::Plan &p, RoutingCache &cache) {
  std::map<int32_t, LayerRouting> layers;
  const plan::Workload &w = p.workload();
  const int64_t tokens = int64_t(w.sequences()) * (w.phase() == plan::DECODE ? 1 : int64_t(w.seq_len()));
  for (const plan::Program &program : p.programs())
    for (const plan::Instruction &inst : program.instructions()) {
      if (!inst.has_kernel() || inst.kernel().kind() != plan::DISPATCH || layers.count(inst.layer()))
        continue;
      const DispatchEstimate &e = cache.estimate(inst.layer(), inst.kernel());
      LayerRouting r;
      r.layer = inst.layer();
      r.droppedFraction = e.droppedFraction;
      r.busiestFill = share(e.maxRows, e.paddedRows);
      r.meanFill = share(e.meanRows, e.paddedRows);
      r.routedFill = share(e.routedRows, e.paddedRows);
      r.loadBalance = cache.loadBalance(inst.layer(), tokens);
      r.stickiness = routingModel(p, inst.layer()).stickiness;
      layers.emplace(r.layer, r);
    }
  std::vector<LayerRouting> out;
  for (auto &[layer, r] : layers) out.push_back(r);
  return out;
}

// Scales `out`'s routed costs (a copy of the plan the cache reads) to the expected work.
void applyExpectedWork(plan::Plan &out, RoutingCache &cache) {
  for (plan::Program &program : *out.mutable_programs()) {
    std::map<int32_t, double> fill;  // per layer, of its latest DISPATCH (issue order)
    for (plan::Instruction &inst : *program.mutable_instructions()) {
      if (inst.has_kernel() && inst.kernel().kind() == plan::DISPATCH) {
        const DispatchEstimate &e = cache.estimate(inst.layer(), inst.kernel());
        fill[inst.layer()] = share(e.maxRows, e.paddedRows);
      }
      if (!inst.routed()) continue;
      auto f = fill.find(inst.layer());
      if (f == fill.end())
        throw std::invalid_argument("instruction " + quoted(inst) + " is routed, but no DISPATCH of layer " +
                                    std::to_string(inst.layer()) + " is issued before it");
      plan::Cost &c = *inst.mutable_cost();
      auto scaled = [&](uint64_t v) { return uint64_t(std::llround(double(v) * f->second)); };
      if (inst.has_kernel()) {
        // Weights are read whole, whatever the rows.
        uint64_t weights = 0;
        for (uint32_t b : inst.kernel().inputs())
          if (b < uint32_t(program.buffers_size()) && program.buffers(int(b)).kind() == plan::WEIGHT)
            weights += program.buffers(int(b)).bytes();
        weights = std::min<uint64_t>(weights, c.memory_bytes());
        c.set_flops(scaled(c.flops()));
        c.set_memory_bytes(weights + scaled(c.memory_bytes() - weights));
      } else {
        c.set_comm_bytes(scaled(c.comm_bytes()));
      }
    }
  }
}

Prediction simulateExpected(const plan::Plan &p, bool shareTimelines) {
  if (p.workload().phase() != plan::GENERATE) return simulatePass(p, shareTimelines);
  // The main figures are the prefill's alone, with nothing after it to feed.
  google::protobuf::Arena arena;
  Prediction pred = simulatePass(*chainPlan(p, {true, 0, 0, false}, arena).plan, shareTimelines);
  pred.generation = detail::simulateGeneration(p, kMaxSimulatedSteps, shareTimelines);
  return pred;
}

} // namespace

std::vector<LayerRouting> predictRouting(const plan::Plan &p) {
  RoutingCache cache(p);
  return predictRouting(p, cache);
}

plan::Plan expectedWork(const plan::Plan &p) {
  plan::Plan out = p;
  applyExpectedWork(out);
  return out;
}

void applyExpectedWork(plan::Plan &p) {
  RoutingCache cache(p);
  applyExpectedWork(p, cache);
}

namespace {
// `p` with its expected work, on `arena`: a copy of tens of thousands of instructions, which
// an arena builds and frees far faster than the heap.
const plan::Plan &expectedCopy(google::protobuf::Arena &arena, const plan::Plan &p) {
  plan::Plan *expected = google::protobuf::Arena::CreateMessage<plan::Plan>(&arena);
  *expected = p;
  sim::applyExpectedWork(*expected);  // the public one, not the cache-taking one above
  return *expected;
}
} // namespace

std::vector<SoloCompute> soloCompute(const plan::Plan &p) {
  if (!hasRouted(p)) return soloComputeOfExpectedWork(p);
  google::protobuf::Arena arena;
  return soloComputeOfExpectedWork(expectedCopy(arena, p));
}

std::vector<SoloCompute> soloComputeOfExpectedWork(const plan::Plan &expected) {
  return Simulation(expected).soloCompute();
}

Prediction simulate(const plan::Plan &p) {
  if (!hasRouted(p)) return simulateExpectedWork(p);
  google::protobuf::Arena arena;
  return simulateExpectedWork(expectedCopy(arena, p));
}

namespace {
Prediction simulateExpectedWork(const plan::Plan &expected, bool shareTimelines) {
  Prediction pred = simulateExpected(expected, shareTimelines);
  // The routing figures read each DISPATCH's shape, which expected work leaves as it was.
  RoutingCache cache(expected);
  pred.routing = predictRouting(expected, cache);
  if (!pred.routing.empty()) {
    pred.loadBalance = pred.droppedTokenFraction = 0;
    for (const LayerRouting &r : pred.routing) {
      pred.loadBalance += r.loadBalance / double(pred.routing.size());
      pred.droppedTokenFraction += r.droppedFraction / double(pred.routing.size());
    }
  }
  return pred;
}
} // namespace

Prediction simulateExpectedWork(const plan::Plan &expected) {
  return simulateExpectedWork(expected, true);
}

Prediction detail::simulateEveryRank(const plan::Plan &p) {
  google::protobuf::Arena arena;
  return simulateExpectedWork(hasRouted(p) ? expectedCopy(arena, p) : p, false);
}

namespace {

Prediction simulatePass(const plan::Plan &p, bool shareTimelines) {
  Simulation simulation(p, shareTimelines);
  Prediction pred;
  pred.ranks = simulation.run();

  double makespan = 0;
  for (const RankTimeline &t : pred.ranks)
    for (const InstructionTiming &timing : t.instructions)
      makespan = std::max(makespan, timing.end);

  double bubble = 0, comm = 0, exposed = 0, flops = 0;
  for (RankTimeline &t : pred.ranks) {
    const RankState &state = simulation.rank(t.rank);
    if (const uint32_t rep = simulation.representative(t.rank); rep != t.rank) {
      const uint32_t rank = t.rank;
      t = pred.ranks[rep];  // an earlier rank, summarized already: its timeline and figures
      t.rank = rank;
    } else {
      summarizeRank(t, p, p.programs(int(state.program)), simulation.programOf(t.rank), state,
                    makespan);
      ++pred.simulatedRanks;
    }
    bubble += share(t.bubble, makespan);
    comm += share(t.commBusy, makespan);
    exposed += share(t.exposedComm, makespan);
    flops += double(t.flops);
    const std::pair<double, const char *> bounds[] = {{t.computeSeconds, "compute"},
                                                      {t.memorySeconds, "memory"},
                                                      {t.commSeconds, "communication"}};
    for (const auto &[seconds, bound] : bounds)
      if (seconds > pred.rooflineSeconds || pred.rooflineBound.empty()) {
        pred.rooflineSeconds = seconds;
        pred.rooflineRank = t.rank;
        pred.rooflineBound = bound;
      }
  }

  const double ranks = double(pred.ranks.size());
  pred.latencySeconds = makespan;
  const plan::Workload &w = p.workload();
  double tokens = w.phase() == plan::DECODE ? double(w.sequences())
                                            : double(w.sequences()) * double(w.seq_len());
  pred.throughputTokensPerSecond = share(tokens, makespan);
  pred.bubbleFraction = share(bubble, ranks);
  pred.commShare = share(comm, ranks);
  pred.exposedCommShare = share(exposed, ranks);
  pred.overlappedCommShare = pred.commShare - pred.exposedCommShare;
  pred.utilization = share(flops, ranks * p.cluster().peak_flops() * makespan);
  return pred;
}

} // namespace

const std::vector<std::string> &streamNames() { return trace::planStreamNames(); }

std::vector<trace::TraceEvent> traceEvents(const plan::Plan &p, const Prediction &pred) {
  std::vector<trace::TraceEvent> events;
  size_t executed = 0;
  for (const RankTimeline &t : pred.ranks) executed += t.instructions.size();
  events.reserve(executed);
  std::vector<std::string> groupRanks(size_t(p.groups_size()));
  for (int g = 0; g < p.groups_size(); ++g) groupRanks[size_t(g)] = compactRanks(p.groups(g));

  for (const RankTimeline &t : pred.ranks) {
    const plan::Program &program = p.programs(int(p.ranks(int(t.rank)).program()));
    for (const InstructionTiming &timing : t.instructions) {
      const plan::Instruction &inst = program.instructions(int(timing.instruction));
      trace::TraceEvent e;
      e.rank = t.rank;
      e.stream = inst.stream();
      e.startSeconds = timing.start;
      e.durationSeconds = timing.end - timing.start;
      e.args["micro_batch"] = std::to_string(inst.micro_batch());
      e.args["layer"] = std::to_string(inst.layer());
      e.args["flops"] = std::to_string(inst.cost().flops());
      e.args["memory_bytes"] = std::to_string(inst.cost().memory_bytes());
      e.args["comm_bytes"] = std::to_string(inst.cost().comm_bytes());
      if (inst.has_kernel()) {
        e.name = inst.label().empty() ? plan::KernelKind_Name(inst.kernel().kind()) : inst.label();
        e.category = "kernel";
      } else {
        const plan::Collective &c = inst.collective();
        CollectiveRoute route = routeCollective(p, t.rank, c);
        e.name = inst.label().empty() ? plan::CollectiveKind_Name(c.kind()) : inst.label();
        e.category = isTransfer(c.kind()) ? "p2p" : "collective";
        e.args["axis"] = c.axis();
        e.args["group"] = groupRanks[route.group];
        if (isTransfer(c.kind())) e.args["peer"] = std::to_string(route.peerRank);
      }
      events.push_back(std::move(e));
    }
  }
  return events;
}

}  // namespace moeplan::sim
