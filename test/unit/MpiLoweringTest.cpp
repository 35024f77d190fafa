// Plan collectives as int-count MPI operations (runtime/MpiLowering.h), without MPI:
//   (a) the arithmetic at counts past 2^31, on the operation lists alone: every count fits
//       an int, the pieces cover every element once, the offsets are right;
//   (b) the semantics: a simulated communicator runs every rank's operations over
//       in-memory buffers, and the result must be what plan.proto says the collective does,
//       for every kind, group sizes 1 to 4, random counts and small count limits.
#include "moeplan/Runtime/Backend.h"
#include "moeplan/Runtime/MpiLowering.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>

using namespace moeplan;
using namespace moeplan::runtime;

namespace {

constexpr uint64_t kIntMax = INT_MAX;

plan::Collective collective(plan::CollectiveKind kind, uint64_t count, uint64_t sequence = 1,
                            uint32_t peer = 0) {
  plan::Collective c;
  c.set_kind(kind);
  c.set_axis("ep");
  c.set_count(count);
  c.set_sequence(sequence);
  c.set_peer(peer);
  c.set_dtype(plan::F32);
  return c;
}

plan::Collective allToAll(const std::vector<uint64_t> &send, const std::vector<uint64_t> &recv,
                          uint64_t sequence = 1) {
  plan::Collective c = collective(plan::ALL_TO_ALL, 0, sequence);
  for (uint64_t n : send) c.add_send_counts(n);
  for (uint64_t n : recv) c.add_recv_counts(n);
  return c;
}

// Element ranges [begin, end).
using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;

// The ranges cover [begin, end) exactly once.
void expectCovers(Ranges ranges, uint64_t begin, uint64_t end) {
  std::sort(ranges.begin(), ranges.end());
  uint64_t at = begin;
  for (auto [b, e] : ranges) {
    EXPECT_EQ(b, at) << "a gap or an overlap before element " << b;
    at = e;
  }
  EXPECT_EQ(at, end);
}

// Every operation's count is an int within the limit.
void expectCountsFit(const std::vector<MpiOp> &ops, uint64_t maxCount) {
  for (const MpiOp &op : ops) {
    EXPECT_GE(op.count, 0);
    EXPECT_LE(uint64_t(op.count), maxCount);
  }
}

// ---- (a) the arithmetic past 2^31 ----------------------------------------------------------

TEST(MpiLowering, ChunksPastTwoToThe31) {
  std::vector<MpiChunk> c = mpiChunks(3'000'000'000, kIntMax);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].offset, 0u);
  EXPECT_EQ(c[0].count, INT_MAX);
  EXPECT_EQ(c[1].offset, kIntMax);
  EXPECT_EQ(c[1].count, 3'000'000'000 - INT_MAX);

  const uint64_t big = (uint64_t(1) << 33) + 5;  // 4 x INT_MAX + 9
  c = mpiChunks(big, kIntMax);
  ASSERT_EQ(c.size(), 5u);
  EXPECT_EQ(c[4].offset, 4 * kIntMax);
  EXPECT_EQ(c[4].count, 9);
  Ranges ranges;
  for (const MpiChunk &chunk : c) ranges.emplace_back(chunk.offset, chunk.offset + chunk.count);
  expectCovers(ranges, 0, big);

  // Small limits; zero elements are one empty call.
  c = mpiChunks(15, 7);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[2].offset, 14u);
  EXPECT_EQ(c[2].count, 1);
  EXPECT_EQ(mpiChunks(14, 7).size(), 2u);
  c = mpiChunks(0, 7);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].count, 0);
  EXPECT_THROW(mpiChunks(5, 0), std::invalid_argument);
  EXPECT_THROW(mpiChunks(5, kIntMax + 1), std::invalid_argument);
}

TEST(MpiLowering, FastPathIsOneNativeCall) {
  auto one = [](const plan::Collective &c, uint32_t size, uint32_t index) {
    std::vector<MpiOp> ops = lowerCollective(c, size, index, kIntMax, true);
    EXPECT_EQ(ops.size(), 1u) << plan::CollectiveKind_Name(c.kind());
    return ops.empty() ? MpiOp{} : ops[0];
  };
  MpiOp op = one(collective(plan::ALL_REDUCE, kIntMax), 4, 1);
  EXPECT_EQ(op.kind, MpiOp::ALLREDUCE);
  EXPECT_EQ(op.count, INT_MAX);
  EXPECT_EQ(op.sendOffset, 0u);
  EXPECT_EQ(op.recvOffset, 0u);

  // The gathered and scattered buffers (group x count) fit too.
  op = one(collective(plan::ALL_GATHER, 1'000'000'000), 2, 1);
  EXPECT_EQ(op.kind, MpiOp::ALLGATHER);
  EXPECT_EQ(op.count, 1'000'000'000);
  EXPECT_EQ(op.recvStride, 0u);  // the native call: no derived type
  op = one(collective(plan::REDUCE_SCATTER, 1'000'000'000), 2, 1);
  EXPECT_EQ(op.kind, MpiOp::REDUCE_SCATTER_BLOCK);
  EXPECT_EQ(op.count, 1'000'000'000);

  // SEND/RECV are tagged by their sequence, modulo kFeedTag (32767, MPI's least tag bound),
  // which only the transfers that feed the next decode step take.
  op = one(collective(plan::SEND, 12, 40000, 3), 4, 0);
  EXPECT_EQ(op.kind, MpiOp::SEND);
  EXPECT_EQ(op.count, 12);
  EXPECT_EQ(op.peer, 3);
  EXPECT_EQ(op.tag, 40000 - 32767);
  op = one(collective(plan::RECV, 0, 7, 1), 2, 0);
  EXPECT_EQ(op.kind, MpiOp::RECV);
  EXPECT_EQ(op.count, 0);
  EXPECT_EQ(op.tag, 7);
  EXPECT_EQ(mpiTag(32767), 0);
  for (plan::CollectiveKind kind : {plan::SEND, plan::RECV}) {
    plan::Collective fed = collective(kind, 2, 32767 + 5, 1);
    fed.set_feeds_next_step(true);
    EXPECT_EQ(one(fed, 2, 0).tag, kFeedTag);
  }

  // Counts and displacements at most INT_MAX, though the total passes it.
  const int two = 2'000'000'000;
  op = one(allToAll({0, uint64_t(two), uint64_t(two)}, {5, uint64_t(two), 7}), 3, 1);
  EXPECT_EQ(op.kind, MpiOp::ALLTOALLV);
  EXPECT_EQ(op.sendCounts, (std::vector<int>{0, two, two}));
  EXPECT_EQ(op.sendDispls, (std::vector<int>{0, 0, two}));
  EXPECT_EQ(op.recvCounts, (std::vector<int>{5, two, 7}));
  EXPECT_EQ(op.recvDispls, (std::vector<int>{0, 5, two + 5}));
}

// A count that fits, on a group whose gathered or scattered buffer does not: Open MPI's
// libnbc would compute rank offsets (i x count) and the buffer's size in int.
TEST(MpiLowering, GroupTimesCountPastTwoToThe31) {
  const uint64_t n = 1'000'000'000;
  std::vector<MpiOp> ops = lowerCollective(collective(plan::ALL_GATHER, n), 4, 2, kIntMax, true);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].kind, MpiOp::ALLGATHER);
  EXPECT_EQ(ops[0].count, int(n));
  EXPECT_EQ(ops[0].recvStride, n);  // one resized element per rank
  ops = lowerCollective(collective(plan::REDUCE_SCATTER, n), 4, 2, kIntMax, true);
  ASSERT_EQ(ops.size(), 4u);
  for (int root = 0; root < 4; ++root) {
    EXPECT_EQ(ops[size_t(root)].kind, MpiOp::REDUCE);
    EXPECT_EQ(ops[size_t(root)].peer, root);
    EXPECT_EQ(ops[size_t(root)].count, int(n));
    EXPECT_EQ(ops[size_t(root)].sendOffset, uint64_t(root) * n);
    EXPECT_EQ(ops[size_t(root)].recvOffset, 0u);
  }
  // Counts near 2^60 on large groups: no overflow in group x count.
  ops = lowerCollective(collective(plan::ALL_GATHER, uint64_t(1) << 40), 1u << 20, 0, uint64_t(1) << 30, true);
  EXPECT_EQ(ops.size(), 1024u);
}

TEST(MpiLowering, AllReduceOfThreeBillion) {
  const uint64_t n = 3'000'000'000;
  std::vector<MpiOp> ops = lowerCollective(collective(plan::ALL_REDUCE, n), 8, 5, kIntMax, true);
  ASSERT_EQ(ops.size(), 2u);
  expectCountsFit(ops, kIntMax);
  Ranges ranges;
  for (const MpiOp &op : ops) {
    EXPECT_EQ(op.kind, MpiOp::ALLREDUCE);
    EXPECT_EQ(op.sendOffset, op.recvOffset);  // in place stays in place
    ranges.emplace_back(op.sendOffset, op.sendOffset + uint64_t(op.count));
  }
  expectCovers(ranges, 0, n);
}

TEST(MpiLowering, AllGatherPastTwoToThe31) {
  const uint64_t n = (uint64_t(1) << 33) + 5;
  const uint32_t group = 3;
  std::vector<MpiOp> ops = lowerCollective(collective(plan::ALL_GATHER, n), group, 1, kIntMax, true);
  ASSERT_EQ(ops.size(), 5u);
  expectCountsFit(ops, kIntMax);
  Ranges sent, received;
  for (const MpiOp &op : ops) {
    EXPECT_EQ(op.kind, MpiOp::ALLGATHER);
    EXPECT_EQ(op.recvStride, n);  // rank i's piece lands at i x n + offset
    EXPECT_EQ(op.recvOffset, op.sendOffset);
    sent.emplace_back(op.sendOffset, op.sendOffset + uint64_t(op.count));
    for (uint64_t i = 0; i < group; ++i)
      received.emplace_back(op.recvOffset + i * op.recvStride,
                            op.recvOffset + i * op.recvStride + uint64_t(op.count));
  }
  expectCovers(sent, 0, n);
  expectCovers(received, 0, group * n);
}

TEST(MpiLowering, ReduceScatterPastTwoToThe31) {
  const uint64_t n = 3'000'000'000;
  const uint32_t group = 4;
  std::vector<MpiOp> ops = lowerCollective(collective(plan::REDUCE_SCATTER, n), group, 2, kIntMax, true);
  ASSERT_EQ(ops.size(), 8u);  // two pieces per root
  expectCountsFit(ops, kIntMax);
  std::map<int, Ranges> sent, received;
  int lastRoot = 0;
  for (const MpiOp &op : ops) {
    EXPECT_EQ(op.kind, MpiOp::REDUCE);
    EXPECT_GE(op.peer, lastRoot);  // roots in order, the same on every rank
    lastRoot = op.peer;
    sent[op.peer].emplace_back(op.sendOffset, op.sendOffset + uint64_t(op.count));
    received[op.peer].emplace_back(op.recvOffset, op.recvOffset + uint64_t(op.count));
  }
  ASSERT_EQ(sent.size(), group);
  for (uint32_t root = 0; root < group; ++root) {
    expectCovers(sent[int(root)], root * n, (root + 1) * n);
    expectCovers(received[int(root)], 0, n);
  }
  // Collective calls: every member posts the same list.
  std::vector<MpiOp> other = lowerCollective(collective(plan::REDUCE_SCATTER, n), group, 0, kIntMax, true);
  ASSERT_EQ(other.size(), ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    EXPECT_EQ(other[i].peer, ops[i].peer);
    EXPECT_EQ(other[i].count, ops[i].count);
    EXPECT_EQ(other[i].sendOffset, ops[i].sendOffset);
  }
}

TEST(MpiLowering, AllToAllDisplacementsPastTwoToThe31) {
  const uint64_t a = 1'200'000'000, b = 3'000'000'000;
  // Rank 1 of 3: its counts fit an int, but displacements reach 2.4e9; it receives 3e9
  // elements from peer 2.
  const std::vector<uint64_t> send = {a, a, 5}, recv = {1'000'000'000, a, b};
  plan::Collective c = allToAll(send, recv, 70000);
  EXPECT_FALSE(allToAllvFits(c, kIntMax));
  EXPECT_THROW(lowerCollective(c, 3, 1, kIntMax, true), std::invalid_argument);
  std::vector<MpiOp> ops = lowerCollective(c, 3, 1, kIntMax, false);
  expectCountsFit(ops, kIntMax);
  std::map<int, Ranges> sentTo, receivedFrom;
  Ranges sent, received;
  for (const MpiOp &op : ops) {
    EXPECT_GT(op.count, 0);  // no empty messages
    const Ranges::value_type from{op.sendOffset, op.sendOffset + uint64_t(op.count)};
    const Ranges::value_type to{op.recvOffset, op.recvOffset + uint64_t(op.count)};
    switch (op.kind) {
    case MpiOp::SEND:
      EXPECT_EQ(op.tag, mpiTag(70000));
      sentTo[op.peer].push_back(from), sent.push_back(from);
      break;
    case MpiOp::RECV:
      EXPECT_EQ(op.tag, mpiTag(70000));
      receivedFrom[op.peer].push_back(to), received.push_back(to);
      break;
    case MpiOp::COPY:
      EXPECT_EQ(op.recvOffset - 1'000'000'000, op.sendOffset - a);  // own piece to own place
      sentTo[1].push_back(from), sent.push_back(from);
      receivedFrom[1].push_back(to), received.push_back(to);
      break;
    default:
      ADD_FAILURE() << "operation kind " << op.kind;
    }
  }
  EXPECT_EQ(sentTo.size(), 3u);
  expectCovers(sentTo[0], 0, a);
  expectCovers(sentTo[1], a, 2 * a);
  expectCovers(sentTo[2], 2 * a, 2 * a + 5);
  expectCovers(receivedFrom[0], 0, 1'000'000'000);
  expectCovers(receivedFrom[1], 1'000'000'000, 1'000'000'000 + a);
  expectCovers(receivedFrom[2], 1'000'000'000 + a, 1'000'000'000 + a + b);
  expectCovers(sent, 0, 2 * a + 5);
  expectCovers(received, 0, 1'000'000'000 + a + b);

  // Only a displacement passes INT_MAX: still point to point.
  EXPECT_FALSE(allToAllvFits(allToAll({a, a, 5}, {a, a, 5}), kIntMax));
  // Counts and displacements fit though the total does not: one Ialltoallv.
  EXPECT_TRUE(allToAllvFits(allToAll({2'000'000'000, 2'000'000'000}, {1, 2'000'000'000}), kIntMax));
}

TEST(MpiLowering, GroupAgreesOnAllToAll) {
  // Two programs issue the ALL_TO_ALL of sequence 5 over ep; only program 1's counts are
  // too large, yet every rank must leave it to point to point.
  plan::Plan p;
  auto add = [&](plan::Program *program, const plan::Collective &c) {
    *program->add_instructions()->mutable_collective() = c;
  };
  plan::Program *p0 = p.add_programs(), *p1 = p.add_programs();
  add(p0, allToAll({1, 2}, {1, 2}, 5));
  add(p1, allToAll({3'000'000'000, 2}, {3'000'000'000, 2}, 5));
  add(p0, allToAll({2, 2, 2}, {2, 2, 2}, 6));
  add(p1, allToAll({2, 2, 2}, {2, 2, 2}, 6));
  add(p0, collective(plan::ALL_REDUCE, 5'000'000'000, 7));  // not an ALL_TO_ALL
  using Set = std::set<std::pair<std::string, uint64_t>>;
  EXPECT_EQ(pointToPointAllToAlls(p, kIntMax), (Set{{"ep", 5}}));
  // With 3 per call, sequence 6's last displacement (4) passes too.
  EXPECT_EQ(pointToPointAllToAlls(p, 3), (Set{{"ep", 5}, {"ep", 6}}));
  EXPECT_EQ(pointToPointAllToAlls(p, 4), (Set{{"ep", 5}}));
  // Program 0's rank lowers its small counts point to point when told so.
  for (const MpiOp &op : lowerCollective(p0->instructions(0).collective(), 2, 0, kIntMax, false))
    EXPECT_NE(op.kind, MpiOp::ALLTOALLV);
}

TEST(MpiLowering, Rejects) {
  EXPECT_THROW(lowerCollective(allToAll({1, 1}, {1, 1}), 3, 0, kIntMax, true), std::invalid_argument);
  EXPECT_THROW(lowerCollective(allToAll({1, 2}, {1, 1}), 2, 1, 1, false), std::invalid_argument);
  EXPECT_THROW(lowerCollective(collective(plan::SEND, 1, 1, 2), 2, 0, kIntMax, true), std::invalid_argument);
  EXPECT_THROW(lowerCollective(collective(plan::ALL_REDUCE, 1), 2, 2, kIntMax, true), std::invalid_argument);
  EXPECT_THROW(lowerCollective(collective(plan::ALL_REDUCE, 1), 2, 0, 0, true), std::invalid_argument);
  EXPECT_THROW(lowerCollective(collective(plan::COLLECTIVE_KIND_UNSPECIFIED, 1), 2, 0, kIntMax, true),
               std::invalid_argument);
}

TEST(MpiLowering, MaxCountFromEnvironment) {
  const char *name = "MOEPLAN_MPI_MAX_COUNT";
  std::optional<std::string> saved;
  if (const char *v = std::getenv(name)) saved = v;
  unsetenv(name);
  EXPECT_EQ(mpiMaxCount(), kIntMax);
  setenv(name, "7", 1);
  EXPECT_EQ(mpiMaxCount(), 7u);
  setenv(name, "2147483647", 1);
  EXPECT_EQ(mpiMaxCount(), kIntMax);
  for (const char *bad : {"0", "-3", " 5", "5x", "abc", "2147483648", "99999999999999999999999"}) {
    setenv(name, bad, 1);
    EXPECT_THROW(mpiMaxCount(), UnusableInput) << bad;
  }
  if (saved) setenv(name, saved->c_str(), 1);
  else unsetenv(name);
}

// ---- (b) the semantics on a simulated communicator --------------------------------------

using Elem = int64_t;
constexpr Elem kUnwritten = INT64_MIN;

struct SimRank {
  std::vector<Elem> in, out;
  std::vector<MpiOp> ops;
};

bool isCollective(MpiOp::Kind k) {
  return k == MpiOp::ALLREDUCE || k == MpiOp::ALLGATHER || k == MpiOp::REDUCE_SCATTER_BLOCK ||
         k == MpiOp::REDUCE || k == MpiOp::ALLTOALLV;
}

// Runs every rank's operations as MPI would on one communicator of ranks.size() members:
// the k-th collective call of every rank together (they must agree on kind, count and
// root), each message to the receive posted for it by (source, destination, tag) in
// posting order. Reads only `in` and writes only `out` (the collectives' buffers are
// distinct), so the order between calls does not matter. Accesses are bounds-checked.
void simulate(std::vector<SimRank> &ranks) {
  const size_t P = ranks.size();
  auto read = [&](size_t r, uint64_t i) -> Elem {
    if (i >= ranks[r].in.size()) {
      ADD_FAILURE() << "rank " << r << " reads element " << i << " of " << ranks[r].in.size();
      return 0;
    }
    return ranks[r].in[i];
  };
  auto write = [&](size_t r, uint64_t i, Elem v) {
    if (i >= ranks[r].out.size())
      ADD_FAILURE() << "rank " << r << " writes element " << i << " of " << ranks[r].out.size();
    else
      ranks[r].out[i] = v;
  };

  std::vector<std::vector<const MpiOp *>> calls(P);
  std::map<std::tuple<size_t, size_t, int>, std::deque<const MpiOp *>> sends, recvs;
  for (size_t r = 0; r < P; ++r)
    for (const MpiOp &op : ranks[r].ops) {
      if (isCollective(op.kind)) calls[r].push_back(&op);
      if (op.kind == MpiOp::SEND) sends[{r, size_t(op.peer), op.tag}].push_back(&op);
      if (op.kind == MpiOp::RECV) recvs[{size_t(op.peer), r, op.tag}].push_back(&op);
      if (op.kind == MpiOp::COPY)
        for (int e = 0; e < op.count; ++e) write(r, op.recvOffset + e, read(r, op.sendOffset + e));
    }

  for (size_t r = 1; r < P; ++r)
    ASSERT_EQ(calls[r].size(), calls[0].size()) << "rank " << r << " posts another number of collective calls";
  for (size_t k = 0; k < calls[0].size(); ++k) {
    const MpiOp &first = *calls[0][k];
    for (size_t r = 1; r < P; ++r) {
      const MpiOp &op = *calls[r][k];
      ASSERT_EQ(op.kind, first.kind) << "collective call " << k << " of rank " << r;
      if (op.kind != MpiOp::ALLTOALLV) ASSERT_EQ(op.count, first.count) << "call " << k;
      if (op.kind == MpiOp::REDUCE) ASSERT_EQ(op.peer, first.peer) << "call " << k;
    }
    const int n = first.count;
    // The sum over ranks of element `at` past each one's send offset.
    auto sum = [&](uint64_t at) {
      Elem total = 0;
      for (size_t q = 0; q < P; ++q) total += read(q, calls[q][k]->sendOffset + at);
      return total;
    };
    switch (first.kind) {
    case MpiOp::ALLREDUCE:
      for (size_t r = 0; r < P; ++r)
        for (int e = 0; e < n; ++e) write(r, calls[r][k]->recvOffset + e, sum(e));
      break;
    case MpiOp::ALLGATHER:
      for (size_t r = 0; r < P; ++r)
        for (size_t i = 0; i < P; ++i)
          for (int e = 0; e < n; ++e) {
            const uint64_t stride = calls[r][k]->recvStride ? calls[r][k]->recvStride : uint64_t(n);
            write(r, calls[r][k]->recvOffset + i * stride + e, read(i, calls[i][k]->sendOffset + e));
          }
      break;
    case MpiOp::REDUCE_SCATTER_BLOCK:
      for (size_t r = 0; r < P; ++r)
        for (int e = 0; e < n; ++e) write(r, calls[r][k]->recvOffset + e, sum(r * n + e));
      break;
    case MpiOp::REDUCE: {
      const size_t root = size_t(first.peer);
      ASSERT_LT(root, P);
      for (int e = 0; e < n; ++e) write(root, calls[root][k]->recvOffset + e, sum(e));
      break;
    }
    case MpiOp::ALLTOALLV:
      for (size_t r = 0; r < P; ++r)
        for (size_t j = 0; j < P; ++j) {
          const MpiOp &mine = *calls[r][k], &theirs = *calls[j][k];
          ASSERT_EQ(theirs.sendCounts.at(r), mine.recvCounts.at(j)) << "from " << j << " to " << r;
          for (int e = 0; e < mine.recvCounts[j]; ++e)
            write(r, uint64_t(mine.recvDispls[j]) + e, read(j, uint64_t(theirs.sendDispls[r]) + e));
        }
      break;
    default:
      break;
    }
  }

  for (auto &[key, queue] : sends) {
    auto [from, to, tag] = key;
    std::deque<const MpiOp *> &posted = recvs[key];
    ASSERT_EQ(queue.size(), posted.size())
        << "messages from " << from << " to " << to << " with tag " << tag << " and receives for them";
    for (size_t m = 0; m < queue.size(); ++m) {
      ASSERT_EQ(queue[m]->count, posted[m]->count) << "message " << m << " from " << from << " to " << to;
      for (int e = 0; e < queue[m]->count; ++e)
        write(to, posted[m]->recvOffset + e, read(from, queue[m]->sendOffset + e));
    }
  }
  for (auto &[key, posted] : recvs)
    EXPECT_TRUE(posted.empty() || sends.count(key))
        << "receives from " << std::get<0>(key) << " at " << std::get<1>(key) << " that no one sends";
}

std::vector<Elem> randomValues(std::mt19937_64 &rng, uint64_t n) {
  std::uniform_int_distribution<Elem> value(-1000, 1000);
  std::vector<Elem> v(n);
  for (Elem &x : v) x = value(rng);
  return v;
}

// One collective of `kind` on P simulated ranks with random counts and values, lowered at
// maxCount, against plan.proto's meaning of the kind.
void checkCollective(plan::CollectiveKind kind, uint32_t P, uint64_t maxCount, std::mt19937_64 &rng) {
  std::uniform_int_distribution<uint64_t> countOf(0, 20);
  const uint64_t n = countOf(rng);
  std::vector<SimRank> ranks(P);
  std::vector<std::vector<Elem>> expected(P);
  auto lower = [&](const plan::Collective &c, uint32_t r, bool native = true) {
    std::vector<MpiOp> ops = lowerCollective(c, P, r, maxCount, native);
    expectCountsFit(ops, maxCount);
    ranks[r].ops.insert(ranks[r].ops.end(), ops.begin(), ops.end());
  };

  switch (kind) {
  case plan::ALL_REDUCE:  // in and out [n]: the sum
    for (uint32_t r = 0; r < P; ++r) ranks[r].in = randomValues(rng, n), lower(collective(kind, n), r);
    for (uint32_t r = 0; r < P; ++r) {
      expected[r].assign(n, 0);
      for (uint32_t q = 0; q < P; ++q)
        for (uint64_t e = 0; e < n; ++e) expected[r][e] += ranks[q].in[e];
    }
    break;
  case plan::ALL_GATHER:  // in [n], out [P x n], rank i's piece at i
    for (uint32_t r = 0; r < P; ++r) ranks[r].in = randomValues(rng, n), lower(collective(kind, n), r);
    for (uint32_t r = 0; r < P; ++r)
      for (uint32_t i = 0; i < P; ++i)
        expected[r].insert(expected[r].end(), ranks[i].in.begin(), ranks[i].in.end());
    break;
  case plan::REDUCE_SCATTER:  // in [P x n], out [n]: the sum of every rank's piece r
    for (uint32_t r = 0; r < P; ++r) ranks[r].in = randomValues(rng, P * n), lower(collective(kind, n), r);
    for (uint32_t r = 0; r < P; ++r) {
      expected[r].assign(n, 0);
      for (uint32_t q = 0; q < P; ++q)
        for (uint64_t e = 0; e < n; ++e) expected[r][e] += ranks[q].in[r * n + e];
    }
    break;
  case plan::ALL_TO_ALL: {
    // counts[a][b] elements from a to b, in peer order on both sides; small bounds let
    // some cases fit one Ialltoallv at small limits, and zeros skip peers.
    std::uniform_int_distribution<uint64_t> bound(0, 1);
    std::uniform_int_distribution<uint64_t> small(0, 2), large(0, 12);
    const bool useSmall = bound(rng);
    std::vector<std::vector<uint64_t>> counts(P, std::vector<uint64_t>(P));
    for (auto &row : counts)
      for (uint64_t &x : row) x = useSmall ? small(rng) : large(rng);
    std::vector<plan::Collective> cs;
    bool native = true;
    for (uint32_t r = 0; r < P; ++r) {
      std::vector<uint64_t> send(counts[r]), recv;
      for (uint32_t j = 0; j < P; ++j) recv.push_back(counts[j][r]);
      cs.push_back(allToAll(send, recv, 3));
      native = native && allToAllvFits(cs.back(), maxCount);  // as pointToPointAllToAlls
      uint64_t total = 0;
      for (uint64_t x : send) total += x;
      ranks[r].in = randomValues(rng, total);
    }
    for (uint32_t r = 0; r < P; ++r) {
      lower(cs[r], r, native);
      if (native) EXPECT_EQ(ranks[r].ops.size(), 1u);
    }
    for (uint32_t r = 0; r < P; ++r)
      for (uint32_t j = 0; j < P; ++j) {
        uint64_t displ = 0;  // of r's piece in j's input
        for (uint32_t b = 0; b < r; ++b) displ += counts[j][b];
        expected[r].insert(expected[r].end(), ranks[j].in.begin() + displ,
                           ranks[j].in.begin() + displ + counts[j][r]);
      }
    break;
  }
  case plan::SEND:
  case plan::RECV: {
    // A ring: rank r sends sizes[r] elements to r + 1 (sequence 100 + r) and receives from
    // r - 1; each rank's receive follows its send, so both are in flight together.
    if (P < 2) return;
    std::vector<uint64_t> sizes;
    for (uint32_t r = 0; r < P; ++r) sizes.push_back(countOf(rng));
    for (uint32_t r = 0; r < P; ++r) {
      const uint32_t next = (r + 1) % P, prev = (r + P - 1) % P;
      ranks[r].in = randomValues(rng, sizes[r]);
      lower(collective(plan::SEND, sizes[r], 100 + r, next), r);
      lower(collective(plan::RECV, sizes[prev], 100 + prev, prev), r);
    }
    for (uint32_t r = 0; r < P; ++r) expected[r] = ranks[(r + P - 1) % P].in;
    break;
  }
  default:
    FAIL() << "no reference for " << plan::CollectiveKind_Name(kind);
  }

  for (uint32_t r = 0; r < P; ++r) ranks[r].out.assign(expected[r].size(), kUnwritten);
  simulate(ranks);
  for (uint32_t r = 0; r < P; ++r) EXPECT_EQ(ranks[r].out, expected[r]) << "rank " << r;
}

TEST(MpiLowering, SimulatedCollectivesMatchTheirMeaning) {
  std::mt19937_64 rng(20260101);
  int checked = 0;
  for (plan::CollectiveKind kind : {plan::ALL_REDUCE, plan::ALL_GATHER, plan::REDUCE_SCATTER,
                                    plan::ALL_TO_ALL, plan::SEND})
    for (uint32_t P : {1u, 2u, 3u, 4u})
      for (uint64_t maxCount : {uint64_t(1), uint64_t(2), uint64_t(3), uint64_t(7), kIntMax})
        for (int trial = 0; trial < 8; ++trial) {
          SCOPED_TRACE(plan::CollectiveKind_Name(kind) + " on " + std::to_string(P) +
                       " ranks, at most " + std::to_string(maxCount) + " per call, trial " +
                       std::to_string(trial));
          checkCollective(kind, P, maxCount, rng);
          if (::testing::Test::HasFailure()) return;  // one story, not hundreds
          ++checked;
        }
  EXPECT_EQ(checked, 5 * 4 * 5 * 8);
}

// The point-to-point messages of collectives in flight together on one communicator do
// not match each other's receives, whatever order the ranks post them in: an ALL_TO_ALL
// (sequence 10) cut into pieces, and a SEND/RECV pair (sequence 11) between the same ranks,
// posted in opposite orders by the two ranks.
TEST(MpiLowering, MessagesOfCollectivesInFlightDoNotMix) {
  const uint64_t maxCount = 2;
  std::vector<SimRank> ranks(2);
  std::mt19937_64 rng(3);
  plan::Collective a2a0 = allToAll({3, 5}, {3, 4}, 10), a2a1 = allToAll({4, 2}, {5, 2}, 10);
  ASSERT_FALSE(allToAllvFits(a2a0, maxCount));
  std::vector<MpiOp> x0 = lowerCollective(a2a0, 2, 0, maxCount, false);
  std::vector<MpiOp> x1 = lowerCollective(a2a1, 2, 1, maxCount, false);
  std::vector<MpiOp> send = lowerCollective(collective(plan::SEND, 5, 11, 1), 2, 0, maxCount, true);
  std::vector<MpiOp> recv = lowerCollective(collective(plan::RECV, 5, 11, 0), 2, 1, maxCount, true);
  // Rank 0: the all-to-all, then the send; rank 1: the receive, then the all-to-all. The
  // send reads rank 0's input past the all-to-all's 8 elements; the receive writes rank 1's
  // output past its 7.
  for (MpiOp &op : send) op.sendOffset += 8;
  for (MpiOp &op : recv) op.recvOffset += 7;
  ranks[0].ops = x0, ranks[0].ops.insert(ranks[0].ops.end(), send.begin(), send.end());
  ranks[1].ops = recv, ranks[1].ops.insert(ranks[1].ops.end(), x1.begin(), x1.end());
  ranks[0].in = randomValues(rng, 8 + 5), ranks[1].in = randomValues(rng, 6);
  ranks[0].out.assign(3 + 4, kUnwritten), ranks[1].out.assign(5 + 2 + 5, kUnwritten);
  simulate(ranks);
  const std::vector<Elem> &in0 = ranks[0].in, &in1 = ranks[1].in;
  std::vector<Elem> out0(in0.begin(), in0.begin() + 3);  // its own piece, then rank 1's
  out0.insert(out0.end(), in1.begin(), in1.begin() + 4);
  std::vector<Elem> out1(in0.begin() + 3, in0.begin() + 8);  // rank 0's piece, its own
  out1.insert(out1.end(), in1.begin() + 4, in1.end());
  out1.insert(out1.end(), in0.begin() + 8, in0.end());  // the SEND
  EXPECT_EQ(ranks[0].out, out0);
  EXPECT_EQ(ranks[1].out, out1);
  EXPECT_NE(send[0].tag, x0.back().tag);
}

} // namespace
