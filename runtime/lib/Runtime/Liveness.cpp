#include "moeplan/Runtime/Liveness.h"

#include <algorithm>
#include <chrono>
#include <list>

namespace moeplan::runtime {

namespace {

constexpr int kTag = 1;  // on the liveness thread's own communicator

// What travels around the ring. Every message from a rank to its successor uses one tag,
// so MPI delivers them in the order sent: a goodbye is the last thing a successor hears.
enum Kind : int64_t { kBeat = 1, kToken = 2, kGoodbye = 3 };
struct Message {
  int64_t kind = 0, round = 0, active = 0;
};

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string formatTimeout(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", s);
  return text;
}

} // namespace

Liveness::Liveness(double timeoutSeconds, std::function<void(const std::string &)> lost)
    : timeout_(timeoutSeconds), lost_(std::move(lost)) {
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  if (size_ > 1) thread_ = std::thread([this] { watch(); });
}

Liveness::~Liveness() {
  finish();
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void Liveness::finish() {
  finishing_.store(true);
  if (thread_.joinable()) thread_.join();
}

bool Liveness::activeSinceLastAsked() {
  const uint64_t progress = progress_.load(std::memory_order_relaxed);
  const bool active = !executing_.load() || busy_.load(std::memory_order_relaxed) > 0 ||
                      progress != lastSeenProgress_;
  lastSeenProgress_ = progress;
  return active;
}

void Liveness::watch() {
  const int pred = (rank_ + size_ - 1) % size_, succ = (rank_ + 1) % size_;
  const double period = std::min(1.0, timeout_ / 4);
  const std::string timeout = formatTimeout(timeout_);

  // Sends in flight (a list: MPI keeps their addresses until they complete). A successor
  // that stopped stops receiving: beats are then not piled up without bound.
  struct Outgoing {
    Message message;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  std::list<Outgoing> sends;
  auto send = [&](Message m) {
    Outgoing &o = sends.emplace_back();
    o.message = m;
    MPI_Isend(&o.message, 3, MPI_INT64_T, succ, kTag, comm_, &o.request);
  };
  auto reap = [&] {
    for (auto it = sends.begin(); it != sends.end();) {
      int done = 0;
      MPI_Test(&it->request, &done, MPI_STATUS_IGNORE);
      it = done ? sends.erase(it) : std::next(it);
    }
  };

  Message in;
  MPI_Request receive = MPI_REQUEST_NULL;
  MPI_Irecv(&in, 3, MPI_INT64_T, pred, kTag, comm_, &receive);
  const Clock::time_point start = Clock::now();
  Clock::time_point heard = start, lastBeat = start - std::chrono::hours(1), lastActive = start,
                    roundSent = lastBeat;
  bool predSaidGoodbye = false, saidGoodbye = false, tokenOut = false;
  int64_t round = 0;
  for (;;) {
    const Clock::time_point now = Clock::now();
    while (!predSaidGoodbye) {
      int got = 0;
      MPI_Test(&receive, &got, MPI_STATUS_IGNORE);
      if (!got) break;
      heard = now;
      if (in.kind == kGoodbye) {
        predSaidGoodbye = true;  // nothing more comes from the predecessor
        break;
      }
      if (in.kind == kToken) {
        if (rank_ != 0) {
          send({kToken, in.round, in.active || activeSinceLastAsked()});
        } else {
          tokenOut = false;
          if (in.active) {
            lastActive = now;
          } else if (!finishing_.load() && seconds(now - lastActive) > timeout_) {
            lost_("every rank is alive, but none has completed an instruction or been inside a "
                  "kernel for " + timeout + " s: the ranks wait on each other's communication "
                  "(a deadlock)");
          }
        }
      }
      MPI_Irecv(&in, 3, MPI_INT64_T, pred, kTag, comm_, &receive);
    }
    if (!saidGoodbye) {
      if (seconds(now - lastBeat) >= period) {
        if (sends.size() < 16) send({kBeat, 0, 0});
        lastBeat = now;
      }
      if (rank_ == 0 && !tokenOut && seconds(now - roundSent) >= period) {
        send({kToken, ++round, activeSinceLastAsked()});
        tokenOut = true;
        roundSent = now;
      }
    }
    reap();
    if (!predSaidGoodbye && seconds(now - heard) > timeout_)
      lost_("rank " + std::to_string(pred) + " has sent no heartbeat for " + timeout +
            " s: it has stopped, or its host is unreachable");
    // Goodbyes go around the ring from rank 0: each rank's comes after its predecessor's,
    // so every token in flight is forwarded (or absorbed by rank 0) before it.
    if (finishing_.load() && !saidGoodbye && (rank_ == 0 || predSaidGoodbye)) {
      send({kGoodbye, 0, 0});
      saidGoodbye = true;
    }
    if (saidGoodbye && predSaidGoodbye) {
      while (!sends.empty()) {
        reap();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

} // namespace moeplan::runtime
