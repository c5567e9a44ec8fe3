"""The one place where batch column names live.

Batches travelling between EnvRunners, Learners and modules are plain dicts of arrays
(numpy on the sampling side, torch on the learning side) keyed by these names and grouped
by module id. Nothing else in marl_arena invents a batch key inline.
"""


class Columns:
    """Standard batch keys (names match RLlib's so users recognise them)."""

    OBS = "obs"
    NEXT_OBS = "new_obs"
    ACTIONS = "actions"
    REWARDS = "rewards"
    TERMINATEDS = "terminateds"
    # True where a trajectory segment stops without a terminal state (time limit or the
    # end of a rollout fragment): learners bootstrap from NEXT_OBS there.
    TRUNCATEDS = "truncateds"
    ACTION_MASK = "action_mask"
    NEXT_ACTION_MASK = "new_action_mask"
    ACTION_DIST_INPUTS = "action_dist_inputs"
    ACTION_LOGP = "action_logp"
    # APPO: the target (old) policy's action-distribution inputs, computed by the learner.
    TARGET_NETWORK_ACTION_DIST_INPUTS = "target_network_action_dist_inputs"
    VF_PREDS = "vf_preds"
    # Centralized critics: what the value function reads instead of OBS (the global state, or
    # the team's observations), assembled by the EnvRunner; and the same at the next step.
    CRITIC_OBS = "critic_obs"
    NEXT_CRITIC_OBS = "new_critic_obs"
    # Q-learning: Q(s, .) of every action, one row per observation (masking is the user's job).
    QF_PREDS = "qf_preds"
    # SAC's second critic (twin Q), shaped like QF_PREDS.
    QF_TWIN_PREDS = "qf_twin_preds"
    # Distributional Q (C51): logits over the return atoms, (rows, actions, atoms), and the
    # projected target distribution of the taken action, (rows, atoms).
    QF_LOGITS = "qf_logits"
    QF_TARGET_PROBS = "qf_target_probs"
    ADVANTAGES = "advantages"
    VALUE_TARGETS = "value_targets"
    EMBEDDINGS = "embeddings"
    # Recurrent modules: the state a forward pass starts from and the one it ends in, one
    # flat float32 vector per row (per sequence in training batches), and which steps of a
    # zero-padded ``[sequences, max_seq_len]`` training batch are real.
    STATE_IN = "state_in"
    STATE_OUT = "state_out"
    LOSS_MASK = "loss_mask"
    # Replay: the discount of an n-step transition's bootstrap value (gamma^m), the rows'
    # buffer slots (prioritized replay updates them) and importance-sampling weights.
    N_STEP_DISCOUNT = "n_step_discount"
    # Rows an EnvRunner sends only as look-ahead for n-step returns: the last n-1 steps of a
    # trajectory that goes on. They come again, as transitions, in the next sample.
    LOOKAHEAD = "lookahead"
    BATCH_INDEXES = "batch_indexes"
    WEIGHTS = "weights"
    # Offline data (Parquet, RLlib's tabular names): which episode, agent and module a row
    # belongs to, and the agent's own step index in that episode.
    EPS_ID = "eps_id"
    AGENT_ID = "agent_id"
    MODULE_ID = "module_id"
    T = "t"
    # Sequence replay (DreamerV3): a row starts an episode (the recurrent state restarts there),
    # ends one in a terminal state, and the action that led into the row's observation.
    IS_FIRST = "is_first"
    IS_TERMINAL = "is_terminal"
    PREV_ACTIONS = "prev_actions"
