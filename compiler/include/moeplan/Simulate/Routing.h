// The routing model: which experts a MoE layer's tokens choose, as the cost model predicts
// it. Routing decides the work of the expert step (the rows the all-to-all moves and the
// grouped GEMMs compute), how many choices capacity drops, and, since every EP rank waits for
// the slowest, that the most loaded rank sets the step's time.
//
// The model: each token chooses top_k distinct experts independently of the other tokens;
// expert e is among a token's choices with probability pi_e = top_k x w_e / sum(w) (w: the
// layer's expert load, uniform when none is given; pi_e capped at 1). So the choices of one
// capacity group's t tokens for expert e are Binomial(t, pi_e). The experts' counts are drawn
// independently (the true counts of one group are slightly negatively correlated: top_k per
// token; ignoring that overstates the spread a little, so the busiest rank's load errs high).
//
// Figures that need the distribution of a maximum are estimated by a seeded Monte Carlo: the
// same inputs always give the same figures.
#pragma once

#include <cstdint>
#include <vector>

namespace moeplan::sim {

struct RoutingModel {
  int64_t experts = 0, topK = 1;
  std::vector<double> weights;  // per expert (>= 0, some > 0); empty: uniform
};

// pi_e: the probability that a token chooses expert e (sums to top_k unless some are capped).
std::vector<double> choiceProbabilities(const RoutingModel &m);

// The EP position that holds expert e: e x positions / experts (e / (experts / ep) when ep
// divides experts, which check requires).
inline int64_t expertPosition(int64_t e, int64_t experts, int64_t positions) {
  return e * positions / experts;
}

// One layer's dispatch as one expert rank sees it: `sources` dispatching ranks (ep x
// expert_tp: the EP group's ranks, and the expert-TP peers whose rows are gathered) each route
// their tokens in `groups` capacity groups of `tokensPerGroup` tokens, each group with
// `capacity` slots per expert.
struct Dispatch {
  int64_t tokensPerGroup = 0;
  int64_t groups = 1;
  int64_t capacity = 0;
  int64_t sources = 1;
  int64_t positions = 1;  // EP ranks
};

struct DispatchEstimate {
  double droppedFraction = 0;  // expected share of the choices that find no free slot
  double routedRows = 0;       // choices a position is routed, mean over positions (no drops)
  double meanRows = 0;         // kept rows a position computes, mean over positions
  double maxRows = 0;          // expected kept rows of the busiest position
  double paddedRows = 0;       // slots a position holds: sources x groups x capacity x its
                               // experts (experts / positions)
};

DispatchEstimate estimateDispatch(const RoutingModel &m, const Dispatch &d);

// Expected mean / max over the EP positions of the choices routed to each (dropped ones
// included) when `tokens` tokens route: the layer's load balance over a whole batch, as
// moeplan-run measures it. The positions' loads are multinomial over tokens x top_k choices
// (exact for top_k 1).
double expectedLoadBalance(const RoutingModel &m, int64_t tokens, int64_t positions);

} // namespace moeplan::sim
