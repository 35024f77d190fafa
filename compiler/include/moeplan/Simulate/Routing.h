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
  // The probability that a token routes exactly as the token before it in its dispatch group
  // (its top_k experts), else it chooses afresh: a group's tokens come in clumps of mean
  // length 1 / (1 - stickiness). Nearby tokens of a sequence are alike after attention, so
  // they pick the same experts; a capacity group then drops more than independent tokens
  // would. Read by the group estimates (drops, filled rows), not by the batch's load
  // balance. In [0, 1); 0: independent tokens.
  double stickiness = 0;
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

// The expected share of choices dropped when groups of `tokensPerGroup` tokens route with
// `capacity` slots per expert (estimateDispatch's droppedFraction; exact under the model).
double expectedDropped(const RoutingModel &m, int64_t tokensPerGroup, int64_t capacity);

// The stickiness in [0, PlanLimits::kStickiness] under which m (its own stickiness ignored) drops
// `dropped` of the choices of groups of `tokensPerGroup` tokens with `capacity` slots: the
// clumping a measured run's drops imply (drops grow with stickiness). 0 when independent
// tokens already drop as much or more.
double fitStickiness(const RoutingModel &m, int64_t tokensPerGroup, int64_t capacity,
                     double dropped);

// Expected mean / max over the EP positions of the choices routed to each (dropped ones
// included) when `tokens` tokens route: the layer's load balance over a whole batch, as
// moeplan-run measures it. The positions' loads are multinomial over tokens x top_k choices
// (exact for top_k 1). The stickiness is not read: a capacity group's clumps show in its
// drops, but drawing the batch in clumps underpredicted the tiny runs' balance (by up to 5.2
// points where independent draws were within 2.9; README, "routing").
double expectedLoadBalance(const RoutingModel &m, int64_t tokens, int64_t positions);

} // namespace moeplan::sim
